"""Deploy, scale, update and place services on real engines with a real worker and beat."""

import contextlib
import threading
import time
from collections import Counter

import docker
import pytest

from fleet.models import Event, EventKind
from tests.system import wait_for

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

HEALTH = {
    "command": ["CMD", "wget", "-q", "-O", "-", "http://127.0.0.1/health"],
    "interval": 0.5,
    "timeout": 2,
    "retries": 2,
}
PORT = [{"container": 80}]


def wait_running(fleet, name, count, timeout=60):
    return wait_for(
        lambda: (
            (s := fleet.service(name))["status"] == "running"
            and s["healthy_replicas"] == count
            and s
        ),
        timeout,
        0.2,
        message=f"{name} to run {count} replicas",
    )


def test_it_deploys_six_healthy_replicas_spread_over_three_nodes(fleet):
    created = fleet.create("web", replicas=6, healthcheck=HEALTH, ports=PORT)
    service = wait_running(fleet, "web", 6)
    assert fleet.deployment(created["current_deployment"]["id"])["status"] == "succeeded"
    replicas = fleet.replicas("web")
    assert sorted(r["slot"] for r in replicas) == [1, 2, 3, 4, 5, 6]
    assert {(r["state"], r["health"]) for r in replicas} == {("running", "healthy")}
    assert Counter(r["node"] for r in replicas) == {"lab-1": 2, "lab-2": 2, "lab-3": 2}
    # The engines agree, and every container is labelled as Fleet's and answers.
    by_node = fleet.containers("web")
    assert {node: len(found) for node, found in by_node.items()} == {
        "lab-1": 2,
        "lab-2": 2,
        "lab-3": 2,
    }
    for node, containers in by_node.items():
        for container in containers:
            labels = container.labels
            assert labels["fleet.deployment"] == str(service["current_deployment"]["id"])
            assert labels["fleet.slot"] in {"1", "2", "3", "4", "5", "6"}
            assert container.attrs["State"]["Health"]["Status"] == "healthy"
            assert fleet.answers(container, node) == "1"


def test_it_scales_six_to_ten_to_two_removing_the_highest_slots(fleet):
    fleet.create("web", replicas=6, update={"monitor": 0})
    wait_running(fleet, "web", 6)
    assert (
        fleet.api.post("/api/services/web/scale", {"replicas": 10}, format="json").status_code
        == 202
    )
    wait_running(fleet, "web", 10)
    assert fleet.count("web", running_only=True) == 10
    assert (
        fleet.api.post("/api/services/web/scale", {"replicas": 2}, format="json").status_code == 202
    )
    wait_for(lambda: fleet.count("web") == 2, 30, message="eight containers to go")
    wait_running(fleet, "web", 2)
    assert sorted(r["slot"] for r in fleet.replicas("web")) == [1, 2]
    slots = sorted(c.labels["fleet.slot"] for cs in fleet.containers("web").values() for c in cs)
    assert slots == ["1", "2"]


class Prober(threading.Thread):
    """Asks every running container of a service for its version, over and over."""

    def __init__(self, fleet, name):
        super().__init__(daemon=True)
        self.fleet, self.name = fleet, name
        self.stopping = threading.Event()
        self.rounds = []  # answers per round, e.g. ["1", "1", "2", ...]

    def run(self):
        while not self.stopping.is_set():
            answers = []
            for node, containers in self.fleet.containers(self.name, running_only=True).items():
                for container in containers:
                    try:
                        answer = self.fleet.answers(container, node, timeout=0.5)
                    except Exception:  # a container removed between listing and asking
                        answer = None
                    if answer:
                        answers.append(answer)
            self.rounds.append(answers)
            time.sleep(0.05)


def test_a_rolling_update_keeps_the_service_answering(fleet):
    fleet.create(
        "web",
        replicas=6,
        healthcheck=HEALTH,
        ports=PORT,
        update={"parallelism": 2, "monitor": 1},
    )
    wait_running(fleet, "web", 6)
    prober = Prober(fleet, "web")
    prober.start()
    response = fleet.api.post(
        "/api/services/web/deploy", {"image": fleet.images["demo_v2"]}, format="json"
    )
    assert response.status_code == 202
    fleet.wait_deployment(response.json()["id"], "succeeded", timeout=120)
    prober.stopping.set()
    prober.join(10)
    assert len(prober.rounds) > 10
    # Start-first, two at a time: never fewer than four replicas answering.
    assert min(len(r) for r in prober.rounds) >= 4, [len(r) for r in prober.rounds]
    assert any("1" in r and "2" in r for r in prober.rounds)
    final = [fleet.answers(c, n) for n, cs in fleet.containers("web").items() for c in cs]
    assert final == ["2"] * 6
    replicas = fleet.replicas("web")
    assert {r["revision"] for r in replicas} == {2}
    assert sorted(r["slot"] for r in replicas) == [1, 2, 3, 4, 5, 6]


