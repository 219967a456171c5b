"""Every socket a user opens holds one of their places (fleet.access.sockets): taken on
connect, renewed while open, freed on disconnect. One beyond FLEET_SOCKETS_PER_USER is
told why and closed with TOO_MANY, which the pages show and do not retry at once."""

import asyncio
from contextlib import suppress

from asgiref.sync import sync_to_async

from fleet.access import sockets

TOO_MANY = 4429


class HoldsAPlace:
    """A consumer's share of its user's socket count. take_place() once the user is
    known, free_place() on disconnect."""

    place = None  # (user_pk, token) while held
    place_keeper = None

    async def take_place(self, user_pk):
        """Take a place, or return the reason why not (the caller says it and closes)."""
        try:
            token = await sync_to_async(sockets.take_place, thread_sensitive=False)(user_pk)
        except sockets.SocketRefused as exc:
            return str(exc)
        self.place = (user_pk, token)
        self.place_keeper = asyncio.create_task(self.keep_place())
        return None

    async def keep_place(self):
        while True:
            await asyncio.sleep(sockets.RENEW_SECONDS)
            await sync_to_async(sockets.renew_place, thread_sensitive=False)(*self.place)

    async def free_place(self):
        if self.place_keeper is not None:
            self.place_keeper.cancel()
            with suppress(asyncio.CancelledError):
                await self.place_keeper
            self.place_keeper = None
        if self.place is not None:
            place, self.place = self.place, None
            await sync_to_async(sockets.release_place, thread_sensitive=False)(*place)
