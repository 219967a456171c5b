"""A node reachable only over SSH (lab-4: its engine on its socket alone, behind Debian's
sshd in its namespace, the lab's key allowed to run that engine's dial-stdio and nothing
else), beside the lab's three nodes on TLS: every feature through it, its host key trusted
on first use or pinned, and what an operator is told when SSH goes wrong."""

import contextlib
import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings

from fleet import engine, nodes
from fleet.engine import ssh, ssh_keys, stats, terminal
from fleet.models import Event, EventKind, Node, Replica
from fleet.nodes import health
from lab.engines import mix_from_env
from tests.integration.faults import netns_of, partitioned
from tests.system import lab_node, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

SSH_NODE = "lab-4"
DOWN_AFTER = settings.FLEET_NODE_DOWN_AFTER


@pytest.fixture(scope="module")
def ssh_lab(lab):
    """The session's lab with lab-4 behind SSH for this module, then back to three nodes."""
    lab.up(4, mix_from_env(3), ssh=[SSH_NODE])
    yield lab
    lab.up(3)


def entry(lab):
    return next(n for n in lab.status()["nodes"] if n["name"] == SSH_NODE)


@pytest.fixture(autouse=True)
def restored(ssh_lab):
    """lab-4 as the lab made it after each test: its key allowed, its engine and sshd up."""
    yield
    ssh_lab.allow_ssh_key(SSH_NODE, True)
    ssh_lab.start_node(SSH_NODE)


@pytest.fixture
def ssh_node(ssh_lab, redis_server, transactional_db):
    """lab-4 registered as an admin would, with the host key the lab gives for it."""
    return nodes.register(lab_node(entry(ssh_lab)))


def status_of(name=SSH_NODE):
    return Node.objects.get(name=name).status


def accepted_logins(lab):
    """How many times the node's sshd let a client in (its log says so at VERBOSE)."""
    log = lab.root / f"{lab.name}-4" / "ssh" / "sshd.log"
    return log.read_text().count("Accepted publickey for root")


def test_the_lab_reaches_the_ssh_node_through_its_sshd_alone(ssh_lab):
    found = entry(ssh_lab)
    address = found["address"]
    assert found["endpoint"] == f"ssh://root@{address}:22"
    assert found["tls"] is None and found["ssh"]["pid"]
    assert ssh_keys.host_key(found["ssh"]["host_key"]).type == "ssh-ed25519"
    assert "PRIVATE KEY" in open(found["ssh"]["key"]).read()
    for port in (2375, 2376):
        with socket.socket() as probe:
            probe.settimeout(2)
            assert probe.connect_ex((address, port)) != 0  # the engine has no TCP port


def test_pings_share_one_ssh_login_and_a_silent_host_fails_them_within_their_timeout(
    ssh_lab, ssh_node
):
    ssh_lab.kill_ssh(SSH_NODE)  # with its sessions: an earlier test's login ends here
    ssh_lab.start_ssh(SSH_NODE)
    logins = accepted_logins(ssh_lab)
    for _ in range(20):
        engine.ping(ssh_node, 5)
    assert accepted_logins(ssh_lab) - logins == 1
    unpinned = lab_node(entry(ssh_lab))
    unpinned.ssh_host_key = ""  # another link, with no connection yet
    with partitioned(ssh_lab, SSH_NODE):
        # A request on an open channel, a new channel on the open connection, a new one.
        for attempt in (ssh_node, ssh_node, unpinned):
            began = time.monotonic()
            with pytest.raises(engine.EngineUnreachable, match="no answer within 2 s"):
                engine.ping(attempt, 2)
            assert time.monotonic() - began < 2.5
    wait_for(lambda: health.ping(ssh_node, 2)[1] == "", 30, message="pings again")


def dial_stdio_processes(lab):
    """The `docker system dial-stdio` processes running on the SSH node's host."""
    netns = os.stat(netns_of(lab, SSH_NODE)).st_ino
    found = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{pid}/ns/net").st_ino != netns:
                continue
            found += b"system\0dial-stdio" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return found


