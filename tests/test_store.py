"""The store against a real PostgreSQL: migrations, upsert outcomes, tombstones,
concurrent consumers, listings, dead letters, outages and the embedded server."""

from __future__ import annotations

import dataclasses
import random
import shutil
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub import records
from hub.errors import HubError
from hub.federation import load_federation
from hub.records import Record, Status
from hub.store import (
    SCHEMA_VERSION,
    DatabaseUnavailable,
    EmbeddedServer,
    EmbeddedServerBusy,
    Outcome,
    StoredRecord,
    StoreError,
    add_dead_letter,
    connect,
    count_records,
    dead_letter_by_id,
    default_data_dir,
    list_dead_letters,
    list_records,
    mark_dead_letter_retried,
    mark_resolved,
    migrate,
    record_xml,
    schema_version,
    start_embedded,
    upsert_records,
    wait_for_database,
    with_schema,
    xml_compression,
)
from hub.store.connection import Connection
from hub.store.embedded import free_port
from hub.store.migrations import lz4_supported

ROOT = Path(__file__).parent.parent
FEDERATION = load_federation(ROOT / "nodes.toml")
INS, UPD, SAME, STALE, CLASH = (
    Outcome.INSERTED,
    Outcome.UPDATED,
    Outcome.UNCHANGED,
    Outcome.STALE,
    Outcome.CONFLICT,
)


def example(name: str) -> Record:
    return records.parse((ROOT / "examples" / "records" / name).read_bytes())


def stored(record: Record) -> StoredRecord:
    return StoredRecord.from_record(record, FEDERATION.node(record.origin.node).path)


def version(record: Record, revision: int, **changes: object) -> StoredRecord:
    return stored(dataclasses.replace(record, revision=revision, **changes))  # type: ignore[arg-type]


BASE = stored(example("document.xml"))
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def row(local: str, path: str = "cn.gd.gz", revision: int = 1, **changes: object) -> StoredRecord:
    """A synthetic row (no XML parsing) for listing and concurrency tests."""
    node = path.rsplit(".", 1)[-1]
    values: dict[str, object] = {
        "id": f"urn:govhub:{node}:{local}",
        "node": node,
        "path": path,
        "revision": revision,
        "content_hash": f"{local}@{revision}",
        **changes,
    }
    return dataclasses.replace(BASE, **values)  # type: ignore[arg-type]


def stored_revision(conn: Connection, id: str) -> tuple[int, str]:
    found = conn.execute(
        "SELECT revision, content_hash FROM records WHERE id = %s", [id]
    ).fetchone()
    assert found is not None
    return found[0], found[1]


# -- migrations -------------------------------------------------------------------


def test_migrate_creates_the_schema_and_is_idempotent(pg_fresh_url: str) -> None:
    with connect(pg_fresh_url) as conn:
        assert schema_version(conn) == 0
        assert migrate(conn) == SCHEMA_VERSION
        assert migrate(conn) == 0
        assert schema_version(conn) == SCHEMA_VERSION
        versions = conn.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()
        assert [v[0] for v in versions] == list(range(1, SCHEMA_VERSION + 1))
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        ).fetchall()
        names = {t[0] for t in tables}
        assert {"dead_letters", "records", "schema_version", "followers"} <= names


def test_processes_that_migrate_at_once_apply_each_step_once(pg_fresh_url: str) -> None:
    barrier = threading.Barrier(4)

    def start_up(_: int) -> int:
        with connect(pg_fresh_url) as conn:
            barrier.wait()
            return migrate(conn)

    with ThreadPoolExecutor(4) as pool:
        applied = list(pool.map(start_up, range(4)))
    assert sorted(applied) == [0, 0, 0, SCHEMA_VERSION]
    with connect(pg_fresh_url) as conn:
        assert schema_version(conn) == SCHEMA_VERSION


def test_migrate_refuses_a_schema_from_a_newer_govhub(pg_conn: Connection) -> None:
    pg_conn.execute("INSERT INTO schema_version (version) VALUES (%s)", [SCHEMA_VERSION + 1])
    try:
        with pytest.raises(StoreError, match="newer than this govhub"):
            migrate(pg_conn)
    finally:
        pg_conn.execute("DELETE FROM schema_version WHERE version > %s", [SCHEMA_VERSION])


