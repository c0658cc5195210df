"""The node's inbox: what its ancestors push down and what it subscribed to from them,
kept in the node's SQLite state (``hub.inbox.consumer`` takes it off the broker).

A record is kept once per (record id, revision): a redelivery changes nothing,
a higher revision replaces the visible one (a withdrawal too: it stays as a
tombstone, so the site's CMS learns to take the record down), an older one is
dropped as stale.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from hub import records
from hub.nodedb import now
from hub.records import Record

log = logging.getLogger(__name__)

PUSH, SUBSCRIPTION = "push", "subscription"


class Received(StrEnum):
    NEW = "new"  # the first revision of this record the node has
    REVISED = "revised"  # a higher revision: it replaces the visible one
    UNCHANGED = "unchanged"  # this revision is already here (a redelivery)
    STALE = "stale"  # older than the revision the node shows: not kept
    CONFLICT = "conflict"  # this revision is here with other content: not kept, dead-lettered


@dataclass(frozen=True, slots=True)
class Item:
    """One revision of a record in the inbox."""

    seq: int
    record_id: str
    revision: int
    kind: str
    topic: str | None
    origin: str  # the node that published it
    from_path: str  # that node's path
    routing_key: str
    via: str  # push | subscription
    received_at: datetime
    title: str
    link: str | None
    issuers: tuple[str, ...]
    published: datetime
    updated: datetime | None
    summary: str | None
    withdrawn: bool
    withdrawn_reason: str | None
    body: bytes

    @property
    def changed(self) -> datetime:
        """When the record last changed, as its publisher says."""
        return self.updated or self.published


@dataclass(frozen=True, slots=True)
class Counts:
    records: int  # visible records, tombstones included
    withdrawn: int  # of which withdrawn
    revisions: int  # every revision kept
    by_kind: dict[str, int]
    last_received_at: datetime | None


_COLUMNS = (
    "seq, record_id, revision, kind, topic, origin, from_path, routing_key, via, received_at,"
    " title, link, issuers, published, updated, summary, withdrawn, withdrawn_reason, body"
)
_VISIBLE = (
    "revision = (SELECT MAX(revision) FROM inbox AS newer WHERE newer.record_id = i.record_id)"
)


def receive(
    conn: sqlite3.Connection,
    record: Record,
    *,
    routing_key: str,
    via: str,
    from_path: str,
    body: bytes | None = None,
) -> Received:
    """Keep one record revision (call inside ``transaction``); say what it changed."""
    newest = conn.execute(
        "SELECT MAX(revision) FROM inbox WHERE record_id = ?", (record.id,)
    ).fetchone()[0]
    if newest is not None and record.revision <= newest:
        known = conn.execute(
            "SELECT body FROM inbox WHERE record_id = ? AND revision = ?",
            (record.id, record.revision),
        ).fetchone()
        if known is None:
            return Received.STALE
        return Received.UNCHANGED if _same_content(known[0], record) else Received.CONFLICT
    status = record.status
    conn.execute(
        f"INSERT INTO inbox ({_COLUMNS.removeprefix('seq, ')})"  # noqa: S608 (constant columns)
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.id,
            record.revision,
            record.kind,
            record.topic.top if record.topic else None,
            record.origin.node,
            from_path,
            routing_key,
            via,
            now().isoformat(),
            record.title,
            record.link,
            json.dumps(record.issuers, ensure_ascii=False),
            record.published.isoformat(),
            record.updated.isoformat() if record.updated else None,
            record.summary,
            int(record.withdrawn),
            status.reason if status and record.withdrawn else None,
            body if body is not None else record.to_xml(pretty=False),
        ),
    )
    return Received.NEW if newest is None else Received.REVISED


def _same_content(kept: bytes, record: Record) -> bool:
    """Whether the revision kept holds ``record``'s content: a redelivery does, another
    copy under the same revision does not (read again only on this rare path)."""
    return bool(records.parse(kept, "inbox").content_hash() == record.content_hash())


def latest(conn: sqlite3.Connection, limit: int, kind: str | None = None) -> list[Item]:
    """The visible revision of each record, most recently received first."""
    query = f"SELECT {_COLUMNS} FROM inbox AS i WHERE {_VISIBLE}"  # noqa: S608 (constants)
    if kind is None:
        rows = conn.execute(query + " ORDER BY seq DESC LIMIT ?", (limit,))
    else:
        rows = conn.execute(query + " AND kind = ? ORDER BY seq DESC LIMIT ?", (kind, limit))
    return [_item(row) for row in rows.fetchall()]


def counts(conn: sqlite3.Connection) -> Counts:
    rows = conn.execute(
        f"SELECT kind, COUNT(*), SUM(withdrawn) FROM inbox AS i WHERE {_VISIBLE} GROUP BY kind"  # noqa: S608
    ).fetchall()
    revisions, last = conn.execute("SELECT COUNT(*), MAX(received_at) FROM inbox").fetchone()
    return Counts(
        records=sum(row[1] for row in rows),
        withdrawn=sum(row[2] for row in rows),
        revisions=revisions,
        by_kind={kind: number for kind, number, _ in rows},
        last_received_at=datetime.fromisoformat(last) if last else None,
    )


def last_change(conn: sqlite3.Connection) -> tuple[int, datetime | None]:
    """(the newest ``seq``, when it came): the inbox only grows, so this versions it."""
    row = conn.execute("SELECT seq, received_at FROM inbox ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], datetime.fromisoformat(row[1])) if row else (0, None)


def _item(row: tuple[object, ...]) -> Item:
    (seq, record_id, revision, kind, topic, origin, from_path, key, via, received) = row[:10]
    (title, link, issuers, published, updated, summary, withdrawn, reason, body) = row[10:]
    return Item(
        seq=int(seq),  # type: ignore[call-overload]
        record_id=str(record_id),
        revision=int(revision),  # type: ignore[call-overload]
        kind=str(kind),
        topic=None if topic is None else str(topic),
        origin=str(origin),
        from_path=str(from_path),
        routing_key=str(key),
        via=str(via),
        received_at=datetime.fromisoformat(str(received)),
        title=str(title),
        link=None if link is None else str(link),
        issuers=tuple(json.loads(str(issuers))),
        published=datetime.fromisoformat(str(published)),
        updated=None if updated is None else datetime.fromisoformat(str(updated)),
        summary=None if summary is None else str(summary),
        withdrawn=bool(withdrawn),
        withdrawn_reason=None if reason is None else str(reason),
        body=bytes(body),  # type: ignore[call-overload]
    )