def test_a_burst_wider_than_maxsessions_logs_in_again_and_idle_channels_end_on_the_host(
    ssh_lab, ssh_node, monkeypatch
):
    # A shorter idle time than IDLE_AFTER's, so that the test need not wait half a minute.
    monkeypatch.setattr(ssh, "IDLE_AFTER", 1.5)
    ssh_lab.kill_ssh(SSH_NODE)  # with its sessions: an earlier test's login ends here
    ssh_lab.start_ssh(SSH_NODE)
    logins = accepted_logins(ssh_lab)
    with ThreadPoolExecutor(3 * ssh.SESSIONS) as pool:
        found = list(pool.map(lambda _: engine.info(ssh_node, 30), range(3 * ssh.SESSIONS)))
    assert {f.engine_version for f in found} == {found[0].engine_version}
    # sshd opens OpenSSH's default of 10 sessions a login: a burst of 30 needs at least 3.
    assert accepted_logins(ssh_lab) - logins >= 3
    wait_for(lambda: dial_stdio_processes(ssh_lab) == 0, 10, 0.2, message="idle channels ended")
    engine.ping(ssh_node, 5)  # a new channel where the pooled one was closed
    assert dial_stdio_processes(ssh_lab) == 1


def test_the_host_key_is_trusted_on_first_use_then_pinned(ssh_lab, redis_server, transactional_db):
    presented = entry(ssh_lab)["ssh"]["host_key"]
    unpinned = lab_node(entry(ssh_lab))
    unpinned.ssh_host_key = ""
    node = nodes.register(unpinned)
    assert health.check_node(node.pk) == "ready"
    health.check_node(node.pk)
    node.refresh_from_db()
    assert node.ssh_host_key == presented
    trusted = Event.objects.filter(kind=EventKind.NODE_UPDATED, reason__contains="first use")
    fingerprint = ssh_keys.host_key(presented).fingerprint
    assert [(e.node_name, e.new) for e in trusted] == [(SSH_NODE, fingerprint)]
    assert fingerprint in trusted[0].reason


def test_a_changed_host_key_refuses_the_node_naming_both_fingerprints(ssh_lab, ssh_node):
    pinned = ssh_keys.host_key(ssh_node.ssh_host_key).fingerprint
    assert health.check_node(ssh_node.pk) == "ready"
    ssh_lab.kill_ssh(SSH_NODE)  # its sessions too: the next call logs in anew
    ssh_lab.start_ssh(SSH_NODE, new_host_key=True)
    presented = ssh_keys.host_key(entry(ssh_lab)["ssh"]["host_key"]).fingerprint
    assert presented != pinned
    assert health.check_node(ssh_node.pk) == "unreachable"
    error = Node.objects.get(pk=ssh_node.pk).last_error
    assert "not the pinned one" in error and pinned in error and presented in error


def test_a_key_taken_out_of_authorized_keys_is_named_in_last_error(ssh_lab, ssh_node):
    assert health.check_node(ssh_node.pk) == "ready"
    ssh_lab.allow_ssh_key(SSH_NODE, False)
    ssh_lab.kill_ssh(SSH_NODE)
    ssh_lab.start_ssh(SSH_NODE)
    assert health.check_node(ssh_node.pk) == "unreachable"
    error = Node.objects.get(pk=ssh_node.pk).last_error
    mine = ssh_keys.fingerprint(ssh_keys.private_key(ssh_node.ssh_key).asbytes())
    assert f"refused the node's SSH key {mine}" in error and "authorized_keys" in error


def test_an_engine_killed_behind_ssh_is_unreachable_with_what_dial_stdio_said(ssh_lab, ssh_node):
    assert health.check_node(ssh_node.pk) == "ready"
    ssh_lab.kill_node(SSH_NODE)
    said = f"`docker system dial-stdio` on root@{entry(ssh_lab)['address']}:22 ended: "

    def told():
        # A channel opened before the kill may end without a word: the next one is told.
        assert health.check_node(ssh_node.pk) == "unreachable"
        return said in Node.objects.get(pk=ssh_node.pk).last_error

    wait_for(told, 10, 0.2, message="what dial-stdio said in last_error")
    assert entry(ssh_lab)["socket"] in Node.objects.get(pk=ssh_node.pk).last_error


