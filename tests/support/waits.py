"""Waiting in tests for a follower (hub.store.follow) to take in what was stored."""

from __future__ import annotations

import time

from hub.store.connection import Connection
from hub.store.follow import Handler, follow_pending, load_cursor


def catch_up(
    conn: Connection, name: str, handle: Handler, *, batch: int = 500, timeout: float = 300.0
) -> None:
    """Run follower ``name`` until it has handled every stored change.

    A change becomes visible to followers only once every transaction that
    started before it has ended, on the whole server (hub.store.changes): other
    test runs share the server, and their transactions can hold it back for a while.
    """
    deadline = time.monotonic() + timeout
    while True:
        follow_pending(conn, name, handle, batch)
        cursor = load_cursor(conn, name)
        behind = conn.execute(
            "SELECT count(*) FROM records WHERE (change_xid, id) > (%s::text::xid8, %s)",
            [str(cursor.xid), cursor.id],
        ).fetchone()
        if not behind or not behind[0]:
            return
        message = f"follower {name} still has {behind[0]} change(s) to take after {timeout:.0f} s"
        assert time.monotonic() < deadline, f"{message}: a transaction on the server holds it back"
        time.sleep(0.05)
