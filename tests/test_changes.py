"""Following the records table's changes (hub.store.changes) on a real PostgreSQL."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hub import records
from hub.federation import load_federation
from hub.store import StoredRecord, connect, upsert_records
from hub.store.changes import ChangeCursor, changes_since
from hub.store.connection import Connection

ROOT = Path(__file__).parent.parent
FEDERATION = load_federation(ROOT / "nodes.toml")
BASE = records.parse((ROOT / "examples" / "records" / "document.xml").read_bytes())


def row(local: str, revision: int = 1) -> StoredRecord:
    record = dataclasses.replace(BASE, id=f"urn:govhub:cn:{local}", revision=revision)
    return StoredRecord.from_record(record, FEDERATION.node(record.origin.node).path)


def follow(conn: Connection, cursor: ChangeCursor) -> tuple[list[str], ChangeCursor]:
    seen = changes_since(conn, cursor, limit=2)  # small pages: the cursor must carry on
    ids: list[str] = []
    while seen:
        ids += [c.id for c in seen]
        cursor = seen[-1].cursor
        seen = changes_since(conn, cursor, limit=2)
    return ids, cursor


def test_every_insert_and_update_comes_round_once(pg_conn: Connection) -> None:
    upsert_records(pg_conn, [row("a"), row("b"), row("c")])
    ids, cursor = follow(pg_conn, ChangeCursor())
    assert sorted(ids) == ["urn:govhub:cn:a", "urn:govhub:cn:b", "urn:govhub:cn:c"]
    assert follow(pg_conn, cursor)[0] == []
    upsert_records(pg_conn, [row("b", revision=2), row("a")])  # b updated, a unchanged
    ids, cursor = follow(pg_conn, cursor)
    assert ids == ["urn:govhub:cn:b"]
    assert ChangeCursor.parse(str(cursor)) == cursor


def test_a_change_still_in_flight_holds_readers_back(pg_conn: Connection, pg_url: str) -> None:
    """A transaction that started earlier but commits later is never skipped."""
    upsert_records(pg_conn, [row("old")])
    _, cursor = follow(pg_conn, ChangeCursor())
    with connect(pg_url) as slow:
        with slow.transaction():
            upsert_records(slow, [row("slow")])  # writes first, commits last
            upsert_records(pg_conn, [row("fast")])  # commits first
            assert follow(pg_conn, cursor)[0] == []  # the slow one is still running
        ids, _ = follow(pg_conn, cursor)
    assert sorted(ids) == ["urn:govhub:cn:fast", "urn:govhub:cn:slow"]


def test_a_cursor_must_be_one_that_was_written() -> None:
    with pytest.raises(ValueError, match="XID:ID"):
        ChangeCursor.parse("yesterday")
