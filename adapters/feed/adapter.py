"""The ``feed`` adapter: an RSS or Atom feed of a site's news, one record per entry.

::

    fetch ─ GET (conditional) ─ decode (feed_encoding) ─ fast path (feed_fast) or feedparser
          ─ entries oldest first, newer than the cursor ─► Item per entry
    convert ─ title, link, dates, summary (plain text), body (sanitized), issuers, keywords
            ─► Record

See docs/adapters/feed.md for the settings and examples.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timezone
from typing import ClassVar

from adapters.contract import Context, Failure, Item
from adapters.feed.encoding import decode_feed, utf8_document
from adapters.feed.entry import Feed, FeedEntry, feedparser_feed, zone_of
from adapters.feed.fast import fast_feed
from adapters.kit.sanitize import plain_text, safe_url, sanitize_html
from hub.errors import ConfigInvalid, InputError, Problem
from hub.records import KINDS, LANGUAGES, Record, Topic

TEXT_LIMIT = 10_000  # the schema's longest Text value
SUMMARY_LIMIT = 1_000
MAX_KEYWORDS = 20
_HTTP_URL = re.compile(r"https?://[^\s/?#]+[^\s]*")
_ROOT_START = re.compile(rb"<[A-Za-z_:]")  # the root element's start tag ends the prolog
_INTERNAL_SUBSET = re.compile(rb"<!DOCTYPE\b[^>\[]*\[", re.IGNORECASE)
ENTITIES_REFUSED = (
    "the feed declares entities (a <!DOCTYPE> with declarations): refused, since entities "
    "can expand without bound or read local files; expected a feed without them, its "
    "characters written as they are"
)
_LANGUAGE_BY_TAG = {
    "zh": "zh-Hans",
    "zh-cn": "zh-Hans",
    "zh-sg": "zh-Hans",
    "zh-hans": "zh-Hans",
    "zh-hans-cn": "zh-Hans",
    "zh-tw": "zh-Hant",
    "zh-hk": "zh-Hant",
    "zh-mo": "zh-Hant",
    "zh-hant": "zh-Hant",
}


@dataclass(frozen=True, slots=True)
class FeedSettings:
    url: str = field(metadata={"help": "the feed's address, e.g. https://www.gz.gov.cn/rss/xw.xml"})
    kind: str = field(
        default="news", metadata={"help": "the kind of every record: " + ", ".join(KINDS)}
    )
    language: str | None = field(
        default=None,
        metadata={"help": "record language when the feed names none: " + ", ".join(LANGUAGES)},
    )
    issuer: str | None = field(
        default=None,
        metadata={"help": "the issuer of every record, instead of the feed's authors"},
    )
    topic: str | None = field(
        default=None, metadata={"help": "主题分类 top class of every record, e.g. 综合政务"}
    )
    timezone: str = field(
        default="+08:00", metadata={"help": "offset for dates written without one, e.g. +08:00"}
    )


@dataclass(frozen=True, slots=True)
class FeedItem:
    """What ``fetch`` hands to ``convert``: an entry, its feed's head (authors, language;
    no entries), and when it was read."""

    entry: FeedEntry
    feed: Feed
    url: str
    fetched: datetime


class FeedAdapter:
    """One record per feed entry; see the module docstring."""

    name: ClassVar[str] = "feed"
    Settings: ClassVar[type] = FeedSettings
    sample: ClassVar[str] = "url"

    def __init__(self, settings: FeedSettings, context: Context) -> None:
        self.settings, self.context = settings, context
        self.zone = _checked(settings, context)

    async def fetch(self, cursor: str | None) -> AsyncIterator[Item | Failure]:
        """Entries newer than ``cursor`` (the newest date already seen), oldest first."""
        if self.context.http is None:
            raise RuntimeError("the feed adapter needs context.http")
        url = self.settings.url
        response = await self.context.http.get(url)
        if response.not_modified:
            return
        fetched = datetime.now(UTC)
        feed = parse_feed(response.body, response.charset, self.zone)
        if not feed.entries and feed.problem:
            yield Failure(url, f"not a readable feed: {feed.problem}", cursor)
            return
        since = datetime.fromisoformat(cursor) if cursor else None
        # Each item carries the feed's head, never its entries: a batch of items is pickled
        # for the worker processes, and a whole feed in every batch grows with the feed.
        head = Feed(feed.authors, feed.language, (), feed.parser, feed.problem)
        for number, entry in _oldest_first(feed.entries):
            when = entry.published or entry.updated
            if since is not None and when is not None and when < since:
                continue
            key = entry.id or entry.link or f"{url}#entry {number}"
            data = FeedItem(entry, head, response.url, fetched)
            where = f"{url}#entry {number}"
            yield Item(key, where, data, when.isoformat() if when is not None else None)

    def convert(self, item: Item) -> Record | None:
        """The record of one entry; ``InputError`` when the entry has no title."""
        data: FeedItem = item.data
        entry, settings = data.entry, self.settings
        title = _title(entry)
        if not title:
            problem = Problem(item.where, None, "title", "the entry has no title", "a <title>")
            raise InputError([problem])
        link = _link(entry.link, data.url)
        base = link or data.url
        summary = plain_text(entry.summary) if entry.summary else ""
        body = sanitize_html(entry.content or entry.summary or "", base, where=item.where)
        issuers = (settings.issuer,) if settings.issuer else entry.authors or data.feed.authors
        return self.context.record(
            item.key,
            title=_clip(title, TEXT_LIMIT),
            published=entry.published or entry.updated or data.fetched,
            kind=settings.kind,
            lang=settings.language or _language(entry.language or data.feed.language),
            issuers=tuple(_clip(name, 200) for name in issuers) or (self.context.node.name,),
            keywords=_keywords(entry.categories),
            topic=Topic(settings.topic) if settings.topic else None,
            summary=_clip(summary, SUMMARY_LIMIT) or None,
            body=body,
            link=link,
        )


def parse_feed(body: bytes, http_charset: str | None, zone: timezone) -> Feed:
    """A feed's entries: by the fast path when it can, by feedparser otherwise.

    A feed that declares entities (a DOCTYPE with an internal subset) is refused
    whole, with the reason as its ``problem`` and no entries.
    """
    decoded = decode_feed(body, http_charset)
    data = utf8_document(decoded.text)
    if declares_entities(data):
        return Feed((), None, (), "refused", ENTITIES_REFUSED)
    feed = fast_feed(data, zone) or feedparser_feed(data, zone)
    if decoded.mislabelled and feed.problem is None:
        problem = f"labelled {decoded.mislabelled} but read as {decoded.encoding}"
        feed = Feed(feed.authors, feed.language, feed.entries, feed.parser, problem)
    return feed


def declares_entities(data: bytes) -> bool:
    """True when the document's prolog holds a DOCTYPE with declarations of its own.

    A feed has no use for them, and they are how entity bombs (billion laughs)
    and external entities (``<!ENTITY x SYSTEM "file:///…">``) come in; feedparser
    would read such a feed anyway, its loose parser leaving ``&h;`` as text. A
    DOCTYPE naming only an external DTD (RSS 0.91's) is read as before: no
    parser here fetches it.
    """
    start = _ROOT_START.search(data)
    prolog = data[: start.start()] if start else data
    return _INTERNAL_SUBSET.search(prolog) is not None or b"<!ENTITY" in prolog.upper()


def _oldest_first(entries: tuple[FeedEntry, ...]) -> list[tuple[int, FeedEntry]]:
    """Entries numbered in document order, then oldest first (undated ones keep their place
    among themselves; feeds list the newest first, so document order is reversed)."""
    numbered = list(enumerate(entries, start=1))[::-1]
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(numbered, key=lambda pair: pair[1].published or pair[1].updated or epoch)


def _title(entry: FeedEntry) -> str:
    if not entry.title:
        return ""
    if entry.title_is_html:
        return plain_text(entry.title)
    return " ".join(entry.title.split())


def _link(link: str | None, base: str) -> str | None:
    """The entry's page as an absolute http(s) URL the record schema accepts, or None."""
    if not link:
        return None
    resolved = safe_url(link, base)
    if resolved is None or len(resolved) > 2048 or not _HTTP_URL.fullmatch(resolved):
        return None
    return resolved


def _language(tag: str | None) -> str | None:
    if not tag:
        return None
    lowered = tag.strip().replace("_", "-").lower()
    if lowered in _LANGUAGE_BY_TAG:
        return _LANGUAGE_BY_TAG[lowered]
    primary = lowered.split("-")[0]
    return primary if primary in LANGUAGES and primary != "zh" else None


def _keywords(categories: tuple[str, ...]) -> tuple[str, ...]:
    words = dict.fromkeys(_clip(plain_text(term), 200) for term in categories)
    return tuple(word for word in words if word)[:MAX_KEYWORDS]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _checked(settings: FeedSettings, context: Context) -> timezone:
    """The settings' values that their types alone do not check; the timezone they name."""
    problems = []
    label = f"node[{context.node.id}].sources[{context.source}]"

    def problem(key: str, message: str, expected: str) -> None:
        problems.append(Problem("nodes.toml", None, f"{label}.{key}", message, expected))

    if not _HTTP_URL.fullmatch(settings.url):
        problem("url", f"{settings.url!r} is not an http(s) URL", "the feed's address")
    if settings.kind not in KINDS:
        problem("kind", f"{settings.kind!r} is not a record kind", "one of " + " ".join(KINDS))
    if settings.language is not None and settings.language not in LANGUAGES:
        expected = "one of " + " ".join(LANGUAGES)
        problem("language", f"{settings.language!r} is not a record language", expected)
    try:
        zone = zone_of(settings.timezone)
    except ValueError as exc:
        problem("timezone", str(exc), "an offset like +08:00")
        zone = zone_of("+08:00")
    if problems:
        raise ConfigInvalid(problems)
    return zone
