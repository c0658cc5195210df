"""The page adapter end to end: settings, list pages over loopback HTTP, selectors, hostile pages."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from adapters.contract import Context, Failure, Item
from adapters.kit.http import HttpClient, RetryLater
from adapters.page.adapter import Page, PageAdapter, PageSettings
from adapters.registry import registry
from adapters.settings import read_settings
from hub import records
from hub.errors import ConfigInvalid, InputError
from hub.federation.model import Node, Source
from hub.records import Record, Topic

BEIJING = timezone(timedelta(hours=8))
CORPUS = Path(__file__).parents[2] / "shared" / "corpora" / "gov-pages"
SHEXIAN = Node("shexian", "涉县人民政府", "county", "handan", "1304260001", "www.shexian.gov.cn")

GBK_DETAIL = """<!DOCTYPE html>
<html><head>
<meta http-equiv="Content-Type" content="text/html; charset=gb2312">
<meta name="ArticleTitle" content="涉县人民政府办公室关于切实做好冬春季森林草原防灭火工作的通知">
<meta name="PubDate" content="2020-10-30 09:10">
<title>森林草原防灭火</title>
</head><body>
<div class="header"><a href="/zwgk/tzgg/202001/t20200101_1.html">网站声明</a></div>
<div class="xxgk">
  <p><strong>索 引 号</strong>：11130426000966315U/2020-00045</p>
  <p><strong>发布机构</strong>：涉县人民政府办公室</p>
  <p><strong>名　　称</strong>：涉县人民政府办公室关于切实做好冬春季森林草原防灭火工作的通知</p>
  <p><strong>文　　号</strong>:涉政办字〔2020〕45号</p>
  <p><strong>主题分类</strong>：农业、林业、水利\\林业</p>
  <p><strong>成文日期</strong>：2020年10月28日</p>
  <p><strong>发布日期</strong>：2020年10月30日</p>
</div>
<div class="TRS_Editor">
  <p style="text-indent:2em" onclick="steal()">各乡镇人民政府，县政府有关部门：</p>
  <p>标　　题：这不是元数据，而是正文里的一句话。</p>
  <script>var label = "索引号：000014349/2019-00001";</script>
  <p><a href="../202010/P020201030.pdf">附件：防火责任书</a> <a href="javascript:alert(1)">x</a></p>