def test_xml_is_compressed_with_lz4_where_the_server_has_it(pg_conn: Connection) -> None:
    expected = "lz4" if lz4_supported(pg_conn) else "default"
    assert xml_compression(pg_conn) == expected


# -- the stored row ---------------------------------------------------------------


def test_stored_record_carries_the_columns() -> None:
    record = example("notice-withdrawn.xml")
    row_ = stored(record)
    assert (row_.id, row_.node, row_.path, row_.kind) == (record.id, "gz", "cn.gd.gz", "notice")
    assert row_.withdrawn and row_.withdrawn_reason == record.status.reason  # type: ignore[union-attr]
    assert row_.withdrawn_at == record.status.at  # type: ignore[union-attr]
    assert row_.doc_number_norm == record.doc_number_normalised
    assert row_.topic_class == "综合政务"
    assert row_.lang == "zh-Hans" and row_.issuers == record.issuers
    assert row_.content_hash == record.content_hash()
    assert records.parse(row_.xml.encode()) == record


def test_stored_record_needs_the_path_of_its_origin_node() -> None:
    record = example("document.xml")
    with pytest.raises(ValueError, match="not the path of origin node 'cn'"):
        StoredRecord.from_record(record, "cn.gd")


# -- upsert outcomes ----------------------------------------------------------------


def test_each_outcome(pg_conn: Connection) -> None:
    record = example("document.xml")
    first = version(record, 1)
    assert upsert_records(pg_conn, [first]) == [INS]
    assert upsert_records(pg_conn, [first]) == [SAME]  # redelivery
    moved = version(record, 1, updated=EPOCH)  # revision and updated are not content
    assert upsert_records(pg_conn, [moved]) == [SAME]
    second = version(record, 2, title="国务院办公厅关于全面推行行政执法三项制度的指导意见")
    assert upsert_records(pg_conn, [second]) == [UPD]
    assert upsert_records(pg_conn, [first]) == [STALE]
    rival = version(record, 2, title="另一个标题")
    assert upsert_records(pg_conn, [rival]) == [CLASH]
    assert stored_revision(pg_conn, record.id) == (2, second.content_hash)
    assert record_xml(pg_conn, record.id) == second.xml
    assert upsert_records(pg_conn, []) == []


def test_a_batch_resolves_duplicates_as_if_sent_one_by_one(pg_conn: Connection) -> None:
    a1, a2, a3 = row("a", revision=1), row("a", revision=2), row("a", revision=3)
    a2x = dataclasses.replace(a2, content_hash="other")
    a3x = dataclasses.replace(a3, content_hash="other", title="不同")
    b1 = row("b", revision=1)
    batch = [a1, a1, a2, a1, a2x, b1, a3, a3x]
    assert upsert_records(pg_conn, batch) == [INS, SAME, UPD, STALE, CLASH, INS, UPD, CLASH]
    assert stored_revision(pg_conn, a3.id) == (3, a3.content_hash)
    assert count_records(pg_conn) == 2


def test_a_batch_over_stored_rows(pg_conn: Connection) -> None:
    c2 = row("c", revision=2)
    upsert_records(pg_conn, [c2])
    c2x = dataclasses.replace(c2, content_hash="other")
    batch = [row("c", revision=1), c2, c2x, row("c", revision=4), row("d"), row("c", revision=3)]
    assert upsert_records(pg_conn, batch) == [STALE, SAME, CLASH, UPD, INS, STALE]
    assert stored_revision(pg_conn, c2.id) == (4, "c@4")


def test_a_batch_in_the_callers_transaction_commits_with_it(pg_conn: Connection) -> None:
    with pytest.raises(RuntimeError), pg_conn.transaction():
        assert upsert_records(pg_conn, [row("e")]) == [INS]
        raise RuntimeError("the ack failed")
    assert count_records(pg_conn) == 0
    with pg_conn.transaction():
        upsert_records(pg_conn, [row("e")])
    assert count_records(pg_conn) == 1


