"""What a portal page carries (hub.web.pages.tags): the 2017 guideline's meta tags on every
page type, the 当前位置 breadcrumb, the footer's site identity and filing numbers, the
directory's domain links; and the round trip: govhub's own page adapter, with no
selectors, reads a portal record page back into the record."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

import pytest
import support.postgres as postgres_fixtures
from test_links import DOCUMENT, FEDERATION, example, variant
from test_pages import Page, fill, get, hostile, portal_server

from adapters.contract import Context, Item
from adapters.kit.http import HttpClient
from adapters.page.adapter import PageAdapter, PageSettings
from hub.errors import ConfigInvalid
from hub.federation import parse_federation
from hub.records.model import CHINA, Record
from hub.store.connection import Connection

pg_url = postgres_fixtures.own_pg_url
pg_conn = postgres_fixtures.pg_conn

SITE_TAGS = ("SiteName", "SiteDomain", "SiteIDCode")
COLUMN_TAGS = ("ColumnName", "ColumnDescription", "ColumnKeywords", "ColumnType")
ARTICLE_TAGS = ("ArticleTitle", "PubDate", "ContentSource")
PUBDATE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")  # yyyy-MM-dd HH:mm


def meta(page: Page) -> dict[str, str]:
    tags: dict[str, str] = {}
    for element in page.doc.xpath("//head/meta[@name]"):
        name = element.get("name")
        if name == "viewport":
            continue
        assert name not in tags, f"meta {name} twice"
        tags[name] = element.get("content")
    return tags


def crumbs(page: Page, label: str = "当前位置") -> list[tuple[str, str | None]]:
    (nav,) = page.doc.xpath(f"//nav[@aria-label='{label}']")
    return [
        (" ".join(li.text_content().split()), (li.xpath("a/@href") or [None])[0])
        for li in nav.xpath("ol/li")
    ]


def test_every_page_type_carries_the_guideline_tags(pg_conn: Connection, pg_url: str) -> None:
    fill(pg_conn)
    gd = FEDERATION.node("gd")
    site = {"SiteName": gd.name, "SiteDomain": gd.domain, "SiteIDCode": gd.site_code}
    home = meta(get(pg_url, "/nodes/gd/"))
    assert home == site, "a home page: the site tags only"
    catalogue = meta(get(pg_url, "/nodes/gd/catalogue"))
    assert {k: catalogue[k] for k in SITE_TAGS} == site
    assert catalogue["ColumnName"] == "信息公开目录" and catalogue["ColumnType"] == "信息公开目录"
    assert gd.name in catalogue["ColumnDescription"] and catalogue["ColumnKeywords"]
    topical = meta(get(pg_url, "/nodes/gd/catalogue?topic=综合政务"))
    assert topical["ColumnName"] == "信息公开目录：综合政务"
    directory = meta(get(pg_url, "/nodes"))
    assert set(COLUMN_TAGS) <= set(directory) and directory["ColumnName"] == "站点导航"
    assert all(tag not in home | catalogue | directory for tag in ARTICLE_TAGS)

    record = meta(get(pg_url, f"/records/{DOCUMENT.id}"))
    cn = FEDERATION.node("cn")
    assert (record["SiteName"], record["SiteIDCode"]) == (cn.name, cn.site_code)
    assert record["ArticleTitle"] == DOCUMENT.title
    assert PUBDATE.fullmatch(record["PubDate"])
    assert record["PubDate"] == DOCUMENT.published.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")
    assert record["ContentSource"] == "、".join(DOCUMENT.issuers)
    assert not set(COLUMN_TAGS) & set(record)


def test_tag_values_are_escaped(pg_conn: Connection, pg_url: str) -> None:
    record = hostile()
    fill(pg_conn, record)
    page = get(pg_url, f"/records/{record.id}")
    tags = meta(page)
    assert tags["ArticleTitle"] == record.title and tags["ContentSource"] == record.issuers[0]
    head = page.text.split("</head>")[0]
    assert "<script>" not in head and "<img" not in head and "&lt;script&gt;" in head
    assert not page.doc.xpath("//script|//img[@onerror]")
    search = meta(get(pg_url, '/search?q="><b>x'))
    assert search["ColumnKeywords"] == '"><b>x' and not get(pg_url, "/search?q=b").doc.xpath(
        "//head//b"
    )


def test_record_and_list_pages_show_where_one_is(pg_conn: Connection, pg_url: str) -> None:
    gz_record = variant(DOCUMENT, "gz", "crumb-1", title="广州市转发的通知")
    fill(pg_conn, gz_record)
    assert gz_record.topic is not None
    topic = gz_record.topic.top
    page = get(pg_url, f"/records/{gz_record.id}")
    trail = crumbs(page)
    assert [label for label, _ in trail] == [
        "首页",
        "广州市人民政府",
        "信息公开目录",
        topic,
        gz_record.title,
    ]
    hrefs = [href for _, href in trail]
    assert hrefs[:3] == ["/nodes/cn/", "/nodes/gz/", "/nodes/gz/catalogue"]
    assert hrefs[3] is not None and hrefs[3].startswith("/nodes/gz/catalogue?topic=")
    assert hrefs[4] is None, "the current page is not a link"
    assert page.doc.xpath("//nav[@aria-label='当前位置']//li[last()]/*/@aria-current") == ["page"]

    assert crumbs(get(pg_url, "/nodes/gz/catalogue")) == [
        ("首页", "/nodes/cn/"),
        ("广州市人民政府", "/nodes/gz/"),
        ("信息公开目录", None),
    ]
    traditional = get(pg_url, "/nodes/cn/catalogue?topic=x&lang=zh-Hant")
    assert crumbs(traditional, "當前位置")[-2:] == [
        ("信息公開目錄", "/nodes/cn/catalogue?lang=zh-Hant"),
        ("x", None),
    ]
    assert crumbs(get(pg_url, "/nodes")) == [("首页", "/nodes/cn/"), ("站点导航", None)]
    assert not get(pg_url, "/nodes/gz/").doc.xpath("//nav[@aria-label='当前位置']")


def test_footer_shows_site_code_and_filing_numbers_when_set(
    pg_conn: Connection, pg_url: str
) -> None:
    cn, gd, gz = (FEDERATION.node(n) for n in ("cn", "gd", "gz"))
    assert cn.icp and cn.police_filing and gd.icp and not gd.police_filing
    assert not gz.icp, "the sample leaves gz without filing numbers"
    for scope, node in (("cn", cn), ("gd", gd), ("gz", gz)):
        (footer,) = get(pg_url, f"/nodes/{scope}/", scope=scope).doc.xpath("//footer")
        identity = " ".join(footer.xpath(".//p[@class='site-identity']")[0].text_content().split())
        assert node.name in identity and f"网站标识码：{node.site_code}" in identity
        assert footer.xpath(".//span[@class='icp']/text()") == ([node.icp] if node.icp else [])
        police = footer.xpath(".//span[@class='police-filing']/text()")
        assert police == ([node.police_filing] if node.police_filing else [])


def test_directory_links_domains_and_no_operator_addresses(
    pg_conn: Connection, pg_url: str
) -> None:
    page = get(pg_url, "/nodes", scope="gd")
    domains = page.doc.xpath("//table[@class='directory']//a[@class='domain']/@href")
    assert domains == [f"https://{n.domain}/" for n in FEDERATION.subtree("gd")]
    hrefs = page.doc.xpath("//a/@href")
    assert not [h for h in hrefs if "inbox" in h or h.endswith("/status")]


NODE_TOML = """
[[node]]
id = "cn"
name = "中华人民共和国中央人民政府"
level = "central"
site_code = "bm01000001"
domain = "www.gov.cn"
{extra}
"""


@pytest.mark.parametrize(
    ("extra", "icp", "police"),
    [
        ("", None, None),
        ('icp = "京ICP备05070218号"', "京ICP备05070218号", None),
        ('icp = "京ICP备05070218号-1"', "京ICP备05070218号-1", None),
        ('police_filing = "京公网安备 11010202000001号"', None, "京公网安备 11010202000001号"),
        ('police_filing = "京公网安备11010202000001号"', None, "京公网安备11010202000001号"),
    ],
)
def test_filing_numbers_in_nodes_toml(extra: str, icp: str | None, police: str | None) -> None:
    node = parse_federation(NODE_TOML.format(extra=extra)).node("cn")
    assert (node.icp, node.police_filing) == (icp, police)


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ('icp = "05070218"', "nodes.toml:8: node[cn].icp: '05070218' is not an ICP filing number"),
        ('icp = "京ICP备05070218"', "is not an ICP filing number"),
        ('icp = ""', "node[cn].icp: is blank"),
        ("icp = 5070218", "node[cn].icp: must be a string, not an integer"),
        ('police_filing = "京公网安备 1101020200号"', "is not a 公安 filing number"),
        ('police_filing = "京ICP备05070218号"', "node[cn].police_filing"),
        ('icpp = "京ICP备05070218号"', "unknown key (did you mean 'icp'?)"),
    ],
)
def test_bad_filing_numbers_are_reported_with_the_fix(extra: str, says: str) -> None:
    with pytest.raises(ConfigInvalid) as caught:
        parse_federation(NODE_TOML.format(extra=extra))
    message = "\n".join(str(problem) for problem in caught.value.problems)
    assert says in message, message
    assert "ICP备" in message or "公网安备" in message or "one of" in message, "names the fix"


# -- the round trip ------------------------------------------------------------------------------


def harvest_page(url: str, record_id: str) -> Record:
    """The record govhub's page adapter makes of a portal record page, with no selectors."""

    async def run() -> Record:
        async with portal_server(url) as base, HttpClient(per_host=1) as client:
            page_url = f"{base}/records/{record_id}"
            node = FEDERATION.node("gz")
            adapter = PageAdapter(PageSettings(url=page_url), Context(node, "portal", http=client))
            found = [item async for item in adapter.fetch(None)]
        assert len(found) == 1 and isinstance(found[0], Item), found
        record = adapter.convert(found[0])
        assert record is not None, "the adapter found no record on the page"
        return record

    return asyncio.run(run())


def _text(html_or_text: str | None) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html_or_text or "").split())


@pytest.mark.parametrize("name", ["document", "notice"])
def test_a_portal_record_page_round_trips_through_the_page_adapter(
    pg_conn: Connection, pg_url: str, name: str
) -> None:
    original = example(name)
    fill(pg_conn)
    read = harvest_page(pg_url, original.id)
    assert read.title == original.title
    assert _minute(read.published) == _minute(original.published)
    assert read.issuers == original.issuers
    assert read.index_number == original.index_number
    assert read.doc_number == original.doc_number
    assert _text(read.body) == _text(original.body)


def _minute(when: datetime) -> str:
    return when.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")