</div>
</body></html>
"""


def gov_page(number: str) -> bytes:
    """A www.gov.cn policy page of the corpus, as the server would send it (the test
    skips, saying why, where the third-party corpus is absent, as in a user's clone)."""
    if not CORPUS.is_dir():
        pytest.skip(f"corpus of real government pages not found at {CORPUS}")
    fragment = (CORPUS / "govcn-zhengce" / f"content_{number}.html").read_text(encoding="utf-8")
    return f'<html><head><meta charset="utf-8"></head><body>{fragment}</body></html>'.encode()


def list_page(*links: str, extra: str = "") -> bytes:
    items = "".join(
        f'<li><a href="{href}">文件{n}</a><span>2020-10-30</span></li>'
        for n, href in enumerate(links)
    )
    return f"""<html><head><meta charset="utf-8"><title>通知公告</title></head><body>
<div class="nav"><ul><li><a href="/zwgk/tzgg/202001/t20200101_9.html">导航</a></li></ul></div>
<ul class="list">{items}</ul>
<div class="side"><ul><li><a href="http://other.gov.cn/a/t20200101_1.html">别的网站</a></li></ul></div>
{extra}
<div class="footer"><a href="/wzsm/201709/t20170912_719157.html">网站声明</a></div>
</body></html>""".encode()


@dataclass
class Site:
    """A loopback web site: path -> (status, headers, body); counts requests per path."""

    pages: dict[str, tuple[int, Mapping[str, str], bytes]]
    asked: dict[str, int] = field(default_factory=dict)
    conditional: dict[str, bool] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        self.asked[request.path] = self.asked.get(request.path, 0) + 1
        status, headers, body = self.pages.get(request.path, (404, {}, b"not found"))
        modified = headers.get("Last-Modified")
        self.conditional[request.path] = "If-Modified-Since" in request.headers
        if modified and request.headers.get("If-Modified-Since") == modified:
            return web.Response(status=304, headers={"Last-Modified": modified})
        return web.Response(status=status, headers=dict(headers), body=body)


@asynccontextmanager
async def serve(site: Site) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", site.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def html(
    body: bytes, charset: str | None = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    content_type = "text/html" + (f"; charset={charset}" if charset else "")
    return 200, {"Content-Type": content_type, **headers}, body


async def harvest(
    settings: dict[str, Any], site: Site, http: HttpClient | None = None, runs: int = 1
) -> list[list[Item | Failure]]:
    """What fetch yields on each of ``runs`` runs (one HttpClient, so validators are kept)."""
    async with serve(site) as root:
        values = {
            key: value.replace("ROOT", root) if isinstance(value, str) else value
            for key, value in settings.items()
        }
        async with HttpClient(per_host=2) as client:
            adapter = PageAdapter(
                PageSettings(**values), Context(SHEXIAN, "tzgg", http=http or client)
            )
            return [[found async for found in adapter.fetch(None)] for _ in range(runs)]


def convert(item: Item, **settings: Any) -> Record | None:
    adapter = PageAdapter(PageSettings(url=item.key, **settings), Context(SHEXIAN, "tzgg"))
    return adapter.convert(item)


def page_item(url: str, body: str | bytes, charset: str | None = None) -> Item:
    data = body.encode() if isinstance(body, str) else body
    return Item(url, url, Page(url, data, charset))


# --- the adapter as installed -------------------------------------------------------------


def test_the_page_adapter_is_registered() -> None:
    adapter = registry().load("page")
    assert adapter is PageAdapter
    assert adapter.name == "page" and adapter.sample == "url"


def test_settings_from_nodes_toml() -> None:
    source = Source(
        "tzgg",
        "page",
        {"url": "http://www.shexian.gov.cn/zwgk/tzgg/", "links": "ul.list a", "max_pages": 3},
        line=12,
    )
    settings = read_settings(PageSettings, source, SHEXIAN, "nodes.toml")
    assert settings == PageSettings(
        url="http://www.shexian.gov.cn/zwgk/tzgg/", links="ul.list a", max_pages=3
    )
    wrong = Source("tzgg", "page", {"link": "a", "max_pages": "3"}, line=12)
    with pytest.raises(ConfigInvalid) as caught:
        read_settings(PageSettings, wrong, SHEXIAN, "nodes.toml")
    text = str(caught.value)
    assert "nodes.toml:12: node[shexian].sources[tzgg].link: unknown key" in text
    assert "did you mean 'links'?" in text
    assert "max_pages: '3' is not an integer" in text
    assert "url: missing (expected the list page of a column" in text


def test_every_setting_has_help_and_is_documented_with_its_default() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "adapters" / "page.md").read_text(encoding="utf-8")
    table = {
        line.split("|")[1].strip(): line for line in doc.splitlines() if line.startswith("| `")
    }
    for spec in dataclasses.fields(PageSettings):
        assert spec.metadata.get("help"), f"PageSettings.{spec.name} has no help"
        assert f"`{spec.name}`" in table, f"docs/adapters/page.md does not document {spec.name}"
        if spec.default is dataclasses.MISSING:
            assert "(required)" in table[f"`{spec.name}`"]
        else:
            shown = f'"{spec.default}"' if isinstance(spec.default, str) else str(spec.default)
            assert f"`{shown}`" in table[f"`{spec.name}`"], f"no default for {spec.name}"


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"url": "ftp://example.gov.cn/"}, "url: 'ftp://example.gov.cn/' is not an http(s) URL"),
        ({"url": "/zwgk/"}, "is not an http(s) URL"),
        ({"kind": "blog"}, "kind: 'blog' is not a kind this adapter makes"),
        ({"kind": "service"}, "kind: 'service' is not a kind"),
        ({"max_pages": 0}, "max_pages: 0 list pages (expected 1 or more)"),
        ({"title": "div[["}, "title: 'div[[' is not a CSS selector"),
        ({"links": "xpath://a[@href"}, "links: '//a[@href' is not an XPath expression"),
    ],
)
def test_wrong_settings_are_refused_at_start(settings: dict[str, Any], says: str) -> None:
    values = {"url": "http://www.shexian.gov.cn/zwgk/tzgg/", **settings}
    with pytest.raises(ConfigInvalid) as caught:
        PageAdapter(PageSettings(**values), Context(SHEXIAN, "tzgg"))
    assert "node[shexian].sources[tzgg]." in str(caught.value)
    assert says in str(caught.value)


