"""Engines behind SSH (`ssh://user@host[:port]` nodes): the node's own key, its pinned host key,
and the Engine API spoken through `docker system dial-stdio` on the host.

Part of the Docker seam (client.py mounts ssh_http.SSHAdapter, over this module's Links, on
an SSH node's clients). Each HTTP connection the Docker SDK opens is a channel of an SSH
connection that runs `docker system dial-stdio` (which joins its stdin and stdout to the
engine's socket), handed to the SDK as the local end of a socket pair that a thread (a
Lane) pumps to and from the channel: so the SDK's timeouts, streams closed from another
thread and the console's raw socket work as they do over a unix socket. The SDK's pools
keep channels as they keep connections (one idle for IDLE_AFTER seconds is closed, so is
the `docker` process it runs on the host); the SSH connections under them are shared by
every client of the node in the process (a Link), SESSIONS channels each at most, and
more are opened while more channels are needed.

The host's key: a pinned one (the node's ssh_host_key) must be the key the host presents,
or every connection is refused with both fingerprints; with none pinned, the first key
presented is accepted and kept as the Link's `presented`, for the domain to pin (trust
on first use). Everything has a deadline: a host that stops answering fails the call
that waits for it within that call's timeout, never later.
"""

import logging
import select
import socket
import threading
import time
import weakref
from urllib.parse import urlsplit

import paramiko
from paramiko.ssh_exception import IncompatiblePeer

from fleet.engine.errors import EngineError
from fleet.engine.node import EngineNode
from fleet.engine.ssh_keys import HOST_KEY_ALGORITHMS, HostKey, fingerprint, host_key, private_key

DIAL = "docker system dial-stdio"
# paramiko logs each failure of a connection at ERROR, with its traceback, from its own
# thread; the failure reaches Fleet as the call's EngineError (and a node's last_error).
_PARAMIKO_LOG = "fleet.engine.ssh.paramiko"
logging.getLogger(_PARAMIKO_LOG).setLevel(logging.CRITICAL)
SESSIONS = 10  # channels on one SSH connection: OpenSSH's MaxSessions default
IDLE_AFTER = 30.0  # seconds a pooled channel may wait unused before it is closed
READ_SIZE = 65536
# A host that vanishes closes nothing: TCP keepalive notices a quiet connection in about
# 5 + 2 * 3 s, and the user timeout one whose data goes unacknowledged in as long.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES = 5, 2, 3
UNACKNOWLEDGED_MS = 11_000


class SSHError(Exception):
    """No channel to the engine could be opened over SSH; the message says why."""


class SSHTimeout(SSHError):
    """The host did not answer in time."""


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


class Lane:
    """One channel running dial-stdio, pumped to and from the socket the SDK is handed."""

    def __init__(self, channel: paramiko.Channel, name: str) -> None:
        self.channel = channel
        self.ours, self.local = socket.socketpair()
        self.lock = threading.Lock()
        self.idle_since: float | None = None  # set while it waits in a pool
        self.reaped = False
        self.said = ""  # what dial-stdio wrote on stderr before it ended
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def take(self) -> bool:
        """Taken from a pool for a request: False if it was closed while it waited."""
        with self.lock:
            self.idle_since = None
            return not self.reaped

    def park(self) -> None:
        """Put back in a pool, idle from now."""
        with self.lock:
            self.idle_since = time.monotonic()

    def _reap(self) -> bool:
        with self.lock:
            idle = self.idle_since is not None
            self.reaped = idle and time.monotonic() - (self.idle_since or 0) >= IDLE_AFTER
            return self.reaped

    def _run(self) -> None:
        try:
            while True:
                ready, _, _ = select.select([self.channel, self.ours], [], [], IDLE_AFTER / 3)
                if not ready and self._reap():
                    return
                if self.channel in ready:
                    data = self.channel.recv(READ_SIZE)
                    if not data:
                        self._ended()
                        return
                    self.ours.sendall(data)
                if self.ours in ready:
                    data = self.ours.recv(READ_SIZE)
                    if not data:
                        return  # the SDK closed its end
                    self.channel.sendall(data)
        except (OSError, paramiko.SSHException):
            if self.channel.closed or self.channel.eof_received:
                self._ended()  # ended as the SDK wrote to it
        finally:
            self.channel.close()
            self.ours.close()

    def _ended(self) -> None:
        """dial-stdio ended: keep what it said (say, that the engine's socket refused it)."""
        deadline = time.monotonic() + 0.5
        while not (self.channel.exit_status_ready() or self.channel.closed) and _left(deadline):
            time.sleep(0.01)
        said = b""
        while self.channel.recv_stderr_ready() and len(said) < 4096:
            said += self.channel.recv_stderr(4096)
        self.said = said.decode(errors="replace").strip()[-500:]


