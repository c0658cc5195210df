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
from collections.abc import Callable, Sequence

from hub.lifecycle import first_of
from hub.store.changes import ChangeCursor, changes_since
from hub.store.connection import Connection, Reconnecting, translate_errors

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
    store = Reconnecting(connect, f"follower {name}", first=1.0, most=30.0)
    try:
        while not stop.is_set():
            done = await store.run(lambda conn: follow_once(conn, name, handle, batch), stop)
            if done is None:  # stopped while the database was away
                break
            if done < batch:  # caught up: idle until there may be more
                await first_of(stop, timeout=idle)
    finally:
        store.close()