# --- fetch over loopback HTTP ---------------------------------------------------------------


def test_list_page_to_records_end_to_end() -> None:
    site = Site(
        {
            "/zwgk/tzgg/": html(
                list_page(
                    "202010/t20201030_3.html",  # newest first, as sites list them
                    "/zwgk/tzgg/202010/t20201029_2.html",
                    "202010/t20201028_1.html",
                    "202010/t20201028_1.html#top",  # the same page again
                )
            ),
            "/zwgk/tzgg/202010/t20201028_1.html": html(gov_page("5351718"), "utf-8"),
            "/zwgk/tzgg/202010/t20201030_3.html": html(
                GBK_DETAIL.encode("gbk")
            ),  # charset in meta only
            # t20201029_2.html is missing: 404
        }
    )
    (found,) = asyncio.run(harvest({"url": "ROOT/zwgk/tzgg/"}, site))
    assert [type(f).__name__ for f in found] == ["Item", "Failure", "Item"]  # oldest first
    first, missing, last = found
    assert isinstance(first, Item) and isinstance(missing, Failure) and isinstance(last, Item)
    assert first.key.endswith("/zwgk/tzgg/202010/t20201028_1.html")
    assert missing.where.endswith("/zwgk/tzgg/202010/t20201029_2.html")
    assert "HTTP 404" in missing.message
    assert first.cursor is None and last.cursor is None
    # Navigation, footer and other sites' pages were not followed.
    assert set(site.asked) == {
        "/zwgk/tzgg/",
        "/zwgk/tzgg/202010/t20201028_1.html",
        "/zwgk/tzgg/202010/t20201029_2.html",
        "/zwgk/tzgg/202010/t20201030_3.html",
    }
    assert site.asked["/zwgk/tzgg/202010/t20201028_1.html"] == 1

    joint = convert(first)
    assert joint is not None
    assert joint.issuers == ("国务院办公厅", "中央军委办公厅")
    assert joint.doc_number == "国办发〔1996〕25号"
    assert joint.link == first.key
    assert records.parse(joint.to_xml()) == joint

    notice = convert(last)
    assert notice is not None
    assert notice.kind == "document"
    assert notice.title == "涉县人民政府办公室关于切实做好冬春季森林草原防灭火工作的通知"
    assert notice.index_number == "11130426000966315U/2020-00045"
    assert notice.issuers == ("涉县人民政府办公室",)
    assert notice.doc_number == "涉政办字〔2020〕45号"
    assert notice.topic == Topic("农业、林业、水利", "林业")
    assert notice.created == date(2020, 10, 28)
    # 发布日期 shows the day; PubDate gives the time of that same day.
    assert notice.published == datetime(2020, 10, 30, 9, 10, tzinfo=BEIJING)
    assert notice.body is not None
    assert "各乡镇人民政府" in notice.body and "这不是元数据" in notice.body
    assert (
        "onclick" not in notice.body
        and "script" not in notice.body
        and "javascript" not in notice.body
    )
    assert 'href="' + last.key.rsplit("/", 2)[0] + '/202010/P020201030.pdf"' in notice.body
    assert records.parse(notice.to_xml()) == notice


