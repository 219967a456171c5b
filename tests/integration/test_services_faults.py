"""Services when things go wrong: bad versions, crash loops, dead engines, a killed worker."""

import os
import signal
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from fleet.models import Event, EventKind, Replica, Service
from tests.integration.test_services_deploy import HEALTH, PORT, wait_running
from tests.system import wait_for

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def container_ids(fleet, name):
    return {c.id for cs in fleet.containers(name).values() for c in cs}


def deploy(fleet, name, **changes):
    response = fleet.api.post(f"/api/services/{name}/deploy", changes, format="json")
    assert response.status_code == 202, response.json()
    return response.json()


@pytest.fixture
def steady(fleet):
    """Four healthy replicas of demo:1, updated one at a time."""
    fleet.create(
        "web", replicas=4, healthcheck=HEALTH, ports=PORT, update={"parallelism": 1, "monitor": 1}
    )
    wait_running(fleet, "web", 4)
    return container_ids(fleet, "web")


def assert_old_replicas_untouched(fleet, before):
    assert container_ids(fleet, "web") == before
    answers = [fleet.answers(c, n) for n, cs in fleet.containers("web").items() for c in cs]
    assert answers == ["1"] * 4


def test_a_missing_image_rolls_back_by_itself_and_the_old_replicas_serve_throughout(fleet, steady):
    deployment = deploy(fleet, "web", image=fleet.images["demo_v1"].replace(":1", ":404"))
    failed = fleet.wait_deployment(deployment["id"], "rolled_back", timeout=60)
    assert "cannot pull" in failed["reason"]
    assert "rolled back to revision 1" in failed["reason"]
    service = wait_running(fleet, "web", 4)
    assert service["current_deployment"]["revision"] == 1
    assert_old_replicas_untouched(fleet, steady)
    assert Event.objects.filter(kind=EventKind.DEPLOYMENT_ROLLED_BACK, service_name="web").exists()


def test_a_failing_healthcheck_rolls_back_by_itself(fleet, steady):
    bad = {**HEALTH, "command": ["CMD", "wget", "-q", "-O", "-", "http://127.0.0.1/nope"]}
    deployment = deploy(fleet, "web", healthcheck=bad)
    failed = fleet.wait_deployment(deployment["id"], "rolled_back", timeout=60)
    assert "unhealthy" in failed["reason"]
    wait_running(fleet, "web", 4)
    wait_for(lambda: container_ids(fleet, "web") == steady, 20, message="the bad replica to go")
    assert_old_replicas_untouched(fleet, steady)


def test_pause_stops_a_bad_update_and_reports_it(fleet, steady):
    deployment = deploy(
        fleet,
        "web",
        image=fleet.images["demo_v1"].replace(":1", ":404"),
        update={"failure_action": "pause"},
    )
    failed = fleet.wait_deployment(deployment["id"], "failed", timeout=60)
    assert "update paused" in failed["reason"]
    assert fleet.service("web")["status"] == "paused"
    assert_old_replicas_untouched(fleet, steady)


def test_a_crash_looping_command_is_reported_and_retried_with_backoff(fleet):
    created = fleet.create("crash", replicas=1, command=["sh", "-c", "exit 3"])
    failed = fleet.wait_deployment(created["current_deployment"]["id"], "failed", timeout=60)
    assert "exited with code 3" in failed["reason"]
    wait_for(
        lambda: Event.objects.filter(kind=EventKind.REPLICA_CRASH_LOOPING).exists(),
        60,
        message="the crash loop to be reported",
    )
    restarts = Replica.objects.get(service__name="crash").restarts
    time.sleep(10)
    # Backing off (8 s, 16 s, ... up to a minute): at most two more attempts in 10 s.
    assert Replica.objects.get(service__name="crash").restarts <= restarts + 2
    assert fleet.service("crash")["status"] == "failed"


def test_killing_a_nodes_engine_moves_its_replicas_to_the_other_nodes(fleet):
    fleet.create("web", replicas=6, ports=PORT, update={"monitor": 0})
    wait_running(fleet, "web", 6)
    assert sum(r["node"] == "lab-2" for r in fleet.replicas("web")) == 2
    fleet.lab.kill_node("lab-2")
    killed = time.monotonic()
    try:
        wait_for(
            lambda: (
                sorted(
                    r["slot"]
                    for r in fleet.replicas("web")
                    if r["node"] != "lab-2" and r["state"] == "running"
                )
                == [1, 2, 3, 4, 5, 6]
            ),
            30,
            message="every slot to run on lab-1 or lab-3",
        )
        took = time.monotonic() - killed
        assert took < 20, f"replicas back after {took:.1f}s"
        assert (
            Event.objects.filter(kind=EventKind.REPLICA_RESCHEDULED, service_name="web").count()
            == 2
        )
    finally:
        fleet.lab.start_node("lab-2")
    # Back again, lab-2's stale containers of the moved replicas are removed.
    wait_for(lambda: fleet.count("web", node="lab-2") == 0, 30, message="lab-2 to be cleaned")
    assert fleet.count("web") == 6
    wait_running(fleet, "web", 6)


