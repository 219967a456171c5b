"""The console socket at /ws/exec/?replica=ID&cmd=COMMAND: a terminal on a replica.

JSON both ways (docs/console.md): {"type": "input", "data"} and {"type": "resize",
"cols", "rows"} in; {"type": "opened"}, {"type": "output", "data"}, {"type": "exit",
"code", "reason"} and {"type": "error", "message"} out. A bad message is answered with
an error and changes nothing; the console stays open. The session ends when its command
does, after FLEET_CONSOLE_IDLE_TIMEOUT seconds without input, or when its login ends or
its role no longer allows consoles. Who may open one, how many, and the audit Events are
fleet.console.sessions's business; this only carries the bytes.
"""

import asyncio
import codecs
import json
import shlex
import threading
import time
from contextlib import suppress
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model

from dashboard.auth import NO_ROLE, SIGNED_OUT, login_ended
from dashboard.consumers import LOGIN_CHECK_SECONDS
from dashboard.places import TOO_MANY, HoldsAPlace
from fleet import live
from fleet.access.addresses import client_address
from fleet.console import sessions as console
from fleet.models import Actor

REFUSED, IDLE = 4400, 4408  # close codes: could not open; closed for want of input
MAX_MESSAGE = 65536  # characters of one message from the browser (a large paste)
MAX_COLS, MAX_ROWS = 1000, 500
WATCH_SECONDS = 1.0  # how often the idle time is checked
SEND_WAIT = 30  # seconds the output thread waits for one message to be sent


def _whole(value, low, high):
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _number(text):
    return int(text) if isinstance(text, str) and text.isdigit() and len(text) < 10 else None


class _AsRequest:
    """The socket's scope as fleet.access.addresses reads a request: the peer, X-Forwarded-For."""

    def __init__(self, scope):
        headers = dict(scope.get("headers") or [])
        self.META = {
            "REMOTE_ADDR": (scope.get("client") or [""])[0] or "",
            "HTTP_X_FORWARDED_FOR": headers.get(b"x-forwarded-for", b"").decode("latin-1"),
        }


def _open(scope, user_pk, replica_pk, command, cols, rows):
    user = get_user_model().objects.filter(pk=user_pk, is_active=True).first()
    via = "token" if scope.get("fleet_token") else "web"
    address = client_address(_AsRequest(scope))
    actor = Actor.of(user, via, address) if user else None
    return console.open_session(user, replica_pk, command, actor, cols, rows)


@database_sync_to_async
def _still_allowed(scope, user_pk):
    """The close code if the login ended or may no longer open consoles, else None."""
    code = login_ended(scope, user_pk)
    if code is None and not console.may_open(get_user_model().objects.get(pk=user_pk)):
        code = NO_ROLE
    return code


