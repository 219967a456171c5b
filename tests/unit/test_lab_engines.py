"""The lab's engine kinds: which node runs what, said on the command line or to Lab.up()."""

import pytest

from lab import Lab, LabError, engines
from lab.__main__ import parse


def test_engines_are_named_node_equals_kind_on_the_command_line():
    args = parse(["up", "--nodes", "3", "--engine", "lab-3=28", "--engine", "lab-1=host"])
    assert args.engine == [("lab-3", "28"), ("lab-1", "host")]
    assert parse(["up"]).engine == []


@pytest.mark.parametrize("bad", ["lab-3", "lab-3=", "=28", "lab-3=29"])
def test_an_engine_that_is_not_node_equals_a_known_kind_is_refused(bad, capsys):
    with pytest.raises(SystemExit):
        parse(["up", "--engine", bad])
    assert "NODE=KIND" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("wanted", "message"),
    [({"lab-4": "28"}, "no node lab-4 in a lab of 3"), ({"lab-2": "29"}, "no engine kind")],
)
def test_up_refuses_an_unknown_node_or_kind_before_it_changes_anything(tmp_path, wanted, message):
    lab = Lab("x", "10.250.250.0/24", root=tmp_path / "lab")
    with pytest.raises(LabError, match=message):
        lab.up(3, wanted)
    assert not (tmp_path / "lab").exists()


def unpack(root, *versions):
    for version in versions:
        (root / version / "usr/sbin").mkdir(parents=True)
        (root / version / "usr/sbin/dockerd").write_text("")


def test_the_pinned_version_is_used_when_unpacked_else_the_newest_of_its_major(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(engines, "ENGINES", tmp_path)
    pinned = engines.PACKAGES["28"].version
    assert engines.unpacked("28") is None
    unpack(tmp_path, "28.10.1-1", "28.9.0-2", "26.1.5+dfsg1-9")
    assert engines.unpacked("28") == tmp_path / "28.10.1-1"
    unpack(tmp_path, pinned)
    assert engines.unpacked("28") == tmp_path / pinned
    (tmp_path / "28.99.0-1").mkdir()  # a folder without its dockerd is no engine
    assert engines.unpacked("28") == tmp_path / pinned


@pytest.mark.parametrize(
    ("value", "nodes", "mix"),
    [
        (None, 3, {"lab-3": "28"}),  # mixed unless told otherwise
        (None, 2, {}),  # a smaller lab has no lab-3
        ("", 3, {}),
        ("host", 3, {}),
        ("lab-1=28, lab-3=host", 3, {"lab-1": "28", "lab-3": "host"}),
    ],
)
def test_fleet_lab_engines_picks_the_mix(monkeypatch, value, nodes, mix):
    if value is None:
        monkeypatch.delenv("FLEET_LAB_ENGINES", raising=False)
    else:
        monkeypatch.setenv("FLEET_LAB_ENGINES", value)
    assert engines.mix_from_env(nodes) == mix


@pytest.mark.parametrize("bad", ["lab-3", "lab-3=29", "node-1=28", "lab-3=28;rm"])
def test_a_bad_fleet_lab_engines_is_refused_with_what_it_should_be(monkeypatch, bad):
    monkeypatch.setenv("FLEET_LAB_ENGINES", bad)
    with pytest.raises(LabError, match="is not NODE=KIND"):
        engines.mix_from_env(3)


def test_nodes_behind_ssh_are_named_on_the_command_line_and_must_be_in_the_lab(tmp_path):
    assert parse(["up", "--ssh", "lab-4", "--ssh", "lab-2"]).ssh == ["lab-4", "lab-2"]
    assert parse(["up"]).ssh is None  # then FLEET_LAB_SSH says
    lab = Lab("x", "10.250.250.0/24", root=tmp_path / "lab")
    with pytest.raises(LabError, match="no node lab-5 in a lab of 4"):
        lab.up(4, {}, ssh=["lab-5"])
    assert not (tmp_path / "lab").exists()
