"""The ``dead_letters`` table: messages the hub could not store, kept with their reason.

A message that fails (an invalid record, an unknown node, a revision conflict) is
never dropped: the consumer adds it here with the problems found, the routing
key, the AMQP headers and the exact body, then acks it. An operator lists them,
fixes the cause, retries (``mark_dead_letter_retried``) and finally marks them
resolved. Nothing is deleted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from psycopg.types.json import Jsonb

from hub.store.connection import Connection, translate_errors
from hub.store.errors import StoreError

COLUMNS = (
    "id, received_at, source, reason, problems, routing_key, headers, body,"
    " retried_at, retry_count, resolved"
)
# AMQP headers may hold bytes, datetimes or decimals: keep them readable as text.
_dumps = partial(json.dumps, ensure_ascii=False, default=str)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    received_at: datetime
    source: str  # which consumer (or adapter) gave up on it
    reason: str  # one line: why
    problems: tuple[str, ...]  # every problem found, as RecordInvalid lists them
    routing_key: str | None
    headers: dict[str, Any]
    body: bytes  # the message exactly as received
    retried_at: datetime | None
    retry_count: int
    resolved: bool


@translate_errors("add a dead letter")
def add_dead_letter(
    conn: Connection,
    *,
    source: str,
    reason: str,
    body: bytes,
    problems: Sequence[str] = (),
    routing_key: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> int:
    """Keep a message that could not be stored; return its id."""
    row = conn.execute(
        "INSERT INTO dead_letters (source, reason, problems, routing_key, headers, body)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        [
            source,
            reason,
            Jsonb([str(p) for p in problems]),
            routing_key,
            Jsonb(dict(headers or {}), dumps=_dumps),
            body,
        ],
    ).fetchone()
    if row is None:
        raise StoreError("add a dead letter", "INSERT returned no id", "this is a bug")
    return int(row[0])


@translate_errors("list dead letters")
def list_dead_letters(
    conn: Connection, limit: int = 100, include_resolved: bool = False
) -> list[DeadLetter]:
    """Dead letters oldest first; unresolved ones only unless ``include_resolved``."""
    where = "" if include_resolved else "WHERE NOT resolved"
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM dead_letters {where} ORDER BY id LIMIT %s",  # noqa: S608
        [limit],
    ).fetchall()
    return [_dead_letter(row) for row in rows]


@translate_errors("read a dead letter")
def dead_letter_by_id(conn: Connection, id: int) -> DeadLetter | None:
    row = conn.execute(
        f"SELECT {COLUMNS} FROM dead_letters WHERE id = %s",  # noqa: S608
        [id],
    ).fetchone()
    return _dead_letter(row) if row else None


@translate_errors("mark a dead letter retried")
def mark_dead_letter_retried(conn: Connection, id: int) -> bool:
    """Count one more retry of dead letter ``id``; ``False`` when there is no such id."""
    cursor = conn.execute(
        "UPDATE dead_letters SET retried_at = now(), retry_count = retry_count + 1 WHERE id = %s",
        [id],
    )
    return cursor.rowcount == 1


@translate_errors("mark a dead letter resolved")
def mark_resolved(conn: Connection, id: int, note: Mapping[str, Any] | None = None) -> bool:
    """Mark dead letter ``id`` dealt with, adding ``note`` to its headers (how and why it
    was resolved); ``False`` when there is no such id."""
    cursor = conn.execute(
        "UPDATE dead_letters SET resolved = true, headers = headers || %s WHERE id = %s",
        [Jsonb(dict(note or {}), dumps=_dumps), id],
    )
    return cursor.rowcount == 1


def _dead_letter(row: Sequence[Any]) -> DeadLetter:
    (id_, received_at, source, reason, problems, routing_key, headers, body, *rest) = row
    retried_at, retry_count, resolved = rest
    return DeadLetter(
        id=id_,
        received_at=received_at,
        source=source,
        reason=reason,
        problems=tuple(problems),
        routing_key=routing_key,
        headers=headers,
        body=bytes(body),
        retried_at=retried_at,
        retry_count=retry_count,
        resolved=resolved,
    )
