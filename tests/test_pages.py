"""The portal's web pages (hub.web.pages.routes) over HTTP, on a real PostgreSQL: addresses,
the metadata table, cross-links, catalogue, search, Traditional Chinese, errors, escaping.
The same pages in a real browser: tests/test_browser.py."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import aiohttp
import pytest
import support.postgres as postgres_fixtures
from lxml import html
from psycopg_pool import AsyncConnectionPool
from test_links import (
    DOCUMENT,
    FEDERATION,
    INTERPRETATION,
    LEGACY_BY_NUMBER,
    ORIGINAL,
    REPUBLISHED,
    ROOT,
    catch_up,
    example,
    link,
    store,
    variant,
)

from hub import records
from hub.http.listen import listen
from hub.records.model import Record, Relation
from hub.store.connection import Connection
from hub.store.search.index import FOLLOWER as SEARCH_FOLLOWER
from hub.store.search.index import index_records
from hub.web.app import make_app
from hub.web.context import Portal

pg_url = postgres_fixtures.own_pg_url  # reads the change feed: a server of its own
pg_conn = postgres_fixtures.pg_conn

T = TypeVar("T")
CHINA = timezone(timedelta(hours=8))
EXAMPLES = sorted((ROOT / "examples" / "records").glob("*.xml"))


def hostile() -> Record:
    """A record whose every text field tries to break out of the page."""
    data = (ROOT / "examples" / "records" / "notice.xml").read_text(encoding="utf-8")
    record = records.parse(data.encode())
    return variant(
        record,
        "gz",
        "hostile-1",
        title='<script>alert("t")</script>通知"><img src=x onerror=alert(1)>',
        summary="</p><script>alert('s')</script>",
        issuers=("<b>广州市</b>",),
        doc_number="穗府〔2020〕1号<i>",
    )


def fill(conn: Connection, *extra: Record) -> None:
    """Every example record, the republication family of test_links, and ``extra``; then
    run the followers the pages read (links and search)."""
    store(conn, *(records.parse(p.read_bytes()) for p in EXAMPLES), ORIGINAL, LEGACY_BY_NUMBER)
    if extra:
        store(conn, *extra)
    link(conn)
    catch_up(conn, SEARCH_FOLLOWER, index_records)


@contextlib.asynccontextmanager
async def portal_server(url: str, scope: str = "cn") -> AsyncIterator[str]:
    """The whole portal app (hub.web.app) on 127.0.0.1, a free port; yields its base URL."""
    pool = AsyncConnectionPool(url, open=False, min_size=1, max_size=4, kwargs={"autocommit": True})
    await pool.open()
    server = await listen(
        make_app(Portal(FEDERATION, pool, "http://portal.test", scope)), "127.0.0.1", 0
    )
    try:
        yield server.url
    finally:
        await server.runner.cleanup()
        await pool.close()


@dataclasses.dataclass
class Page:
    status: int
    headers: Any
    text: str
    url: str

    @property
    def doc(self) -> html.HtmlElement:
        return html.fromstring(self.text)

    def texts(self, xpath: str) -> list[str]:
        return [" ".join(e.text_content().split()) for e in self.doc.xpath(xpath)]


def browse(
    url: str, scope: str, work: Callable[[Callable[..., Awaitable[Page]]], Awaitable[T]]
) -> T:
    async def run() -> T:
        async with portal_server(url, scope) as base, aiohttp.ClientSession() as session:

            async def get(path: str, **options: Any) -> Page:
                async with session.get(base + path, **options) as response:
                    return Page(
                        response.status, response.headers, await response.text(), str(response.url)
                    )

            return await work(get)

    return asyncio.run(run())


def get(url: str, path: str, scope: str = "cn", **options: Any) -> Page:
    return browse(url, scope, lambda fetch: fetch(path, **options))


def test_root_redirects_to_the_portal_node(pg_conn: Connection, pg_url: str) -> None:
    page = get(pg_url, "/", scope="gd", allow_redirects=False)
    assert page.status == 302 and page.headers["Location"] == "/nodes/gd/"
    assert get(pg_url, "/?lang=zh-Hant", allow_redirects=False).headers["Location"] == (
        "/nodes/cn/?lang=zh-Hant"
    )
    assert get(pg_url, "/nodes/gz").url.endswith("/nodes/gz/")


def test_home_shows_emergencies_first_and_each_republished_document_once(
    pg_conn: Connection, pg_url: str
) -> None:
    fill(pg_conn)
    page = get(pg_url, "/nodes/cn/")
    assert page.status == 200 and page.doc.get("lang") == "zh-Hans"
    assert page.texts("//h1") == ["中华人民共和国中央人民政府"]
    assert "本页信息发布机关：中华人民共和国中央人民政府" in page.texts("//footer")[0]
    alerts = page.doc.xpath("//section[@class='alerts']//a[@class='title']/@href")
    urgent = [r for r in map(records.parse, map(Path.read_bytes, EXAMPLES)) if _alert(r)]
    assert sorted(alerts) == sorted(f"/records/{r.id}" for r in urgent) and len(urgent) >= 2
    latest = page.doc.xpath("//section[@class='latest']//a[@class='title']/@href")
    assert f"/records/{ORIGINAL.id}" in latest
    assert (
        f"/records/{REPUBLISHED.id}" not in latest
        and f"/records/{LEGACY_BY_NUMBER.id}" not in latest
    )
    copies = page.doc.xpath(f"//li[a/@href='/records/{ORIGINAL.id}']//details//a/@href")
    assert sorted(copies) == sorted(
        [f"/records/{REPUBLISHED.id}", f"/records/{LEGACY_BY_NUMBER.id}"]
    )
    assert f"/records/{example('notice-withdrawn').id}" not in latest, "withdrawn: not listed"
    children = page.doc.xpath("//aside[@class='children']//a/@href")
    assert children == [f"/nodes/{n.id}/" for n in FEDERATION.children("cn")]


def _alert(record: Record) -> bool:
    return not record.withdrawn and (
        record.kind == "emergency" or record.urgency in ("urgent", "emergency")
    )


def test_every_page_advertises_its_feeds_and_a_record_its_xml_and_json(
    pg_conn: Connection, pg_url: str
) -> None:
    fill(pg_conn)
    for path in (
        "/nodes/gd/",
        "/nodes",
        "/nodes/gd/catalogue",
        "/search?q=广州",
        f"/records/{DOCUMENT.id}",
    ):
        page = get(pg_url, path)
        feeds = {
            (link.get("type"), link.get("href"))
            for link in page.doc.xpath("//head/link[@rel='alternate']")
        }
        node = "cn" if path in ("/nodes", "/search?q=广州", f"/records/{DOCUMENT.id}") else "gd"
        assert ("application/atom+xml", f"/nodes/{node}/feed.atom") in feeds, path
        assert ("application/rss+xml", f"/nodes/{node}/feed.rss") in feeds, path
        assert ("application/atom+xml", f"/nodes/{node}/own.atom") in feeds, path
    record = get(pg_url, f"/records/{DOCUMENT.id}").doc
    alternates = {
        link.get("type"): link.get("href") for link in record.xpath("//head/link[@rel='alternate']")
    }
    assert alternates["application/xml"] == f"/api/records/{DOCUMENT.id}?format=xml"
    assert alternates["application/json"] == f"/api/records/{DOCUMENT.id}"


def test_record_page_has_the_metadata_table_body_and_links(
    pg_conn: Connection, pg_url: str
) -> None:
    fill(pg_conn)
    page = get(pg_url, f"/records/{DOCUMENT.id}")
    cells = page.doc.xpath("//table[@class='metadata']//th")
    metadata = {th.text_content(): " ".join(th.getnext().text_content().split()) for th in cells}
    assert metadata == {
        "索引号": "000014349/2018-00226",
        "主题分类": "综合政务\\政务公开",
        "发文机关": "国务院办公厅",
        "成文日期": "2018-12-05",
        "标题": DOCUMENT.title,
        "发文字号": "国办发〔2018〕118号",
        "发布日期": "2019-01-03",
        "有效性": "有效",
        "信息来源": "中华人民共和国中央人民政府",
    }
    assert page.texts("//div[@class='body']/h2") == ["一、总体要求"], "the body is markup, not text"
    assert page.doc.xpath("//ul[@class='interpretations']//a/@href") == [
        f"/records/{INTERPRETATION.id}"
    ]
    back = get(pg_url, f"/records/{INTERPRETATION.id}")
    assert back.doc.xpath("//ul[@class='outgoing']//a/@href") == [f"/records/{DOCUMENT.id}"]
    assert "解读对象" in back.texts("//ul[@class='outgoing']/li")[0]


def test_a_local_index_number_is_shown_as_the_sites_own(pg_conn: Connection, pg_url: str) -> None:
    local = dataclasses.replace(
        DOCUMENT,
        id=DOCUMENT.id + "-local",
        index_number=None,
        local_index_number="PZ00102-1700-2022-00034",
    )
    fill(pg_conn, local)
    page = get(pg_url, f"/records/{local.id}")
    cells = page.doc.xpath("//table[@class='metadata']//th")
    metadata = {th.text_content(): " ".join(th.getnext().text_content().split()) for th in cells}
    assert metadata["索引号"] == "PZ00102-1700-2022-00034（站点自编，非标准格式）"


def test_copies_and_implementations_are_grouped_by_province(
    pg_conn: Connection, pg_url: str
) -> None:
    implementing = variant(
        example("notice"),
        "sjz",
        "implement-1",
        relations=(Relation("implements", doc_number="国发[2019]5号"),),
    )
    fill(pg_conn, implementing)
    page = get(pg_url, f"/records/{ORIGINAL.id}")
    copies = page.doc.xpath("//dl[contains(@class, 'copies')]")[0]
    assert [dt.text_content() for dt in copies.xpath("dt")] == ["广东省人民政府", "河北省人民政府"]
    assert copies.xpath("dd/a/@href") == [
        f"/records/{LEGACY_BY_NUMBER.id}",
        f"/records/{REPUBLISHED.id}",
    ]
    done = page.doc.xpath("//dl[contains(@class, 'implementations')]")[0]
    assert [dt.text_content() for dt in done.xpath("dt")] == ["河北省人民政府"]
    assert done.xpath("dd/a/@href") == [f"/records/{implementing.id}"]


def test_withdrawn_record_says_so_and_hides_its_body(pg_conn: Connection, pg_url: str) -> None:
    fill(pg_conn)
    page = get(pg_url, f"/records/{example('notice-withdrawn').id}")
    assert page.status == 200
    assert page.texts("//p[@class='withdrawn']")[0].startswith("该信息已撤回")
    assert page.doc.xpath("//div[@class='body']") == []


def test_hostile_text_is_escaped_everywhere(pg_conn: Connection, pg_url: str) -> None:
    bad = hostile()
    fill(pg_conn, bad)
    for path in (f"/records/{bad.id}", "/nodes/gz/", "/nodes/gz/catalogue", "/search?q=alert"):
        page = get(pg_url, path)
        assert page.status == 200, path
        assert page.doc.xpath("//script | //img | //b | //i") == [], path
        assert '<script>alert("t")</script>' in page.doc.text_content(), path
    assert "<script>" not in get(pg_url, f"/records/{bad.id}").text
    assert "script-src" not in get(pg_url, "/nodes/gz/").headers["Content-Security-Policy"]


def test_catalogue_browses_by_topic_and_year_and_pages(pg_conn: Connection, pg_url: str) -> None:
    base = example("notice")
    many = [
        variant(base, "ft", f"cat-{n:02}", published=base.published - timedelta(days=n * 20))
        for n in range(60)
    ]
    fill(pg_conn, *many)
    page = get(pg_url, "/nodes/ft/catalogue")
    assert page.status == 200 and len(page.doc.xpath("//table[@class='list']/tbody/tr")) == 50
    years = page.doc.xpath("//aside[@class='facets']/ul[2]/li/a/text()")
    assert years == sorted({str(r.published.astimezone(CHINA).year) for r in many}, reverse=True)
    first = page.doc.xpath("//table[@class='list']//a/@href")
    following = get(pg_url, page.doc.xpath("//a[@rel='next']/@href")[0])
    rest = following.doc.xpath("//table[@class='list']//a/@href")
    assert len(rest) == 10 and not set(first) & set(rest)
    assert following.doc.xpath("//a[@rel='next']") == []
    one_year = get(pg_url, f"/nodes/ft/catalogue?year={years[1]}").doc
    shown = one_year.xpath("//table[@class='list']//a/@href")
    assert shown and len(shown) < 60
    topic = get(pg_url, "/nodes/cn/catalogue?topic=综合政务").doc
    assert set(topic.xpath("//table[@class='list']//a/@href")) == {
        f"/records/{DOCUMENT.id}",
        f"/records/{INTERPRETATION.id}",
    }


@pytest.mark.parametrize(
    "path",
    [
        "/nodes/cn/catalogue?year=19",
        "/nodes/cn/catalogue?year=二〇一九",
        "/nodes/cn/catalogue?after=yesterday",
        "/nodes/cn/?lang=klingon",
        "/search?q=" + "长" * 300,
        "/search?q=x&node=nowhere",
        "/search?q=x&scope=nowhere",
        "/search?q=x&kind=memo",
        "/search?q=x&topic=天气",
        "/search?q=x&year=19",
        "/search?q=x&sort=best",
        "/search?q=x&cursor=nonsense",
    ],
)
def test_bad_parameters_get_a_400_page(pg_conn: Connection, pg_url: str, path: str) -> None:
    page = get(pg_url, path)
    assert page.status == 400 and page.headers["Content-Type"].startswith("text/html")
    assert page.texts("//h1")[0].startswith("400")


@pytest.mark.parametrize(
    "path",
    [
        "/nodes/nowhere/",
        "/records/urn:govhub:cn:missing",
        "/no/such/page",
        "/nodes/he/",
        "/nodes/he/catalogue",
    ],
)
def test_unknown_nodes_records_and_addresses_get_a_404_page(
    pg_conn: Connection, pg_url: str, path: str
) -> None:
    page = get(pg_url, path, scope="gd")  # a provincial portal: Hebei is not part of it
    assert page.status == 404 and page.headers["Content-Type"].startswith("text/html")
    assert page.texts("//h1")[0].startswith("404")
    assert "广东省人民政府" in page.text, "an error page still names the agency"


def test_search_finds_records_and_pages_through_them(pg_conn: Connection, pg_url: str) -> None:
    fill(pg_conn)
    page = get(pg_url, "/search?q=三项制度")
    found = page.doc.xpath("//ol[@class='results']//a[@class='title']/@href")
    assert set(found) == {f"/records/{DOCUMENT.id}", f"/records/{INTERPRETATION.id}"}
    traditional = get(pg_url, "/search?q=三項制度&lang=zh-Hant")
    assert set(traditional.doc.xpath("//ol[@class='results']//a[@class='title']/@href")) == {
        f"/records/{DOCUMENT.id}?lang=zh-Hant",
        f"/records/{INTERPRETATION.id}?lang=zh-Hant",
    }
    scoped = get(pg_url, "/search?q=三项制度&node=gd")
    assert scoped.doc.xpath("//ol[@class='results']") == []
    assert "没有找到" in scoped.texts("//p[@class='about']")[0]


def test_search_page_counts_marks_filters_and_keeps_each_script(
    pg_conn: Connection, pg_url: str
) -> None:
    written = variant(
        DOCUMENT, "gz", "trad-search", title="關於推行行政執法公示制度的意見：（試行）"
    )
    fill(pg_conn, written, hostile())
    page = get(pg_url, "/search?q=执法公示")  # Simplified query: the Traditional record too
    results = "//ol[@class='results']/li"
    assert page.texts("//p[@class='about']//span[@class='count']") == ["3"]
    titles = page.texts(f"{results}/a[@class='title']")
    assert "關於推行行政執法公示制度的意見：（試行）" in titles, "as written, punctuation too"
    marked = page.doc.xpath(f"{results}/a[@class='title']/mark/text()")
    assert set(marked) == {"执法公示", "執法公示"}
    # every filter and the sort are links that carry the query
    meta = page.doc.xpath(f"{results}//span[@class='meta']/a/@href")
    assert "/search?q=执法公示&scope=gz" in [unquote(h) for h in meta]
    assert any("kind=document" in h for h in meta) and any("year=" in h for h in meta)
    by_date = page.doc.xpath("//p[@class='sort']/a/@href")[0]
    assert unquote(by_date) == "/search?q=执法公示&sort=date"
    narrowed = get(pg_url, "/search?q=執法公示&scope=gz&kind=document&sort=date")
    assert narrowed.doc.xpath(f"{results}/a[@class='title']/@href") == [f"/records/{written.id}"]
    assert len(narrowed.doc.xpath("//ul[@class='filters']/li")) == 3
    assert get(pg_url, "/search?q=执法公示&year=1990").doc.xpath(results) == []
    # Traditional page: every result in Traditional, marks kept
    traditional = get(pg_url, "/search?q=执法公示&lang=zh-Hant")
    assert set(traditional.doc.xpath(f"{results}/a[@class='title']/mark/text()")) == {"執法公示"}
    # marks never let markup in
    hostile_page = get(pg_url, "/search?q=alert")
    assert hostile_page.doc.xpath("//main//script | //main//img") == []
    assert hostile_page.doc.xpath(f"{results}/a[@class='title']/mark/text()")[0] == "alert"


def test_traditional_pages_convert_text_but_not_addresses(pg_conn: Connection, pg_url: str) -> None:
    data = (ROOT / "examples" / "records" / "document.xml").read_text(encoding="utf-8")
    data = data.replace(
        "<h2 xmlns",
        '<p xmlns="http://www.w3.org/1999/xhtml"><a href="https://www.gov.cn/国务院/文件.html">国务院文件</a></p><h2 xmlns',
    )
    linked = variant(records.parse(data.encode()), "cn", "trad-1")
    fill(pg_conn, linked)
    home = get(pg_url, "/nodes/cn/?lang=zh-Hant")
    assert home.doc.get("lang") == "zh-Hant"
    assert home.texts("//h1") == ["中華人民共和國中央人民政府"]
    hrefs = home.doc.xpath("//main//a/@href")
    assert hrefs and all(h.endswith("lang=zh-Hant") for h in hrefs if h.startswith("/"))
    assert home.doc.xpath("//a[@class='lang']/@href") == ["/nodes/cn/"]
    assert home.texts("//a[@class='lang']") == ["简体中文"], "named in its own script"
    feeds = home.doc.xpath("//head/link[@rel='alternate']/@href")
    assert feeds[0] == "/nodes/cn/feed.atom?script=Hant", "the feeds' own Traditional switch"
    record = get(pg_url, f"/records/{linked.id}?lang=zh-Hant")
    assert record.texts("//div[@class='body']//a") == ["國務院文件"]
    assert record.doc.xpath("//div[@class='body']//a/@href") == [
        "https://www.gov.cn/国务院/文件.html"
    ]
    assert "發文機關" in record.texts("//table[@class='metadata']//th")
    assert get(pg_url, "/nodes/cn/").doc.xpath("//a[@class='lang']/@href") == [
        "/nodes/cn/?lang=zh-Hant"
    ]


def test_directory_lists_the_portal_subtree(pg_conn: Connection, pg_url: str) -> None:
    page = get(pg_url, "/nodes", scope="gd")
    links = page.doc.xpath("//table[@class='directory']//td[1]/a/@href")
    assert links == [f"/nodes/{n.id}/" for n in FEDERATION.subtree("gd")]
    assert "广州市人民政府" in page.texts("//table[@class='directory']//td[1]")
    assert get(pg_url, "/nodes/", allow_redirects=False).status == 301


def test_static_stylesheet_and_security_headers(pg_conn: Connection, pg_url: str) -> None:
    page = get(pg_url, "/nodes/cn/")
    css = page.doc.xpath("//head/link[@rel='stylesheet']/@href")[0]
    assert get(pg_url, css).status == 200
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_the_hub_serves_the_portal_and_its_followers_keep_it_current(
    pg_conn: Connection, pg_url: str
) -> None:
    """What `govhub hub run` adds next to its consumers: the portal and the followers."""
    from hub.store import connect
    from hub.store.followers import run_followers
    from hub.web.serve import PortalOptions, serving_portal

    async def scenario() -> tuple[list[str], int]:
        stop = asyncio.Event()
        followers = asyncio.create_task(run_followers(lambda: connect(pg_url), stop))
        options = PortalOptions(port=0, base_url="https://portal.example.gov.cn/")
        async with serving_portal(FEDERATION, "cn", pg_url, options) as server:
            store(pg_conn, DOCUMENT, INTERPRETATION)  # arrives while the hub runs
            async with aiohttp.ClientSession() as session:
                for _ in range(600):
                    async with session.get(f"{server.url}/records/{DOCUMENT.id}") as response:
                        page = html.fromstring(await response.text())
                    found = page.xpath("//ul[@class='interpretations']//a/@href")
                    if found:
                        break
                    await asyncio.sleep(0.1)
                canonical = page.xpath("//link[@rel='canonical']/@href")
                async with session.get(f"{server.url}/nodes/cn/feed.atom") as response:
                    status = response.status
        stop.set()
        await followers
        return found + canonical, status

    found, feed_status = asyncio.run(scenario())
    assert found == [
        f"/records/{INTERPRETATION.id}",
        f"https://portal.example.gov.cn/records/{DOCUMENT.id}",
    ]
    assert feed_status == 200


def test_hub_run_refuses_a_base_url_that_is_not_http() -> None:
    import argparse

    from hub.cli import hub as hub_command
    from hub.cli.common import UsageError
    from hub.settings import Settings

    parser = argparse.ArgumentParser(prog="govhub")
    hub_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["hub", "run", "--base-url", "portal.example.gov.cn"])
    assert (args.port, args.host) == (8080, "127.0.0.1")
    environ = {"GOVHUB_CONFIG": str(ROOT / "nodes.toml"), "GOVHUB_BROKER_URL": "amqp://x/y"}
    with pytest.raises(UsageError, match="must start with http:// or https://"):
        args.handler(args, Settings.from_env(environ, config=None))


def test_a_database_outage_gets_a_503_page() -> None:
    async def scenario() -> tuple[int, str]:
        pool = AsyncConnectionPool(
            "postgresql://nobody@127.0.0.1:1/none", open=False, min_size=0, max_size=1, timeout=1
        )
        await pool.open(wait=False)
        app = make_app(Portal(FEDERATION, pool, "http://portal.test", "cn"))
        server = await listen(app, "127.0.0.1", 0)
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{server.url}/nodes/cn/") as response,
            ):
                return response.status, await response.text()
        finally:
            await server.runner.cleanup()
            await pool.close()

    status, text = asyncio.run(scenario())
    assert status == 503 and "数据库暂时不可用" in text
