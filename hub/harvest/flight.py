"""One harvest's batches in flight: between fetch and commit, kept in the order they were read.

A batch fetched is sent to be converted and checked (``InFlight.convert``): in a
worker process (``hub.harvest.workers``) when it is worth the trip, else here at
once. While workers convert, the harvest fetches on; each batch whose conversion
is done is written (revise, accept, commit the cursor: the harvester's ``write``)
oldest first, so the cursor only moves forward. At most ``pool.in_flight``
batches of one harvest are on their way; past that the harvest waits for the
oldest.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from adapters.contract import Adapter, Item
from hub.harvest.batch import Batch, Finish
from hub.harvest.convert import Converted
from hub.harvest.workers import ConvertPool, PoolSource

Write = Callable[[Batch, Finish | None], Awaitable[None]]
"""Writes one converted batch (``finish``, if any, in its transaction)."""


class InFlight:
    """One harvest's batches sent to be converted and checked, and not yet written."""

    def __init__(
        self, pool: ConvertPool, handle: PoolSource, adapter: Adapter, source: str, write: Write
    ) -> None:
        self.pool, self.handle, self.adapter, self.source = pool, handle, adapter, source
        self.write = write
        self.pending: deque[tuple[Batch, asyncio.Future[list[Converted]]]] = deque()

    async def convert(self, batch: Batch) -> None:
        """Convert and check: send ``batch``; write the oldest while too many are on
        their way."""
        items = [found for found in batch.found if isinstance(found, Item)]
        converting: asyncio.Future[list[Converted]]
        if self.pool.takes(self.handle, items):
            converting = asyncio.ensure_future(self.pool.convert(self.handle, self.adapter, items))
        else:  # converted now, as the harvest goes: no worker's round trip to wait for
            converting = asyncio.get_running_loop().create_future()
            converting.set_result(self.pool.here(self.adapter, items, self.source))
        self.pending.append((batch, converting))
        while len(self.pending) > self.pool.in_flight:
            await self._write_next()

    async def write_converted(self) -> None:
        """Write the batches whose conversion is done, oldest first."""
        while self.pending and self.pending[0][1].done():
            await self._write_next()

    async def finish(self, last: Batch, finish: Finish | None = None) -> None:
        """Send the last batch, write every batch; ``finish`` runs in the last transaction."""
        if last:
            await self.convert(last)
        if not self.pending:
            await self.write(Batch(), finish)
            return
        while len(self.pending) > 1:
            await self._write_next()
        await self._write_next(finish)

    async def _write_next(self, finish: Finish | None = None) -> None:
        batch, converting = self.pending[0]
        batch.converted = await converting
        self.pending.popleft()
        await self.write(batch, finish)

    def cancel(self) -> None:
        """Leaving early (an error, cancellation): the batches not written are dropped, and
        read again from the cursor by the next harvest."""
        for _, converting in self.pending:
            converting.cancel()
        self.pending.clear()
