"""Freshness: a container killed on a node -> the websocket message that reports it.

Kills containers of a 30-replica service directly through the Docker API, round
robin over the nodes, and times each kill until the dashboard socket delivers the
replica message saying that container exited. Prints p50 / p99 (aim: p99 < 300 ms).

    python -m bench.freshness [--kills 60]
"""

import argparse
import asyncio
import json
import time
import urllib.request

import docker
import websockets

from bench.harness import fleet_stack, percentile, record, table, wait_for

AIM_P99_MS = 300
REPLICAS = 30


def call(stack, method, path, body=None):
    request = urllib.request.Request(
        stack.url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Token {stack.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own server
        return json.loads(response.read() or b"null")


async def kill_and_time(stack, clients, kills):
    headers = {"Authorization": f"Token {stack.token}", "Origin": stack.url}
    url = stack.url.replace("http://", "ws://") + "/ws/fleet/"
    latencies = []
    async with websockets.connect(url, additional_headers=headers, max_size=None) as socket:
        await socket.recv()  # the snapshot
        names = sorted(clients)
        for i in range(kills):
            client = clients[names[i % len(names)]]
            filters = {"label": "fleet.service=fresh", "status": "running"}
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


def run(kills):
    with fleet_stack() as stack:
        spec = {"name": "fresh", "image": stack.lab["images"]["demo_v1"], "replicas": REPLICAS}
        call(stack, "POST", "/api/services/", {**spec, "update": {"monitor": 0}})
        wait_for(
            lambda: call(stack, "GET", "/api/services/fresh/")["running_replicas"] == REPLICAS,
            120,
            "the service to run",
        )
        clients = {
            n["name"]: docker.DockerClient(base_url=n["endpoint"], version="auto", timeout=30)
            for n in stack.lab["nodes"]
        }
        latencies = asyncio.run(kill_and_time(stack, clients, kills))
    result = {
        "kills": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        "aim_p99_ms": AIM_P99_MS,
    }
    record("freshness", result)
    table(
        [
            [
                "freshness: kill -> socket",
                result["kills"],
                result["p50_ms"],
                result["p99_ms"],
                f"p99 < {AIM_P99_MS}",
            ]
        ],
        ["benchmark", "n", "p50 ms", "p99 ms", "aim"],
    )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=60)
    run(parser.parse_args().kills)
