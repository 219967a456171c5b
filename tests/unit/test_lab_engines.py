"""The lab's engine kinds: which node runs what, said on the command line or to Lab.up(), and
the root filesystems the newer ones run in."""

import os

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


def fetched(folder, *versions, layout=("root/usr/sbin/dockerd",)):
    """Make folders as a fetch would leave them: a root holding the files of each pattern."""
    for version in versions:
        for path in layout:
            (folder / version / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / version / path).write_text("")


ROOT = [f"root/{pattern.replace('*', 'x86_64-linux-gnu')}" for pattern in engines.ROOT_FILES]


def test_the_pinned_version_is_used_when_fetched_else_the_newest_of_its_major(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(engines, "ENGINES", tmp_path)
    pinned = f"rootfs-{engines.PACKAGES['28'].version}"
    assert engines.fetched("28") is None
    layout = [*ROOT, "packages"]
    fetched(tmp_path, "rootfs-28.10.1-1", "rootfs-28.9.0-2", "rootfs-26.1.5+dfsg1-9", layout=layout)
    assert engines.fetched("28") == tmp_path / "rootfs-28.10.1-1"
    fetched(tmp_path, pinned, layout=layout)
    assert engines.fetched("28") == tmp_path / pinned
    fetched(tmp_path, "rootfs-28.99.0-1", layout=layout[1:])  # no dockerd: no engine
    assert engines.fetched("28") == tmp_path / pinned


def test_a_folder_of_the_unpacked_package_alone_is_not_taken_for_a_root_filesystem(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(engines, "ENGINES", tmp_path)
    version = engines.PACKAGES["28"].version
    fetched(tmp_path, version, layout=["usr/sbin/dockerd", "usr/sbin/docker-proxy"])
    assert engines.fetched("28") is None  # the lab's old cache: dockerd without its root
    fetched(tmp_path, f"rootfs-{version}", layout=ROOT)
    assert engines.fetched("28") is None  # no list of packages: not complete
    (tmp_path / f"rootfs-{version}" / "packages").write_text("docker.io 28.5.2\n")
    assert engines.fetched("28") == tmp_path / f"rootfs-{version}"


def test_a_package_s_name_and_version_are_read_from_dpkg_deb_s_fields():
    fields = "Package: containerd\nVersion: 2.1.9+ds1-5\n"
    assert engines.parse_fields(fields) == ("containerd", "2.1.9+ds1-5")
    with pytest.raises(LabError, match="without 'Version'"):
        engines.parse_fields("Package: containerd\n")


def test_iptables_is_linked_to_the_nft_backend_as_update_alternatives_does():
    links = dict(engines.alternatives())
    assert links["iptables"] == "iptables-nft"
    assert links["ip6tables-restore"] == "ip6tables-nft-restore"
    assert len(links) == 6


ROOTFS = "/var/lib/fleet-lab/engines/rootfs-28.5.2+dfsg4-5/root"
LAYER = "upperdir=/run/fleet-lab/r/r-3.layer/upper,workdir=/run/fleet-lab/r/r-3.layer/work"
MOUNTINFO = f"""\
131 71 0:52 / / rw,relatime - overlay fleet-lab-root rw,lowerdir={ROOTFS},{LAYER},uuid=on
132 131 0:55 / /proc rw,relatime - proc proc rw
72 150 254:0 /var/lib/x /var/lib/x rw,relatime shared:15 - ext4 /dev/vda rw
"""


def test_the_root_of_an_engine_is_the_lower_layer_of_the_lab_s_overlay_on_slash():
    assert engines.root_layer(MOUNTINFO) == engines.Path(ROOTFS)
    host = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n22 27 0:21 / /proc rw - proc proc rw"
    assert engines.root_layer(host) is None
    # An overlay of someone else's on "/" (a container's) is not an engine's root.
    other = MOUNTINFO.replace("fleet-lab-root", "overlay")
    assert engines.root_layer(other) is None


def test_the_host_s_engine_and_a_process_of_the_host_have_the_host_s_root():
    assert engines.root_of(os.getpid()) == engines.Path("/")


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


def test_an_engine_in_its_own_root_sees_the_node_s_folders_and_reads_its_tls_files_only():
    """And writes the host's /etc/docker as a host's engine may (registries' CAs in certs.d),
    reading the host's other files in /etc only."""
    from types import SimpleNamespace

    from lab.dockerd import root_binds

    node = engines.Path("/var/lib/fleet-lab/x/x-3")
    run = engines.Path("/run/fleet-lab/x")
    n = SimpleNamespace(dir=node, shims=run / "x-3.shims")
    tls = tuple(engines.Path(f"/var/lib/fleet-lab/x/tls/{name}") for name in ("ca", "c", "k"))
    parts = root_binds(n, run, tls)
    binds = {(parts[i + 2], parts[i + 1], parts[i]) for i in range(0, len(parts), 3)}
    assert (str(node), str(node), "rw") in binds
    assert (str(run), str(run), "rw") in binds
    assert ("/run/containerd", str(run / "x-3.shims"), "rw") in binds
    assert {(str(path), str(path), "ro") for path in tls} <= binds
    etc = {source: mode for _, source, mode in binds if source.startswith("/etc/")}
    assert etc.pop("/etc/docker", "rw") == "rw"
    assert set(etc.values()) <= {"ro"}
    assert len(root_binds(n, run, None)) == len(parts) - 9  # behind SSH: no TLS files