def test_gbk_page_declared_by_http_only() -> None:
    body = GBK_DETAIL.replace(
        '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">', ""
    )
    site = Site({"/zwgk/tzgg/202010/t20201030_3.html": html(body.encode("gbk"), "GBK")})
    (found,) = asyncio.run(harvest({"url": "ROOT/zwgk/tzgg/202010/t20201030_3.html"}, site))
    (item,) = found
    assert isinstance(item, Item)
    assert item.data.charset == "gbk"
    record = convert(item)
    assert record is not None and record.issuers == ("涉县人民政府办公室",)


def test_gbk_page_with_no_charset_anywhere_is_detected() -> None:
    body = GBK_DETAIL.replace(
        '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">', ""
    )
    record = convert(
        page_item("http://www.shexian.gov.cn/zwgk/tzgg/202010/t20201030_3.html", body.encode("gbk"))
    )
    assert record is not None and record.title.startswith("涉县人民政府办公室关于")


def test_a_server_default_latin1_charset_does_not_garble_a_gbk_page() -> None:
    record = convert(
        page_item(
            "http://www.shexian.gov.cn/a/t20201030_3.html", GBK_DETAIL.encode("gbk"), "iso-8859-1"
        )
    )
    assert record is not None and record.issuers == ("涉县人民政府办公室",)


def test_a_detail_url_yields_one_item() -> None:
    site = Site(
        {"/zhengce/content/2019-02/15/content_5365945.htm": html(gov_page("5365945"), "utf-8")}
    )
    (found,) = asyncio.run(
        harvest({"url": "ROOT/zhengce/content/2019-02/15/content_5365945.htm"}, site)
    )
    (item,) = found
    assert isinstance(item, Item) and item.key.endswith("content_5365945.htm")
    record = convert(item)
    assert record is not None and record.doc_number == "国发〔2019〕5号"


def test_next_list_pages_up_to_max_pages() -> None:
    site = Site(
        {
            "/tzgg/": html(
                list_page("t20201003_3.html", extra='<a href="index_1.html">下一页</a>')
            ),
            "/tzgg/index_1.html": html(
                list_page("t20201002_2.html", extra='<a href="index_2.html">下一页 &gt;</a>')
            ),
            "/tzgg/index_2.html": html(list_page("t20201001_1.html")),
            "/tzgg/t20201003_3.html": html(GBK_DETAIL.encode("gbk")),
            "/tzgg/t20201002_2.html": html(GBK_DETAIL.encode("gbk")),
            "/tzgg/t20201001_1.html": html(GBK_DETAIL.encode("gbk")),
        }
    )
    (found,) = asyncio.run(harvest({"url": "ROOT/tzgg/", "max_pages": 2}, site))
    assert [f.key.rsplit("/", 1)[1] for f in found if isinstance(f, Item)] == [
        "t20201002_2.html",
        "t20201003_3.html",
    ]
    assert "/tzgg/index_2.html" not in site.asked


MODIFIED = "Wed, 28 Oct 2020 09:10:00 GMT"


def test_unchanged_detail_pages_are_not_yielded_again() -> None:
    site = Site(
        {
            "/tzgg/": html(list_page("t20201003_3.html"), **{"Last-Modified": MODIFIED}),
            "/tzgg/t20201003_3.html": html(GBK_DETAIL.encode("gbk"), **{"Last-Modified": MODIFIED}),
        }
    )
    first, second = asyncio.run(harvest({"url": "ROOT/tzgg/"}, site, runs=2))
    assert len(first) == 1 and isinstance(first[0], Item)
    assert second == []  # the detail page answered 304
    assert site.asked == {"/tzgg/": 2, "/tzgg/t20201003_3.html": 2}
    assert site.conditional["/tzgg/t20201003_3.html"] is True
    assert site.conditional["/tzgg/"] is False  # list pages are always read in full


