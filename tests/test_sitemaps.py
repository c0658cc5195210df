"""robots.txt, the sitemap index and the sitemaps (hub.web.pages.sitemaps), served from a real
PostgreSQL: every public record of the portal's subtree listed once per node and once per
topic class, split at the URL limit, answered conditionally, current as records change.

The sitemaps.org XSDs are not available offline, so ``check`` verifies the protocol's
rules with lxml instead: the 0.9 namespace on the root, only ``loc`` and ``lastmod``
children as we write them, absolute ``loc`` of at most 2,048 characters on the
portal's host, ``lastmod`` in W3C Datetime, at most the URL limit per file and at
most 50 MB, UTF-8."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import aiohttp
import support.postgres as postgres_fixtures
from lxml import etree
from psycopg_pool import AsyncConnectionPool
from test_links import DOCUMENT, FEDERATION, example, variant
from test_pages import fill

from hub.http.listen import listen
from hub.records.model import Status
from hub.store.connection import Connection
from hub.web.app import make_app
from hub.web.context import Portal
from hub.web.pages.sitemaps import LIMIT, NS, SITEMAP_URLS

pg_url = postgres_fixtures.own_pg_url
pg_conn = postgres_fixtures.pg_conn

BASE = "http://portal.test"
W3C = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
MAX_BYTES = 50 * 1024 * 1024


@contextlib.asynccontextmanager
async def server(url: str, scope: str, per_file: int | None) -> AsyncIterator[str]:
    pool = AsyncConnectionPool(url, open=False, min_size=1, max_size=2, kwargs={"autocommit": True})
    await pool.open()
    app = make_app(Portal(FEDERATION, pool, BASE, scope))
    if per_file is not None:
        app[SITEMAP_URLS] = per_file
    running = await listen(app, "127.0.0.1", 0)
    try:
        yield running.url
    finally:
        await running.runner.cleanup()
        await pool.close()


Fetched = tuple[int, Any, bytes]


def fetch_all(
    url: str, paths: list[str], scope: str = "cn", per_file: int | None = None, **options: Any
) -> list[Fetched]:
    async def run() -> list[Fetched]:
        async with server(url, scope, per_file) as base, aiohttp.ClientSession() as session:
            out = []
            for path in paths:
                async with session.get(base + path, **options) as response:
                    out.append((response.status, response.headers, await response.read()))
            return out

    return asyncio.run(run())


def crawl(url: str, scope: str = "cn", per_file: int = LIMIT) -> dict[str, list[str]]:
    """Every sitemap the index lists (by path), checked, with the record ids it lists."""
    ((status, headers, body),) = fetch_all(url, ["/sitemap.xml"], scope, per_file)
    assert status == 200 and headers["Content-Type"].startswith("application/xml")
    locations = check(body, "sitemapindex", "sitemap", per_file=LIMIT)
    paths = [loc.removeprefix(BASE) for loc in locations]
    found: dict[str, list[str]] = {}
    for path, (status, headers, body) in zip(
        paths, fetch_all(url, paths, scope, per_file), strict=True
    ):
        assert status == 200, (path, body)
        assert headers["ETag"] and headers["Last-Modified"]
        records = check(body, "urlset", "url", per_file=per_file)
        assert records, f"{path} lists nothing"
        found[path] = [unquote(loc.removeprefix(BASE + "/records/")) for loc in records]
    return found


def check(body: bytes, root_name: str, entry_name: str, per_file: int) -> list[str]:
    """The ``loc`` values of a sitemap or index, after checking the sitemaps.org rules."""
    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert len(body) <= MAX_BYTES
    root = etree.fromstring(body)
    assert root.tag == f"{{{NS}}}{root_name}", root.tag
    entries = list(root)
    assert 0 < len(entries) <= per_file
    locations = []
    for entry in entries:
        assert entry.tag == f"{{{NS}}}{entry_name}"
        assert [child.tag for child in entry] == [f"{{{NS}}}loc", f"{{{NS}}}lastmod"]
        loc, lastmod = (child.text or "" for child in entry)
        assert loc.startswith(BASE + "/") and len(loc) <= 2048 and " " not in loc, loc
        assert W3C.fullmatch(lastmod), lastmod
        locations.append(loc)
    return locations


def public(conn: Connection, scope: str = "cn") -> list[tuple[str, str, str | None]]:
    path = FEDERATION.node(scope).path
    rows = conn.execute(
        "SELECT id, node, topic_class FROM records WHERE NOT withdrawn"
        " AND (path = %(p)s OR path LIKE %(p)s || '.%%')",
        {"p": path},
    ).fetchall()
    return [(row[0], row[1], row[2]) for row in rows]


def _split(found: dict[str, list[str]], group: str) -> dict[str, list[str]]:
    """Record ids by node or topic class, gathered over the group's pages."""
    by: dict[str, list[str]] = {}
    for path, ids in found.items():
        kind, value, _page = path.removeprefix("/sitemaps/").split("/")
        if kind == group:
            by.setdefault(unquote(value), []).extend(ids)
    return by


def test_robots_allows_everything_and_names_the_index(pg_conn: Connection, pg_url: str) -> None:
    ((status, headers, body),) = fetch_all(pg_url, ["/robots.txt"])
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    lines = body.decode().splitlines()
    assert lines[:2] == ["User-agent: *", "Allow: /"]
    assert f"Sitemap: {BASE}/sitemap.xml" in lines
    assert not [line for line in lines if line.startswith("Disallow:")]


