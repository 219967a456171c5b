# ruff: noqa: F811
"""Image updates on the lab: a new image pushed under a tag the services run is noticed,
announced once, deployed with one click or by itself, and a silent registry is a shown
error that holds nothing else up (one test: the fleet's start-up is the costly part)."""

import time

import pytest

from fleet.models import Deployment, Event
from fleet.services import image_updates
from tests.integration.faults import hanging_registry

# The receivers' fixtures, imported to be used by name: pytest passes them as arguments.
from tests.integration.receivers import inbox, receivers  # noqa: F401
from tests.system import wait_for

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

KIND = "service.image_update_available"
# Quick rollouts: the policy is part of the spec under test, not a setting.
QUICK = {"monitor": 0.5}


def push_as(engine, source, target):
    """Push the image `source` (from the lab's registry) under the reference `target`, from a
    lab engine; return the digest the registry now serves for it."""
    repository, _, tag = source.rpartition(":")
    engine.images.pull(repository, tag)
    target_repository, _, target_tag = target.rpartition(":")
    engine.images.get(source).tag(target_repository, target_tag)
    digest = None
    for line in engine.api.push(target_repository, target_tag, stream=True, decode=True):
        assert "error" not in line, line
        digest = (line.get("aux") or {}).get("Digest") or digest
    assert digest and digest.startswith("sha256:")
    return digest


def image_check(api, name):
    return api.get(f"/api/services/{name}/image-check").json()


def checked(api, name):
    """Ask for a check of one service through the API and wait for its outcome."""
    asked = api.post(f"/api/services/{name}/image-check")
    assert asked.status_code == 202, asked.json()
    assert asked.json()["requested_at"] is not None
    return wait_for(
        lambda: (found := image_check(api, name))["requested_at"] is None and found,
        15,
        0.2,
        message=f"the image check of {name}",
    )


def digests_run(fleet, name):
    """The repository digests of the images the service's running containers were made from."""
    found = set()
    for node, containers in fleet.containers(name, running_only=True).items():
        for container in containers:
            image = fleet.engines[node].images.get(container.attrs["Image"])
            found.update(d.partition("@")[2] for d in image.attrs["RepoDigests"])
    return found


def test_a_newer_image_is_announced_once_and_deployed_by_click_or_itself_past_a_silent_registry(
    fleet, inbox, client, admin_user, settings
):
    # How long a silent registry may hold its own check is part of what this test shows:
    # 2 s instead of the default 10 keeps it short (the in-process check_all reads it).
    settings.FLEET_IMAGE_CHECK_TIMEOUT = 2
    api = fleet.api
    body = {"name": "news", "url": inbox.json_url(), "events": ["image.update_available"]}
    assert api.post("/api/alert-channels/", body, format="json").status_code == 201
    registry = fleet.images["demo_v1"].rpartition("/fleet/")[0]
    tagged = f"{registry}/fleet/demo:upd"  # a tag of this test's own: no other test runs it
    pusher = fleet.engines["lab-1"]
    old = push_as(pusher, fleet.images["demo_v1"], tagged)
    fleet.create("manual", image=tagged, replicas=2, update=QUICK)
    fleet.create("auto", image=tagged, replicas=1, update={**QUICK, "auto": True})
    fleet.converged("manual", 2)
    fleet.converged("auto", 1)

    found = checked(api, "manual")
    assert (found["outcome"], found["update_available"]) == ("up_to_date", False)
    assert (found["image"], found["registry_digest"], found["running_digests"]) == (
        tagged,
        old,
        [old],
    )

    new = push_as(pusher, fleet.images["demo_v2"], tagged)
    assert new != old
    found = checked(api, "manual")
    assert (found["outcome"], found["update_digest"], found["running_digests"]) == (
        "update_available",
        new,
        [old],
    )
    assert found["update_short"] == new[:19] and found["update_seen_at"] is not None
    # The page shows the badge, the digest and the button, on a plain GET.
    client.force_login(admin_user)
    page = client.get("/services/manual/").content.decode()
    assert "Update available" in page and new[:19] in page and 'data-act="image-update"' in page

    # Beat's path: every service at once, one of them on a registry that never answers.
    # The auto one deploys itself; the manual one waits, and is not announced again.
    with hanging_registry(fleet.lab, port=5002) as silent:
        fleet.create("stuck", image=f"{silent}/fleet/demo:1", replicas=0)
        started = time.monotonic()
        image_updates.check_all()
        took = time.monotonic() - started
    assert took < 8, took
    stuck = api.get("/api/services/stuck/").json()["image_update"]
    assert stuck["outcome"] == "failed"
    assert f"registry {silent} did not answer within 2 s" in stuck["error"]
    [by_itself] = Deployment.objects.filter(service__name="auto", revision=2)
    assert (by_itself.actor, by_itself.spec["image"]) == ("image-check", f"{tagged}@{new}")
    assert Deployment.objects.filter(service__name="manual").count() == 1
    announced = Event.objects.filter(kind=KIND).order_by("service_name")
    assert [(e.service_name, e.new, e.actor) for e in announced] == [
        ("auto", new[:19], "image-check"),
        ("manual", new[:19], "image-check"),
    ]
    title = "[Fleet] a newer image of manual is available"
    wait_for(lambda: title in inbox.titles()[0], 15, message="the alert of manual's update")

    # One click: the digest on offer, pinned, through the health-gated rollout.
    clicked = api.post("/api/services/manual/image-update", {"digest": new}, format="json")
    assert clicked.status_code == 202, clicked.json()
    assert clicked.json()["spec"]["image"] == f"{tagged}@{new}"
    fleet.wait_deployment(clicked.json()["id"], "succeeded", 60)
    fleet.wait_deployment(by_itself.pk, "succeeded", 60)
    fleet.converged("manual", 2, revision=2)
    fleet.converged("auto", 1, revision=2)
    assert digests_run(fleet, "manual") == {new}
    assert digests_run(fleet, "auto") == {new}
    found = checked(api, "manual")
    assert (found["outcome"], found["update_available"]) == ("up_to_date", False)
    # One alert per service and digest, nothing more after the rollouts and checks.
    time.sleep(1.5)
    assert inbox.titles()[0].count(title) == 1
    assert Event.objects.filter(kind=KIND).count() == 2
