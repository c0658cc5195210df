"""Following the ``records`` table's changes in an order that never skips one.

Readers off the hot path (the search indexer, feed caches) need every row that
was inserted or updated since they last looked. A sequence number cannot tell
them: two transactions take numbers in one order and may commit in the other,
so a reader that saw number 6 would never see the 5 committed after it. Each row
instead carries ``change_xid``, the id of the transaction that last wrote it,
and a reader takes only rows written by transactions older than every
transaction still running (``pg_snapshot_xmin``): none of those can still
commit, so nothing can appear behind the reader's cursor later. An update gives
the row a new, younger ``change_xid``, so it comes round again.

The cost is a short delay: a row becomes visible to readers once every
transaction that started before it has ended, in any database of the server.
Only transactions that have written something count (they have an id): a
long read-only one, such as pg_dump's, holds no reader back.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.store.connection import Connection, translate_errors


@dataclass(frozen=True, slots=True, order=True)
class ChangeCursor:
    """Where a reader is: the last (transaction, record id) it has handled."""

    xid: int = 0
    id: str = ""

    def __str__(self) -> str:
        return f"{self.xid}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> ChangeCursor:
        """The cursor that ``str(cursor)`` wrote; ``ValueError`` for anything else."""
        xid, sep, id_ = text.partition(":")
        if not sep or not xid.isdigit():
            raise ValueError(f"{text!r} is not a change cursor (expected XID:ID)")
        return cls(int(xid), id_)


@dataclass(frozen=True, slots=True)
class Change:
    id: str
    cursor: ChangeCursor


@translate_errors("read record changes")
def changes_since(conn: Connection, after: ChangeCursor, limit: int = 1000) -> list[Change]:
    """Up to ``limit`` records written after ``after``, in (transaction, id) order.

    Only rows whose writing transaction is older than every running one are
    returned; call again with the last change's cursor to go on.
    """
    rows = conn.execute(
        "SELECT id, change_xid::text::bigint FROM records"
        " WHERE (change_xid, id) > (%s::text::xid8, %s)"
        " AND change_xid < pg_snapshot_xmin(pg_current_snapshot())"
        " ORDER BY change_xid, id LIMIT %s",
        [str(after.xid), after.id, limit],
    ).fetchall()
    return [Change(id_, ChangeCursor(xid, id_)) for id_, xid in rows]