def test_an_empty_store_has_an_empty_index(pg_conn: Connection, pg_url: str) -> None:
    ((status, headers, body),) = fetch_all(pg_url, ["/sitemap.xml"])
    assert status == 200 and headers["ETag"] and "Last-Modified" not in headers
    root = etree.fromstring(body)
    assert root.tag == f"{{{NS}}}sitemapindex" and len(root) == 0
    ((status, _, _),) = fetch_all(pg_url, ["/sitemaps/nodes/cn/1.xml"])
    assert status == 404


def test_every_public_record_once_per_node_and_once_per_topic_class(
    pg_conn: Connection, pg_url: str
) -> None:
    fill(pg_conn)
    rows = public(pg_conn)
    withdrawn = example("notice-withdrawn")
    assert withdrawn.id not in {r[0] for r in rows} and len(rows) > 5
    found = crawl(pg_url)
    by_node, by_topic = _split(found, "nodes"), _split(found, "topics")
    assert {k: sorted(v) for k, v in by_node.items()} == {
        node: sorted(r[0] for r in rows if r[1] == node) for node in {r[1] for r in rows}
    }
    expected_topics = {r[2] for r in rows if r[2]}
    assert expected_topics, "the examples have topic classes"
    assert {k: sorted(v) for k, v in by_topic.items()} == {
        topic: sorted(r[0] for r in rows if r[2] == topic) for topic in expected_topics
    }
    counts = Counter(i for ids in by_node.values() for i in ids)
    assert set(counts.values()) == {1}, "each record in one node sitemap"


def test_large_groups_are_split_into_pages(pg_conn: Connection, pg_url: str) -> None:
    extra = [variant(DOCUMENT, "gz", f"split-{n}", title=f"分页测试 {n}") for n in range(7)]
    fill(pg_conn, *extra)
    found = crawl(pg_url, per_file=3)
    gz_pages = sorted(p for p in found if p.startswith("/sitemaps/nodes/gz/"))
    gz = [r for r in public(pg_conn) if r[1] == "gz"]
    assert len(gz_pages) == -(-len(gz) // 3) >= 3
    assert gz_pages == [f"/sitemaps/nodes/gz/{n}.xml" for n in range(1, len(gz_pages) + 1)]
    listed = [i for p in gz_pages for i in found[p]]
    assert sorted(listed) == sorted(r[0] for r in gz) and len(set(listed)) == len(listed)
    after = fetch_all(pg_url, [f"/sitemaps/nodes/gz/{len(gz_pages) + 1}.xml"], per_file=3)
    assert after[0][0] == 404


def test_a_portal_maps_only_its_subtree(pg_conn: Connection, pg_url: str) -> None:
    fill(pg_conn)
    found = crawl(pg_url, scope="gd")
    listed = sorted(i for ids in _split(found, "nodes").values() for i in ids)
    assert listed == sorted(r[0] for r in public(pg_conn, "gd"))
    assert not [p for p in found if p.startswith("/sitemaps/nodes/cn/")]
    ((status, _, body),) = fetch_all(pg_url, ["/sitemaps/nodes/cn/1.xml"], scope="gd")
    assert status == 404 and b"cn" in body


def test_conditional_get_and_current_as_records_change(pg_conn: Connection, pg_url: str) -> None:
    fill(pg_conn)
    paths = ["/sitemap.xml", "/sitemaps/nodes/gz/1.xml"]
    first = fetch_all(pg_url, paths)
    assert [status for status, *_ in first] == [200, 200]
    for path, (_, headers, _) in zip(paths, first, strict=True):
        etag = headers["ETag"]
        (again,) = fetch_all(pg_url, [path], headers={"If-None-Match": etag})
        assert again[0] == 304 and again[1]["ETag"] == etag and not again[2]
        since = headers["Last-Modified"]
        (again,) = fetch_all(pg_url, [path], headers={"If-Modified-Since": since})
        assert again[0] == 304
    added = variant(DOCUMENT, "gz", "fresh-1", title="新发布的文件")
    fill(pg_conn, added)
    for path, (_, headers, _body) in zip(paths, first, strict=True):
        (now,) = fetch_all(pg_url, [path], headers={"If-None-Match": headers["ETag"]})
        assert now[0] == 200 and now[1]["ETag"] != headers["ETag"], path
    (gz,) = fetch_all(pg_url, ["/sitemaps/nodes/gz/1.xml"])
    assert added.id in unquote(gz[2].decode()) and added.id not in unquote(first[1][2].decode())
    gone = dataclasses.replace(
        added, revision=added.revision + 1, status=Status("withdrawn", "测试撤回")
    )
    fill(pg_conn, gone)
    (now,) = fetch_all(
        pg_url, ["/sitemaps/nodes/gz/1.xml"], headers={"If-None-Match": gz[1]["ETag"]}
    )
    assert now[0] == 200 and added.id not in unquote(now[2].decode()), "a withdrawn record leaves"


def test_bad_addresses_answer_404_or_400_never_5xx(pg_conn: Connection, pg_url: str) -> None:
    fill(pg_conn)
    paths = [
        "/sitemaps/nodes/nowhere/1.xml",
        "/sitemaps/nodes/gz/0.xml",
        "/sitemaps/nodes/gz/999999999.xml",
        "/sitemaps/topics/没有这个分类/1.xml",
        "/sitemaps/topics/" + "长" * 500 + "/1.xml",
        "/sitemaps/topics/a%2Fb/1.xml",
        "/sitemaps/topics/%00/1.xml",
        "/sitemaps/elsewhere/gz/1.xml",
    ]
    for path, (status, headers, body) in zip(paths, fetch_all(pg_url, paths), strict=True):
        assert status in (400, 404), (path, status, body[:200])
        assert headers["Content-Type"].startswith("application/json"), path
