"""Fan-out: one change -> the same message on 500 open dashboards.

Opens 500 websockets to /ws/fleet/ (token auth, as programs use; each gets its
snapshot), then drains and activates lab-1 through the API in turn; each change
is timed from just before the API request until every socket has the node
message that shows the new availability. p50 / p99 over all clients and changes
(aim: p99 < 1 s). Clients run in this one process on asyncio, so its
file-descriptor limit is raised first.

    python -m bench.fanout [--clients 500] [--changes 6]
"""

import argparse
import asyncio
import contextlib
import json
import time

import websockets

from bench.harness import api, percentile, raise_fd_limit, row, standalone

AIM_P99_MS = 1000
NODE = "lab-1"
CONNECTING_AT_ONCE = 20


class Round:
    """The change under way: what every client waits for, and when each saw it."""

    def __init__(self, clients):
        self.expected = None
        self.started = 0.0
        self.arrivals = []
        self.clients = clients
        self.done = asyncio.Event()

    def begin(self, availability):
        self.expected, self.arrivals, self.started = availability, [], time.perf_counter()
        self.done.clear()

    def seen(self, message):
        """Note the arrival if this is the message the change awaits; True if it is."""
        data = message.get("data") or {}
        if not (
            message["type"] == "node"
            and data.get("name") == NODE
            and data.get("availability") == self.expected
        ):
            return False
        self.arrivals.append(time.perf_counter() - self.started)
        if len(self.arrivals) == self.clients:
            self.done.set()
        return True


async def client(stack, current, ready, gate):
    headers = {"Authorization": f"Token {stack.token}", "Origin": stack.url}
    url = stack.url.replace("http://", "ws://") + "/ws/fleet/"
    async with gate:
        socket = await websockets.connect(
            url, additional_headers=headers, max_size=None, open_timeout=60, ping_interval=None
        )
        await socket.recv()  # the snapshot
    ready()
    expected = None
    try:
        async for raw in socket:
            if current.expected != expected and current.seen(json.loads(raw)):
                expected = current.expected  # one arrival per client and change
    finally:
        await socket.close()


async def fan_out(stack, clients, changes):
    current = Round(clients)
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
    connected = 0
    all_connected = asyncio.Event()

    def ready():
        nonlocal connected
        connected += 1
        if connected == clients:
            all_connected.set()

    started = time.perf_counter()
    tasks = [asyncio.create_task(client(stack, current, ready, gate)) for _ in range(clients)]
    await asyncio.wait_for(all_connected.wait(), 300)
    connect_s = time.perf_counter() - started
    await asyncio.sleep(1)
    rounds = []
    for i in range(changes):
        action = "drain" if i % 2 == 0 else "activate"
        current.begin("drain" if action == "drain" else "active")
        await asyncio.to_thread(api, stack, "POST", f"/api/nodes/{NODE}/{action}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(current.done.wait(), 30)
        rounds.append([seconds * 1000 for seconds in current.arrivals])
        await asyncio.sleep(1)
    if changes % 2:
        await asyncio.to_thread(api, stack, "POST", f"/api/nodes/{NODE}/activate")
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return rounds, connect_s


def measure(stack, clients=500, changes=6):
    raise_fd_limit()
    rounds, connect_s = asyncio.run(fan_out(stack, clients, changes))
    everything = [ms for arrivals in rounds for ms in arrivals]
    missed = sum(clients - len(arrivals) for arrivals in rounds)
    p50, p99 = percentile(everything, 50), percentile(everything, 99)
    details = {
        "clients": clients,
        "changes": changes,
        "connect_all_seconds": round(connect_s, 2),
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(max(everything), 1),
        "missed": missed,
        "per_change": [
            {
                "received": len(a),
                "first_ms": round(min(a), 1),
                "p50_ms": round(percentile(a, 50), 1),
                "p99_ms": round(percentile(a, 99), 1),
                "last_ms": round(max(a), 1),
            }
            for a in rounds
            if a
        ],
        "aim_p99_ms": AIM_P99_MS,
    }
    what = f"node drained/activated via API -> {clients} sockets ({changes} changes)"
    rows = [
        row("fan-out", f"{what}, p50", f"{p50:.0f} ms"),
        row(
            "fan-out",
            f"{what}, p99" + (f" ({missed} messages missing)" if missed else ""),
            f"{p99:.0f} ms",
            aim=f"< {AIM_P99_MS} ms",
            met=p99 < AIM_P99_MS and not missed,
        ),
    ]
    return rows, details


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--changes", type=int, default=6)
    options = parser.parse_args()
    standalone("fan-out", measure, clients=options.clients, changes=options.changes)
