"""Fan-out: one change -> the same message on 500 open dashboards.

Opens 500 websockets to /ws/fleet/ (token auth, as programs use, with
FLEET_SOCKETS_PER_USER raised to the clients' number; each gets its snapshot), then
drains and activates lab-1 through the API in turn; each change is timed from just
before the API request until every socket has the node
message that shows the new availability. p50 / p99 over all clients and changes
(aim: p99 < 1 s). Clients run in this one process on asyncio, so its
file-descriptor limit is raised first.

The floor runs next, on the same 500 sockets: a bare message put straight into the
channel layer's "fleet" group (the group every dashboard socket is in) from this
process, with no Fleet work behind it (no API call, database write or render), timed
until every socket has it. What is left above the floor is Fleet's own work per change.

    python -m bench.fanout [--clients 500] [--changes 6]
"""

import argparse
import asyncio
import contextlib
import json
import math
import time

import websockets

from bench.cpu import Meter
from bench.harness import ENV, api, percentile, raise_fd_limit, row, standalone
from fleet.live_layer import FleetChannelLayer

AIM_P99_MS = 1000
NODE = "lab-1"
CONNECTING_AT_ONCE = 20
ROUND_TIMEOUT = 10  # seconds a change may take to reach every socket before it counts as missed
GROUP = "fleet"  # fleet.live.GROUP: every dashboard socket's group
BARE = "bench.bare"  # the floor's message type, forwarded as it is by the socket's consumer


class Round:
    """The change under way: what every client waits for, and when each saw it."""

    def __init__(self, clients):
        self.expected = None
        self.started = 0.0
        self.arrivals = []
        self.clients = clients
        self.done = asyncio.Event()
        self.drops = 0  # connections the server closed while the benchmark ran

    def begin(self, expected):
        """Await a node message with this availability, or the bare message (BARE, seq)."""
        self.expected, self.arrivals, self.started = expected, [], time.perf_counter()
        self.done.clear()

    def seen(self, message):
        """Note the arrival if this is the message the change awaits; True if it is."""
        data = message.get("data") or {}
        if message["type"] == BARE:
            awaited = self.expected == (BARE, data.get("seq"))
        else:
            awaited = (
                message["type"] == "node"
                and data.get("name") == NODE
                and data.get("availability") == self.expected
            )
        if not awaited:
            return False
        self.arrivals.append(time.perf_counter() - self.started)
        if len(self.arrivals) == self.clients:
            self.done.set()
        return True


async def client(stack, current, ready, gate):
    """One dashboard: connect, note the awaited messages, and reconnect a second after a drop,
    as the dashboard's own script does (a drop is counted; what it missed stays missing)."""
    headers = {"Authorization": f"Token {stack.token}", "Origin": stack.url}
    url = stack.url.replace("http://", "ws://") + "/ws/fleet/"
    expected = None
    while True:
        async with gate:
            socket = await websockets.connect(
                url, additional_headers=headers, max_size=None, open_timeout=60, ping_interval=None
            )
            await socket.recv()  # the snapshot
        if ready is not None:
            ready()
            ready = None
        try:
            async for raw in socket:
                if current.expected != expected and current.seen(json.loads(raw)):
                    expected = current.expected  # one arrival per client and change
        except websockets.ConnectionClosed:
            pass
        finally:
            await socket.close()
        current.drops += 1
        await asyncio.sleep(1)


