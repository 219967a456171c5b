"""Deploying from the lab's private registry (HTTPS of the lab's CA, a login of its own):
without credentials or with wrong ones a deploy fails with the registry's answer, backs off
and marks no node down; credentials added or corrected are used from the next pull, at
once; a rotated password applies from the next pull; image checks log in too. Every node
pulls, so each engine kind of the lab (the newer one on lab-3 by default) is met."""

import secrets
from contextlib import suppress
from datetime import timedelta

import docker
import pytest
from django.utils import timezone

from fleet.models import Event, EventKind, Node, Replica
from tests.integration.test_services_deploy import wait_running
from tests.system import wait_for

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def private(fleet):
    """The private registry's address, login and image, no node holding that image."""
    status = fleet.lab.status()
    registry = status["private_registry"]
    image = status["images"]["private_v1"]
    forget(fleet, image)
    yield {**registry, "image": image}
    forget(fleet, image)


def forget(fleet, image):
    """Untag the image on every node, so that the next container of it needs a pull."""
    for client in fleet.engines.values():
        with suppress(docker.errors.ImageNotFound):
            client.images.remove(image, force=True)


def keep_login(fleet, private, password=None):
    body = {
        "server": private["address"],
        "username": private["username"],
        "password": password or private["password"],
    }
    response = fleet.api.post("/api/registries/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def no_node_went_down():
    return not Event.objects.filter(kind=EventKind.NODE_STATUS_CHANGED, new="down").exists()


def failing_for_a_while(service, seconds):
    """Wait until every replica of the service failed and waits at least `seconds` for its
    next try; return the replicas."""

    def far_enough():
        rows = list(Replica.objects.filter(service__name=service))
        soon = timezone.now() + timedelta(seconds=seconds)
        waiting = [r for r in rows if r.state == "failed" and r.retry_at and r.retry_at > soon]
        return len(waiting) == len(rows) > 0 and rows

    return wait_for(far_enough, 60, 0.2, message=f"{service} to back off {seconds} s")


def test_without_a_login_the_deploy_fails_with_the_registrys_answer_until_one_is_kept(
    fleet, private
):
    created = fleet.create("secret-app", replicas=3, image=private["image"])
    failed = fleet.wait_deployment(created["current_deployment"]["id"], "failed", timeout=60)
    assert f"cannot pull {private['image']}" in failed["reason"]
    assert f"registry {private['address']} refused access" in failed["reason"]
    assert "no basic auth credentials" in failed["reason"]  # the engine's words for a 401
    rows = failing_for_a_while("secret-app", 10)
    assert sorted(r.node.name for r in rows) == ["lab-1", "lab-2", "lab-3"]
    assert all("refused access" in r.error for r in rows)
    # Backing off, not storming the registry: each replica was tried a few times at most.
    assert all(r.restarts <= 5 for r in rows), [r.restarts for r in rows]
    assert no_node_went_down()
    assert set(Node.objects.values_list("status", flat=True)) == {"ready"}
    kept = timezone.now()
    keep_login(fleet, private)
    # Tried again at once, not after the 10 s or more each still had to wait.
    service = wait_running(fleet, "secret-app", 3, timeout=10)
    assert timezone.now() - kept < timedelta(seconds=10)
    assert sorted(r["node"] for r in fleet.replicas("secret-app")) == ["lab-1", "lab-2", "lab-3"]
    assert service["current_deployment"]["revision"] == 1
    assert no_node_went_down()


def test_a_wrong_password_fails_with_unauthorized_and_a_corrected_one_is_used_next(fleet, private):
    made = keep_login(fleet, private, password="not-the-password")
    created = fleet.create("secret-app", replicas=2, image=private["image"])
    failed = fleet.wait_deployment(created["current_deployment"]["id"], "failed", timeout=60)
    assert f"registry {private['address']} refused access" in failed["reason"]
    assert "unauthorized" in failed["reason"]
    assert "not-the-password" not in failed["reason"]
    failing_for_a_while("secret-app", 4)
    assert no_node_went_down()
    changed = fleet.api.patch(
        f"/api/registries/{made['id']}/", {"password": private["password"]}, format="json"
    )
    assert changed.status_code == 200, changed.json()
    wait_running(fleet, "secret-app", 2, timeout=15)
    assert no_node_went_down()


def test_a_rotated_password_applies_from_the_next_pull(fleet, private):
    made = keep_login(fleet, private)
    fleet.create("secret-app", replicas=3, image=private["image"], update={"monitor": 0})
    wait_running(fleet, "secret-app", 3)
    before = {r["slot"]: r["container_id"] for r in fleet.replicas("secret-app")}
    new = f"rotated-{secrets.token_urlsafe(12)}"
    fleet.lab.set_private_password(new)
    try:
        forget(fleet, private["image"])  # the next containers need a pull
        asked = fleet.api.post(
            "/api/services/secret-app/deploy", {"env": {"A": "1"}}, format="json"
        )
        assert asked.status_code == 202, asked.json()
        stale = fleet.wait_deployment(asked.json()["id"], "rolled_back", timeout=60)
        assert "unauthorized" in stale["reason"] and "rolled back" in stale["reason"]
        wait_running(fleet, "secret-app", 3)
        # The old replicas served throughout.
        assert {r["slot"]: r["container_id"] for r in fleet.replicas("secret-app")} == before
        assert no_node_went_down()
        url = f"/api/registries/{made['id']}/"
        assert fleet.api.patch(url, {"password": new}, format="json").status_code == 200
        forget(fleet, private["image"])
        asked = fleet.api.post(
            "/api/services/secret-app/deploy", {"env": {"A": "2"}}, format="json"
        )
        assert asked.status_code == 202, asked.json()
        fleet.wait_deployment(asked.json()["id"], "succeeded", timeout=60)
        wait_running(fleet, "secret-app", 3)
        after = {r["slot"]: r["container_id"] for r in fleet.replicas("secret-app")}
        assert not set(after.values()) & set(before.values())
    finally:
        fleet.lab.set_private_password(private["password"])


def test_an_image_check_logs_in_to_the_registry_with_the_kept_credentials(fleet, private):
    keep_login(fleet, private)
    fleet.create("secret-app", replicas=1, image=private["image"])
    wait_running(fleet, "secret-app", 1)

    def checked():
        asked = fleet.api.post("/api/services/secret-app/image-check")
        assert asked.status_code == 202, asked.json()
        return wait_for(
            lambda: (
                (found := fleet.api.get("/api/services/secret-app/image-check").json())[
                    "requested_at"
                ]
                is None
                and found
            ),
            20,
            0.2,
            message="the image check",
        )

    found = checked()
    assert found["outcome"] == "up_to_date" and found["error"] == "", found
    assert found["registry_digest"].startswith("sha256:")
    assert found["registry_digest"] in found["running_digests"]
    assert not found["update_available"]
    registry = fleet.api.get("/api/registries/").json()
    rows = registry["results"] if isinstance(registry, dict) else registry
    assert fleet.api.delete(f"/api/registries/{rows[0]['id']}/").status_code == 204
    refused = checked()
    assert refused["outcome"] == "failed", refused
    refusal = f"registry {private['address']} refused access (check its credentials)"
    assert refusal in refused["error"] and "no basic auth credentials" in refused["error"]


@pytest.fixture
def untrusted(fleet, private):
    """No engine trusts the private registry's CA (the lab's trust taken away), until the
    test ends."""
    fleet.lab.private.untrust()
    yield fleet.lab.private.trusted
    fleet.lab.private.trust()


def test_a_kept_ca_is_written_to_each_node_and_its_pulls_trust_the_registry(
    fleet, private, untrusted
):
    made = keep_login(fleet, private)
    created = fleet.create("secret-app", replicas=3, image=private["image"])
    failed = fleet.wait_deployment(created["current_deployment"]["id"], "failed", timeout=60)
    assert (
        f"the node does not trust registry {private['address']}'s certificate" in (failed["reason"])
    )
    assert "x509" in failed["reason"]
    assert no_node_went_down()
    ca = open(private["ca"]).read()
    changed = fleet.api.patch(f"/api/registries/{made['id']}/", {"ca": ca}, format="json")
    assert changed.status_code == 200, changed.json()
    assert changed.json()["ca_summary"].startswith("CN=")
    # Tried again at once; each node's engine got the CA through its own API.
    wait_running(fleet, "secret-app", 3, timeout=20)
    assert untrusted.read_text() == ca
    assert sorted(r["node"] for r in fleet.replicas("secret-app")) == ["lab-1", "lab-2", "lab-3"]
    writer = {"label": "fleet.certs-writer"}
    leftovers = [c.containers.list(all=True, filters=writer) for c in fleet.engines.values()]
    assert leftovers == [[], [], []]
    # Taken away on the host behind Fleet's back: the next pull that fails on it writes it again.
    fleet.lab.private.untrust()
    forget(fleet, private["image"])
    asked = fleet.api.post("/api/services/secret-app/deploy", {"env": {"A": "1"}}, format="json")
    assert asked.status_code == 202, asked.json()
    fleet.wait_deployment(asked.json()["id"], "succeeded", timeout=90)
    assert untrusted.read_text() == ca
