"""Records held by the confidentiality review, the decisions on them, and the audit trail.

A held record waits here until a person approves it (it then goes to the
outbox) or rejects it (it stays here, never published). Every decision is
written to the audit trail with who, when and why, in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from hub.errors import HubError
from hub.nodedb import now
from hub.review import Finding


@dataclass(frozen=True, slots=True)
class Held:
    record_id: str
    revision: int
    body: bytes
    findings: tuple[dict[str, object], ...]
    held_at: str
    state: str
    decided_by: str | None
    decided_at: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: str
    actor: str
    action: str
    record_id: str
    revision: int
    reason: str


class ReviewError(HubError):
    """A review action that cannot be done (unknown record, already decided, no reason)."""


_COLUMNS = "record_id, revision, body, findings, held_at, state, decided_by, decided_at, reason"


def newest(conn: sqlite3.Connection, record_id: str) -> tuple[int, bytes] | None:
    """The newest revision of ``record_id`` in the review queue (held, approved or
    rejected) and its body, or ``None``."""
    row = conn.execute(
        "SELECT revision, body FROM held WHERE record_id = ? ORDER BY revision DESC LIMIT 1",
        (record_id,),
    ).fetchone()
    return (row[0], row[1]) if row else None


def hold(
    conn: sqlite3.Connection,
    record_id: str,
    revision: int,
    body: bytes,
    findings: tuple[Finding, ...],
) -> bool:
    """Keep a record for review; False when that revision is already held."""
    details = [
        {"rule": f.rule, "field": f.field, "text": f.text, "start": f.start, "reason": f.reason}
        for f in findings
    ]
    stamp = now().isoformat()
    cursor = conn.execute(
        "INSERT OR IGNORE INTO held (record_id, revision, body, findings, held_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (record_id, revision, body, json.dumps(details, ensure_ascii=False), stamp),
    )
    if cursor.rowcount:
        reasons = "; ".join(f.reason for f in findings)
        _audit(conn, "govhub", "held", record_id, revision, reasons)
    return cursor.rowcount == 1


def list_held(conn: sqlite3.Connection, state: str | None = "held") -> list[Held]:
    query = f"SELECT {_COLUMNS} FROM held"  # noqa: S608 (constant column list)
    rows = (
        conn.execute(query + " WHERE state = ? ORDER BY held_at", (state,))
        if state
        else conn.execute(query + " ORDER BY held_at")
    ).fetchall()
    return [_held(row) for row in rows]


def held_record(conn: sqlite3.Connection, record_id: str, revision: int | None = None) -> Held:
    """The held record (its newest held revision unless ``revision`` is given)."""
    query = f"SELECT {_COLUMNS} FROM held WHERE record_id = ?"  # noqa: S608
    if revision is None:
        row = conn.execute(query + " ORDER BY revision DESC LIMIT 1", (record_id,)).fetchone()
    else:
        row = conn.execute(query + " AND revision = ?", (record_id, revision)).fetchone()
    if row is None:
        raise ReviewError(f"{record_id} is not held for review (see `govhub review list`)")
    return _held(row)


def decide(
    conn: sqlite3.Connection,
    record_id: str,
    revision: int,
    *,
    approve: bool,
    actor: str,
    reason: str,
) -> Held:
    """Approve or reject a held record, writing the decision and the audit entry together."""
    if not reason.strip():
        raise ReviewError("a review decision needs a reason (--reason)")
    if not actor.strip():
        raise ReviewError("a review decision needs the reviewer's name (--by)")
    state = "approved" if approve else "rejected"
    stamp = now().isoformat()
    cursor = conn.execute(
        "UPDATE held SET state = ?, decided_by = ?, decided_at = ?, reason = ?"
        " WHERE record_id = ? AND revision = ? AND state = 'held'",
        (state, actor, stamp, reason, record_id, revision),
    )
    if cursor.rowcount != 1:
        current = held_record(conn, record_id, revision)
        raise ReviewError(
            f"{record_id} revision {revision} was already {current.state} by "
            f"{current.decided_by} at {current.decided_at}"
        )
    _audit(conn, actor, state, record_id, revision, reason)
    return held_record(conn, record_id, revision)


def audit_trail(conn: sqlite3.Connection, record_id: str | None = None) -> list[AuditEntry]:
    query = "SELECT at, actor, action, record_id, revision, reason FROM audit"
    rows = (
        conn.execute(query + " WHERE record_id = ? ORDER BY seq", (record_id,))
        if record_id
        else conn.execute(query + " ORDER BY seq")
    ).fetchall()
    return [AuditEntry(*row) for row in rows]


def _audit(
    conn: sqlite3.Connection, actor: str, action: str, record_id: str, revision: int, reason: str
) -> None:
    conn.execute(
        "INSERT INTO audit (at, actor, action, record_id, revision, reason)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (now().isoformat(), actor, action, record_id, revision, reason),
    )


def _held(row: tuple[object, ...]) -> Held:
    record_id, revision, body, findings, held_at, state, by, at, reason = row
    return Held(
        str(record_id),
        int(revision),  # type: ignore[call-overload]
        bytes(body),  # type: ignore[call-overload]
        tuple(json.loads(str(findings))),
        str(held_at),
        str(state),
        None if by is None else str(by),
        None if at is None else str(at),
        None if reason is None else str(reason),
    )
