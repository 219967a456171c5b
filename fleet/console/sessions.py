"""Consoles: a terminal on a running replica, for operators, bounded and audited.

Who may open one (operators and admins: those who may change services), on what (a
running replica's container), with which command, how many at once per user (counted
in Redis, so every web process sees the same count), and the two Events of each
session (console.opened, console.closed with its duration and how it ended). The
socket (dashboard.console) carries the bytes; the engine's side is fleet.engine.terminal.
"""

import logging
import shlex
import time

import redis
from django.conf import settings

from fleet import redis_link, slots
from fleet.access.roles import READ_FLEET
from fleet.console import orphans
from fleet.engine import terminal as engine_exec
from fleet.engine.errors import EngineError
from fleet.models import Event, EventKind, Node, Replica

log = logging.getLogger(__name__)

# Operators and admins may open a console: the same permission as changing a service.
OPEN_CONSOLE = (*READ_FLEET, "fleet.view_replica", "fleet.change_service")
# The commands offered in the page; any other may be typed.
COMMANDS = ("/bin/sh", "/bin/bash", "/bin/ash")
DEFAULT_COMMAND = "/bin/sh"
MAX_COMMAND = 512  # characters
# A session's place in the count lapses unless renewed this often, so that a web process
# that dies with sessions open does not hold its users' places for ever.
LAPSE_SECONDS = 60
RENEW_SECONDS = 20


class ConsoleRefused(Exception):
    """Why a console cannot be opened; the message is fit to show an operator."""


def _client():
    return redis_link.client()


def _key(user_pk):
    return f"fleet:console:{user_pk}"


def may_open(user):
    return bool(user and user.is_active and user.has_perms(OPEN_CONSOLE))


def parse_command(text):
    """The command as a list from what was chosen or typed; ConsoleRefused if unusable."""
    if text is None or text == "":
        text = DEFAULT_COMMAND
    if not isinstance(text, str) or len(text) > MAX_COMMAND or "\x00" in text:
        raise ConsoleRefused(
            f"the command must be text of at most {MAX_COMMAND} characters, without NUL"
        )
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ConsoleRefused(f"cannot read the command: {exc}") from exc
    if not words:
        raise ConsoleRefused("the command is empty")
    return words


def open_session(user, replica_pk, command_text, actor, cols=80, rows=24):
    """Open a console on the replica for the user: a Session, or ConsoleRefused (nothing
    changed then: no place taken, no Event)."""
    if not may_open(user):
        raise ConsoleRefused("only operators and admins may open a console")
    command = parse_command(command_text)
    replica = _running_replica(replica_pk)
    token = _take_place(user.pk)
    try:
        exec_session = engine_exec.open_exec(
            replica.node, replica.container_id, command, cols, rows
        )
    except EngineError as exc:
        _release_place(user.pk, token)
        raise ConsoleRefused(f"cannot open a console on {replica.container_name}: {exc}") from exc
    event = Event.objects.record(
        EventKind.CONSOLE_OPENED,
        actor=actor,
        service=replica.service,
        node=replica.node,
        new=replica.container_name[:255],
        reason=f"console on replica {replica.pk} (slot {replica.slot}): {shlex.join(command)}",
    )
    session = Session(user.pk, token, replica, command, exec_session, actor, event.pk)
    orphans.register(session, time.time())
    return session


def _running_replica(pk):
    if not isinstance(pk, int) or isinstance(pk, bool) or pk < 1:
        raise ConsoleRefused("name the replica by its id (a positive whole number)")
    replica = Replica.objects.select_related("service", "node").filter(pk=pk).first()
    if replica is None:
        raise ConsoleRefused(f"no replica {pk}")
    if replica.state != Replica.State.RUNNING or not replica.container_id or not replica.node:
        raise ConsoleRefused(f"replica {pk} is not running ({replica.state})")
    if replica.node.status != Node.Status.READY:
        # Refused at once rather than after the engine's timeout.
        raise ConsoleRefused(f"replica {pk}'s node {replica.node.name} is {replica.node.status}")
    return replica


def _take_place(user_pk):
    limit = settings.FLEET_CONSOLE_MAX_SESSIONS
    try:
        token = slots.take(_client(), _key(user_pk), limit, LAPSE_SECONDS)
    except redis.RedisError as exc:
        # Without the count there is no bound: refuse rather than open unbounded.
        raise ConsoleRefused(f"cannot count your open consoles: {exc}") from exc
    if token is None:
        raise ConsoleRefused(
            f"you already have {limit} consoles open, the most one user may; close one first"
        )
    return token


def _release_place(user_pk, token):
    slots.release(_client(), _key(user_pk), token)


def open_count(user_pk):
    """How many consoles the user holds open now (every web process counted)."""
    return slots.held(_client(), _key(user_pk))


class Session:
    """One open console: input and resizes go to the command, output comes from pump()."""

    def __init__(self, user_pk, token, replica, command, exec_session, actor, event_pk):
        self.user_pk, self.token, self.replica = user_pk, token, replica
        self.command, self.actor, self.opened_event = command, actor, event_pk
        self.exec = exec_session
        self.started = time.monotonic()
        self.renewed = self.started
        self.closed = False

    def write(self, text):
        """ConsoleRefused, and nothing sent, if too much input waits for the command."""
        try:
            self.exec.write(text.encode("utf-8", "replace"))
        except EngineError as exc:
            raise ConsoleRefused(str(exc)) from exc

    def resize(self, cols, rows):
        """ConsoleRefused if the engine will not (the command may have just ended)."""
        try:
            self.exec.resize(cols, rows)
        except EngineError as exc:
            raise ConsoleRefused(f"cannot resize: {exc}") from exc

    def pump(self, on_output):
        """Blocks (in a thread of its own) until the command ends or the session is closed."""
        self.exec.pump(on_output)

    def close_terminal(self):
        """Stop the output (pump() returns); end() still ends the command and records it."""
        self.exec.close()

    def renewal_due(self):
        return time.monotonic() - self.renewed >= RENEW_SECONDS

    def renew(self):
        """Keep this session's place in the count (due every RENEW_SECONDS while open)."""
        self.renewed = time.monotonic()
        slots.renew(_client(), _key(self.user_pk), self.token, LAPSE_SECONDS)
        orphans.renew(self)

    def _ended_command(self):
        """The command's exit code once it has ended, hung up (then killed) if it had not;
        None if the engine cannot say."""
        try:
            code = self.exec.exit_code(wait=0.3)
            for signal_name, wait in (("HUP", 2.0), ("KILL", 1.0)):
                if code is not None:
                    break
                self.exec.hang_up(signal_name)
                code = self.exec.exit_code(wait)
        except EngineError as exc:
            log.warning("console %s: no exit code: %s", self.opened_event, exc)
            return None
        return code

    def end(self, why):
        """Close the terminal, free the place, record console.closed; the exit code or None.

        Safe to call more than once: only the first call does anything.
        """
        if self.closed:
            return None
        self.closed = True
        self.exec.close()
        _release_place(self.user_pk, self.token)
        orphans.forget(self)
        code = self._ended_command()
        seconds = time.monotonic() - self.started
        ended = why if code is None else f"{why}, exit code {code}"
        Event.objects.record(
            EventKind.CONSOLE_CLOSED,
            actor=self.actor,
            service=self.replica.service,
            node=self.replica.node,
            old=self.replica.container_name[:255],
            new="" if code is None else str(code),
            reason=f"console on replica {self.replica.pk} closed after {seconds:.1f} s: {ended}",
        )
        return code