def test_list_page_that_fails_is_one_failure() -> None:
    (found,) = asyncio.run(harvest({"url": "ROOT/tzgg/"}, Site({})))
    (failure,) = found
    assert isinstance(failure, Failure) and "HTTP 404" in failure.message


def test_retry_after_reaches_the_harvester() -> None:
    site = Site({"/tzgg/": (503, {"Retry-After": "120"}, b"busy")})
    with pytest.raises(RetryLater) as caught:
        asyncio.run(harvest({"url": "ROOT/tzgg/"}, site))
    assert caught.value.delay == 120


def test_a_linked_file_that_is_not_a_page_is_a_failure() -> None:
    site = Site(
        {
            "/tzgg/": html(list_page("t20201003_3.html")),
            "/tzgg/t20201003_3.html": (200, {"Content-Type": "application/pdf"}, b"%PDF-1.4"),
        }
    )
    (found,) = asyncio.run(harvest({"url": "ROOT/tzgg/"}, site))
    (failure,) = found
    assert isinstance(failure, Failure) and "application/pdf" in failure.message


def test_configured_links_selector() -> None:
    listing = """<html><body><table class="zfwj">
<tr><th>名称</th><th>发布日期</th></tr>
<tr><td><a href="show.jsp?id=101">第一份文件</a></td><td>2021-03-05</td></tr>
<tr><td><a href="show.jsp?id=102">第二份文件</a></td><td>2021-03-04</td></tr>
</table><div class="side"><a href="show.jsp?id=999">热点</a></div></body></html>""".encode()
    site = Site(
        {
            "/list.jsp": html(listing, "utf-8"),
            "/show.jsp": html(GBK_DETAIL.encode("gbk")),
        }
    )
    for links in ("table.zfwj td > a", "xpath://table[@class='zfwj']//a/@href"):
        (found,) = asyncio.run(harvest({"url": "ROOT/list.jsp", "links": links}, site))
        assert [f.key.rsplit("/", 1)[1] for f in found] == ["show.jsp?id=102", "show.jsp?id=101"]


def test_a_links_selector_that_finds_nothing_is_reported() -> None:
    site = Site({"/tzgg/": html(list_page("t20201003_3.html"))})
    (found,) = asyncio.run(harvest({"url": "ROOT/tzgg/", "links": "div.nothing a"}, site))
    (failure,) = found
    assert isinstance(failure, Failure)
    assert "links selector 'div.nothing a' found no link" in failure.message


def test_a_page_without_article_links_is_itself_the_item() -> None:
    site = Site({"/sample.html": html(GBK_DETAIL.encode("gbk"))})
    (found,) = asyncio.run(harvest({"url": "ROOT/sample.html"}, site))
    (item,) = found
    assert isinstance(item, Item)
    assert convert(item) is not None


# --- convert with selectors and edge cases --------------------------------------------------

CUSTOM = """<html><head><meta charset="utf-8"></head><body>
<div class="article">
  <h1> 关于2021年清明节放假的通知 </h1>
  <div class="info"><span class="date">发布时间：2021-03-05 10:20</span>
  <span class="org">发文单位：涉县人民政府办公室，涉县应急管理局</span>
  <span class="no">涉政办〔2021〕3号</span><span class="kw">清明</span><span class="kw">放假</span></div>
  <div class="text"><p>各乡镇：</p><p>现将清明节放假安排通知如下。</p></div>
  <div class="share">分享到微信</div>
</div></body></html>"""


