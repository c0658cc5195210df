"""The followers: what the portal reads, kept up to date off the hot path.

Each follower reads the store's change feed (``hub.store.follow``) and keeps one
derived table: the cross-links (``links``), the search index (``search``) and
the feed log (``feed_log``). ``run_followers`` runs them all until told to stop;
the first to fail stops the others, as a failed consumer stops the hub.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from hub.store.connection import Connection
from hub.store.feed_log.log import run_feed_logger
from hub.store.links.linker import run_linker
from hub.store.search.index import run_search_indexer

Follower = Callable[[Callable[[], Connection], asyncio.Event], Coroutine[Any, Any, None]]
FOLLOWERS: tuple[tuple[str, Follower], ...] = (
    ("links", run_linker),
    ("search", run_search_indexer),
    ("feeds", run_feed_logger),
)


async def run_followers(connect: Callable[[], Connection], stop: asyncio.Event) -> None:
    """Run every follower until ``stop`` is set; the first to fail stops the others."""
    tasks = [
        asyncio.create_task(follow(connect, stop), name=f"follower-{name}")
        for name, follow in FOLLOWERS
    ]
    try:
        for task in asyncio.as_completed(tasks):
            await task  # a follower returns only once stop is set, or raises
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
