"""How every long-running part of a node or a hub waits, backs off and stops.

Three small things, written once and used by the relay, the harvester, the
inbox consumer, the hub's consumers and the store's followers:

- ``first_of``: sleep until the first of several events is set (``stop``,
  ``wake``, ``changed``…) or a timeout passes, whichever comes first;
- ``Backoff``: the delays between tries while something is away (doubling from
  ``first`` up to ``most``), each wait logged once, naming what it waits for;
- ``drain``: on stop, give the running tasks some seconds to finish, then cancel
  the ones still busy and log their names.

Reconnecting to PostgreSQL with a ``Backoff`` is ``hub.store.connection.Reconnecting``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


async def first_of(*events: asyncio.Event, timeout: float | None) -> bool:
    """Wait until any of ``events`` is set, or ``timeout`` seconds (``None``: no limit).

    Returns whether one was set. An event already set returns at once.
    """
    if any(event.is_set() for event in events):
        return True
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)


@dataclass
class Backoff:
    """Delays between tries: ``first``, then doubled after each wait, up to ``most``.

    ``wait`` logs each wait once (a warning: ``who`` waits how long for
    ``awaited``, and why) and sleeps until the delay is over or ``stop`` is set;
    ``reset`` starts over after a success.
    """

    who: str
    awaited: str
    first: float = 0.1
    most: float = 5.0
    extra: Mapping[str, Any] = field(default_factory=dict)
    delay: float = field(init=False)

    def __post_init__(self) -> None:
        self.delay = self.first

    def next(self, why: object) -> float:
        """The delay to wait now, logged once with ``why``; the next one doubles."""
        delay = self.delay
        self.delay = min(self.delay * 2, self.most)
        log.warning(
            "%s waits %.1f s for %s: %s", self.who, delay, self.awaited, why, extra=dict(self.extra)
        )
        return delay

    def reset(self) -> None:
        self.delay = self.first

    async def wait(self, why: object, stop: asyncio.Event | None = None) -> bool:
        """Log and sleep one delay; ``False`` when ``stop`` was set instead (give up)."""
        delay = self.next(why)
        if stop is None:
            await asyncio.sleep(delay)
            return True
        return not await first_of(stop, timeout=delay)


async def drain(
    tasks: Iterable[asyncio.Task[Any]],
    timeout: float,
    what: str,
    extra: Mapping[str, Any] | None = None,
) -> list[asyncio.Task[Any]]:
    """Give ``tasks`` (told to stop already) ``timeout`` seconds to finish; cancel the ones
    still busy, log their names once, and wait for them to end. Returns those cancelled."""
    tasks = list(tasks)
    if not tasks:
        return []
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    late = [task for task in tasks if task in pending]
    if late:
        log.warning(
            "%s: %d still busy after %.1f s, cancelled: %s",
            what,
            len(late),
            timeout,
            ", ".join(task.get_name() for task in late),
            extra=dict(extra or {}),
        )
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
    return late
