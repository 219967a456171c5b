"""Metrics sampled from the lab's real engines by the real watch, at the default interval."""

import os
import signal
import time

import pytest
from django.conf import settings

from fleet.models import Node, NodeSample, Replica, ReplicaSample
from tests.system import wait_for

pytestmark = pytest.mark.lab

BUSY = ["sh", "-c", "while :; do :; done"]


def node_rounds(name, since):
    """The times of a node's rounds since `since`, oldest first."""
    rows = NodeSample.objects.filter(node__name=name, t__gte=since).order_by("t")
    return list(rows.values_list("t", flat=True))


def test_a_half_cpu_busy_loop_shows_half_a_core_each_interval_and_a_frozen_engine_delays_no_other(
    fleet, watch_process, api
):
    interval = settings.FLEET_METRICS_INTERVAL
    fleet.create("burn", command=BUSY, resources={"cpus": 0.5}, replicas=1)
    fleet.converged("burn", 1)
    # The first round of a container only keeps its reading: a share of a core needs two.
    wait_for(
        lambda: ReplicaSample.objects.filter(service__name="burn").count() >= 2,
        4 * interval,
        0.5,
        message="two samples of the busy replica",
    )
    now = time.time()
    answer = api.get(f"/api/services/burn/metrics/?since={now - 4 * interval}")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    cpu = [v for v in body["replicas"][0]["cpu"] if v is not None]
    assert len(cpu) >= 2, body
    assert all(40 <= v <= 60 for v in cpu), f"half a CPU read as {cpu}% of one core"
    assert body["total"]["cpu"] == body["replicas"][0]["cpu"]
    memory = [v for v in body["replicas"][0]["memory"] if v is not None]
    assert memory and all(0 < v < 64 << 20 for v in memory)
    # Every node is sampled, replicas or not; the engine's disk use comes with the first round.
    assert set(NodeSample.objects.values_list("node__name", flat=True)) == set(fleet.engines)
    assert NodeSample.objects.filter(disk__gt=0).exists()
    times = sorted(ReplicaSample.objects.filter(service__name="burn").values_list("t", flat=True))
    assert {b - a for a, b in zip(times, times[1:], strict=False)} == {interval}

    # Freeze the engine of a node without the busy replica: the others' rounds go on.
    busy_node = Replica.objects.get(service__name="burn").node.name
    frozen = next(n for n in ("lab-1", "lab-2", "lab-3") if n != busy_node)
    others = [n for n in ("lab-1", "lab-2", "lab-3") if n != frozen]
    pid = next(n["pid"] for n in fleet.lab.status()["nodes"] if n["name"] == frozen)
    os.kill(pid, signal.SIGSTOP)
    stopped_at = time.time()
    late = []
    try:
        seen = {name: set(node_rounds(name, stopped_at)) for name in others}
        while time.time() < stopped_at + 2 * interval + 1:
            for name in others:
                for t in set(node_rounds(name, stopped_at)) - seen[name]:
                    seen[name].add(t)
                    # Written within a few seconds of its round, as before the freeze.
                    if time.time() - t > interval / 2 + 1:
                        late.append((name, t, round(time.time() - t, 1)))
            time.sleep(0.2)
        frozen_rounds = node_rounds(frozen, stopped_at + interval)
    finally:
        os.kill(pid, signal.SIGCONT)
    for name in others:
        rounds = sorted(seen[name])
        assert len(rounds) >= 2, f"{name} sampled only at {rounds} while {frozen} was frozen"
        assert {b - a for a, b in zip(rounds, rounds[1:], strict=False)} == {interval}, rounds
    assert not late, f"rounds written late while {frozen} was frozen: {late}"
    assert frozen_rounds == [], "a frozen engine cannot have been sampled"
    busy = ReplicaSample.objects.filter(service__name="burn", t__gte=stopped_at)
    assert busy.count() >= 2
    wait_for(
        lambda: Node.objects.get(name=frozen).status == "ready",
        15,
        message=f"{frozen} to be ready again",
    )
