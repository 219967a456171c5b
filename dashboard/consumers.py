"""The live socket at /ws/fleet/: snapshot on connect, every change after, log tails on request."""

import asyncio
import threading
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model

from fleet import live, logs
from fleet.api.serializers import NodeSerializer
from fleet.api.service_serializers import ServiceSerializer
from fleet.models import Node, Service
from fleet.roles import READ_FLEET

LOG_TAIL = 100
# How stale a socket's knowledge of its user's role may be while it only receives.
RECHECK_SECONDS = 5
# What each message a client may send needs, as in the pages and the API.
ACTION_PERMISSIONS = {
    "resync": READ_FLEET,
    "logs.follow": ("fleet.view_replica",),
    "logs.stop": (),
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


class FleetConsumer(AsyncJsonWebsocketConsumer):
    """One dashboard (or program) following the fleet."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        if not await allowed(user.pk, READ_FLEET):
            await self.close(code=4403)  # logged in, but no role that may read the fleet
            return
        self.user_pk = user.pk
        self.checked_at = time.monotonic()
        self.log_stream = None
        await self.channel_layer.group_add(live.GROUP, self.channel_name)
        await self.accept()
        await self.send_json(await database_sync_to_async(snapshot)())

    async def disconnect(self, code):
        self.stop_logs()
        await self.channel_layer.group_discard(live.GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        if not isinstance(kind, str) or kind not in ACTION_PERMISSIONS:
            await self.send_error(f"unknown message type {str(kind)[:64]!r}")
        elif not await allowed(self.user_pk, ACTION_PERMISSIONS[kind]):
            await self.send_error(f"not allowed: {kind}", about=content.get("replica"))
        elif kind == "resync":
            await self.send_json(await database_sync_to_async(snapshot)())
        elif kind == "logs.follow":
            await self.follow_logs(content.get("replica"))
        else:
            self.stop_logs()

    async def fleet_message(self, event):
        # A role taken away (or the user deactivated) ends the socket within a few seconds,
        # even one that never sends anything: checked at most every RECHECK_SECONDS.
        if time.monotonic() - self.checked_at > RECHECK_SECONDS:
            if not await allowed(self.user_pk, READ_FLEET):
                self.stop_logs()
                await self.close(code=4403)
                return
            self.checked_at = time.monotonic()
        await self.send_json(event["message"])

    async def send_error(self, detail, about=None):
        await self.send_json(
            {"type": "error", "id": about, "seq": None, "data": {"detail": detail}}
        )

    def stop_logs(self):
        stream, self.log_stream = getattr(self, "log_stream", None), None
        if stream is not None:
            stream.close()

    async def follow_logs(self, pk):
        """Stream a replica's log lines to this socket until stopped or replaced."""
        self.stop_logs()
        try:
            if not isinstance(pk, int) or isinstance(pk, bool):
                raise logs.LogsUnavailable("no such replica with a container")
            # Not thread-sensitive: a slow engine must not hold the thread every query shares.
            stream = await database_sync_to_async(logs.follow, thread_sensitive=False)(pk, LOG_TAIL)
        except logs.LogsUnavailable as exc:
            await self.send_error(str(exc), about=pk)
            return
        self.log_stream = stream
        loop = asyncio.get_running_loop()

        def pump():
            for chunk in stream:
                for line in chunk.decode("utf-8", "replace").splitlines():
                    message = {"type": "log", "id": pk, "seq": None, "data": {"line": line}}
                    asyncio.run_coroutine_threadsafe(self.send_json(message), loop)

        threading.Thread(target=pump, name=f"logs-{pk}", daemon=True).start()
