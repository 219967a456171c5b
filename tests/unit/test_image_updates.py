"""The rules of image updates: which tag is checked, how digests compare, when an update is
announced and when a check deploys it by itself (pure functions, no engine)."""

import pytest

from fleet.services.image_updates import (
    compare,
    offered,
    pin,
    short,
    should_announce,
    should_auto_deploy,
    split,
)

OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64
NEWER = "sha256:" + "c" * 64
REPO = "10.250.7.1:5000/fleet/demo"


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (f"{REPO}:1", (f"{REPO}:1", "")),
        (f"{REPO}:1@{OLD}", (f"{REPO}:1", OLD)),
        (REPO, (f"{REPO}:latest", "")),
        ("busybox", ("busybox:latest", "")),
        ("localhost:5000/app", ("localhost:5000/app:latest", "")),
        (f"{REPO}@{OLD}", ("", OLD)),
    ],
)
def test_split_gives_the_tag_to_check_and_the_digest_pinned(image, expected):
    assert split(image) == expected


def test_a_pinned_reference_keeps_its_tag_and_splits_back():
    assert split(pin(f"{REPO}:1", NEW)) == (f"{REPO}:1", NEW)


def test_a_digest_reads_short():
    assert short(NEW) == "sha256:bbbbbbbbbbbb"
    assert short("") == ""


def test_every_image_running_the_registry_digest_is_up_to_date():
    assert compare(NEW, [[NEW], [OLD, NEW]]) == "up_to_date"


def test_one_image_without_the_registry_digest_is_an_update():
    # One node pulled the tag before the push, another after: the first still needs it.
    assert compare(NEW, [[NEW], [OLD]]) == "update_available"


def test_nothing_running_cannot_be_compared():
    assert compare(NEW, []) == "unknown"


def test_an_update_is_on_offer_until_the_spec_pins_it():
    assert offered(NEW, "") == NEW
    assert offered(NEW, OLD) == NEW
    assert offered(NEW, NEW) == ""
    assert offered("", OLD) == ""


def test_an_update_is_announced_once_per_digest():
    assert should_announce(NEW, "")
    assert not should_announce(NEW, NEW)
    assert should_announce(NEWER, NEW)
    assert not should_announce("", NEW)


def test_a_check_deploys_by_itself_only_when_the_spec_says_auto():
    assert should_auto_deploy(True, NEW, "", "running")
    assert not should_auto_deploy(False, NEW, "", "running")
    assert not should_auto_deploy(True, "", "", "running")


def test_a_check_deploys_each_digest_by_itself_once():
    # A rollout of it that failed and rolled back is not tried again every check.
    assert not should_auto_deploy(True, NEW, NEW, "running")
    assert should_auto_deploy(True, NEWER, NEW, "failed")


@pytest.mark.parametrize("status", ["deploying", "deleting"])
def test_a_check_never_deploys_over_a_rollout_or_a_deletion(status):
    assert not should_auto_deploy(True, NEW, "", status)