def test_constraints_keep_replicas_on_matching_nodes(fleet):
    for node, zone in (("lab-1", "a"), ("lab-2", "a"), ("lab-3", "b")):
        fleet.api.patch(f"/api/nodes/{node}/", {"labels": {"zone": zone}}, format="json")
    fleet.create("web", replicas=4, constraints=["zone==a"], update={"monitor": 0})
    wait_running(fleet, "web", 4)
    assert Counter(r["node"] for r in fleet.replicas("web")) == {"lab-1": 2, "lab-2": 2}
    assert fleet.count("web", node="lab-3") == 0


def test_a_published_port_never_lands_twice_on_one_node(fleet):
    ports = [{"container": 80, "published": 18090}]
    created = fleet.create("web", replicas=4, ports=ports, update={"monitor": 0})
    deployment_id = created["current_deployment"]["id"]
    wait_for(
        lambda: "18090" in fleet.deployment(deployment_id)["reason"],
        20,
        message="the placement failure to be reported",
    )
    assert Event.objects.filter(kind=EventKind.PLACEMENT_FAILED, service_name="web").exists()
    time.sleep(2)
    assert fleet.count("web") == 0, "a plan that cannot be met is never half-applied"

    fleet.api.post("/api/services/web/scale", {"replicas": 3}, format="json")
    wait_running(fleet, "web", 3)
    assert Counter(r["node"] for r in fleet.replicas("web")) == {"lab-1": 1, "lab-2": 1, "lab-3": 1}
    # Met at last, the deployment no longer carries the placement failure as its reason.
    assert fleet.wait_deployment(deployment_id, "succeeded")["reason"] == ""
    for node, containers in fleet.containers("web").items():
        assert fleet.answers(containers[0], node) == "1"


def test_deleting_a_service_removes_its_containers(fleet):
    fleet.create("web", replicas=3, update={"monitor": 0})
    wait_running(fleet, "web", 3)
    assert fleet.api.delete("/api/services/web/").status_code == 202
    wait_for(
        lambda: fleet.api.get("/api/services/web/").status_code == 404,
        30,
        message="the service to be gone",
    )
    assert fleet.count("web") == 0


def test_deleting_a_service_without_replicas_answers_even_when_the_worker_is_quick(fleet):
    # With nothing to stop, the worker may remove the row at once; the answer must not race it.
    for attempt in range(5):
        fleet.create(f"empty-{attempt}", replicas=0)
        response = fleet.api.delete(f"/api/services/empty-{attempt}/")
        assert response.status_code == 202, response.content
        assert response.json()["status"] == "deleting"
    wait_for(
        lambda: fleet.api.get("/api/services/").json() == [],
        30,
        message="the services to be gone",
    )


def test_two_scale_requests_racing_converge_to_the_later_one(fleet):
    fleet.create("web", replicas=2, update={"monitor": 0})
    wait_running(fleet, "web", 2)
    for count in (9, 4, 7):
        fleet.api.post("/api/services/web/scale", {"replicas": count}, format="json")
    wait_running(fleet, "web", 7)
    wait_for(lambda: fleet.count("web") == 7, 20, message="exactly seven containers")
    slots = sorted(
        int(c.labels["fleet.slot"]) for cs in fleet.containers("web").values() for c in cs
    )
    assert slots == [1, 2, 3, 4, 5, 6, 7]


def test_secrets_reach_the_container_and_nowhere_else(fleet):
    from tests.system import LOGS

    secret = "only-the-container-sees-this-7731"
    fleet.create("vault", replicas=2, env={"MODE": "prod"}, secrets={"TOKEN": secret})
    wait_running(fleet, "vault", 2)
    for containers in fleet.containers("vault").values():
        for container in containers:
            env = container.attrs["Config"]["Env"]
            assert "MODE=prod" in env and f"TOKEN={secret}" in env
    assert fleet.service("vault")["secrets"] == {"TOKEN": "********"}
    assert all(secret not in path.read_text() for path in LOGS.glob("*.log"))


def test_a_new_revision_s_image_is_pulled_ahead_on_the_nodes_of_its_later_batches(fleet):
    """One batch at a time, 30 s apart: while the first batch starts, the new image is
    pulled on the nodes of the other replicas, so their batches wait for no pull."""
    new = fleet.images["demo_v2"]
    for client in fleet.engines.values():
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(new, force=True)
    fleet.create("web", replicas=3, update={"parallelism": 1, "delay": 30, "monitor": 0})
    wait_running(fleet, "web", 3)
    assert {r["node"] for r in fleet.replicas("web")} == set(fleet.engines)

    def has_new_image(client):
        try:
            client.images.get(new)
        except docker.errors.ImageNotFound:
            return False
        return True

    response = fleet.api.post("/api/services/web/deploy", {"image": new}, format="json")
    assert response.status_code == 202
    wait_for(
        lambda: all(has_new_image(c) for c in fleet.engines.values()),
        20,
        0.2,
        message=f"{new} on every node",
    )
    # Still the first batch only: the others were pulled ahead, not started.
    assert [r["revision"] for r in fleet.replicas("web")].count(2) == 1
    assert fleet.deployment(response.json()["id"])["status"] == "running"
