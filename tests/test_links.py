"""Cross-links (hub.store.links.linker) on a real PostgreSQL: relations both ways, late targets,
document numbers in any bracket form, and republications (转载) grouped once, declared
or detected, whichever arrives first. The sample builders are shared with the page tests."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import support.postgres as postgres_fixtures
from support.waits import catch_up

from hub import records
from hub.federation import load_federation
from hub.records.model import Origin, Record, Relation, Status
from hub.store import StoredRecord, upsert_records
from hub.store.connection import Connection
from hub.store.links.linker import (
    LINKER,
    issuer_key,
    link_records,
    run_linker,
    text_key,
)
from hub.store.links.queries import by_province, latest_grouped, record_links

pg_url = postgres_fixtures.own_pg_url  # reads the change feed: a server of its own
pg_conn = postgres_fixtures.pg_conn

ROOT = Path(__file__).parent.parent
FEDERATION = load_federation(ROOT / "nodes.toml")
T = TypeVar("T")


def example(name: str) -> Record:
    return records.parse((ROOT / "examples" / "records" / f"{name}.xml").read_bytes())


DOCUMENT = example("document")  # cn, 国办发〔2018〕118号
INTERPRETATION = example("interpretation")  # cn, interprets DOCUMENT
REPUBLISHED = example("document-republished")  # he, republishes cn:000014349-2019-00007
ORIGINAL = dataclasses.replace(  # the State Council document that REPUBLISHED copies
    REPUBLISHED,
    id="urn:govhub:cn:000014349-2019-00007",
    origin=Origin("cn", FEDERATION.node("cn").site_code),
    published=REPUBLISHED.published - timedelta(days=3),
    relations=(),
    summary=None,
)


def variant(base: Record, node: str, local: str, **changes: Any) -> Record:
    """``base`` as published by ``node`` under its own id."""
    origin = Origin(node, FEDERATION.node(node).site_code)
    return dataclasses.replace(base, id=f"urn:govhub:{node}:{local}", origin=origin, **changes)


def store(conn: Connection, *items: Record) -> None:
    upsert_records(conn, [StoredRecord.from_record(r, FEDERATION.node(r.node).path) for r in items])


def link(conn: Connection) -> None:
    """Run the link follower until it has caught up."""
    catch_up(conn, LINKER, link_records)


def query(url: str, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
    async def run() -> T:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await work(conn)

    return asyncio.run(run())


def groups(url: str, scope: str = "cn") -> dict[str, set[str]]:
    """Shown record id -> the ids of its copies, for the subtree at ``scope``."""
    listed = query(url, lambda conn: latest_grouped(conn, scope, 50))
    return {item.id: {c.id for c in item.copies} for item in listed}


def test_keys_ignore_spacing_punctuation_and_width() -> None:
    assert text_key("关于“双随机、一公开”的意见") == text_key(' 关于"双随机 一公开"的意见。')
    assert text_key("ＡＢＣ 2019") == "abc2019"
    assert issuer_key(["国务院", "国务院办公厅"]) == issuer_key([" 国务院办公厅", "国务院"])


def test_a_relation_links_both_ways(pg_conn: Connection, pg_url: str) -> None:
    store(pg_conn, DOCUMENT, INTERPRETATION)
    link(pg_conn)
    policy = query(pg_url, lambda c: record_links(c, DOCUMENT.id))
    assert [(x.id, x.type) for x in policy.incoming] == [(INTERPRETATION.id, "interprets")]
    interpretation = query(pg_url, lambda c: record_links(c, INTERPRETATION.id))
    assert [(x.id, x.type) for x in interpretation.outgoing] == [(DOCUMENT.id, "interprets")]
    assert interpretation.unresolved == ()


def test_a_reference_stored_before_its_target_resolves_when_the_target_arrives(
    pg_conn: Connection, pg_url: str
) -> None:
    store(pg_conn, INTERPRETATION)
    link(pg_conn)
    waiting = query(pg_url, lambda c: record_links(c, INTERPRETATION.id))
    assert waiting.outgoing == () and [u.ref for u in waiting.unresolved] == [DOCUMENT.id]
    store(pg_conn, DOCUMENT)
    link(pg_conn)
    resolved = query(pg_url, lambda c: record_links(c, INTERPRETATION.id))
    assert [x.id for x in resolved.outgoing] == [DOCUMENT.id] and resolved.unresolved == ()


def test_document_numbers_resolve_in_any_bracket_form(pg_conn: Connection, pg_url: str) -> None:
    amending = variant(
        INTERPRETATION,
        "cn",
        "amend-1",
        kind="document",
        relations=(Relation("amends", doc_number="国办发[2018]118号"),),
    )
    repealing = variant(
        INTERPRETATION,
        "cn",
        "repeal-1",
        kind="document",
        relations=(Relation("repeals", doc_number="国办发（2018）118号"),),
    )
    store(pg_conn, amending, repealing)
    link(pg_conn)
    store(pg_conn, DOCUMENT)  # the target arrives last, written 国办发〔2018〕118号
    link(pg_conn)
    policy = query(pg_url, lambda c: record_links(c, DOCUMENT.id))
    assert {(x.id, x.type) for x in policy.incoming} == {
        (amending.id, "amends"),
        (repealing.id, "repeals"),
    }


def test_declared_republication_shows_once_with_its_copy(pg_conn: Connection, pg_url: str) -> None:
    store(pg_conn, REPUBLISHED)  # the copy first
    link(pg_conn)
    store(pg_conn, ORIGINAL)
    link(pg_conn)
    assert groups(pg_url)[ORIGINAL.id] == {REPUBLISHED.id}
    assert REPUBLISHED.id not in groups(pg_url)
    assert set(groups(pg_url, "cn.he")) == {REPUBLISHED.id}, "Hebei's portal shows its own copy"
    original = query(pg_url, lambda c: record_links(c, ORIGINAL.id))
    assert [x.id for x in original.copies] == [REPUBLISHED.id]
    copy = query(pg_url, lambda c: record_links(c, REPUBLISHED.id))
    assert [(x.id, x.type) for x in copy.outgoing] == [(ORIGINAL.id, "republishes")]


LEGACY_BY_NUMBER = variant(ORIGINAL, "gz", "legacy-1", doc_number="国发[2019]5号", relations=())
LEGACY_BY_TITLE = variant(
    ORIGINAL,
    "sz",
    "legacy-2",
    doc_number=None,
    title=' 国务院关于在市场监管领域全面推行部门联合"双随机 一公开"监管的意见',
    issuers=("国务院 ",),
    published=ORIGINAL.published + timedelta(days=20),
    relations=(),
)


def test_legacy_copies_are_detected_whichever_arrives_first(
    pg_conn: Connection, pg_url: str
) -> None:
    for order in (
        (ORIGINAL, LEGACY_BY_NUMBER, LEGACY_BY_TITLE),
        (LEGACY_BY_TITLE, LEGACY_BY_NUMBER, ORIGINAL),
    ):
        pg_conn.execute("TRUNCATE records, links, linked_records, followers")
        for record in order:  # one at a time: each arrives after the others were linked
            store(pg_conn, record)
            link(pg_conn)
        assert groups(pg_url) == {ORIGINAL.id: {LEGACY_BY_NUMBER.id, LEGACY_BY_TITLE.id}}, order


def test_copies_are_grouped_by_province(pg_conn: Connection, pg_url: str) -> None:
    store(pg_conn, ORIGINAL, REPUBLISHED, LEGACY_BY_NUMBER, LEGACY_BY_TITLE)
    link(pg_conn)
    copies = query(pg_url, lambda c: record_links(c, ORIGINAL.id)).copies
    grouped = [
        (province, [x.id for x in items]) for province, items in by_province(FEDERATION, copies)
    ]
    assert grouped == [
        ("gd", [LEGACY_BY_NUMBER.id, LEGACY_BY_TITLE.id]),
        ("he", [REPUBLISHED.id]),
    ]


def test_same_title_is_not_a_copy_when_anything_contradicts(
    pg_conn: Connection, pg_url: str
) -> None:
    """Many 任免 notices share one title and issuer: only their numbers and dates differ."""
    first = variant(
        DOCUMENT,
        "cn",
        "renmian-1",
        title="国务院关于任免国家工作人员的通知",
        doc_number="国人字〔2019〕1号",
    )
    second = variant(
        first,
        "cn",
        "renmian-2",
        doc_number="国人字〔2019〕2号",
        published=first.published + timedelta(days=5),
    )
    legacy = variant(
        first, "gd", "renmian-copy", doc_number=None, published=first.published + timedelta(days=1)
    )
    late = variant(
        first,
        "he",
        "renmian-late",
        doc_number=None,
        created=None,
        published=first.published + timedelta(days=200),
    )
    dated = variant(
        first,
        "gz",
        "renmian-dated",
        doc_number=None,
        created=first.published.date() + timedelta(days=2),
    )
    other_issuer = variant(first, "sz", "renmian-sz", doc_number=None, issuers=("深圳市人民政府",))
    store(pg_conn, first, second, legacy, late, dated, other_issuer)
    link(pg_conn)
    shown = groups(pg_url)
    assert shown[first.id] == {legacy.id}, "the legacy copy joins the nearest notice only"
    assert shown[second.id] == set()
    assert {late.id, dated.id, other_issuer.id} <= set(shown)


def test_a_withdrawn_copy_leaves_its_group(pg_conn: Connection, pg_url: str) -> None:
    store(pg_conn, ORIGINAL, REPUBLISHED)
    link(pg_conn)
    withdrawn = dataclasses.replace(
        REPUBLISHED,
        revision=2,
        status=Status("withdrawn", "转载有误", REPUBLISHED.published + timedelta(days=1)),
    )
    store(pg_conn, withdrawn)
    link(pg_conn)
    assert groups(pg_url) == {ORIGINAL.id: set()}
    assert query(pg_url, lambda c: record_links(c, ORIGINAL.id)).copies == ()


def test_emergency_notices_are_alerts(pg_conn: Connection, pg_url: str) -> None:
    urgent = variant(example("notice"), "gz", "urgent-1", urgency="urgent")
    store(pg_conn, DOCUMENT, example("emergency"), urgent)
    link(pg_conn)
    alerts = query(pg_url, lambda c: latest_grouped(c, "cn", 10, alerts=True))
    assert {a.id for a in alerts} == {example("emergency").id, urgent.id}


def test_the_linker_runs_as_a_follower_until_stopped(pg_conn: Connection, pg_url: str) -> None:
    from hub.store import connect

    store(pg_conn, DOCUMENT, INTERPRETATION)

    async def scenario() -> list[str]:
        stop = asyncio.Event()
        task = asyncio.create_task(run_linker(lambda: connect(pg_url), stop))
        for _ in range(200):
            found = pg_conn.execute("SELECT target FROM links WHERE target IS NOT NULL").fetchall()
            if found:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task
        return [row[0] for row in found]

    assert asyncio.run(scenario()) == [DOCUMENT.id]
