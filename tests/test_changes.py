"""Following the records table's changes (hub.store.changes) on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest
import support.postgres as postgres_fixtures

from hub import records
from hub.federation import load_federation
from hub.store import StoredRecord, connect, upsert_records
from hub.store.changes import ChangeCursor, changes_since
from hub.store.connection import Connection
from hub.store.follow import follow_forever, follow_once

pg_url = postgres_fixtures.own_pg_url  # reads the change feed: a server of its own
pg_conn = postgres_fixtures.pg_conn

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


def test_a_read_only_transaction_holds_no_reader_back(pg_conn: Connection, pg_url: str) -> None:
    """Only transactions that have written something (they have a transaction id) are
    waited for: a long read-only one, such as pg_dump's snapshot or a report, is not."""
    with connect(pg_url) as dump, dump.transaction():
        dump.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        dump.execute("SELECT count(*) FROM records").fetchone()
        upsert_records(pg_conn, [row("during")])
        assert follow(pg_conn, ChangeCursor())[0] == ["urn:govhub:cn:during"]


def test_a_cursor_must_be_one_that_was_written() -> None:
    with pytest.raises(ValueError, match="XID:ID"):
        ChangeCursor.parse("yesterday")


def test_a_follower_handles_each_change_once_and_keeps_its_cursor(
    pg_conn: Connection, pg_url: str
) -> None:
    handled: list[str] = []
    upsert_records(pg_conn, [row(f"r{n}") for n in range(5)])
    assert follow_once(pg_conn, "test", lambda _conn, ids: handled.extend(ids), batch=3) == 3
    assert follow_once(pg_conn, "test", lambda _conn, ids: handled.extend(ids), batch=3) == 2
    assert follow_once(pg_conn, "test", lambda _conn, ids: handled.extend(ids), batch=3) == 0
    assert sorted(handled) == sorted(f"urn:govhub:cn:r{n}" for n in range(5))

    def broken(_conn: Connection, ids: Sequence[str]) -> None:
        raise RuntimeError("the follower fails mid-batch")

    upsert_records(pg_conn, [row("r1", revision=2)])
    with pytest.raises(RuntimeError):
        follow_once(pg_conn, "test", broken)
    # the failed batch did not move the cursor: the change comes again
    assert follow_once(pg_conn, "test", lambda _conn, ids: handled.extend(ids)) == 1
    assert handled[-1] == "urn:govhub:cn:r1"


def test_follow_forever_catches_up_and_stops(pg_conn: Connection, pg_url: str) -> None:
    upsert_records(pg_conn, [row(f"f{n}") for n in range(7)])
    seen: list[str] = []

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(
            follow_forever(
                lambda: connect(pg_url),
                "forever",
                lambda _c, ids: seen.extend(ids),
                stop,
                batch=2,
                idle=0.05,
            )
        )
        for _ in range(100):
            if len(seen) == 7:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(scenario())
    assert sorted(seen) == sorted(f"urn:govhub:cn:f{n}" for n in range(7))