class ConsoleConsumer(HoldsAPlace, AsyncJsonWebsocketConsumer):
    """One browser terminal on one replica."""

    async def connect(self):
        self.session, self.watcher, self.ending = None, None, False
        user = self.scope.get("user")
        await self.accept()  # first, so that a refusal can say why
        if user is None or not user.is_authenticated:
            await self.refuse("log in to open a console", SIGNED_OUT)
            return
        self.user_pk = user.pk
        refused = await self.take_place(user.pk)
        if refused is not None:
            await self.refuse(refused, TOO_MANY)
            return
        self.loop = asyncio.get_running_loop()
        query = self.scope.get("query_string", b"").decode("latin-1")
        try:
            params = {k: v[0] for k, v in parse_qs(query, max_num_fields=10).items()}
        except ValueError:
            await self.refuse("too many parameters: give replica, cmd, cols and rows", REFUSED)
            return
        # Joined first: a login that ends while the console opens is heard of too.
        await self.channel_layer.group_add(live.login_group(user.pk), self.channel_name)
        cols, rows = _number(params.get("cols")) or 80, _number(params.get("rows")) or 24
        if not (_whole(cols, 1, MAX_COLS) and _whole(rows, 1, MAX_ROWS)):
            cols, rows = 80, 24
        replica = _number(params.get("replica"))
        try:
            # Not thread-sensitive: a slow engine must not hold the thread every query shares.
            self.session = await database_sync_to_async(_open, thread_sensitive=False)(
                self.scope, user.pk, replica, params.get("cmd"), cols, rows
            )
        except console.ConsoleRefused as exc:
            allowed = await database_sync_to_async(self._may_open)()
            await self.refuse(str(exc), REFUSED if allowed else NO_ROLE)
            return
        self.last_input = time.monotonic()
        replica = self.session.replica
        await self.send_json(
            {
                "type": "opened",
                "replica": replica.pk,
                "container": replica.container_name,
                "service": replica.service.name,
                "node": replica.node.name,
                "command": shlex.join(self.session.command),
            }
        )
        self.watcher = asyncio.create_task(self.watch())
        threading.Thread(target=self.pump, name=f"console-{replica.pk}", daemon=True).start()

    def _may_open(self):
        user = get_user_model().objects.filter(pk=self.user_pk).first()
        return console.may_open(user)

    async def refuse(self, message, code):
        await self.send_json({"type": "error", "message": message})
        await self.close(code=code, reason=message[:120])

    def pump(self):
        """The output thread: the command's output to the browser, then the end."""
        loop, session = self.loop, self.session
        decoder = codecs.getincrementaldecoder("utf-8")("replace")

        def send(data):
            text = decoder.decode(data)
            if not text:
                return
            message = {"type": "output", "data": text}
            try:
                future = asyncio.run_coroutine_threadsafe(self.send_json(message), loop)
                future.result(SEND_WAIT)  # a slow browser slows the command, as a terminal does
            except (RuntimeError, TimeoutError):  # the socket's loop is gone, or stuck
                session.close_terminal()

        try:
            session.pump(send)
        finally:
            with suppress(RuntimeError):  # the loop closed: disconnect() ended the session
                asyncio.run_coroutine_threadsafe(self.finish("the command ended", 1000), loop)

    async def watch(self):
        """End the session once idle too long or once its login or role no longer allows it."""
        checked = time.monotonic()
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            idle = time.monotonic() - self.last_input
            if idle >= settings.FLEET_CONSOLE_IDLE_TIMEOUT:
                limit = settings.FLEET_CONSOLE_IDLE_TIMEOUT
                await self.finish(f"no input for {limit:g} s", IDLE)
                return
            if time.monotonic() - checked >= LOGIN_CHECK_SECONDS:
                checked = time.monotonic()
                if await self.check_login():
                    return
            if self.session.renewal_due():
                await database_sync_to_async(self.session.renew, thread_sensitive=False)()

    async def fleet_login_changed(self, event):
        """A login of this user may have ended, or their role changed: see whether it was
        this one's, and whether consoles are still theirs to open."""
        await self.check_login()

    async def fleet_layer_lost(self, event):
        """The channel layer lost Redis: a push that a login ended may have been missed."""
        await self.check_login()

    async def check_login(self):
        if self.session is None:
            return False
        code = await _still_allowed(self.scope, self.user_pk)
        if code is not None:
            reason = "signed out" if code == SIGNED_OUT else "no longer allowed to open consoles"
            await self.finish(reason, code)
        return code is not None

    async def finish(self, why, close_code):
        """End the session (once): record it, tell the browser the exit code, close."""
        if self.session is None or self.ending:
            return
        self.ending = True
        if self.watcher is not None and self.watcher is not asyncio.current_task():
            self.watcher.cancel()
        code = await database_sync_to_async(self.session.end, thread_sensitive=False)(why)
        await self.send_json({"type": "exit", "code": code, "reason": why})
        await self.close(code=close_code)

    async def disconnect(self, code):
        await self.free_place()
        if getattr(self, "user_pk", None) is not None:
            await self.channel_layer.group_discard(
                live.login_group(self.user_pk), self.channel_name
            )
        if getattr(self, "session", None) is not None and not self.ending:
            self.ending = True
            if self.watcher is not None:
                self.watcher.cancel()
            await database_sync_to_async(self.session.end, thread_sensitive=False)(
                "closed by the browser"
            )

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        # Read here rather than in receive_json: text that is not JSON gets an answer too.
        if text_data is None:
            await self.send_error("send JSON text messages, not binary ones")
        elif len(text_data) > MAX_MESSAGE:
            await self.send_error(f"message too large: at most {MAX_MESSAGE} characters")
        else:
            try:
                content = json.loads(text_data)
            except ValueError:
                await self.send_error('not JSON: send {"type": "input", "data": TEXT}')
                return
            await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        if kind not in ("input", "resize"):
            shown = str(kind)[:64] if isinstance(kind, str) else kind
            await self.send_error(f"unknown message type {shown!r}: use input or resize")
        elif self.session is None or self.ending:
            await self.send_error("no console is open on this socket")
        elif kind == "input":
            await self.take_input(content.get("data"))
        else:
            await self.resize(content.get("cols"), content.get("rows"))

    async def take_input(self, data):
        if not isinstance(data, str):
            await self.send_error("input data must be text")
            return
        self.last_input = time.monotonic()
        try:
            self.session.write(data)
        except console.ConsoleRefused as exc:
            await self.send_error(str(exc))

    async def resize(self, cols, rows):
        if not (_whole(cols, 1, MAX_COLS) and _whole(rows, 1, MAX_ROWS)):
            await self.send_error(
                f"resize needs whole numbers: cols 1 to {MAX_COLS}, rows 1 to {MAX_ROWS}"
            )
            return
        self.last_input = time.monotonic()
        try:
            await database_sync_to_async(self.session.resize, thread_sensitive=False)(cols, rows)
        except console.ConsoleRefused as exc:
            await self.send_error(str(exc))

    async def send_error(self, message):
        await self.send_json({"type": "error", "message": message})
