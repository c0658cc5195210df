"""Feeds end to end: records stored in PostgreSQL, logged by the feed follower, served
by aiohttp, read back with feedparser and lxml as a subscriber would."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import pytest
import support.postgres as postgres_fixtures
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from feedgen.feed import FeedGenerator
from lxml import etree
from psycopg_pool import AsyncConnectionPool
from support.feed_check import check_feed
from support.waits import catch_up

from hub.federation import load_federation
from hub.records import Record, parse
from hub.records.model import Origin, Status
from hub.store import StoredRecord, upsert_records
from hub.store.connection import Connection
from hub.store.feed_log.log import FOLLOWER as LOGGER
from hub.store.feed_log.log import log_changes, log_pending, scopes_of
from hub.web.context import PORTAL, Portal
from hub.web.feeds import routes as feeds
from hub.web.feeds.documents import FeedState, Lru
from hub.web.feeds.render import ATOM, HISTORY, TOMBSTONES, embedded_record

pg_url = postgres_fixtures.own_pg_url  # reads the change feed: a server of its own
pg_conn = postgres_fixtures.pg_conn

REPO = Path(__file__).parents[1]
FEDERATION = load_federation(REPO / "nodes.toml")
BASE = "http://portal.test"
CST = timezone(timedelta(hours=8))
PAGE = 5
WAIT = 120.0  # seconds a change may take to reach the feed log on a busy server
NS = {"a": ATOM, "at": TOMBSTONES, "fh": HISTORY, "gr": "urn:govhub:record:1"}

Client = TestClient[Any, Any]


def example(name: str) -> Record:
    return parse((REPO / "examples" / "records" / name).read_bytes())


BASE_RECORDS = {"news": example("news.xml"), "notice": example("notice.xml")}


def make(number: int, node: str, kind: str = "news", **changes: Any) -> Record:
    """A distinct record of ``node``, published ``number`` minutes after a fixed time."""
    site = FEDERATION.node(node).site_code
    fields: dict[str, Any] = {
        "id": f"urn:govhub:{node}:t{number:03d}",  # id order = number order
        "origin": Origin(node, site),
        "title": f"第{number}号{kind}：关于做好环境监测工作的通知",
        "published": datetime(2024, 1, 1, 9, 0, tzinfo=CST) + timedelta(minutes=number),
        "updated": None,
        "status": Status("active"),
    }
    fields.update(changes)
    return dataclasses.replace(BASE_RECORDS[kind], **fields)


def store(conn: Connection, *records: Record) -> None:
    """Store ``records`` and wait until the feed logger has logged them."""
    rows = [StoredRecord.from_record(r, FEDERATION.node(r.origin.node).path) for r in records]
    upsert_records(conn, rows)
    catch_up(conn, LOGGER, log_changes, timeout=WAIT)


def withdraw(record: Record, reason: str = "内容有误，已撤回") -> Record:
    at = record.published + timedelta(days=1)
    return dataclasses.replace(
        record, revision=record.revision + 1, status=Status("withdrawn", reason, at), updated=at
    )


def serve(
    url: str, scenario: Callable[[Client, Portal], Awaitable[Any]], page_size: int = PAGE
) -> Any:
    async def main() -> Any:
        async with AsyncConnectionPool(
            url, min_size=1, max_size=4, open=False, kwargs={"autocommit": True}
        ) as pool:
            app = web.Application()
            app[PORTAL] = Portal(FEDERATION, pool, BASE, "cn")
            feeds.setup(app, page_size=page_size, head_ttl=0)
            async with TestClient(TestServer(app)) as client:
                return await scenario(client, app[PORTAL])

    return asyncio.run(main())


async def get(client: Client, address: str, status: int = 200, **headers: str) -> bytes:
    """The body at ``address`` (an absolute feed URL or a path)."""
    parts = urlsplit(address)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    response = await client.get(path, headers=headers)
    assert response.status == status, (address, await response.text())
    return await response.read()


def xml(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def ids_in(document: bytes) -> list[str]:
    root = xml(document)
    found = root.xpath("//a:entry/a:id/text() | //at:deleted-entry/@ref", namespaces=NS)
    found += root.xpath("/rss/channel/item/guid/text()")
    return [str(i) for i in found]


def link(document: bytes, rel: str) -> str | None:
    hrefs = xml(document).xpath(
        f"/*/a:link[@rel='{rel}']/@href | /rss/channel/a:link[@rel='{rel}']/@href", namespaces=NS
    )
    return str(hrefs[0]) if hrefs else None


# ---- the follower -----------------------------------------------------------------------


def test_the_log_numbers_every_revision_once_in_each_scope(pg_conn: Connection) -> None:
    first, second = make(1, "gz"), make(2, "mee")
    store(pg_conn, first, second)
    store(pg_conn, dataclasses.replace(first, revision=2, title="更正后的标题"))
    assert log_pending(pg_conn) == 0  # nothing new: nothing logged twice
    rows = pg_conn.execute(
        "SELECT position, id, revision, path FROM feed_log ORDER BY 1"
    ).fetchall()
    assert [(r[0], r[2]) for r in rows] == [(1, 1), (2, 1), (3, 2)]
    assert rows[2][1] == first.id
    scopes = dict(
        pg_conn.execute(
            "SELECT scope, array_agg(position ORDER BY seq) FROM feed_scope GROUP BY scope"
        ).fetchall()
    )
    gz = [rows[0][0], rows[2][0]]
    assert scopes == {
        "tree:cn": [1, 2, 3],
        "tree:cn.gd": gz,
        "tree:cn.gd.gz": gz,
        "own:cn.gd.gz": gz,
        "tree:cn.mee": [2],
        "own:cn.mee": [2],
    }
    seqs = pg_conn.execute("SELECT scope, array_agg(seq ORDER BY seq) FROM feed_scope GROUP BY 1")
    assert all(values == list(range(len(values))) for _, values in seqs)
    assert scopes_of("cn.gd.gz") == ["tree:cn", "tree:cn.gd", "tree:cn.gd.gz", "own:cn.gd.gz"]


# ---- addresses, scopes, filters, errors -------------------------------------------------


def test_subtree_and_own_feeds_hold_the_right_records(pg_url: str, pg_conn: Connection) -> None:
    store(pg_conn, make(1, "gd"), make(2, "gz"), make(3, "yx"), make(4, "mee"))

    async def scenario(client: Client, portal: Portal) -> None:
        province = ids_in(await get(client, "/nodes/gd/feed.atom"))
        assert province == ["urn:govhub:yx:t003", "urn:govhub:gz:t002", "urn:govhub:gd:t001"]
        assert ids_in(await get(client, "/nodes/gd/own.rss")) == ["urn:govhub:gd:t001"]
        assert len(ids_in(await get(client, "/nodes/cn/feed.rss"))) == 4
        assert ids_in(await get(client, "/nodes/cn/own.atom")) == []
        missing = await client.get("/nodes/nowhere/feed.atom")
        assert missing.status == 404
        assert await missing.json() == {
            "status": 404,
            "error": "no node 'nowhere' in this portal",
            "parameter": "id",
        }

    serve(pg_url, scenario)


def test_filters_and_bad_parameters(pg_url: str, pg_conn: Connection) -> None:
    english = make(3, "gz", lang="en", title="Guangzhou notice")
    store(pg_conn, make(1, "gz"), make(2, "gz", "notice"), english)

    async def scenario(client: Client, portal: Portal) -> None:
        async def ids(query: str) -> list[str]:
            return ids_in(await get(client, "/nodes/gd/feed.atom?" + query))

        assert await ids("kind=notice") == ["urn:govhub:gz:t002"]
        assert await ids("lang=en") == [english.id]
        assert set(await ids("topic=城乡建设、环境保护")) == {english.id, "urn:govhub:gz:t001"}
        notice_issuer = BASE_RECORDS["notice"].issuers[0]
        assert await ids(f"issuer={notice_issuer}") == ["urn:govhub:gz:t002"]
        assert await ids("kind=notice&issuer=生态环境部") == []
        for query, parameter in (
            ("kind=memo", "kind"),
            ("topic=环境", "topic"),
            ("lang=zh-CN", "lang"),
            ("script=latin", "script"),
            ("page=-1", "page"),
            ("kind=news&kind=notice", "kind"),
            ("utm_source=x", "utm_source"),
            ("issuer=%20", "issuer"),
        ):
            response = await client.get("/nodes/gd/feed.rss?" + query)
            assert response.status == 400, query
            body = await response.json()
            assert body["status"] == 400 and body["parameter"] == parameter, body
            assert body["error"]
        beyond = await client.get("/nodes/gd/feed.atom?page=7")
        assert beyond.status == 404 and (await beyond.json())["parameter"] == "page"

    serve(pg_url, scenario)


# ---- what a subscriber reads ------------------------------------------------------------


def test_feedparser_reads_every_field_without_complaint(pg_url: str, pg_conn: Connection) -> None:
    document = example("document.xml")
    store(pg_conn, document)

    async def scenario(client: Client, portal: Portal) -> None:
        for address in ("/nodes/cn/feed.atom", "/nodes/cn/own.rss"):
            data = await get(client, address)
            parsed = feedparser.parse(data)
            assert not parsed.bozo, (address, parsed.get("bozo_exception"))
            assert check_feed(data) == [], address
            entry = parsed.entries[0]
            assert entry.id == document.id
            assert entry.title == document.title
            assert entry.link == f"{BASE}/records/{document.id}"
            assert entry.published_parsed[:5] == (2019, 1, 3, 9, 30)  # 17:30 +08:00
            assert entry.summary == document.summary
            assert entry.author == "国务院办公厅"
            terms = {(t.term, t.scheme) for t in entry.tags}
            assert ("综合政务", "urn:govhub:topic") in terms
            assert ("document", "urn:govhub:kind") in terms
            # the record itself, field by field, in the govhub namespace
            assert entry.gr_docnumber == document.doc_number
            assert entry.gr_indexnumber == document.index_number
            assert entry.gr_title == document.title
            assert entry.gr_validity == "in-force"
            (item,) = xml(data).xpath("//a:entry | //item", namespaces=NS)
            copy = embedded_record(item)
            assert copy is not None and parse(copy) == document  # nothing lost
            if address.endswith(".atom"):
                assert entry.updated_parsed[:5] == entry.published_parsed[:5]
                assert parsed.feed.language == "zh-Hans"
                assert len(entry.content) == 1 and "三项制度" in entry.content[0].value

    serve(pg_url, scenario)


def test_feedparser_reads_our_entries_as_it_reads_feedgen_s(
    pg_url: str, pg_conn: Connection
) -> None:
    """feedgen, the reference: the same entry built with it reads back the same."""
    document = example("document.xml")
    store(pg_conn, document)
    generator = FeedGenerator()
    generator.id(f"{BASE}/nodes/cn/own.atom")
    generator.title("中华人民共和国中央人民政府")
    generator.link(href=f"{BASE}/nodes/cn/", rel="alternate")
    entry = generator.add_entry()
    entry.id(document.id)
    entry.title(document.title)
    entry.link(href=f"{BASE}/records/{document.id}", rel="alternate", type="text/html")
    entry.published(document.published)
    entry.updated(document.published)
    entry.author(name=document.issuers[0])
    entry.summary(document.summary)
    entry.category(term="综合政务", scheme="urn:govhub:topic")
    entry.category(term="document", scheme="urn:govhub:kind")
    theirs = feedparser.parse(generator.atom_str()).entries[0]

    async def scenario(client: Client, portal: Portal) -> None:
        ours = feedparser.parse(await get(client, "/nodes/cn/own.atom")).entries[0]
        for key in ("id", "title", "link", "published_parsed", "updated_parsed", "summary"):
            assert ours[key] == theirs[key], key
        assert ours.author == theirs.author
        assert [(t.term, t.scheme) for t in ours.tags] == [(t.term, t.scheme) for t in theirs.tags]

    serve(pg_url, scenario)


def test_updates_keep_their_id_and_withdrawals_become_tombstones(
    pg_url: str, pg_conn: Connection
) -> None:
    news, notice = make(1, "gz"), make(2, "gz", "notice")
    store(pg_conn, news, notice)
    store(pg_conn, dataclasses.replace(news, revision=2, title="更正：第1号"), withdraw(notice))

    async def scenario(client: Client, portal: Portal) -> None:
        atom = await get(client, "/nodes/gz/own.atom")
        assert check_feed(atom) == []
        root = xml(atom)
        entries = root.xpath("a:entry", namespaces=NS)
        assert [e.findtext(f"{{{ATOM}}}id") for e in entries] == [news.id]  # one copy
        assert entries[0].findtext(f"{{{ATOM}}}title") == "更正：第1号"
        updated = entries[0].findtext(f"{{{ATOM}}}updated")
        assert updated != entries[0].findtext(f"{{{ATOM}}}published")  # shows as an update
        (gone,) = root.xpath("at:deleted-entry", namespaces=NS)
        assert gone.get("ref") == notice.id
        assert gone.get("when") == "2024-01-02T09:02:00+08:00"
        assert gone.findtext(f"{{{TOMBSTONES}}}comment") == "内容有误，已撤回"
        assert gone.xpath("gr:record/gr:status/text()", namespaces=NS) == ["withdrawn"]
        parsed = feedparser.parse(atom)
        assert not parsed.bozo and [e.id for e in parsed.entries] == [news.id]

        rss = await get(client, "/nodes/gz/own.rss")
        assert check_feed(rss) == []
        items = xml(rss).xpath("/rss/channel/item")
        assert [i.findtext("guid") for i in items] == [notice.id, news.id]
        assert items[0].findtext("title").startswith("【已撤回】")
        assert items[0].findtext("description") == "内容有误，已撤回"
        assert items[0].xpath("category[@domain='urn:govhub:status']/text()") == ["withdrawn"]

    serve(pg_url, scenario)


def test_traditional_version(pg_url: str, pg_conn: Connection) -> None:
    record = make(1, "gz")
    english = make(2, "gz", lang="en", title="Guangzhou")
    store(pg_conn, record, english)

    async def scenario(client: Client, portal: Portal) -> None:
        atom = await get(client, "/nodes/gz/feed.atom?script=Hant")
        assert check_feed(atom) == []
        root = xml(atom)
        assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "zh-Hant"
        assert root.findtext(f"{{{ATOM}}}title") == "廣州市人民政府（含下級） 政府信息公開"
        titles = root.xpath("a:entry/a:title/text()", namespaces=NS)
        assert titles == ["Guangzhou", "第1號news：關於做好環境監測工作的通知"]
        english_entry = root.xpath("a:entry[1]", namespaces=NS)[0]
        assert english_entry.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
        # the record itself is never converted
        assert root.xpath("a:entry[2]/gr:record/gr:title/text()", namespaces=NS) == [record.title]
        assert link(atom, "self") == f"{BASE}/nodes/gz/feed.atom?script=Hant"
        rss = await get(client, "/nodes/gz/feed.rss?script=hant")
        assert xml(rss).findtext("channel/language") == "zh-Hant"
        assert feedparser.parse(rss).feed.language == "zh-Hant"
        assert check_feed(rss) == []

    serve(pg_url, scenario)


# ---- caching and conditional GET --------------------------------------------------------


def test_conditional_get_and_cache_headers(pg_url: str, pg_conn: Connection) -> None:
    store(pg_conn, *(make(n, "gz") for n in range(12)))

    async def scenario(client: Client, portal: Portal) -> None:
        state: FeedState = portal.caches["feeds"]
        first = await client.get("/nodes/gd/feed.atom")
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        assert etag.startswith('"') and not etag.startswith("W/")
        assert first.headers["Cache-Control"] == "public, max-age=60"
        assert first.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
        builds = state.builds
        again = await client.get("/nodes/gd/feed.atom", headers={"If-None-Match": etag})
        assert again.status == 304 and again.headers["ETag"] == etag
        assert await again.read() == b""
        since = await client.get("/nodes/gd/feed.atom", headers={"If-Modified-Since": modified})
        assert since.status == 304
        stale = await client.get("/nodes/gd/feed.atom", headers={"If-None-Match": '"other"'})
        assert stale.status == 200 and await stale.read() == await first.read()
        assert state.builds == builds  # served from the cache, not rebuilt

        archive = await client.get("/nodes/gd/feed.atom?page=0")
        assert archive.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        filling = await client.get("/nodes/gd/feed.atom?page=2")
        assert filling.headers["Cache-Control"] == "public, max-age=60"

        builds = state.builds  # many requests at once for a document not built yet: one build
        answers = await asyncio.gather(
            *(client.get("/nodes/gd/own.rss?script=Hant") for _ in range(20))
        )
        assert {a.status for a in answers} == {200} and state.builds == builds + 1
        assert len({await a.read() for a in answers}) == 1

        store(pg_conn, make(99, "gz"))  # the log moves on: the current document changes
        changed = await client.get("/nodes/gd/feed.atom", headers={"If-None-Match": etag})
        assert changed.status == 200 and changed.headers["ETag"] != etag
        unchanged = await client.get("/nodes/gd/feed.atom?page=0")
        assert await unchanged.read() == await archive.read()

    serve(pg_url, scenario)


# ---- paging, archives, catching up ------------------------------------------------------


def test_archive_pages_never_change_and_link_each_other(pg_url: str, pg_conn: Connection) -> None:
    store(pg_conn, *(make(n, "gz") for n in range(12)))  # pages 0, 1 full; page 2 filling

    async def scenario(client: Client, portal: Portal) -> None:
        current = await get(client, "/nodes/gz/feed.rss")
        assert len(ids_in(current)) == PAGE
        assert link(current, "prev-archive") == f"{BASE}/nodes/gz/feed.rss?page=1"
        page1 = await get(client, "/nodes/gz/feed.rss?page=1")
        assert ids_in(page1) == [f"urn:govhub:gz:t{n:03d}" for n in range(9, 4, -1)]
        assert xml(page1).xpath("/rss/channel/fh:archive", namespaces=NS)
        assert link(page1, "prev-archive") == f"{BASE}/nodes/gz/feed.rss?page=0"
        assert link(page1, "next-archive") == f"{BASE}/nodes/gz/feed.rss?page=2"
        assert link(page1, "current") == f"{BASE}/nodes/gz/feed.rss"
        assert check_feed(page1) == []
        page0 = await get(client, "/nodes/gz/feed.rss?page=0")
        assert link(page0, "prev-archive") is None
        filling = await get(client, "/nodes/gz/feed.rss?page=2")
        assert not xml(filling).xpath("//fh:archive", namespaces=NS)
        store(pg_conn, *(make(n, "gz") for n in range(20, 30)))
        assert await get(client, "/nodes/gz/feed.rss?page=1") == page1
        portal.caches["feeds"].documents = Lru(1 << 20)  # even when built again
        assert await get(client, "/nodes/gz/feed.rss?page=1") == page1
        # a filtered feed skips the pages that hold nothing for it
        store(pg_conn, make(40, "gz", "notice"))
        notices = await get(client, "/nodes/gz/feed.atom?kind=notice")
        assert ids_in(notices) == ["urn:govhub:gz:t040"]
        assert link(notices, "prev-archive") is None

    serve(pg_url, scenario)


async def walk(client: Client, start: str, seen: set[str]) -> tuple[dict[str, str], set[str]]:
    """What a subscriber learns from the subscription document and the archives it has
    not read yet (RFC 5005 §5): record id → "revision" or "withdrawn", newest wins."""
    state: dict[str, str] = {}
    address: str | None = start
    newly: set[str] = set()
    while address is not None:
        if address in seen:
            break
        document = await get(client, address)
        root = xml(document)
        for item in root.xpath("//a:entry | //at:deleted-entry", namespaces=NS):
            record_id = item.findtext(f"{{{ATOM}}}id") or item.get("ref")
            revision = item.xpath("gr:record/gr:revision/text()", namespaces=NS)[0]
            gone = item.tag == f"{{{TOMBSTONES}}}deleted-entry"
            state.setdefault(record_id, "withdrawn" if gone else revision)
        if root.xpath("fh:archive", namespaces=NS):
            newly.add(address)
        address = link(document, "prev-archive")
    return state, newly


def test_an_offline_subscriber_catches_up_completely(pg_url: str, pg_conn: Connection) -> None:
    early = [make(n, ["gz", "yx", "sz"][n % 3]) for n in range(13)]
    store(pg_conn, *early)

    async def scenario(client: Client, portal: Portal) -> None:
        known, seen = await walk(client, "/nodes/gd/feed.atom", set())
        assert len(known) == 13
        # away: new records, updates of old ones, withdrawals of old and new ones
        later = [make(n, "gz") for n in range(100, 117)]
        store(pg_conn, *later[:9])
        store(pg_conn, dataclasses.replace(early[0], revision=2, title="改"), withdraw(early[1]))
        store(pg_conn, *later[9:], withdraw(later[2]))
        store(pg_conn, dataclasses.replace(early[4], revision=3, title="再改"))
        news, newly = await walk(client, f"{BASE}/nodes/gd/feed.atom", seen)
        assert newly and not newly & seen
        for record_id, value in news.items():  # what the walk found replaces what was known
            known[record_id] = value
        truth = {
            row[0]: "withdrawn" if row[2] else str(row[1])
            for row in pg_conn.execute(
                "SELECT id, revision, withdrawn FROM records WHERE path LIKE 'cn.gd.%'"
            )
        }
        assert known == truth
        assert truth[early[1].id] == "withdrawn" and truth[early[4].id] == "3"

    serve(pg_url, scenario)


def test_the_log_follower_runs_until_stopped(pg_url: str, pg_conn: Connection) -> None:
    from hub.store import connect
    from hub.store.feed_log.log import run_feed_logger

    upsert_records(pg_conn, [StoredRecord.from_record(make(1, "gz"), "cn.gd.gz")])

    async def main() -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed_logger(lambda: connect(pg_url), stop, idle=0.05))
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            row = pg_conn.execute("SELECT count(*) FROM feed_log").fetchone()
            if row and row[0]:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task
        row = pg_conn.execute("SELECT count(*) FROM feed_log").fetchone()
        return int(row[0]) if row else 0

    assert asyncio.run(main()) == 1


@pytest.mark.parametrize("format", ["atom", "rss"])
def test_generated_feeds_pass_the_checker(pg_url: str, pg_conn: Connection, format: str) -> None:
    records = [make(n, "gz", "notice" if n % 2 else "news") for n in range(8)]
    store(pg_conn, *records, example("document.xml"))
    store(pg_conn, withdraw(records[3]))

    async def scenario(client: Client, portal: Portal) -> None:
        for query in ("", "?page=0", "?script=Hant", "?kind=notice&page=1"):
            data = await get(client, f"/nodes/cn/feed.{format}{query}")
            assert check_feed(data) == [], (query, check_feed(data))
            assert not feedparser.parse(data).bozo

    serve(pg_url, scenario)
