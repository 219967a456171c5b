"""A command run in a container with a terminal (docker exec -it), for the browser console.

Part of the Docker seam: it reaches the engine only through fleet.engine.client's client (so TLS
and timeouts are the node's own) and imports nothing of Docker's. The engine hands the
exec's terminal over as the raw connection (HTTP upgraded to a plain byte stream); one
thread does all the reading and writing of it (ExecSession.pump), because an SSL
connection must not be read and written from two threads at once.
"""

import os
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from fleet.engine.client import SDK_ERRORS, EngineError, client, failure
from fleet.engine.node import EngineNode

READ_SIZE = 65536
# Bytes of input that may wait for the command to read them: a command that reads
# nothing (or a pasted flood) must not grow the web process without bound.
MAX_PENDING = 262144
# Seconds each exec call may take: someone waits at a terminal for it (a slow engine's
# console is refused in this time rather than the minute container changes get).
CALL_TIMEOUT = 10
# Closing the terminal's connection does not end its command: the engine keeps the exec
# (and its terminal) running until the command exits by itself. So every command runs
# with FLEET_CONSOLE=<token> in its environment, which its children inherit, and hang_up()
# signals every process of the container that carries it, from a second exec.
MARK = "FLEET_CONSOLE"
_SIGNAL_MARKED = r"""
for d in /proc/[0-9]*; do
  if tr '\0' '\n' < "$d/environ" 2>/dev/null | grep -qx "$1"; then kill -"$2" "${d#/proc/}"; fi
done
"""


def _raw_socket(handed: Any) -> Any:
    """The socket under what exec_start(socket=True) returns: a SocketIO over plain HTTP,
    the SSL socket itself over HTTPS, a bare socket over a unix socket."""
    return getattr(handed, "_sock", handed)


class ExecSession:
    """One exec's terminal: bytes in, bytes out, resizable, with an exit code at the end.

    write(), resize() and close() may be called from any thread; pump() runs in one
    thread of its own until the command ends or close() is called.
    """

    def __init__(
        self, node: EngineNode, container_id: str, exec_id: str, handed: Any, mark: str
    ) -> None:
        self.node, self.container_id, self.exec_id, self.mark = node, container_id, exec_id, mark
        self._handed = handed  # keeps the engine's response (and with it the connection) alive
        self._sock = _raw_socket(handed)
        self._sock.settimeout(None)
        self._wake_r, self._wake_w = os.pipe()
        self._pending: list[bytes] = []
        self._pending_bytes = 0  # queued, or being sent: not yet taken by the terminal
        self._lock = threading.Lock()
        self._closed = False

    def write(self, data: bytes) -> None:
        """Queue bytes for the command's terminal (sent by the pump thread); EngineError,
        and nothing queued, when MAX_PENDING bytes would then wait."""
        with self._lock:
            if self._closed:
                return
            if self._pending_bytes + len(data) > MAX_PENDING:
                raise EngineError(
                    f"input not sent: the command has not read the last "
                    f"{self._pending_bytes // 1024} KiB yet (at most {MAX_PENDING // 1024} KiB "
                    "may wait)"
                )
            self._pending.append(data)
            self._pending_bytes += len(data)
        self._wake()

    def _wake(self) -> None:
        with suppress(OSError):
            os.write(self._wake_w, b"x")

    def resize(self, cols: int, rows: int) -> None:
        """Tell the engine the terminal's new size."""
        try:
            client(self.node, CALL_TIMEOUT).api.exec_resize(self.exec_id, height=rows, width=cols)
        except SDK_ERRORS as exc:
            raise failure(exc, CALL_TIMEOUT) from exc

    def pump(self, on_output: Callable[[bytes], object]) -> None:
        """Send queued input and hand every chunk of output to on_output(bytes), until the
        command ends (its terminal closes) or close() is called. on_output may block: the
        command's output then waits, as it would on a slow terminal."""
        try:
            while not self._closed:
                readable, _, _ = select.select([self._sock, self._wake_r], [], [])
                if self._wake_r in readable:
                    os.read(self._wake_r, 4096)
                    self._flush()
                if self._sock in readable and not self._read(on_output):
                    return
        except OSError:  # the connection broke, or close() shut it under us
            return
        finally:
            self._release()

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for data in pending:
            self._sock.sendall(data)
            with self._lock:
                self._pending_bytes -= len(data)

    def _read(self, on_output: Callable[[bytes], object]) -> bool:
        """Read what is there (an SSL socket may hold decrypted bytes select cannot see);
        False once the terminal has closed."""
        while True:
            data = self._sock.recv(READ_SIZE)
            if not data:
                return False
            on_output(data)
            if not getattr(self._sock, "pending", lambda: 0)():
                return True

    def close(self) -> None:
        """End the terminal's connection; pump() returns. The command goes on (see MARK)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._wake()

    def _release(self) -> None:
        with self._lock:
            self._closed = True
        for closing in (self._sock.close, self._handed.close):
            with suppress(OSError, AttributeError):
                closing()
        response = getattr(self._handed, "_response", None)
        if response is not None:
            # Handed as a SocketIO (a unix socket's, or an SSH node's local end), its file is
            # closed above, and closing the response flushes it: a ValueError.
            with suppress(OSError, ValueError):
                response.close()
        for fd in (self._wake_r, self._wake_w):
            with suppress(OSError):
                os.close(fd)

    def hang_up(self, signal_name: str) -> None:
        """Send the signal ("HUP", "KILL") to every process the command started."""
        hang_up(self.node, self.container_id, self.mark, signal_name)

    def exit_code(self, wait: float) -> int | None:
        """The command's exit code, or None while it still runs after `wait` seconds."""
        return exit_code(self.node, self.exec_id, wait)