async def fan_out(stack, clients, changes, meter):
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
    rounds, answered = [], []  # arrivals per change; when the API call returned
    meter.start()
    own = time.process_time()  # the 500 clients' own CPU (this process), measured apart
    for i in range(changes):
        action = "drain" if i % 2 == 0 else "activate"
        current.begin("drain" if action == "drain" else "active")
        await asyncio.to_thread(api, stack, "POST", f"/api/nodes/{NODE}/{action}")
        answered.append((time.perf_counter() - current.started) * 1000)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(current.done.wait(), ROUND_TIMEOUT)
        rounds.append([seconds * 1000 for seconds in current.arrivals])
        await asyncio.sleep(1)
    meter.stop()
    meter.clients = time.process_time() - own
    if changes % 2:
        await asyncio.to_thread(api, stack, "POST", f"/api/nodes/{NODE}/activate")
    await asyncio.sleep(1)
    layer = FleetChannelLayer(hosts=[ENV["REDIS_URL"]])  # the layer Fleet's settings name
    bare = []
    for seq in range(changes):
        current.begin((BARE, seq))
        message = {"type": BARE, "data": {"seq": seq, "name": NODE}}
        text = json.dumps(message)  # as fleet.live sends: encoded once, for every socket
        await layer.group_send(GROUP, {"type": "fleet.message", "text": text})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(current.done.wait(), ROUND_TIMEOUT)
        bare.append([seconds * 1000 for seconds in current.arrivals])
        await asyncio.sleep(1)
    await layer.flush()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return rounds, answered, connect_s, current.drops, bare


def spread(rounds, clients):
    """p50 and p99 over every arrival; a message that never came counts as slower than any."""
    missed = sum(clients - len(arrivals) for arrivals in rounds)
    everything = [ms for arrivals in rounds for ms in arrivals] + [math.inf] * missed
    return percentile(everything, 50), percentile(everything, 99), missed


def shown(ms):
    return f"> {ROUND_TIMEOUT * 1000}" if math.isinf(ms) else round(ms)


def measure(stack, clients=500, changes=6):
    raise_fd_limit()
    # Every client is the same user (one token), and a user may hold FLEET_SOCKETS_PER_USER
    # sockets (20 by default): raised to the clients' number, so that what is measured is
    # the fan-out to that many sockets, as many users' dashboards would hold them.
    stack.reconfigure(FLEET_SOCKETS_PER_USER=str(clients))
    try:
        rounds, answered, connect_s, drops, bare = asyncio.run(
            fan_out(stack, clients, changes, meter := Meter(stack))
        )
    finally:
        stack.reconfigure()
    p50, p99, missed = spread(rounds, clients)
    b50, b99, bare_missed = spread(bare, clients)
    details = {
        "clients": clients,
        "changes": changes,
        "connect_all_seconds": round(connect_s, 2),
        "p50_ms": shown(p50),
        "p99_ms": shown(p99),
        "max_received_ms": round(max(ms for a in rounds for ms in a), 1),
        "missed": missed,
        "dropped_connections": drops,
        "per_change": [
            {
                "api_answered_ms": round(api_ms, 1),
                "received": len(a),
                "first_ms": round(min(a), 1),
                "p50_ms": round(percentile(a, 50), 1),
                "p99_ms": round(percentile(a, 99), 1),
                "last_ms": round(max(a), 1),
            }
            for a, api_ms in zip(rounds, answered, strict=True)
            if a
        ],
        "bare_p50_ms": shown(b50),
        "bare_p99_ms": shown(b99),
        "bare_missed": bare_missed,
        "aim_p99_ms": AIM_P99_MS,
        "cpu": {**meter.details(), "clients_cpu_seconds": round(meter.clients, 2)},
    }
    what = f"node drained/activated via API -> {clients} sockets ({changes} changes)"
    floor = "bare group message, same sockets"
    rows = [
        row("fan-out", f"{what}, p50", f"{shown(p50)} ms", f"{shown(b50)} ms ({floor})"),
        row(
            "fan-out",
            f"{what}, p99" + (f" ({missed} missed, {drops} drops)" if missed or drops else ""),
            f"{shown(p99)} ms",
            f"{shown(b99)} ms ({floor})" + (f", {bare_missed} missed" if bare_missed else ""),
            aim=f"< {AIM_P99_MS} ms",
            met=p99 < AIM_P99_MS and not missed,
        ),
        *meter.rows("fan-out", f"the {changes} changes"),
        row("fan-out", f"the {clients} clients' own CPU seconds, apart", f"{meter.clients:.1f} s"),
    ]
    return rows, details


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--changes", type=int, default=6)
    options = parser.parse_args()
    standalone("fan-out", measure, clients=options.clients, changes=options.changes)
