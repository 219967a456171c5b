"""A broken or hostile engine: what it sends is checked before Fleet acts on it.

The engine here is a small HTTP server of the test's own that speaks just enough of the
Engine API (ping, info, a container listing, the events stream, container creation) and
garbles what a real engine would send well-formed. Fleet's own watch and engine seam talk
to it as they talk to any node.
"""

import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from fleet import engine
from fleet.engine import labels
from fleet.models import Node
from fleet.nodes import watch
from tests.system import wait_for

ID = "0123456789abcdef" * 4
SECOND = 1_765_000_000


def event(action, at):
    return {
        "Type": "container",
        "Action": action,
        "status": action,
        "id": ID,
        "Actor": {"ID": ID, "Attributes": {labels.REPLICA: "999999"}},
        "time": SECOND + at,
        "timeNano": (SECOND + at) * 1_000_000_000,
    }


def since_of(at):
    return f"{SECOND + at}.000000000"


# The stream as the engine keeps it, by time: a garbled line sits between good events.
GOOD_A, GOOD_B = event("start", 1), event("die", 4)
STREAM = [
    (1, json.dumps(GOOD_A).encode()),
    (2, b'{"Action": "start", "Actor": {"ID": "'),  # cut off: not JSON
    (3, json.dumps({**event("die", 3), "timeNano": "3 o'clock"}).encode()),
    (4, json.dumps(GOOD_B).encode()),
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Api-Version", self.server.api_version)  # as on every real answer
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route(self):
        path, _, query = self.path.partition("?")
        return re.sub(r"^/v[0-9.]+", "", path), parse_qs(query)

    def do_GET(self):
        path, query = self.route()
        if path == "/_ping":
            self.reply(200, b"OK")
        elif path == "/info":
            info = {"ServerVersion": "20.10.24", "NCPU": 1, "MemTotal": 1, "ContainersRunning": 0}
            self.reply(200, json.dumps(info).encode())
        elif path == "/containers/json":
            self.reply(200, json.dumps(self.server.listing).encode())
        elif path == "/events":
            self.follow(query.get("since", [None])[0])
        else:
            self.reply(404, b'{"message": "not here"}')

    def do_POST(self):
        path, _ = self.route()
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.posts.append(path)
        if path == "/containers/create":
            self.reply(
                201, json.dumps({"Id": "abc;disable server svc-web/r1", "Warnings": []}).encode()
            )
        else:
            self.reply(204)

    def follow(self, since):
        """The stream from `since` on (Docker's `since` includes that moment); the first
        one ends after what it sent, as a restarted engine's would, and the next is kept."""
        server = self.server
        server.follows.append(since)
        first = len(server.follows) == 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        lines = STREAM[:3] if first else STREAM
        start = float(since) - SECOND if since else 0
        for at, line in lines:
            if at >= start:
                chunk = line + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.flush()
        if first:
            self.wfile.write(b"0\r\n\r\n")
            self.close_connection = True
            return
        server.stopping.wait(30)


@pytest.fixture
def hostile():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.follows, server.posts, server.listing = [], [], []
    server.api_version = "1.41"
    server.stopping = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stopping.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def hostile_node(transactional_db, redis_server, hostile):
    port = hostile.server_address[1]
    return Node.objects.create(name="hostile", endpoint=f"tcp://127.0.0.1:{port}")


def test_a_garbled_event_is_reported_once_and_a_reconnect_does_not_bring_it_back(
    hostile, hostile_node, caplog
):
    caplog.set_level(logging.WARNING, logger="fleet.nodes.watch")
    follower = watch.NodeWatch(hostile_node)
    follower.start()
    try:
        # The first stream ends after the two garbled lines; the next starts at the last
        # good event, so the engine sends both garbled lines again, then the next good one.
        wait_for(lambda: follower.since == since_of(4), 15, message="the event after them")
        time.sleep(2 * watch.RECONNECT_DELAY)  # time for a loop to show, if there were one
    finally:
        follower.stop()
        follower.join(10)
    assert hostile.follows == [None, since_of(1)]
    skipped = [r.getMessage() for r in caplog.records if "skipped an event" in r.getMessage()]
    assert len(skipped) == 2, skipped
    assert "not JSON" in skipped[0] and "timeNano is not a time" in skipped[1]


def test_a_listing_keeps_only_well_formed_containers_and_ports(hostile, hostile_node):
    row = {
        "Id": ID,
        "Names": ["/web.1"],
        "Labels": {labels.REPLICA: "1"},
        "State": "running",
        "Status": "Up 1 second",
        "Created": SECOND,
        "Ports": [
            {"PrivatePort": 80, "PublicPort": 32768, "Type": "tcp"},
            {"PrivatePort": 81, "PublicPort": "32769\nshutdown sessions", "Type": "tcp"},
        ],
    }
    hostile.listing = [
        row,
        {**row, "Id": "1234;disable server svc-web/r1-1234"},
        {**row, "Id": ID.upper()},
        {**row, "Labels": ["not", "a", "map"]},
        "not a container",
    ]
    listed = engine.list_containers(hostile_node, labels.REPLICA)
    assert [c.id for c in listed] == [ID]
    assert listed[0].host_ports == {"80/tcp": 32768}


def test_a_new_container_with_a_malformed_id_is_refused_and_never_started(hostile, hostile_node):
    spec = engine.ContainerSpec(name="web.1", image="demo:1", labels={})
    with pytest.raises(engine.EngineError, match="not an id"):
        engine.run_container(hostile_node, spec)
    assert hostile.posts == ["/containers/create"]


def test_an_engine_too_old_for_fleet_answers_its_pings_yet_is_refused_with_why(
    hostile, hostile_node
):
    # Docker 19.03's API: no engine that old runs on the lab's Debian, so the test's own
    # engine says it. Fleet must not speak 1.41 to it, nor anything else.
    hostile.api_version = "1.40"
    follower = watch.NodeWatch(hostile_node)
    follower.start()
    try:
        wait_for(
            lambda: Node.objects.get(pk=hostile_node.pk).status == Node.Status.UNREACHABLE,
            10,
            message="the node to be unreachable",
        )
        time.sleep(2 * watch.RECONNECT_DELAY)  # a stream opened meanwhile would show
    finally:
        follower.stop()
        follower.join(10)
    node = Node.objects.get(pk=hostile_node.pk)
    assert "Engine API 1.40" in node.last_error and "Docker 20.10" in node.last_error
    assert hostile.follows == [] and hostile.posts == []  # nothing asked of it but pings
    with pytest.raises(engine.EngineError, match="upgrade Docker"):
        engine.list_containers(node, labels.SERVICE)