def hang_up(node: EngineNode, container_id: str, mark: str, signal_name: str) -> None:
    """Send the signal ("HUP", "KILL") to every process of the container whose environment
    carries `mark`, through an exec of sh in it (an image without sh keeps them:
    docs/console.md). Needs no open terminal: a console whose web process ended is hung
    up this way too."""
    api = client(node, CALL_TIMEOUT).api
    script = ["sh", "-c", _SIGNAL_MARKED, "sh", mark, signal_name]
    try:
        killer = api.exec_create(container_id, script, stdout=True, stderr=True)
        api.exec_start(killer["Id"])
    except SDK_ERRORS as exc:
        raise failure(exc, CALL_TIMEOUT) from exc


def exit_code(node: EngineNode, exec_id: str, wait: float) -> int | None:
    """An exec's exit code, or None while it still runs after `wait` seconds (the engine
    may take a moment to mark the exec ended)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            found = client(node, CALL_TIMEOUT).api.exec_inspect(exec_id)
        except SDK_ERRORS as exc:
            raise failure(exc, CALL_TIMEOUT) from exc
        if not found.get("Running") or time.monotonic() > deadline:
            return None if found.get("Running") else found.get("ExitCode")
        time.sleep(0.1)


def open_exec(
    node: EngineNode, container_id: str, command: list[str], cols: int = 80, rows: int = 24
) -> ExecSession:
    """Start `command` (a list) in the container with a terminal; its ExecSession.

    Raises EngineError with a message fit to show an operator (no such container, not
    running, no such command in the image, engine unreachable).
    """
    api = client(node, CALL_TIMEOUT).api
    mark = f"{MARK}={secrets.token_hex(8)}"
    # No COLUMNS or LINES: busybox would believe them over the terminal's size.
    environment = ["TERM=xterm-256color", mark]
    try:
        created = api.exec_create(
            container_id, command, stdin=True, tty=True, environment=environment
        )
        handed = api.exec_start(created["Id"], socket=True, tty=True)
    except SDK_ERRORS as exc:
        raise failure(exc, CALL_TIMEOUT) from exc
    session = ExecSession(node, container_id, created["Id"], handed, mark)
    # The command may already have ended (a typo'd command): pump() will show why.
    with suppress(EngineError):
        session.resize(cols, rows)
    return session
