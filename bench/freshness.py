"""Freshness: a container killed on a node -> the websocket message that reports it.

Kills containers of a 30-replica service directly through the Docker API, round
robin over the nodes, and times each kill until the dashboard socket delivers the
replica message saying that container exited (aim: p99 < 300 ms).

    python -m bench.freshness [--kills 60]
"""

import argparse
import asyncio
import json
import time

import websockets

from bench.harness import api, engines, percentile, remove_service, row, standalone, wait_for

AIM_P99_MS = 300
REPLICAS = 30
SERVICE = "fresh"


async def kill_and_time(stack, clients, kills):
    headers = {"Authorization": f"Token {stack.token}", "Origin": stack.url}
    url = stack.url.replace("http://", "ws://") + "/ws/fleet/"
    latencies = []
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
            await asyncio.to_thread(victim.kill)
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
            await asyncio.sleep(0.4)
    return latencies


def measure(stack, kills=60):
    spec = {"name": SERVICE, "image": stack.lab["images"]["demo_v1"], "replicas": REPLICAS}
    api(stack, "POST", "/api/services/", {**spec, "update": {"monitor": 0}})
    wait_for(
        lambda: api(stack, "GET", f"/api/services/{SERVICE}/")["running_replicas"] == REPLICAS,
        120,
        "the service to run",
    )
    latencies = asyncio.run(kill_and_time(stack, engines(stack), kills))
    remove_service(stack, SERVICE)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    details = {
        "kills": len(latencies),
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(max(latencies), 1),
        "aim_p99_ms": AIM_P99_MS,
    }
    what = f"container kill -> socket message ({len(latencies)} kills)"
    rows = [
        row("freshness", f"{what}, p50", f"{p50:.0f} ms"),
        row(
            "freshness",
            f"{what}, p99",
            f"{p99:.0f} ms",
            aim=f"< {AIM_P99_MS} ms",
            met=p99 < AIM_P99_MS,
        ),
    ]
    return rows, details


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=60)
    standalone("freshness", measure, kills=parser.parse_args().kills)