def test_field_selectors_css_and_xpath() -> None:
    item = page_item("http://www.shexian.gov.cn/tzgg/202103/t20210305_1.html", CUSTOM)
    record = convert(
        item,
        title="div.article h1",
        published="xpath://span[@class='date']",
        issuers="span.org",
        doc_number="xpath:string(//span[@class='no'])",
        keywords="span.kw",
        body="div.text",
        kind="notice",
    )
    assert record is not None
    assert record.title == "关于2021年清明节放假的通知"
    assert record.published == datetime(2021, 3, 5, 10, 20, tzinfo=BEIJING)
    assert record.issuers == ("涉县人民政府办公室", "涉县应急管理局")
    assert record.doc_number == "涉政办〔2021〕3号"
    assert record.keywords == ("清明", "放假")
    assert record.kind == "document"  # a document number is configured and found
    assert record.body == (
        '<p xmlns="http://www.w3.org/1999/xhtml">各乡镇：</p>'
        '<p xmlns="http://www.w3.org/1999/xhtml">现将清明节放假安排通知如下。</p>'
    )
    assert records.parse(record.to_xml()) == record


def without(page: str, css_class: str) -> str:
    """``page`` without its ``<span class="css_class">`` element."""
    start = page.index(f'<span class="{css_class}">')
    return page[:start] + page[page.index("</span>", start) + len("</span>") :]


def test_without_document_metadata_the_configured_kind_is_used() -> None:
    item = page_item("http://www.shexian.gov.cn/tzgg/202103/t20210305_1.html", CUSTOM)
    record = convert(item, title="h1", kind="notice")
    assert record is not None and record.kind == "notice"
    # Labels outside the body are still recognised when some selectors are configured.
    assert record.issuers == ("涉县人民政府办公室", "涉县应急管理局")
    assert record.published == datetime(2021, 3, 5, 10, 20, tzinfo=BEIJING)
    plain = page_item(item.key, without(CUSTOM, "org"))
    record = convert(plain, title="h1", kind="notice")
    assert record is not None and record.issuers == ("涉县人民政府",)  # none shown: the node's name


def test_a_title_selector_that_matches_nothing_means_no_record() -> None:
    item = page_item("http://www.shexian.gov.cn/tzgg/", CUSTOM)
    assert convert(item, title="h2.missing") is None


def test_a_record_page_without_a_publication_date_is_unusable() -> None:
    item = page_item("http://www.shexian.gov.cn/tzgg/", without(CUSTOM, "date"))
    with pytest.raises(InputError) as caught:
        convert(item, title="h1")
    assert "published: the page shows no publication date" in str(caught.value)
    assert str(caught.value).startswith("http://www.shexian.gov.cn/tzgg/: ")


def gov_table(**cells: str) -> str:
    rows = "".join(
        f"<tr><td><b>{label}：</b></td><td>{value}</td></tr>" for label, value in cells.items()
    )
    return f'<html><body><table class="bd1">{rows}</table><div id="UCAP-CONTENT"><p>正文</p></div></body></html>'


BASE = {"标　　题": "测试文件", "发文机关": "国务院", "发布日期": "2019年02月15日"}


def test_an_impossible_date_is_unusable() -> None:
    item = page_item(
        "http://www.gov.cn/a/content_1.htm", gov_table(**BASE, 成文日期="2019年02月30日")
    )
    with pytest.raises(
        InputError, match=r"created: '2019年02月30日' is not a real date: 2019-02 has no day 30"
    ):
        convert(item)


def test_published_before_created_is_unusable() -> None:
    item = page_item(
        "http://www.gov.cn/a/content_1.htm", gov_table(**BASE, 成文日期="2019年03月01日")
    )
    with pytest.raises(InputError, match="published 2019-02-15 is before created 2019-03-01"):
        convert(item)


def test_a_value_the_standard_refuses_makes_the_page_unusable() -> None:
    item = page_item(
        "http://www.gov.cn/a/content_1.htm", gov_table(**{**BASE, "标　　题": "长" * 10001})
    )
    with pytest.raises(InputError) as caught:
        convert(item)
    assert str(caught.value).startswith("http://www.gov.cn/a/content_1.htm: title: ")
    assert "is not a valid title" in str(caught.value)


