"""Followers: work done off the hub's hot path, one change of ``records`` at a time.

The consumer stores records as fast as it can and does nothing else. Anything
slower that depends on the records (the search index, the feed log, the
cross-links) is a *follower*: it reads ``hub.store.changes`` after its own
cursor, does its work, and saves the new cursor **in the same transaction**, so
a crash or a restart neither skips a change nor applies one twice.

    records ─ changes_since(cursor) ─► handle(conn, ids) ─► save cursor   (one transaction)

``follow_once`` does one batch, ``follow_pending`` every batch waiting now;
``follow_forever`` runs until stopped, idling
while there is nothing new and waiting out database outages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from hub.store.changes import ChangeCursor, changes_since
from hub.store.connection import Connection, translate_errors
from hub.store.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

Handler = Callable[[Connection, Sequence[str]], None]
"""Does a follower's work for the ids of changed records, inside the caller's transaction."""

FOLLOWERS = """
CREATE TABLE IF NOT EXISTS followers (
    name       text PRIMARY KEY,
    cursor     text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""


@translate_errors("read a follower's cursor")
def load_cursor(conn: Connection, name: str) -> ChangeCursor:
    row = conn.execute("SELECT cursor FROM followers WHERE name = %s", [name]).fetchone()
    return ChangeCursor.parse(row[0]) if row else ChangeCursor()


def save_cursor(conn: Connection, name: str, cursor: ChangeCursor) -> None:
    conn.execute(
        "INSERT INTO followers (name, cursor) VALUES (%s, %s) ON CONFLICT (name)"
        " DO UPDATE SET cursor = excluded.cursor, updated_at = now()",
        [name, str(cursor)],
    )


@translate_errors("follow record changes")
def follow_once(conn: Connection, name: str, handle: Handler, batch: int = 500) -> int:
    """Handle the next ``batch`` changes for follower ``name``; return how many."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"follow:{name}"])
        cursor = load_cursor(conn, name)
        changes = changes_since(conn, cursor, batch)
        if changes:
            handle(conn, [c.id for c in changes])
            save_cursor(conn, name, changes[-1].cursor)
    return len(changes)


def follow_pending(conn: Connection, name: str, handle: Handler, batch: int = 500) -> int:
    """Handle every change waiting now for follower ``name``, batch by batch; how many."""
    total = 0
    while done := follow_once(conn, name, handle, batch):
        total += done
    return total


async def follow_forever(
    connect: Callable[[], Connection],
    name: str,
    handle: Handler,
    stop: asyncio.Event,
    *,
    batch: int = 500,
    idle: float = 1.0,
) -> None:
    """Follow until ``stop`` is set. Two processes may run the same follower: the
    advisory lock makes them take turns, and the cursor keeps the work exact."""
    conn: Connection | None = None
    pause = idle
    while not stop.is_set():
        try:
            if conn is None:
                conn = await asyncio.to_thread(connect)
            done = await asyncio.to_thread(follow_once, conn, name, handle, batch)
            pause = 0 if done == batch else idle
        except DatabaseUnavailable as exc:
            log.warning("follower %s waits for the database: %s", name, exc)
            if conn is not None:
                conn.close()
            conn, pause = None, min(max(pause, 0.5) * 2, 30.0)
        if pause:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
    if conn is not None:
        conn.close()