def _keep_alive(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_PROBES)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, UNACKNOWLEDGED_MS)


class Link:
    """The SSH connections to one node's host, shared by every client of the node here."""

    def __init__(self, node: EngineNode) -> None:
        parts = urlsplit(node.endpoint)
        self.host, self.port = parts.hostname or "", parts.port or 22
        self.user = parts.username or ""
        self.where = f"{self.user}@{self.host}:{self.port}"
        if node.ssh_key.startswith("sealed:"):
            raise EngineError(
                "the node's SSH key cannot be opened with the current FLEET_SECRETS_KEY "
                "(or SECRET_KEY); set the key again"
            )
        try:
            self.key = private_key(node.ssh_key)
            self.pinned = host_key(node.ssh_host_key) if node.ssh_host_key else None
        except ValueError as exc:
            raise EngineError(f"unusable SSH material: {exc}") from None
        self.presented: HostKey | None = None  # the host's key, once a connection saw it
        self.lock = threading.Lock()
        self.transports: list[paramiko.Transport] = []
        self.channels: dict[paramiko.Transport, weakref.WeakSet[paramiko.Channel]] = {}
        self.opening: dict[paramiko.Transport, int] = {}
        self.room: dict[paramiko.Transport, int] = {}  # fewer than SESSIONS: what it took

    def open(self, deadline: float) -> Lane:
        """A new channel to the engine, running dial-stdio, by `deadline` (monotonic)."""
        for _ in range(3):
            transport = self._transport(deadline)
            try:
                channel = transport.open_session(timeout=_left(deadline))
            except paramiko.ChannelException:  # the host opens no more sessions on it
                self._opened(transport, full=True)
                continue
            except paramiko.SSHException as exc:
                self._opened(transport)
                transport.close()  # a connection that opens no channel in time is dropped
                if not _left(deadline):
                    raise SSHTimeout(f"{self.where} opened no SSH channel in time") from None
                raise SSHError(f"SSH to {self.where}: {exc}") from None
            self._opened(transport, channel)
            self._exec(channel, deadline)
            return Lane(channel, f"ssh-{self.host}")
        raise SSHError(f"{self.where} opens no more SSH sessions (see MaxSessions in sshd_config)")

    def _opened(
        self,
        transport: paramiko.Transport,
        channel: paramiko.Channel | None = None,
        full: bool = False,
    ) -> None:
        """A channel opened on the connection, or not (full: the host would open no more)."""
        with self.lock:
            if transport not in self.opening:
                return  # forgotten meanwhile: it was closed
            self.opening[transport] -= 1
            if channel is not None:
                self.channels[transport].add(channel)
            if full:
                self.room[transport] = self._carried(transport)

    def _carried(self, transport: paramiko.Transport) -> int:
        """Channels open or being opened on a connection (with the lock held)."""
        open_ = sum(1 for channel in self.channels.get(transport, ()) if not channel.closed)
        return open_ + self.opening.get(transport, 0)

    def _transport(self, deadline: float) -> paramiko.Transport:
        """A connection with room for one more channel (counted as opening), made if need be."""
        if not self.lock.acquire(timeout=_left(deadline)):
            raise SSHTimeout(f"{self.where}: no SSH connection in time")
        try:
            for gone in [t for t in self.transports if not t.is_active()]:
                self._forget(gone)
            chosen = next(
                (t for t in self.transports if self._carried(t) < self.room.get(t, SESSIONS)),
                None,
            )
            # The connections a burst added are closed once they carry nothing.
            for extra in self.transports[1:]:
                if extra is not chosen and not self._carried(extra):
                    self._forget(extra)
            if chosen is None:
                chosen = self._connect(deadline)
                self.transports.append(chosen)
                self.channels[chosen] = weakref.WeakSet()
            self.opening[chosen] = self.opening.get(chosen, 0) + 1
            return chosen
        finally:
            self.lock.release()

    def _forget(self, transport: paramiko.Transport) -> None:
        transport.close()
        self.transports.remove(transport)
        for kept in (self.channels, self.opening, self.room):
            kept.pop(transport, None)

    def _connect(self, deadline: float) -> paramiko.Transport:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=_left(deadline) or 0.01)
        except TimeoutError:
            raise SSHTimeout(f"{self.host}:{self.port} did not answer") from None
        except OSError as exc:
            raise SSHError(f"SSH to {self.where}: {exc.strerror or exc}") from None
        _keep_alive(sock)
        transport = paramiko.Transport(sock)
        transport.set_log_channel(_PARAMIKO_LOG)
        try:
            self._handshake(transport, deadline)
        except BaseException:
            transport.close()
            raise
        return transport

    def _handshake(self, transport: paramiko.Transport, deadline: float) -> None:
        transport.banner_timeout = transport.handshake_timeout = _left(deadline)
        if self.pinned:
            transport.get_security_options().key_types = HOST_KEY_ALGORITHMS[self.pinned.type]
        try:
            transport.start_client(timeout=_left(deadline))
            presented = transport.get_remote_server_key()  # none yet if it timed out
        except IncompatiblePeer as exc:
            if self.pinned:
                raise SSHError(
                    f"{self.host}:{self.port} presents no {self.pinned.type} host key, the "
                    f"pinned key's type ({exc})"
                ) from None
            raise SSHError(f"SSH to {self.where}: {exc}") from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            if not _left(deadline):
                raise SSHTimeout(
                    f"{self.host}:{self.port} did not finish the SSH handshake"
                ) from None
            raise SSHError(f"SSH to {self.where}: {exc or type(exc).__name__}") from None
        seen = HostKey(presented.get_name(), presented.asbytes())
        if self.pinned and seen != self.pinned:
            raise SSHError(
                f"the SSH host key of {self.host}:{self.port} is not the pinned one: pinned "
                f"{self.pinned}, presented {seen}; refused (if the host's key was changed on "
                "purpose, set the node's ssh_host_key to the new one)"
            )
        self.presented = seen
        self._log_in(transport, deadline)

    def _log_in(self, transport: paramiko.Transport, deadline: float) -> None:
        transport.auth_timeout = _left(deadline)
        mine = fingerprint(self.key.asbytes())
        try:
            more = transport.auth_publickey(self.user, self.key)
        except paramiko.BadAuthenticationType as exc:
            raise SSHError(
                f"{self.where} takes no key logins (only {', '.join(exc.allowed_types)})"
            ) from None
        except paramiko.SSHException as exc:
            if not _left(deadline):
                raise SSHTimeout(f"{self.where} did not finish logging in") from None
            raise SSHError(
                f"{self.where} refused the node's SSH key {mine} ({exc}): is its public key "
                f"in {self.user}'s authorized_keys there?"
            ) from None
        if more:
            raise SSHError(f"{self.where} asks for more than a key to log in: {', '.join(more)}")

    def _exec(self, channel: paramiko.Channel, deadline: float) -> None:
        """Run dial-stdio on the channel (its reply waited for until `deadline`)."""
        timer = threading.Timer(_left(deadline), channel.close)  # ends the wait for the reply
        timer.start()
        try:
            channel.exec_command(DIAL)
        except paramiko.SSHException as exc:
            channel.close()
            if not _left(deadline):
                raise SSHTimeout(f"{self.where} did not start `{DIAL}` in time") from None
            raise SSHError(f"{self.where} would not run `{DIAL}`: {exc}") from None
        finally:
            timer.cancel()


_links: dict[str, Link] = {}
_links_lock = threading.Lock()


def link(node: EngineNode, key: str) -> Link:
    """The node's Link in this process (`key` names its endpoint and keys)."""
    with _links_lock:
        found = _links.get(key)
        if found is None:
            found = _links[key] = Link(node)
        return found


def presented(key: str) -> HostKey | None:
    """The host key the node's host presented to this process, if it connected yet."""
    found = _links.get(key)
    return found.presented if found else None
