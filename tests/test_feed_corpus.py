"""The feed adapter against feedparser's own test corpus (../shared/corpora/feedparser).

Each feed is read once per session (module fixtures). The corpus states its
expectations in a comment at the top of each file (``Header:`` lines for the
HTTP answer, ``Expect:`` a Python expression over feedparser's result); the
tests here read those without evaluating them.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import hub.records
from adapters.contract import Context, Failure, Item
from adapters.feed.adapter import FeedAdapter, FeedItem, FeedSettings, parse_feed
from adapters.feed.encoding import decode_feed, utf8_document
from adapters.feed.entry import Feed, feedparser_feed, zone_of
from adapters.feed.fast import fast_feed
from adapters.kit.http import HttpClient
from adapters.kit.sanitize import plain_text
from hub.errors import InputError
from hub.federation.model import Node
from hub.records import Record

CORPUS = Path(__file__).parents[2] / "shared" / "corpora" / "feedparser"
NODE = Node("gz", "广州市人民政府", "city", "gd", "4401000001", "www.gz.gov.cn")
ZONE = zone_of("+08:00")
FETCHED = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
BASE = "https://www.gz.gov.cn/rss/"

_EXPECT = re.compile(rb"Expect:\s*(.*?)\s*-->", re.S)
_HEADER = re.compile(r"^Header:\s+([^:]+):(.*)$", re.M)
_UNSAFE = re.compile(r"(?i)<script|<style|<iframe|<object|<embed|\son\w+\s*=|style\s*=")
_UNSAFE_URL = re.compile(r"(?i)(javascript|vbscript|data|livescript)\s*:")


def _files(folder: str) -> list[Path]:
    if not CORPUS.is_dir():
        pytest.skip(f"feedparser corpus not found at {CORPUS} (see docs/adapters/feed.md)")
    return sorted((CORPUS / folder).rglob("*.xml"))


@dataclasses.dataclass
class Outcome:
    """One corpus feed as the adapter saw it."""

    path: Path
    feed: Feed
    records: list[Record]
    refused: list[str]  # entries convert refused (InputError), with the reason


def _adapter() -> FeedAdapter:
    return FeedAdapter(FeedSettings(url=BASE + "feed.xml"), Context(NODE, "corpus"))


def _outcome(path: Path, adapter: FeedAdapter) -> Outcome:
    feed = parse_feed(path.read_bytes(), None, ZONE)
    records, refused = [], []
    for number, entry in enumerate(feed.entries, start=1):
        where = f"{path.name}#entry {number}"
        item = Item(entry.id or where, where, FeedItem(entry, feed, BASE + "feed.xml", FETCHED))
        try:
            record = adapter.convert(item)
        except InputError as exc:
            refused.append(str(exc))
            continue
        assert record is not None
        records.append(record)
    return Outcome(path, feed, records, refused)


@pytest.fixture(scope="module")
def wellformed() -> list[Outcome]:
    adapter = _adapter()
    return [_outcome(path, adapter) for path in _files("wellformed")]


def test_every_wellformed_feed_gives_valid_records(wellformed: list[Outcome]) -> None:
    assert len(wellformed) > 1500
    produced = 0
    for outcome in wellformed:
        for record in outcome.records:
            parsed = hub.records.parse(record.to_xml(), str(outcome.path))
            assert parsed == record, outcome.path
            produced += 1
        for reason in outcome.refused:
            assert "the entry has no title" in reason
    assert produced > 150  # most corpus feeds test one field and have no title


def test_wellformed_feeds_parse_cleanly(wellformed: list[Outcome]) -> None:
    """Well-formed feeds read without a problem (the corpus marks ill-formed ones ``bozo``)."""
    troubled = [
        o.path.name
        for o in wellformed
        if o.feed.problem
        and b"bozo" not in _expectation(o.path)
        and "encoding" not in o.feed.problem
    ]
    assert troubled == []


def _expectation(path: Path) -> bytes:
    found = _EXPECT.search(path.read_bytes()[:4000])
    return found.group(1) if found else b""


_TITLE_EXPECT = re.compile(
    r"entries\[0\]\['title'\] == (u?'(?:[^'\\]|\\.)*'|u?\"(?:[^\"\\]|\\.)*\")(?!\s*\+)"
)


def _expected_titles(outcomes: list[Outcome]) -> Iterator[tuple[Outcome, str]]:
    for outcome in outcomes:
        text = _expectation(outcome.path).decode("utf-8", errors="replace")
        found = _TITLE_EXPECT.search(text)
        if found and not re.search(r"[<>&]", found.group(1)) and outcome.records:
            yield outcome, " ".join(ast.literal_eval(found.group(1).lstrip("u")).split())


def test_titles_agree_with_the_corpus_expectations(wellformed: list[Outcome]) -> None:
    checked = list(_expected_titles(wellformed))
    assert len(checked) > 20
    wrong = [
        (o.path.name, o.records[0].title, want) for o, want in checked if o.records[0].title != want
    ]
    assert wrong == []


def test_the_fast_path_equals_feedparser_on_every_feed_it_takes(wellformed: list[Outcome]) -> None:
    adapter, taken = _adapter(), 0
    for outcome in wellformed:
        data = utf8_document(decode_feed(outcome.path.read_bytes()).text)
        fast = fast_feed(data, ZONE)
        if fast is None:
            continue
        taken += 1
        slow = feedparser_feed(data, ZONE)
        where = outcome.path.relative_to(CORPUS)
        assert (fast.authors, fast.language) == (slow.authors, slow.language), where
        assert len(fast.entries) == len(slow.entries), where
        for mine, theirs in zip(fast.entries, slow.entries, strict=True):
            for spec in dataclasses.fields(mine):
                assert getattr(mine, spec.name) == getattr(theirs, spec.name), (where, spec.name)
            assert _record(adapter, mine, fast) == _record(adapter, theirs, slow), where
    assert taken > 500  # the plain RSS 2.0 / Atom 1.0 / RSS 1.0 test feeds


def _record(adapter: FeedAdapter, entry: Any, feed: Feed) -> Record | str:
    item = Item("k", "corpus", FeedItem(entry, feed, BASE + "feed.xml", FETCHED))
    try:
        record = adapter.convert(item)
    except InputError as exc:
        return str(exc)
    assert record is not None
    return record


def test_nothing_unsafe_survives_from_the_sanitize_feeds(wellformed: list[Outcome]) -> None:
    hostile = [o for o in wellformed if "sanitize" in o.path.parts]
    assert len(hostile) > 100
    for outcome in hostile:
        for record in outcome.records:
            for text in (record.body or "", record.summary or "", record.title):
                if text is record.body:
                    assert not _UNSAFE.search(text), (outcome.path.name, text)
                for url in re.findall(r'(?:href|src|cite)="([^"]*)"', text):
                    assert not _UNSAFE_URL.match(url), (outcome.path.name, url)
            assert record.link is None or record.link.startswith(("http://", "https://"))


def test_illformed_feeds_are_reported_or_read() -> None:
    adapter = _adapter()
    files = _files("illformed")
    assert files
    for path in files:
        outcome = _outcome(path, adapter)
        reported = outcome.feed.problem or outcome.records or outcome.refused
        assert reported or not outcome.feed.entries, path
        for record in outcome.records:
            hub.records.parse(record.to_xml(), str(path))


# -- encodings, served over loopback HTTP with the headers each file declares --------------


def _headers(data: bytes) -> dict[str, str]:
    for codec in ("utf-8", "utf-16", "utf-32", "latin-1"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if "Description:" in text[:2000]:
            return {k.strip(): v.strip() for k, v in _HEADER.findall(text[:2000])}
    return {}


def _expected_text(data: bytes) -> str | None:
    """The text feedparser's expectation implies: its named encoding applied to the bytes."""
    for codec in ("utf-8", "utf-16", "utf-32", "latin-1"):
        try:
            comment = data.decode(codec)
        except UnicodeDecodeError:
            continue
        found = re.search(r"encoding == '([\w-]+)'", comment[:2000])
        if "Expect:" in comment[:2000]:
            if not found or "not bozo" not in comment[:2000]:
                return None
            name = {"gb18030": "gb18030", "us-ascii": "cp1252"}.get(found.group(1), found.group(1))
            try:
                return data.decode(name).lstrip("\ufeff")
            except UnicodeDecodeError:
                return None
    return None


