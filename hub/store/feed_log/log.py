"""The feed log: every revision the feeds have published, in order, and the queries
that build feed documents from it.

``records`` keeps only each record's newest revision, so it cannot serve an
archive page that must keep saying what was published then (RFC 5005). The
feed logger is a follower (``hub.store.follow``): for each batch of changed
records it appends their current revisions to ``feed_log`` with the next
positions, and numbers them in every scope a feed can cover (``feed_scope``,
see ``hub.store.feed_log.schema``), in the transaction that saves its cursor. Only
the follower writes, under the follower's advisory lock, so positions and
sequence numbers have no gaps and are only ever appended: a page of a feed,
``seq`` in ``[k·N, (k+1)·N)`` of its scope, is complete for good once the
scope's last ``seq`` has reached ``(k+1)·N − 1``.

The web side reads with async connections (``psycopg_pool``); the follower
writes with the store's sync connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql

from hub.store.connection import Connection, translate_errors
from hub.store.follow import follow_forever, follow_pending

FOLLOWER = "feed_log"

AsyncConn = AsyncConnection[Any]


def scopes_of(path: str) -> list[str]:
    """The scopes a record at ``path`` belongs to: every subtree above it, and its node's own."""
    parts = path.split(".")
    return [f"tree:{'.'.join(parts[: i + 1])}" for i in range(len(parts))] + [f"own:{path}"]


_APPEND = """
WITH wanted AS (
    SELECT w.id, w.ord FROM unnest(%(ids)s::text[]) WITH ORDINALITY AS w(id, ord)
), fresh AS (
    SELECT r.*, w.ord FROM wanted w JOIN records r ON r.id = w.id
    WHERE NOT EXISTS (
        SELECT 1 FROM feed_log l WHERE l.id = r.id AND l.revision = r.revision
    )
), top AS (
    SELECT coalesce(max(position), 0) AS position FROM feed_log
)
INSERT INTO feed_log (position, id, revision, path, kind, topic_class, issuers, lang,
                      withdrawn, published, updated, xml)
SELECT top.position + row_number() OVER (ORDER BY f.ord), f.id, f.revision, f.path, f.kind,
       f.topic_class, f.issuers, f.lang, f.withdrawn, f.published,
       -- a later revision must show as an update even when the source kept <updated>
       greatest(coalesce(f.updated, f.published), f.withdrawn_at,
                CASE WHEN f.revision > 1 THEN now() END),
       f.xml
FROM fresh f, top
RETURNING position, path
"""

_SCOPE_HEADS = """
SELECT s.scope, (SELECT max(seq) FROM feed_scope f WHERE f.scope = s.scope)
FROM unnest(%s::text[]) AS s(scope)
"""


def log_changes(conn: Connection, ids: Sequence[str]) -> None:
    """The follower's handler: append the current revision of each changed record.

    A revision already in the log (a record re-read after a restart) is not
    appended twice. Runs inside ``follow_once``'s transaction.
    """
    appended = sorted(conn.execute(_APPEND, {"ids": list(ids)}).fetchall())
    if not appended:
        return
    scopes = sorted({scope for _, path in appended for scope in scopes_of(path)})
    heads = {
        scope: -1 if seq is None else seq for scope, seq in conn.execute(_SCOPE_HEADS, [scopes])
    }
    rows: list[tuple[str, int, int]] = []
    for position, path in appended:
        for scope in scopes_of(path):
            heads[scope] += 1
            rows.append((scope, heads[scope], position))
    conn.execute(
        "INSERT INTO feed_scope (scope, seq, position)"
        " SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[])",
        [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]],
    )


async def run_feed_logger(
    connect: Callable[[], Connection], stop: asyncio.Event, *, idle: float = 1.0
) -> None:
    """Keep ``feed_log`` up to date with ``records`` until ``stop`` is set.

    ``govhub hub run`` starts it next to the consumers; several hub processes
    may each run it (they take turns).
    """
    await follow_forever(connect, FOLLOWER, log_changes, stop, idle=idle)


@translate_errors("update the feed log")
def log_pending(conn: Connection, batch: int = 500) -> int:
    """Log every change waiting now (for tests and tools); how many records were handled."""
    return follow_pending(conn, FOLLOWER, log_changes, batch)


