"""The channel layer: channels_redis's pub/sub layer, made to say when its Redis link broke.

The pub/sub layer hands a group message to each server process once (one PUBLISH, one
message read by each process, queued for each of its sockets there), where the core
layer keeps a copy per socket in Redis and pops each one back: with 500 dashboards
open, 500 round trips and decodes per change in the one web process.

It does not tell anyone when its connection to Redis breaks, though: it logs, waits a
second and subscribes again, and whatever was published meanwhile is gone. A dashboard
would then show a stale fleet without knowing it. So here every socket of the process
is sent LOST when that happens; the dashboard's consumer closes on it, and the page
reconnects and takes a fresh snapshot.
"""

import asyncio
import logging

from channels_redis import pubsub
from channels_redis.utils import _wrap_close

log = logging.getLogger(__name__)

LOST = "fleet.layer_lost"  # the message type each socket of the process gets
PREFIX = "asgi"  # the layer's default prefix, which Fleet keeps


def group_channel(group):
    """The Redis pub/sub channel of a group (as RedisPubSubLoopLayer names it): each server
    process with a socket in the group subscribes to it once."""
    return f"{PREFIX}__group__{group}"


class _Shard(pubsub.RedisSingleShardConnection):
    async def _do_receiving(self):
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=0.1
                    )
                    self._receive_message(message)
                else:
                    await asyncio.sleep(0.1)
            except (TimeoutError, asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:
                log.warning("channel layer: lost Redis (%s); its sockets close to resync", exc)
                self._lost()
                await asyncio.sleep(1)

    def _lost(self):
        data = self.channel_layer.channel_layer.serialize({"type": LOST})
        for queue in list(self.channel_layer.channels.values()):
            queue.put_nowait(data)


class _LoopLayer(pubsub.RedisPubSubLoopLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._shards = [_Shard(shard.host, self) for shard in self._shards]


class FleetChannelLayer(pubsub.RedisPubSubChannelLayer):
    """RedisPubSubChannelLayer whose sockets hear LOST when its Redis link breaks."""

    def _get_layer(self):
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = _LoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
        return layer
