"""The feed adapter end to end: a Chinese site's feed served on loopback HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from support import pairs

import hub.records
from adapters.contract import Context, Failure, Item
from adapters.feed.adapter import FeedAdapter, FeedSettings
from adapters.kit.http import HttpClient
from adapters.settings import read_settings
from hub.errors import ConfigInvalid, InputError
from hub.federation.model import Node, Source

CST = timezone(timedelta(hours=8))
NODE = Node("gz", "广州市人民政府", "city", "gd", "4401000001", "www.gz.gov.cn")

FIXTURES = Path(__file__).parent / "fixtures" / "feed"
RSS = (FIXTURES / "gz-news.rss").read_bytes()  # GB18030 bytes, declared gb2312

MODIFIED = "Tue, 02 Apr 2024 02:30:00 GMT"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _serve(handler: Handler, work: Callable[[str, HttpClient], Awaitable[Any]]) -> Any:
    app = web.Application()
    app.router.add_get("/feed.xml", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/feed.xml"
    try:
        async with HttpClient() as http:
            return await work(url, http)
    finally:
        await runner.cleanup()


async def _collect(adapter: FeedAdapter, cursor: str | None) -> list[Item | Failure]:
    return [found async for found in adapter.fetch(cursor)]


def _feed_handler(body: bytes, content_type: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        if request.headers.get("If-Modified-Since") == MODIFIED:
            return web.Response(status=304)
        headers = {"Content-Type": content_type, "Last-Modified": MODIFIED}
        return web.Response(body=body, headers=headers)

    return handler


def test_a_gb2312_feed_becomes_valid_records_and_a_304_yields_nothing() -> None:
    async def work(url: str, http: HttpClient) -> tuple[FeedAdapter, list[Any], list[Any]]:
        adapter = FeedAdapter(FeedSettings(url=url), Context(NODE, "portal", http))
        first = await _collect(adapter, None)
        second = await _collect(adapter, None)  # conditional GET: the server says 304
        return adapter, first, second

    adapter, first, second = asyncio.run(_serve(_feed_handler(RSS, "text/xml"), work))
    assert second == []
    assert all(isinstance(found, Item) for found in first)
    assert [found.where.rsplit("#", 1)[1] for found in first] == ["entry 3", "entry 2", "entry 1"]
    undated, notice, meeting = first
    assert isinstance(notice, Item) and isinstance(meeting, Item) and isinstance(undated, Item)
    assert meeting.key == "post_2" and meeting.cursor == "2024-04-02T10:30:00+08:00"
    with pytest.raises(InputError, match="entry 3: title: the entry has no title"):
        adapter.convert(undated)

    record = adapter.convert(meeting)
    assert record is not None
    assert hub.records.parse(record.to_xml(), "meeting.xml") == record
    assert record.title == "市政府召开常务会议研究部署防汛工作"
    assert record.link is not None and record.link.endswith("/xw/gzyw/content/post_2.html")
    assert record.published == datetime(2024, 4, 2, 10, 30, tzinfo=CST)
    assert record.keywords == ("防汛", "常务会议")
    assert record.lang == "zh-Hans" and record.issuers == ("广州市人民政府",)
    assert record.summary == "会议强调，要压实防汛责任。"
    assert record.body is not None and "<script" not in record.body and "<b>压实</b>" in record.body

    notice_record = adapter.convert(notice)
    assert notice_record is not None
    hub.records.parse(notice_record.to_xml(), "notice.xml")
    assert notice_record.published == datetime(2024, 4, 1, 9, 0, tzinfo=CST)  # no offset: +08:00
    assert notice_record.issuers == ("广州市人民政府办公厅",)
    assert notice_record.body is not None
    assert "onclick" not in notice_record.body and "javascript" not in notice_record.body
    assert 'src="https://www.gz.gov.cn/img/1.png"' in notice_record.body  # against the entry link


def test_the_cursor_skips_entries_already_seen() -> None:
    async def work(url: str, http: HttpClient) -> list[Item | Failure]:
        adapter = FeedAdapter(FeedSettings(url=url), Context(NODE, "portal", http))
        return await _collect(adapter, "2024-04-02T00:00:00+08:00")

    found = asyncio.run(_serve(_feed_handler(RSS, "text/xml"), work))
    keys = [item.key for item in found if isinstance(item, Item)]
    assert "post_2" in keys and not any(key.endswith("post_1.html") for key in keys)


def test_an_entry_without_a_date_takes_the_fetch_time() -> None:
    feed = (
        '<rss version="2.0"><channel><item><title>无日期</title>'
        "<link>https://www.gz.gov.cn/a.html</link></item></channel></rss>"
    ).encode()

    async def work(url: str, http: HttpClient) -> list[Any]:
        adapter = FeedAdapter(
            FeedSettings(url=url, issuer="广州市政务服务数据管理局"), Context(NODE, "p", http)
        )
        return [adapter.convert(item) for item in await _collect(adapter, None)]  # type: ignore[arg-type]

    before = datetime.now(CST)
    (record,) = asyncio.run(_serve(_feed_handler(feed, "application/rss+xml"), work))
    assert record.published >= before - timedelta(seconds=1)
    assert record.issuers == ("广州市政务服务数据管理局",)


def test_a_broken_document_is_a_failure_not_an_exception() -> None:
    async def work(url: str, http: HttpClient) -> list[Item | Failure]:
        adapter = FeedAdapter(FeedSettings(url=url), Context(NODE, "portal", http))
        return await _collect(adapter, None)

    page = b"<html><body><p>502 Bad Gateway"
    found = asyncio.run(_serve(_feed_handler(page, "text/html"), work))
    assert len(found) == 1 and isinstance(found[0], Failure)
    assert found[0].where.endswith("/feed.xml") and "not a readable feed" in found[0].message


def test_big5_atom_with_a_wrong_http_charset() -> None:
    atom = (FIXTURES / "hk-news.atom").read_bytes()  # Big5, served as UTF-8

    async def work(url: str, http: HttpClient) -> list[Any]:
        adapter = FeedAdapter(FeedSettings(url=url), Context(NODE, "hk", http))
        return [adapter.convert(item) for item in await _collect(adapter, None)]  # type: ignore[arg-type]

    handler = _feed_handler(atom, "application/atom+xml; charset=utf-8")  # the label is wrong
    (record,) = asyncio.run(_serve(handler, work))
    assert record.title == "政府公佈施政報告"
    assert record.lang == "zh-Hant"
    assert record.link == "https://www.info.gov.hk/gia/general/1.htm"
    assert record.summary == "行政長官今日發表施政報告。"
    hub.records.parse(record.to_xml())


def test_settings_are_checked() -> None:
    source = Source("portal", "feed", {"url": "https://www.gz.gov.cn/rss.xml", "kind": "notice"}, 7)
    settings = read_settings(FeedSettings, source, NODE, "nodes.toml")
    assert settings.kind == "notice" and settings.timezone == "+08:00"
    with pytest.raises(ConfigInvalid, match="url: missing"):
        read_settings(FeedSettings, Source("portal", "feed", {}, 7), NODE, "nodes.toml")
    bad = FeedSettings(url="ftp://x", kind="blog", language="zh-CN", timezone="CST")
    with pytest.raises(ConfigInvalid) as caught:
        FeedAdapter(bad, Context(NODE, "portal"))
    message = str(caught.value)
    for key in ("url", "kind", "language", "timezone"):
        assert f"sources[portal].{key}" in message


@pytest.mark.parametrize("path", pairs.pairs("feed"), ids=lambda path: path.name)
def test_fixture_pairs(path: Path) -> None:
    """Each feed in tests/fixtures/feed/, served on loopback, becomes what its .json says."""
    source = pairs.source_of(path)

    async def work(url: str, http: HttpClient) -> list[dict[str, Any]]:
        settings = {"url": url, **source["settings"]}
        checked = read_settings(
            FeedSettings, Source("portal", "feed", settings, 7), NODE, "nodes.toml"
        )
        adapter = FeedAdapter(checked, Context(NODE, "portal", http))
        found = [pairs.outcome(each, adapter.convert) for each in await _collect(adapter, None)]
        return pairs.replaced(found, url.removesuffix("/feed.xml"), "http://feeds.test")

    outcomes = asyncio.run(_serve(_feed_handler(path.read_bytes(), source["content_type"]), work))
    assert outcomes == pairs.expected(path, outcomes)