# ---- reading, for the feeds -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filters:
    """What a feed keeps of its scope (``None``: no condition)."""

    kind: str | None = None
    topic: str | None = None
    issuer: str | None = None
    lang: str | None = None

    def conditions(self) -> tuple[sql.Composable, dict[str, Any]]:
        parts: list[sql.Composable] = []
        params: dict[str, Any] = {}
        for name, column in (("kind", "kind"), ("topic", "topic_class"), ("lang", "lang")):
            value = getattr(self, name)
            if value is not None:
                parts.append(sql.SQL("l.{} = %({})s").format(sql.Identifier(column), sql.SQL(name)))
                params[name] = value
        if self.issuer is not None:
            parts.append(sql.SQL("%(issuer)s = ANY(l.issuers)"))
            params["issuer"] = self.issuer
        if not parts:
            return sql.SQL(""), params
        return sql.SQL(" AND ") + sql.SQL(" AND ").join(parts), params


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One row of the feed log as a feed shows it (the XML is fetched separately)."""

    position: int
    seq: int
    id: str
    revision: int
    path: str
    kind: str
    topic_class: str | None
    issuers: tuple[str, ...]
    lang: str
    withdrawn: bool
    published: datetime
    updated: datetime
    logged_at: datetime


_ENTRY_COLUMNS = sql.SQL(
    "l.position, s.seq, l.id, l.revision, l.path, l.kind, l.topic_class, l.issuers, l.lang,"
    " l.withdrawn, l.published, l.updated, l.logged_at"
)


def _entry(row: Sequence[Any]) -> LogEntry:
    values = list(row)
    values[7] = tuple(values[7])
    return LogEntry(*values)


async def log_head(conn: AsyncConn) -> int:
    """The last position of the log (0 when empty): the version of every feed."""
    cur = await conn.execute("SELECT coalesce(max(position), 0) FROM feed_log")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def scope_head(conn: AsyncConn, scope: str) -> int:
    """The last ``seq`` of ``scope`` (-1 when it has none)."""
    cur = await conn.execute("SELECT max(seq) FROM feed_scope WHERE scope = %s", [scope])
    row = await cur.fetchone()
    return -1 if row is None or row[0] is None else int(row[0])


async def newest_entries(
    conn: AsyncConn, scope: str, filters: Filters, limit: int
) -> list[LogEntry]:
    """The newest ``limit`` log rows of ``scope`` that pass ``filters``, newest first."""
    where, params = filters.conditions()
    query = sql.SQL(
        "SELECT {cols} FROM feed_scope s JOIN feed_log l ON l.position = s.position"
        " WHERE s.scope = %(scope)s{where} ORDER BY s.seq DESC LIMIT %(limit)s"
    ).format(cols=_ENTRY_COLUMNS, where=where)
    cur = await conn.execute(query, {**params, "scope": scope, "limit": limit})
    return [_entry(row) for row in await cur.fetchall()]


async def range_entries(
    conn: AsyncConn, scope: str, filters: Filters, first: int, end: int
) -> list[LogEntry]:
    """The rows of ``scope`` with ``first <= seq < end`` that pass ``filters``, newest first."""
    where, params = filters.conditions()
    query = sql.SQL(
        "SELECT {cols} FROM feed_scope s JOIN feed_log l ON l.position = s.position"
        " WHERE s.scope = %(scope)s AND s.seq >= %(first)s AND s.seq < %(end)s{where}"
        " ORDER BY s.seq DESC"
    ).format(cols=_ENTRY_COLUMNS, where=where)
    cur = await conn.execute(query, {**params, "scope": scope, "first": first, "end": end})
    return [_entry(row) for row in await cur.fetchall()]


async def last_seq_before(conn: AsyncConn, scope: str, filters: Filters, end: int) -> int | None:
    """The last ``seq`` below ``end`` in ``scope`` that passes ``filters`` (for prev-archive)."""
    where, params = filters.conditions()
    query = sql.SQL(
        "SELECT s.seq FROM feed_scope s JOIN feed_log l ON l.position = s.position"
        " WHERE s.scope = %(scope)s AND s.seq < %(end)s{where} ORDER BY s.seq DESC LIMIT 1"
    ).format(where=where)
    cur = await conn.execute(query, {**params, "scope": scope, "end": end})
    row = await cur.fetchone()
    return None if row is None else int(row[0])


async def entry_xml(conn: AsyncConn, positions: Sequence[int]) -> dict[int, str]:
    """The record XML logged at each of ``positions``."""
    cur = await conn.execute(
        "SELECT position, xml FROM feed_log WHERE position = ANY(%s)", [list(positions)]
    )
    return {int(position): str(xml) for position, xml in await cur.fetchall()}