def test_killing_the_worker_mid_deploy_ends_cleanly_without_orphans(
    fleet, celery_worker, process_env
):
    from tests.system import _start, _stop

    fleet.create("web", replicas=6, healthcheck=HEALTH, ports=PORT, update={"monitor": 1})
    wait_running(fleet, "web", 6)
    deployment = deploy(fleet, "web", image=fleet.images["demo_v2"])
    wait_for(
        lambda: any(
            c.labels["fleet.revision"] == "2" for cs in fleet.containers("web").values() for c in cs
        ),
        30,
        message="the rollout to be under way",
    )
    os.killpg(celery_worker.pid, signal.SIGKILL)
    celery_worker.wait()
    args = ["-m", "celery", "-A", "fleet", "worker", "--concurrency", "8", "-n", "again@%h"]
    second = _start("worker", [*args, "--loglevel", "INFO"], process_env)
    try:
        fleet.wait_deployment(deployment["id"], "succeeded", timeout=120)
        wait_running(fleet, "web", 6)
        replicas = fleet.replicas("web")
        assert sorted(r["slot"] for r in replicas) == [1, 2, 3, 4, 5, 6]
        assert {r["revision"] for r in replicas} == {2}
        fleet.converged("web", 6, revision=2)
        assert container_ids(fleet, "web") == {r["container_id"] for r in replicas}
    finally:
        _stop([second])


def test_the_reconcile_removes_orphans_and_never_touches_foreign_containers(fleet):
    client = fleet.engines["lab-1"]
    image = fleet.images["demo_v1"]
    orphan = client.containers.run(image, detach=True, labels={"fleet.service": "ghost"})
    foreign = client.containers.run(image, detach=True, labels={"owner": "someone-else"})
    try:
        wait_for(
            lambda: not client.containers.list(all=True, filters={"id": orphan.id}),
            30,
            message="the orphan to be removed",
        )
        foreign.reload()
        assert foreign.status == "running"
    finally:
        foreign.remove(force=True)


def test_a_container_being_drained_and_removed_is_no_orphan_until_its_removal_ends(fleet):
    """A rolling update's looks run on while the old replicas beside them drain and stop:
    neither the converge's next look nor the reconcile takes such a container, which no
    row claims any more, for an orphan; once no removal of it runs (and the time other
    processes leave it for has passed), it is one."""
    from fleet import redis_link
    from fleet.converge import containers, executor, inflight, reconcile
    from fleet.converge.lease import Lease

    fleet.create("web", replicas=1)
    wait_running(fleet, "web", 1)
    service = Service.objects.get(name="web")
    lease = Lease(service.pk)
    wait_for(lease.claim, 30, message="the converge to let go of web")
    old = Replica.objects.select_related("service", "deployment", "node").get()
    try:
        containers.forget([old])  # as a look does with an old replica that goes beside
        assert not Replica.objects.filter(pk=old.pk).exists()
        reconcile.sync_and_clean()
        executor.look(Service.objects.get(pk=service.pk), lease)  # starts slot 1 anew
        assert old.container_id in container_ids(fleet, "web")
        assert len(container_ids(fleet, "web")) == 2
    finally:
        # Its removal was cut short, and the time other processes held it for has passed.
        with inflight._going_lock:
            inflight._going.discard(old.container_id)
        redis_link.client().zrem(inflight.GOING, old.container_id)
        lease.release()
    wait_for(
        lambda: container_ids(fleet, "web") == {r.container_id for r in Replica.objects.all()},
        30,
        message="the old container, an orphan now, to be removed",
    )
    assert old.container_id not in container_ids(fleet, "web")


def test_bad_input_queues_no_task_and_good_input_does(api, redis_server, transactional_db):
    queue = redis.Redis.from_url(settings.REDIS_URL)
    queue.delete("celery")
    bad = api.post("/api/services/", {"name": "web", "image": "UPPER"}, format="json")
    assert bad.status_code == 400
    assert (
        api.post("/api/services/missing/scale", {"replicas": 2}, format="json").status_code == 404
    )
    assert queue.llen("celery") == 0
    assert not Service.objects.exists()
    good = api.post("/api/services/", {"name": "web", "image": "busybox"}, format="json")
    assert good.status_code == 201
    assert queue.llen("celery") == 1


