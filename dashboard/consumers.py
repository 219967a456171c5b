"""The live socket at /ws/fleet/: snapshot on connect, every change after, log tails on request.

Each socket holds one of its user's FLEET_SOCKETS_PER_USER places (dashboard.places), taken
before the snapshot is built; a log tail's lines go out in acknowledged batches
(dashboard.log_tail)."""

import asyncio
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model

from dashboard.auth import NO_ROLE, SIGNED_OUT, login_ended
from dashboard.log_tail import LogTail
from dashboard.places import TOO_MANY, HoldsAPlace
from fleet import live
from fleet.access.roles import READ_FLEET
from fleet.api.serializers import NodeSerializer
from fleet.api.service_serializers import ServiceSerializer
from fleet.console import logs
from fleet.models import Node, Service

LOG_TAIL = 100
LAYER_LOST = 4012  # the close code when changes may have been missed: the page reconnects
# A login ended through Fleet (logged out, token revoked, role or account changed) is pushed
# to its user's sockets (fleet.live.login_changed), which close at once. Each socket also
# checks its login this often, for the ways Fleet does not see: a session that expired or
# was deleted from the database, a password changed from the command line. (Checked every
# 2 s by each of 500 sockets, that alone kept the server's database thread busy.)
LOGIN_CHECK_SECONDS = 30
# What one socket may ask of the server: logs followed at once, and snapshots on request.
MAX_LOGS = 4
RESYNC_SECONDS = 1.0
# What each message a client may send needs, as in the pages and the API.
ACTION_PERMISSIONS = {
    "resync": READ_FLEET,
    "logs.follow": ("fleet.view_replica",),
    "logs.stop": (),
    "logs.ack": (),
}


def snapshot():
    """Everything a dashboard shows, with the sequence number it is current as of."""
    seq = live.current_seq()  # read first: a change after it also arrives as a message
    return {
        "type": "snapshot",
        "id": None,
        "seq": seq,
        "data": {
            "nodes": NodeSerializer(Node.objects.all(), many=True).data,
            "services": ServiceSerializer(Service.objects.with_counts(), many=True).data,
        },
        "html": "",
    }


@database_sync_to_async
def allowed(user_pk, perms):
    """Whether the user, as the database has it now, is active and holds every permission.

    Read afresh for each message, so that a role taken away applies to open sockets too.
    """
    user = get_user_model().objects.filter(pk=user_pk, is_active=True).first()
    return user is not None and user.has_perms(perms)


class FleetConsumer(HoldsAPlace, AsyncJsonWebsocketConsumer):
    """One dashboard (or program) following the fleet."""

    async def connect(self):
        self.log_streams, self.login_watch = {}, None
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=SIGNED_OUT)
            return
        if not await allowed(user.pk, READ_FLEET):
            await self.close(code=NO_ROLE)  # logged in, but no role that may read the fleet
            return
        refused = await self.take_place(user.pk)  # before the snapshot: a refusal costs little
        if refused is not None:
            await self.accept()  # so that the page hears why
            await self.send_error(refused)
            await self.close(code=TOO_MANY, reason=refused[:120])
            return
        self.user_pk = user.pk
        self.resynced_at = -RESYNC_SECONDS
        await self.channel_layer.group_add(live.GROUP, self.channel_name)
        await self.channel_layer.group_add(live.login_group(user.pk), self.channel_name)
        await self.accept()
        self.login_watch = asyncio.create_task(self.watch_login())
        await self.send_json(await database_sync_to_async(snapshot)())

    async def disconnect(self, code):
        self.stop_logs()
        await self.free_place()
        if getattr(self, "login_watch", None) is not None:
            self.login_watch.cancel()
        await self.channel_layer.group_discard(live.GROUP, self.channel_name)
        if hasattr(self, "user_pk"):
            await self.channel_layer.group_discard(
                live.login_group(self.user_pk), self.channel_name
            )

    async def watch_login(self):
        """Close the socket, log tails and all, once its login ends or its role goes."""
        while not await self.check_login():
            await asyncio.sleep(LOGIN_CHECK_SECONDS)

    async def fleet_login_changed(self, event):
        """A login of this socket's user may have ended: see whether it was this one's."""
        await self.check_login()

    async def check_login(self):
        """End the socket if its login no longer holds; True if it ended."""
        code = await database_sync_to_async(login_ended)(self.scope, self.user_pk)
        if code is not None:
            await self.end(code)
        return code is not None

    async def end(self, code):
        self.stop_logs()
        await self.close(code=code)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        if not isinstance(kind, str) or kind not in ACTION_PERMISSIONS:
            await self.send_error(f"unknown message type {str(kind)[:64]!r}")
        elif not await allowed(self.user_pk, ACTION_PERMISSIONS[kind]):
            await self.send_error(f"not allowed: {kind}", about=content.get("replica"))
        elif kind == "resync":
            await self.resync()
        elif kind == "logs.follow":
            await self.follow_logs(content.get("replica"))
        elif kind == "logs.ack":
            await self.take_ack(content.get("replica"))
        else:
            self.stop_logs(content.get("replica"))

    async def resync(self):
        # A snapshot costs the server a read of the whole fleet: one a second per socket.
        wait = self.resynced_at + RESYNC_SECONDS - time.monotonic()
        if wait > 0:
            await self.send_error(
                f"resync refused: at most one every {RESYNC_SECONDS:g} s; try again in {wait:.1f} s"
            )
            return
        self.resynced_at = time.monotonic()
        await self.send_json(await database_sync_to_async(snapshot)())

    async def take_ack(self, pk):
        """The client handled a batch of this log: one more may go (dashboard.log_tail). An
        acknowledgement for a log no longer followed (stopped meanwhile) is let go."""
        if not isinstance(pk, int) or isinstance(pk, bool):
            await self.send_error(
                'acknowledge a log by its replica: {"type": "logs.ack", "replica": ID}'
            )
        elif (tail := self.log_streams.get(pk)) is not None:
            tail.ack()

    async def fleet_layer_lost(self, event):
        """The channel layer lost Redis, and with it whatever was sent meanwhile: close, so
        that the page reconnects and takes a fresh snapshot (fleet.live_layer)."""
        await self.end(LAYER_LOST)

    async def fleet_message(self, event):
        await self.send(text_data=event["text"])  # encoded once by the sender, for every socket

    async def send_error(self, detail, about=None):
        await self.send_json(
            {"type": "error", "id": about, "seq": None, "data": {"detail": detail}}
        )

    def stop_logs(self, pk=None):
        """Stop following one replica's log, or every log when pk is None."""
        streams = getattr(self, "log_streams", {})
        for key in [pk] if pk is not None else list(streams):
            stream = streams.pop(key, None)
            if stream is not None:
                stream.close()

    async def follow_logs(self, pk):
        """Stream a replica's log lines to this socket until stopped (or followed afresh)."""
        if not isinstance(pk, int) or isinstance(pk, bool):
            await self.send_error("no such replica with a container", about=pk)
            return
        self.stop_logs(pk)
        if len(self.log_streams) >= MAX_LOGS:
            await self.send_error(
                f"already following {MAX_LOGS} logs, the most one socket may; "
                'stop one first ({"type": "logs.stop", "replica": ID})',
                about=pk,
            )
            return
        try:
            # Not thread-sensitive: a slow engine must not hold the thread every query shares.
            stream = await database_sync_to_async(logs.follow, thread_sensitive=False)(pk, LOG_TAIL)
            self.log_streams[pk] = LogTail(pk, stream, self.send_json)
        except logs.LogsUnavailable as exc:
            await self.send_error(str(exc), about=pk)