def test_a_withdrawal_leaves_a_tombstone(pg_conn: Connection) -> None:
    withdrawn = example("notice-withdrawn.xml")
    active = dataclasses.replace(withdrawn, revision=1, status=Status("active"))
    assert upsert_records(pg_conn, [stored(active)]) == [INS]
    assert upsert_records(pg_conn, [stored(withdrawn)]) == [UPD]
    found = pg_conn.execute(
        "SELECT withdrawn, withdrawn_reason, withdrawn_at, revision FROM records WHERE id = %s",
        [withdrawn.id],
    ).fetchone()
    assert found == (True, withdrawn.status.reason, withdrawn.status.at, 2)  # type: ignore[union-attr]
    assert upsert_records(pg_conn, [stored(active)]) == [STALE]  # a late copy does not revive it
    xml = record_xml(pg_conn, withdrawn.id)
    assert xml is not None and records.parse(xml.encode()) == withdrawn
    [listed] = list_records(pg_conn)
    assert listed.withdrawn and listed.revision == 2
    assert count_records(pg_conn, "cn.gd.gz") == 1


# -- concurrency ----------------------------------------------------------------------


def test_competing_consumers_keep_the_highest_revision(pg_conn: Connection, pg_url: str) -> None:
    ids = [f"c{n}" for n in range(40)]
    work = [row(i, revision=r) for i in ids for r in range(1, 9)]

    def consume(seed: int) -> list[tuple[StoredRecord, Outcome]]:
        items = work[:]
        random.Random(seed).shuffle(items)  # noqa: S311  (test order, not secrets)
        done: list[tuple[StoredRecord, Outcome]] = []
        with connect(pg_url) as conn:
            for start in range(0, len(items), 16):
                batch = items[start : start + 16]
                done.extend(zip(batch, upsert_records(conn, batch), strict=True))
        return done

    with ThreadPoolExecutor(4) as pool:
        results = [pair for part in pool.map(consume, range(4)) for pair in part]

    rows = pg_conn.execute("SELECT id, revision, content_hash FROM records").fetchall()
    assert len(rows) == len(ids)
    for id_, revision, content_hash in rows:
        assert (revision, content_hash) == (8, f"{id_.rsplit(':', 1)[1]}@8")
    applied: dict[str, list[int]] = defaultdict(list)
    inserted: Counter[str] = Counter()
    for record, outcome in results:
        if outcome in (INS, UPD):
            applied[record.id].append(record.revision)
        inserted[record.id] += outcome == INS
    assert set(inserted.values()) == {1}
    for revisions in applied.values():
        assert len(revisions) == len(set(revisions)) and max(revisions) == 8
    for record, outcome in results:
        assert outcome != CLASH
        if outcome == SAME:
            assert record.revision in applied[record.id]
        if outcome == STALE:
            assert any(r > record.revision for r in applied[record.id])


def test_a_new_id_that_another_consumer_inserts_meanwhile(pg_conn: Connection, pg_url: str) -> None:
    late, early = row("race", revision=1), row("race", revision=5)
    result: list[list[Outcome]] = []
    with connect(pg_url) as other, connect(pg_url) as watch:
        with other.transaction():
            upsert_records(other, [early])  # not committed yet
            writer = threading.Thread(target=lambda: result.append(upsert_records(pg_conn, [late])))
            writer.start()
            pid = pg_conn.info.backend_pid
            for _ in range(200):
                state = watch.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid]
                ).fetchone()
                if state and state[0] == "Lock":
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the second writer never waited for the first")
        writer.join(10)
    assert result == [[STALE]]
    assert stored_revision(pg_conn, early.id) == (5, early.content_hash)


# -- listings -------------------------------------------------------------------------


def test_a_scope_holds_the_node_and_its_subtree_only(pg_conn: Connection) -> None:
    paths = ["cn", "cn.gd", "cn.gd.gz", "cn.gd.gz.yx", "cn.gdx", "cn.gdx.gz", "cn.gd-x", "cn.ge"]
    upsert_records(pg_conn, [row(f"r{n}", path) for n, path in enumerate(paths)])
    found = sorted(r.path for r in list_records(pg_conn, scope_path="cn.gd"))
    assert found == ["cn.gd", "cn.gd.gz", "cn.gd.gz.yx"]
    assert count_records(pg_conn, "cn.gd") == 3
    assert count_records(pg_conn, "cn") == len(paths)
    assert count_records(pg_conn) == len(paths)
    assert count_records(pg_conn, "cn.gdx") == 2
    assert sorted(r.path for r in list_records(pg_conn, node="gz")) == ["cn.gd.gz", "cn.gdx.gz"]