def test_encodings_over_http_decode_as_feedparser_expects() -> None:
    files = _files("encoding")
    assert len(files) > 60

    async def fetch_all() -> dict[str, tuple[str, list[Item | Failure]]]:
        async def handler(request: web.Request) -> web.Response:
            data = (CORPUS / "encoding" / request.match_info["name"]).read_bytes()
            content_type = _headers(data).get("Content-type", "text/xml")
            return web.Response(body=data, headers={"Content-Type": content_type})

        app = web.Application()
        app.router.add_get("/{name}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        seen: dict[str, tuple[str, list[Item | Failure]]] = {}
        try:
            async with HttpClient() as http:
                for path in files:
                    url = f"http://127.0.0.1:{port}/{path.name}"
                    response = await http.get(url, conditional=False)
                    text = decode_feed(response.body, response.charset).text
                    adapter = FeedAdapter(FeedSettings(url=url), Context(NODE, "enc", http))
                    seen[path.name] = (text, [found async for found in adapter.fetch(None)])
        finally:
            await runner.cleanup()
        return seen

    seen = asyncio.run(fetch_all())
    checked = 0
    for path in files:
        text, found = seen[path.name]
        expected = _expected_text(path.read_bytes())
        if expected is not None:
            assert text == expected, path.name
            checked += 1
        adapter = _adapter()
        for item in found:
            if isinstance(item, Item):
                try:
                    record = adapter.convert(item)
                except InputError:
                    continue
                assert record is not None
                hub.records.parse(record.to_xml(), path.name)
    assert checked > 45


@pytest.mark.parametrize(
    ("name", "field", "expected"),
    [
        ("euc-kr-item.xml", "summary", "\ub144"),
        ("http_text_xml_charset_2.xml", "summary", "This is a \xa3\u201ctest.\u201d"),
        ("demoronize-1.xml", "summary", "don\u2019t"),
        ("double-encoded-html.xml", "summary", "\u2026"),
    ],
)
def test_encoded_entries_read_right(name: str, field: str, expected: str) -> None:
    data = (_files("encoding")[0].parent / name).read_bytes()
    charset = re.search(r"charset=([\w-]+)", _headers(data).get("Content-type", ""))
    feed = parse_feed(data, charset.group(1) if charset else None, ZONE)
    item = Item("k", name, FeedItem(feed.entries[0], feed, BASE, FETCHED))
    record = FeedAdapter(FeedSettings(url=BASE), Context(NODE, "enc")).convert
    assert getattr(feed.entries[0], field) is not None
    try:
        value = getattr(record(item), field)
    except InputError:  # no title in these test feeds: read the entry itself
        value = plain_text(getattr(feed.entries[0], field))
    assert value == expected
