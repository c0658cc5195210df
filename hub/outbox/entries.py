"""The node's outbox: records accepted for publication, kept until the broker confirms.

A record enters once per (id, revision); the relay takes due entries in order,
marks them sent after the broker's confirm, or schedules a retry with
exponential backoff. Nothing leaves the outbox except by a confirmed send.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.nodedb import now

MAX_BACKOFF = timedelta(minutes=5)
FIRST_BACKOFF = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    record_id: str
    revision: int
    content_hash: str
    kind: str
    topic: str | None
    routing_key: str
    body: bytes
    attempts: int


@dataclass(frozen=True, slots=True)
class Latest:
    """The newest revision of a record the node has accepted, and its content hash."""

    revision: int
    content_hash: str


def latest(conn: sqlite3.Connection, record_id: str) -> Latest | None:
    row = conn.execute(
        "SELECT revision, content_hash FROM outbox WHERE record_id = ? "
        "ORDER BY revision DESC LIMIT 1",
        (record_id,),
    ).fetchone()
    return Latest(*row) if row else None


def enqueue(
    conn: sqlite3.Connection,
    *,
    record_id: str,
    revision: int,
    content_hash: str,
    kind: str,
    topic: str | None,
    routing_key: str,
    body: bytes,
) -> bool:
    """Add a record to the outbox; False when that (id, revision) is already there."""
    stamp = now().isoformat()
    cursor = conn.execute(
        "INSERT OR IGNORE INTO outbox (record_id, revision, content_hash, kind, topic,"
        " routing_key, body, accepted_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (record_id, revision, content_hash, kind, topic, routing_key, body, stamp, stamp),
    )
    return cursor.rowcount == 1


def due(conn: sqlite3.Connection, limit: int, at: datetime | None = None) -> list[Entry]:
    """Unsent entries whose next attempt is due, oldest first."""
    rows = conn.execute(
        "SELECT seq, record_id, revision, content_hash, kind, topic, routing_key, body, attempts"
        " FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= ? ORDER BY seq LIMIT ?",
        ((at or now()).isoformat(), limit),
    ).fetchall()
    return [Entry(*row) for row in rows]


def mark_sent(conn: sqlite3.Connection, seqs: list[int]) -> None:
    stamp = now().isoformat()
    conn.executemany(
        "UPDATE outbox SET sent_at = ?, last_error = NULL WHERE seq = ?",
        [(stamp, seq) for seq in seqs],
    )


def mark_failed(conn: sqlite3.Connection, seqs: list[int], error: str) -> datetime:
    """Record a failed attempt; return when the next one is due (exponential backoff)."""
    attempts = conn.execute(
        f"SELECT MAX(attempts) FROM outbox WHERE seq IN ({','.join('?' * len(seqs))})",  # noqa: S608
        seqs,
    ).fetchone()[0]
    delay = min(FIRST_BACKOFF * 2 ** int(attempts or 0), MAX_BACKOFF)
    next_at = now() + delay
    conn.executemany(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
        " WHERE seq = ?",
        [(error, next_at.isoformat(), seq) for seq in seqs],
    )
    return next_at


@dataclass(frozen=True, slots=True)
class Counts:
    pending: int
    sent: int
    failing: int  # pending entries whose last attempt failed
    last_error: str | None


def counts(conn: sqlite3.Connection) -> Counts:
    pending, sent, failing = conn.execute(
        "SELECT COUNT(*) FILTER (WHERE sent_at IS NULL), COUNT(*) FILTER (WHERE sent_at IS NOT"
        " NULL), COUNT(*) FILTER (WHERE sent_at IS NULL AND last_error IS NOT NULL) FROM outbox"
    ).fetchone()
    row = conn.execute(
        "SELECT last_error FROM outbox WHERE sent_at IS NULL AND last_error IS NOT NULL"
        " ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return Counts(pending, sent, failing, row[0] if row else None)