def test_a_subtree_query_can_use_the_path_index(pg_conn: Connection) -> None:
    with pg_conn.transaction():
        pg_conn.execute("SET LOCAL enable_seqscan = off")
        plan = pg_conn.execute(
            "EXPLAIN SELECT count(*) FROM records"
            " WHERE path = 'cn.gd' OR (path >= 'cn.gd.' AND path < 'cn.gd/')"
        ).fetchall()
    assert "records_path" in "\n".join(p[0] for p in plan)


def test_listing_pages_with_a_cursor(pg_conn: Connection) -> None:
    rows = [
        row(
            f"p{n:02}", "cn.gd.sz" if n % 3 else "cn.mee", published=EPOCH + timedelta(hours=n // 2)
        )
        for n in range(25)
    ]
    upsert_records(pg_conn, rows)
    expected = [r.id for r in sorted(rows, key=lambda r: (r.published, r.id), reverse=True)]

    def walk(**filters: str) -> list[str]:
        seen: list[str] = []
        after = None
        while page := list_records(pg_conn, limit=4, after=after, **filters):
            seen.extend(r.id for r in page)
            after = page[-1].cursor
        return seen

    assert walk() == expected
    assert walk(scope_path="cn.gd") == [i for i in expected if ":sz:" in i]
    assert walk(kind="document") == expected and walk(kind="news") == []
    light = list_records(pg_conn, limit=1)[0]
    assert (light.kind, light.revision, light.title, light.withdrawn) == (
        "document",
        1,
        BASE.title,
        False,
    )


def test_bad_scope_or_cursor_is_refused(pg_conn: Connection) -> None:
    with pytest.raises(ValueError, match="not a node path"):
        list_records(pg_conn, scope_path="cn.gd%")
    with pytest.raises(ValueError, match="not a records cursor"):
        list_records(pg_conn, after="yesterday")
    assert record_xml(pg_conn, "urn:govhub:cn:nothing") is None


# -- dead letters ---------------------------------------------------------------------


def test_dead_letter_lifecycle(pg_conn: Connection) -> None:
    body = b"<record>\xff broken"
    first = add_dead_letter(
        pg_conn,
        source="ingest-1",
        reason="record invalid",
        problems=["record.xml:3: id: not a govhub id", "record.xml:9: title: empty"],
        routing_key="cn.gd.gz.notice",
        headers={"message_id": "m-1", "raw": b"\x01", "sent": EPOCH},
        body=body,
    )
    second = add_dead_letter(pg_conn, source="ingest-2", reason="unknown node", body=b"x")
    assert [d.id for d in list_dead_letters(pg_conn)] == [first, second]
    letter = dead_letter_by_id(pg_conn, first)
    assert letter is not None
    assert letter.body == body and letter.routing_key == "cn.gd.gz.notice"
    assert letter.problems == ("record.xml:3: id: not a govhub id", "record.xml:9: title: empty")
    assert letter.headers["message_id"] == "m-1" and letter.headers["sent"] == str(EPOCH)
    assert (letter.retry_count, letter.retried_at, letter.resolved) == (0, None, False)

    assert mark_dead_letter_retried(pg_conn, first) and mark_dead_letter_retried(pg_conn, first)
    retried = dead_letter_by_id(pg_conn, first)
    assert retried is not None and retried.retry_count == 2 and retried.retried_at is not None

    assert mark_resolved(pg_conn, first)
    assert [d.id for d in list_dead_letters(pg_conn)] == [second]
    assert [d.id for d in list_dead_letters(pg_conn, include_resolved=True)] == [first, second]
    assert [d.id for d in list_dead_letters(pg_conn, limit=1, include_resolved=True)] == [first]
    assert not mark_resolved(pg_conn, 999) and not mark_dead_letter_retried(pg_conn, 999)
    assert dead_letter_by_id(pg_conn, 999) is None


# -- connections and outages ----------------------------------------------------------


def test_with_schema_puts_the_search_path_in_the_url() -> None:
    url = with_schema("postgresql://u@h:5433/db?sslmode=disable&options=-cx%3D1", "govhub")
    assert url == "postgresql://u@h:5433/db?sslmode=disable&options=-c%20search_path%3Dgovhub"
    assert "search_path=govhub" in with_schema("host=h dbname=db", "govhub")
    with pytest.raises(ValueError, match="not a schema name"):
        with_schema("postgresql://h/db", "Robert'); DROP")


def test_a_lost_connection_is_a_retryable_store_error(pg_conn: Connection, pg_url: str) -> None:
    victim = connect(pg_url)
    pg_conn.execute("SELECT pg_terminate_backend(%s)", [victim.info.backend_pid])
    with pytest.raises(DatabaseUnavailable) as caught:
        list_records(victim)
    error = caught.value
    assert isinstance(error, StoreError) and isinstance(error, HubError) and error.retryable
    assert str(error).startswith("store: could not list records: ")
    with pytest.raises(DatabaseUnavailable):
        upsert_records(victim, [row("gone")])
    victim.close()


def test_waiting_for_a_database_that_is_not_there_times_out(pg_url: str) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(DatabaseUnavailable, match=r"127\.0\.0\.1"):
        connect(nowhere)
    with pytest.raises(DatabaseUnavailable, match=r"within 0\.5 s"):
        wait_for_database(nowhere, timeout=0.5)
    wait_for_database(pg_url, timeout=5)


# -- the embedded server --------------------------------------------------------------


def test_the_default_data_dir_follows_xdg() -> None:
    assert default_data_dir({"XDG_DATA_HOME": "/srv/data", "HOME": "/home/u"}) == Path(
        "/srv/data/govhub/postgres"
    )
    assert default_data_dir({"XDG_DATA_HOME": "relative", "HOME": "/home/u"}) == Path(
        "/home/u/.local/share/govhub/postgres"
    )


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedServer]:
    base = Path(tempfile.mkdtemp(prefix="govhub-embedded-"))
    server = start_embedded(base / "postgres")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_the_embedded_server_stores_records_without_lz4(embedded: EmbeddedServer) -> None:
    assert "host=" in embedded.url and "@127.0.0.1" not in embedded.url  # a Unix socket only
    with connect(embedded.url, schema="govhub") as conn:
        assert migrate(conn) == SCHEMA_VERSION
        assert not lz4_supported(conn)  # the wheel is built without lz4
        assert xml_compression(conn) == "default"
        assert upsert_records(conn, [BASE]) == [INS]
        assert record_xml(conn, BASE.id) == BASE.xml