def test_an_index_number_of_the_wrong_year_is_kept_as_local(
    caplog: pytest.LogCaptureFixture,
) -> None:
    item = page_item(
        "http://www.gov.cn/a/content_1.htm", gov_table(**BASE, 索引号="000014349/2017-00001")
    )
    with caplog.at_level(logging.WARNING, logger="adapters.page.adapter"):
        record = convert(item)
    assert record is not None and record.index_number is None and record.kind == "document"
    assert record.local_index_number == "000014349/2017-00001"
    assert "year 2017 matches neither created nor published" in caplog.text
    assert records.parse(record.to_xml()) == record


def test_a_topic_outside_the_vocabulary_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    item = page_item(
        "http://www.gov.cn/a/content_1.htm", gov_table(**BASE, 主题分类="环保局\\大气")
    )
    with caplog.at_level(logging.WARNING, logger="adapters.page.adapter"):
        record = convert(item)
    assert record is not None and record.topic is None
    assert "主题分类 dropped" in caplog.text and "环保局" in caplog.text


@pytest.mark.parametrize("none", ["无", "暂无", "-", "/"])
def test_no_doc_number_written_as_none(none: str) -> None:
    item = page_item("http://www.gov.cn/a/content_1.htm", gov_table(**BASE, 发文字号=none))
    record = convert(item)
    assert record is not None and record.doc_number is None


def test_ascii_colon_and_value_in_the_same_cell() -> None:
    page = """<html><body><table><tr><td>索引号:000014349/2019-00007</td><td>发文机关:国务院</td></tr>
    <tr><td colspan="2">标题:测试文件</td></tr><tr><td>发布日期:2019-02-15</td></tr></table></body></html>"""
    record = convert(page_item("http://www.gov.cn/a/content_1.htm", page))
    assert record is not None
    assert (record.index_number, record.issuers, record.title) == (
        "000014349/2019-00007",
        ("国务院",),
        "测试文件",
    )


def test_a_page_over_the_size_limit_is_refused() -> None:
    item = page_item("http://www.gov.cn/a/content_1.htm", gov_table(**BASE) + " " * 2000)
    with pytest.raises(InputError) as caught:
        convert(item, max_bytes=1000)
    message = str(caught.value)
    assert "page: page is 2,2" in message and "over the limit of 1,000" in message
    assert "max_bytes" in message


@pytest.mark.parametrize("body", [b"", b"   \n ", "\u3000".encode("gbk")])
def test_an_empty_page_is_unusable(body: bytes) -> None:
    with pytest.raises(InputError, match=r"content_1\.htm: page: page is empty"):
        convert(page_item("http://www.gov.cn/a/content_1.htm", body))


@pytest.mark.parametrize("body", [b"\x00\x00\xff\xfe\x00", bytes(range(256)) * 4, b"<html>"])
def test_binary_garbage_holds_no_record(body: bytes) -> None:
    assert convert(page_item("http://www.gov.cn/a/content_1.htm", body)) is None


def test_hostile_markup_stays_out_of_the_record() -> None:
    page = gov_table(**BASE).replace(
        "<p>正文</p>",
        '<p>正文</p><iframe src="http://evil.example/"></iframe><img src="x" onerror="alert(1)">'
        '<svg><script>alert(1)</script></svg><form action="/x"><input name="a"></form>'
        + "<div>" * 60
        + "深"
        + "</div>" * 60,
    )
    record = convert(page_item("http://www.gov.cn/a/content_1.htm", page))
    assert record is not None and record.body is not None
    for bad in ("iframe", "onerror", "script", "form", "input", "svg"):
        assert bad not in record.body
    assert records.parse(record.to_xml()) == record
    assert "深" in record.body  # nested 60 deep: flattened, its text kept


def test_a_body_nested_past_the_record_limit_is_that_pages_problem() -> None:
    page = gov_table(**BASE).replace("<p>正文</p>", "<div>" * 300 + "深" + "</div>" * 300)
    with pytest.raises(
        InputError, match=r"content_1\.htm: body: the HTML is nested \d+ levels deep"
    ):
        convert(page_item("http://www.gov.cn/a/content_1.htm", page))