def test_a_killed_sshd_makes_the_node_unreachable_then_down_and_back(
    ssh_lab, lab_nodes, watch_process
):
    wait_for(lambda: status_of() == "ready", 20, message="lab-4 ready by the watch's pings")
    ssh_lab.kill_ssh(SSH_NODE)
    killed = time.monotonic()
    wait_for(lambda: status_of() == "unreachable", 5, 0.05, message="unreachable")
    # A ping in flight on the old connection as it died may say only that it ended; the
    # next one is refused.
    wait_for(
        lambda: "Connection refused" in Node.objects.get(name=SSH_NODE).last_error,
        3,
        message="the refusal in last_error",
    )
    wait_for(lambda: status_of() == "down", DOWN_AFTER + 5, 0.05, message="down")
    down_after = time.monotonic() - killed
    assert DOWN_AFTER - 1 <= down_after <= DOWN_AFTER + 2, f"down after {down_after:.1f}s"
    assert {n.name: n.status for n in Node.objects.exclude(name=SSH_NODE)} == dict.fromkeys(
        ["lab-1", "lab-2", "lab-3"], "ready"
    )
    ssh_lab.start_ssh(SSH_NODE)
    wait_for(lambda: status_of() == "ready", 10, message="ready again")


def read_until(stream, text, timeout=10, closing=None):
    """What a stream (of bytes) gave until `text` showed; closed from another thread at the
    deadline (or `closing`, what it reads from), so a stream that cannot be closed fails the
    test instead of hanging it."""
    seen, timer = b"", threading.Timer(timeout, (closing or stream).close)
    timer.start()
    try:
        for chunk in stream:
            seen += chunk
            if text in seen:
                return seen
    finally:
        timer.cancel()
    raise AssertionError(f"{text!r} never came: {seen[-300:]!r}")


def test_a_service_on_the_ssh_node_runs_is_watched_healed_and_shows_logs_exec_and_stats(
    fleet, watch_process
):
    fleet.create("edge", replicas=2, constraints=[f"node.name=={SSH_NODE}"], update={"monitor": 0})
    fleet.converged("edge", 2)
    node = Node.objects.get(name=SSH_NODE)
    assert node.engine_version and node.api_version  # its info, read over SSH
    assert fleet.count("edge", node=SSH_NODE, running_only=True) == 2

    # The watch follows its events: a container killed there is seen dying and replaced.
    # (How soon, against a node on TLS, is bench/ssh.py's to measure: this watch has just
    # started, and its stream to the SSH node opens a login and a channel later.)
    victim = Replica.objects.filter(service__name="edge").order_by("slot").first()
    stream = engine.events(node)  # as the watch follows it, through SSH
    fleet.engines[SSH_NODE].containers.get(victim.container_id).kill()
    assert f'"id":"{victim.container_id}"'.encode() in read_until(
        (json.dumps(e, separators=(",", ":")).encode() for e in stream if e["Action"] == "die"),
        victim.container_id.encode(),
        closing=stream,
    )
    stream.close()
    wait_for(
        lambda: Event.objects.filter(kind=EventKind.REPLICA_DIED, service_name="edge").exists(),
        10,
        0.02,
        message="the death seen by the watch",
    )
    fleet.converged("edge", 2)
    assert victim.container_id not in {r.container_id for r in Replica.objects.all()}

    # Logs: followed, a line written to the container's output comes, and the stream
    # ends when closed from another thread while nothing more comes.
    replica = Replica.objects.filter(service__name="edge").order_by("slot").first()
    logs = engine.follow_logs(node, replica.container_id, tail=0)
    session = terminal.open_exec(node, replica.container_id, ["sh"])
    output, failures = [], []

    def pumped():
        try:
            session.pump(output.append)
        except Exception as exc:  # the test's to see, not the thread's to swallow
            failures.append(exc)

    pump = threading.Thread(target=pumped, daemon=True)
    pump.start()
    session.write(b"echo logged-$((6*7)) > /proc/1/fd/1; echo ssh-$((6*7))\n")
    wait_for(lambda: b"ssh-42" in b"".join(output), 10, message="the command's output")
    assert b"logged-42" in read_until(logs, b"logged-42")
    rest = threading.Thread(target=lambda: list(logs), daemon=True)
    rest.start()
    logs.close()
    rest.join(5)
    assert not rest.is_alive(), "the log stream did not end when closed"
    session.write(b"exit 3\n")
    pump.join(10)
    assert not pump.is_alive() and session.exit_code(5) == 3
    assert failures == []

    reading = stats.stats(node, replica.container_id, 10)
    assert reading.memory_bytes > 0 and reading.cpu_ns > 0