def test_a_second_server_on_the_same_data_dir_is_refused(embedded: EmbeddedServer) -> None:
    with pytest.raises(EmbeddedServerBusy, match=r"in use by a running PostgreSQL \(pid \d+"):
        start_embedded(embedded.data_dir)


def test_the_embedded_server_restarts_with_its_data(embedded: EmbeddedServer) -> None:
    with connect(embedded.url, schema="govhub") as conn:
        migrate(conn)
        upsert_records(conn, [row("kept")])
        before = count_records(conn)
        embedded.stop()
        with pytest.raises(DatabaseUnavailable):
            count_records(conn)
    with pytest.raises(DatabaseUnavailable):
        wait_for_database(embedded.url, timeout=0.2)

    def restart() -> EmbeddedServer:
        time.sleep(0.5)
        return start_embedded(embedded.data_dir, port=embedded.port)

    with ThreadPoolExecutor(1) as pool:
        restarted = pool.submit(restart)
        wait_for_database(embedded.url, timeout=60)  # what a consumer does after an outage
        assert restarted.result().url == embedded.url
    with connect(embedded.url, schema="govhub") as conn:
        assert count_records(conn) == before
        assert schema_version(conn) == SCHEMA_VERSION
        assert upsert_records(conn, [row("kept", revision=2), row("kept")]) == [UPD, STALE]
