"""Webhook: POST each record the inbox takes in to the site's CMS, in order, with retries.

    consumer ─ offer (never waits) ─► bounded queue ─► one worker ─ POST ─┬─ 2xx: sent
                                                                        ├─ 5xx, 408, 429, network:
                                                                        │  retry with backoff
                                                                        └─ other 4xx, or out of
                                                                           tries: failed, logged

Best effort by design: the consumer is never slowed by the CMS. When the
queue is full an offer is dropped and counted; what is still queued at stop is
not sent. Every failure is counted and the last one kept for ``/status``. The
inbox itself is the record of truth: a CMS that missed a call catches up from
``/inbox.json``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp

from hub.inbox.consumer import Kept
from hub.lifecycle import first_of

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 425, 429})
"""Client errors worth another try (a timeout, too early, too many requests); and every 5xx."""


@dataclass
class WebhookStats:
    sent: int = 0
    failed: int = 0  # gave up after the last try, or refused by the CMS
    dropped: int = 0  # not queued: the queue was full
    retries: int = 0
    abandoned: int = 0  # still queued when the node stopped
    last_error: str | None = None


class Webhook:
    """POSTs record XML to ``url``; ``run`` is the one worker, ``offer`` never blocks."""

    def __init__(
        self,
        url: str,
        node_id: str,
        *,
        queue_size: int = 1000,
        attempts: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.node_id = node_id
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.stats = WebhookStats()
        self._queue: asyncio.Queue[Kept] = asyncio.Queue(maxsize=queue_size)

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def offer(self, kept: Kept) -> None:
        """Queue one call; if the queue is full, drop it (counted, logged), never wait."""
        try:
            self._queue.put_nowait(kept)
        except asyncio.QueueFull:
            self.stats.dropped += 1
            self.stats.last_error = f"queue full ({self._queue.maxsize}): {kept.record.id} dropped"
            log.warning("%s", self.stats.last_error, extra=self._extra(kept))

    async def run(self, stop: asyncio.Event) -> None:
        """Send queued calls one at a time until ``stop`` is set."""
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not stop.is_set():
                try:
                    kept = await asyncio.wait_for(self._queue.get(), 0.5)
                except TimeoutError:
                    continue
                await self._deliver(session, kept, stop)
        self.stats.abandoned += self._queue.qsize()
        if self._queue.qsize():
            log.warning(
                "%d webhook calls not made at stop; the CMS can catch up from /inbox.json",
                self._queue.qsize(),
                extra={"node": self.node_id, "stage": "webhook"},
            )

    async def _deliver(
        self, session: aiohttp.ClientSession, kept: Kept, stop: asyncio.Event
    ) -> None:
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            error, retry = await self._post(session, kept)
            if error is None:
                self.stats.sent += 1
                return
            self.stats.last_error = f"{kept.record.id}: {error}"
            if not retry or attempt == self.attempts:
                break
            self.stats.retries += 1
            log.info("webhook retry in %.1fs: %s", delay, error, extra=self._extra(kept))
            if await first_of(stop, timeout=delay):
                self.stats.abandoned += 1
                return
            delay = min(delay * 2, self.max_backoff)
        self.stats.failed += 1
        log.warning("webhook gave up: %s", self.stats.last_error, extra=self._extra(kept))

    async def _post(self, session: aiohttp.ClientSession, kept: Kept) -> tuple[str | None, bool]:
        """(the error, or None; whether to try again)."""
        record = kept.record
        headers = {
            "Content-Type": "application/xml; charset=utf-8",
            "X-Govhub-Node": self.node_id,
            "X-Govhub-Record": record.id,
            "X-Govhub-Revision": str(record.revision),
            "X-Govhub-Kind": record.kind,
            "X-Govhub-Origin": record.origin.node,
            "X-Govhub-Event": "withdrawn" if record.withdrawn else kept.outcome.value,
        }
        try:
            async with session.post(self.url, data=kept.body, headers=headers) as response:
                if 200 <= response.status < 300:
                    return None, False
                return (
                    f"HTTP {response.status}",
                    response.status >= 500 or response.status in RETRY_STATUSES,
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, True

    def _extra(self, kept: Kept) -> dict[str, str]:
        return {"node": self.node_id, "stage": "webhook", "record": kept.record.id}
