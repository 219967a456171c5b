"""Freshness: a container killed on a node -> the websocket message that reports it.

Kills containers of a 30-replica service directly through the Docker API, round
robin over the nodes, and times each kill until the dashboard socket delivers the
replica message saying that container exited (aim: p99 < 300 ms). Its floor runs
beside it on the same engines: a plain Docker events listener per node (the Docker
SDK's events stream, filtered to the service's `die` events), timed from the same
kill. Fleet's added latency is the socket's time less the listener's, per kill.

    python -m bench.freshness [--kills 60]
"""

import argparse
import asyncio
import json
import threading
import time

import websockets

from bench.cpu import Meter
from bench.harness import api, engines, percentile, remove_service, row, standalone, wait_for

AIM_P99_MS = 300
AIM_ADDED_P99_MS = 150  # over the events listener's own latency
REPLICAS = 30
SERVICE = "fresh"


class EventsListener:
    """The floor: each node's events stream, read by a thread, noting when each `die` arrives."""

    def __init__(self, clients):
        self.arrivals = {}  # container id -> perf_counter() of its die event
        self.streams = []
        filters = {"type": "container", "event": "die", "label": f"fleet.service={SERVICE}"}
        for client in clients.values():
            stream = client.events(decode=True, filters=filters)
            self.streams.append(stream)
            threading.Thread(target=self.read, args=(stream,), daemon=True).start()

    def read(self, stream):
        try:
            for event in stream:
                self.arrivals.setdefault(event.get("id"), time.perf_counter())
        except Exception:  # closed at the end of the run
            return

    def close(self):
        for stream in self.streams:
            stream.close()


async def kill_and_time(stack, clients, kills, listener):
    headers = {"Authorization": f"Token {stack.token}", "Origin": stack.url}
    url = stack.url.replace("http://", "ws://") + "/ws/fleet/"
    latencies, floors = [], []
    async with websockets.connect(url, additional_headers=headers, max_size=None) as socket:
        await socket.recv()  # the snapshot
        names = sorted(clients)
        for i in range(kills):
            client = clients[names[i % len(names)]]
            filters = {"label": f"fleet.service={SERVICE}", "status": "running"}
            running = await asyncio.to_thread(client.containers.list, filters=filters)
            if not running:
                await asyncio.sleep(0.5)
                continue
            victim = running[0]
            started = time.perf_counter()
            # The socket is read while the kill call runs: a slow engine answers the call
            # late, and a message that came meanwhile must be timed when it came.
            killing = asyncio.create_task(asyncio.to_thread(victim.kill))
            while True:
                message = json.loads(await asyncio.wait_for(socket.recv(), 15))
                data = message.get("data") or {}
                if (
                    message["type"] == "replica"
                    and data.get("container_id") == victim.id
                    and data.get("state") == "exited"
                ):
                    latencies.append((time.perf_counter() - started) * 1000)
                    break
            await killing
            for _ in range(50):  # the listener's arrival, if it has not come yet (it is first)
                if victim.id in listener.arrivals:
                    break
                await asyncio.sleep(0.02)
            if victim.id in listener.arrivals:
                floors.append((listener.arrivals[victim.id] - started) * 1000)
            else:
                floors.append(None)
            await asyncio.sleep(0.4)
    return latencies, floors


def measure(stack, kills=60):
    spec = {"name": SERVICE, "image": stack.lab["images"]["demo_v1"], "replicas": REPLICAS}
    api(stack, "POST", "/api/services/", {**spec, "update": {"monitor": 0}})
    wait_for(
        lambda: api(stack, "GET", f"/api/services/{SERVICE}/")["running_replicas"] == REPLICAS,
        120,
        "the service to run",
    )
    clients = engines(stack)
    listener = EventsListener(clients)
    meter = Meter(stack).start()
    try:
        latencies, floors = asyncio.run(kill_and_time(stack, clients, kills, listener))
    finally:
        listener.close()
    meter.stop()
    remove_service(stack, SERVICE)
    heard = [(f, floor) for f, floor in zip(latencies, floors, strict=True) if floor is not None]
    added = [f - floor for f, floor in heard]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    f50, f99 = percentile([x for _, x in heard], 50), percentile([x for _, x in heard], 99)
    a50, a99 = percentile(added, 50), percentile(added, 99)
    details = {
        "kills": len(latencies),
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(max(latencies), 1),
        "listener_p50_ms": round(f50, 1),
        "listener_p99_ms": round(f99, 1),
        "listener_missed": len(latencies) - len(heard),
        "added_p50_ms": round(a50, 1),
        "added_p99_ms": round(a99, 1),
        "aim_p99_ms": AIM_P99_MS,
        "aim_added_p99_ms": AIM_ADDED_P99_MS,
        "cpu": meter.details(),
    }
    what = f"container kill -> socket message ({len(latencies)} kills)"
    floor = "plain events listener, same kills"
    rows = [
        row("freshness", f"{what}, p50", f"{p50:.0f} ms", f"{f50:.0f} ms ({floor})"),
        row(
            "freshness",
            f"{what}, p99",
            f"{p99:.0f} ms",
            f"{f99:.0f} ms ({floor})",
            aim=f"< {AIM_P99_MS} ms",
            met=p99 < AIM_P99_MS,
        ),
        row("freshness", "Fleet's added latency (socket less listener), p50", f"{a50:.0f} ms"),
        row(
            "freshness",
            "Fleet's added latency (socket less listener), p99",
            f"{a99:.0f} ms",
            aim=f"< {AIM_ADDED_P99_MS} ms",
            met=a99 < AIM_ADDED_P99_MS,
        ),
        *meter.rows("freshness", f"{len(latencies)} kills and their restarts"),
    ]
    return rows, details


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=60)
    standalone("freshness", measure, kills=parser.parse_args().kills)