def test_a_restart_asked_while_another_converge_holds_the_lease_still_happens(fleet):
    fleet.create("web", replicas=1, update={"monitor": 0})
    fleet.converged("web", 1)
    before = Replica.objects.get(service__name="web").container_id
    generation = Service.objects.get(name="web").generation
    # Another converge holds the service for a few seconds (as one busy with a slow engine
    # would): the converge that the request queues finds it busy and leaves it.
    Service.objects.filter(name="web").update(
        lease_owner="another-worker", lease_until=timezone.now() + timedelta(seconds=3)
    )
    response = fleet.api.post("/api/services/web/replicas/1/restart")
    assert response.status_code == 202, response.content
    assert Service.objects.get(name="web").generation == generation + 1
    wait_for(
        lambda: (
            (r := Replica.objects.get(service__name="web")).container_id not in ("", before)
            and r.state == "running"
        ),
        30,
        message="slot 1 to run a fresh container",
    )
    fleet.converged("web", 1)
    assert not Replica.objects.get(service__name="web").restart_requested


def test_an_image_that_cannot_be_pulled_is_retried_with_backoff_on_the_same_nodes(fleet):
    # lab-1 takes no new replicas while the service is made, so its two go to lab-2 and lab-3;
    # once lab-1 is active again, placing the retries anew would move one there.
    paused = fleet.api.patch("/api/nodes/lab-1/", {"availability": "pause"}, format="json")
    assert paused.status_code == 200, paused.content
    missing = fleet.images["demo_v1"].replace(":1", ":404")
    created = fleet.create("nopull", replicas=2, image=missing)
    failed = fleet.wait_deployment(created["current_deployment"]["id"], "failed", timeout=60)
    assert "cannot pull" in failed["reason"] and missing in failed["reason"]
    rows = Replica.objects.filter(service__name="nopull")
    first = {r.slot: r.node.name for r in rows.select_related("node")}
    assert sorted(first.values()) == ["lab-2", "lab-3"]
    active = fleet.api.patch("/api/nodes/lab-1/", {"availability": "active"}, format="json")
    assert active.status_code == 200, active.content
    wait_for(
        lambda: all(r.restarts >= 3 for r in rows.all()),
        60,
        message="each replica to be retried three times",
    )
    assert {r.slot: r.node.name for r in rows.select_related("node")} == first
    assert all("cannot pull" in r.error for r in rows.filter(state="failed"))
    assert not Event.objects.filter(kind=EventKind.REPLICA_RESCHEDULED).exists()
    assert not Event.objects.filter(kind=EventKind.NODE_STATUS_CHANGED, new="down").exists()
    assert Event.objects.filter(kind=EventKind.REPLICA_CRASH_LOOPING, service_name="nopull")
    # Backing off (8 s, 16 s, ...): at most one more attempt each in the next 5 s.
    counts = {r.slot: r.restarts for r in rows.all()}
    time.sleep(5)
    assert all(r.restarts <= counts[r.slot] + 1 for r in rows.all())
    assert {r.slot: r.node.name for r in rows.select_related("node")} == first


def test_a_converge_that_lost_its_lease_leaves_the_engines_alone(lab, lab_nodes, api):
    from fleet.converge import executor
    from fleet.converge.lease import LEASE, Lease, LeaseLost
    from fleet.models import Deployment
    from fleet.nodes import health
    from fleet.services.spec import default_spec
    from tests.system import clean_fleet

    for node in lab_nodes:
        health.check_node(node.pk)
    with clean_fleet(lab, api) as fleet:
        service = Service.objects.create(name="web", replicas=2)
        spec = default_spec() | {"image": fleet.images["demo_v1"]}
        service.current_deployment = Deployment.objects.create(
            service=service, revision=1, spec=spec
        )
        service.save()
        lease = Lease(service.pk)
        assert lease.claim()
        # Held up (in a frozen engine's call, say) past its lease, it was taken over.
        Service.objects.filter(pk=service.pk).update(
            lease_owner="another-worker", lease_until=timezone.now() + LEASE
        )
        try:
            with pytest.raises(LeaseLost):
                executor.look(Service.objects.get(pk=service.pk), lease)
        finally:
            lease.release()
        assert fleet.count("web") == 0
        assert not Replica.objects.exists()
        assert Service.objects.get(pk=service.pk).lease_owner == "another-worker"
