"""One log followed over the live socket: lines sent in batches, never faster than the
browser acknowledges them.

A batch is one message, {"type": "log", "id": REPLICA, "data": {"lines": [...]}}, of at
most BATCH_LINES lines (about BATCH_BYTES), and at most one goes out every BATCH_SECONDS.
At most WINDOW batches are out unacknowledged; the client answers each with
{"type": "logs.ack", "replica": REPLICA}. A reader that falls behind stops receiving;
the tail's buffer fills and its reading of the engine's stream pauses
(fleet.console.logs.Tail), so what one tail holds in the web process is bounded by
BUFFER_BYTES there and WINDOW x BATCH_BYTES here, however fast the container writes.
"""

import asyncio

from fleet.console import logs

# 500 lines a second per log, more than anyone reads: each line read from an engine costs
# the web process about 16 us of CPU (the Docker SDK's stream), so that twenty sockets
# following logs that never pause take about a third of a core, not all of it.
BATCH_SECONDS = 0.5
BATCH_LINES = 250
BATCH_BYTES = 64 * 1024
WINDOW = 4


class LogTail:
    """Send one replica's log to one socket through `send` (an async callable)."""

    def __init__(self, pk, stream, send):
        self.pk, self.send = pk, send
        self.loop = asyncio.get_running_loop()
        self.credit = WINDOW
        self.ready = asyncio.Event()
        self.ready.set()  # the first lines (the last ones written) are taken at once
        self.tail = logs.Tail(stream, self._wake, name=f"logs-{pk}")
        self.task = asyncio.create_task(self.run())

    def _wake(self):
        """From the reading thread: lines wait. Once per wait, never once per line."""
        try:
            self.loop.call_soon_threadsafe(self.ready.set)
        except RuntimeError:  # the loop has closed: the socket is gone
            self.tail.close()

    def ack(self):
        self.credit = min(self.credit + 1, WINDOW)
        self.ready.set()

    async def run(self):
        while True:
            await self.ready.wait()
            self.ready.clear()
            while self.credit > 0:
                lines, ended = self.tail.take(BATCH_LINES, BATCH_BYTES)
                if lines:
                    self.credit -= 1
                    data = {"lines": lines}
                    await self.send({"type": "log", "id": self.pk, "seq": None, "data": data})
                if ended:
                    return
                if not lines:
                    break  # take() asked the reader to wake us when more come
                await asyncio.sleep(BATCH_SECONDS)  # more gather meanwhile: one message

    def close(self):
        self.tail.close()
        self.task.cancel()
