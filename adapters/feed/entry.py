"""What the feed adapter reads from a feed, whichever parser read it.

Two parsers fill these classes: the lxml fast path (adapters/feed/fast.py) for
the well-formed RSS 2.0, RSS 1.0 and Atom 1.0 that most sites publish, and
feedparser for everything else (:func:`feedparser_feed`). They must agree
exactly on every feed the fast path takes, so what each field means is fixed
here: text as the feed has it, HTML as HTML (sanitized later, in ``convert``),
dates as written (read by :func:`read_date`, the same for both paths).
"""

from __future__ import annotations

import calendar
import email.utils
import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import feedparser


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry (an RSS item, an Atom entry)."""

    id: str | None
    title: str | None
    title_is_html: bool
    link: str | None  # as written: may be relative, resolved in convert
    published: datetime | None
    updated: datetime | None
    summary: str | None  # HTML (RSS description, Atom summary)
    content: str | None  # HTML (content:encoded, Atom content)
    authors: tuple[str, ...]
    categories: tuple[str, ...]
    language: str | None  # as the feed says it (zh-cn, en-US, …)


@dataclass(frozen=True, slots=True)
class Feed:
    """A parsed feed: who publishes it, in what language, its entries in document order."""

    authors: tuple[str, ...]
    language: str | None
    entries: tuple[FeedEntry, ...]
    parser: str  # "fast" or "feedparser"
    problem: str | None = None  # what was wrong with a feed that parsed only in part


_NAIVE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日",
)
_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def read_date(text: str | None, zone: timezone) -> datetime | None:
    """A timezone-aware datetime from an RFC 822, ISO 8601 or Chinese date, or None.

    A date written without an offset is taken in ``zone`` (the site's own
    time, +08:00 for Chinese sites), not in UTC as feedparser assumes.
    """
    if not text:
        return None
    text = " ".join(text.split())
    found: datetime | None = None
    if text[:1].isdigit():
        try:
            found = datetime.fromisoformat(_FRACTION.sub(r"\1", text.replace("Z", "+00:00")))
        except ValueError:
            found = _naive(text)
    else:
        try:
            found = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if found is None or not 1970 <= found.year <= 9999:
        return None
    return found if found.tzinfo is not None else found.replace(tzinfo=zone)


def _naive(text: str) -> datetime | None:
    for pattern in _NAIVE_FORMATS:
        try:
            return datetime.strptime(text, pattern)  # the caller adds the zone
        except ValueError:
            continue
    return None


def zone_of(offset: str) -> timezone:
    """``+08:00`` → a fixed timezone; ``ValueError`` for anything else."""
    match = re.fullmatch(r"([+-])(\d{2}):(\d{2})", offset.strip())
    if match is None:
        raise ValueError(f"{offset!r} is not an offset like +08:00")
    sign = 1 if match.group(1) == "+" else -1
    return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))


def feedparser_feed(data: bytes, zone: timezone) -> Feed:
    """The feed read by feedparser (any RSS or Atom, broken ones included)."""
    parsed = feedparser.parse(
        data,
        response_headers={"content-type": "application/xml; charset=utf-8"},
        sanitize_html=False,  # our own sanitizer runs in convert, on both paths
        resolve_relative_uris=False,
    )
    head = parsed.get("feed", {})
    problem = None
    if parsed.get("bozo"):
        problem = str(parsed.get("bozo_exception") or "not well-formed")
    entries = tuple(_entry(entry, zone) for entry in parsed.get("entries", ()))
    return Feed(_authors(head), head.get("language") or None, entries, "feedparser", problem)


def _entry(entry: Any, zone: timezone) -> FeedEntry:
    content = next(iter(entry.get("content") or ()), None)
    title_type = (entry.get("title_detail") or {}).get("type", "text/plain")
    summary = entry.get("summary_detail")
    if summary is None and entry.get("summary"):  # feedparser copied the content here
        summary = {"value": entry["summary"], "type": (content or {}).get("type", "text/html")}
    return FeedEntry(
        id=entry.get("id") or None,
        title=entry.get("title"),
        title_is_html=title_type != "text/plain",
        link=entry.get("link") or None,
        published=_date(entry, "published", zone),
        updated=_date(entry, "updated", zone),
        summary=_as_html(summary),
        content=_as_html(content),
        authors=_authors(entry),
        categories=tuple(
            term for tag in entry.get("tags") or () if (term := tag.get("term") or tag.get("label"))
        ),
        language=(entry.get("title_detail") or {}).get("language") or None,
    )


def _as_html(detail: Any) -> str | None:
    """A text construct's value as HTML: plain text is escaped."""
    if not detail or not detail.get("value"):
        return None
    value = str(detail["value"])
    return html.escape(value, quote=False) if detail.get("type") == "text/plain" else value


def _date(entry: Any, name: str, zone: timezone) -> datetime | None:
    """Our reading of the date as written; feedparser's (in UTC) when ours finds none."""
    # dict.get: FeedParserDict would answer "updated" with the published date
    found = read_date(dict.get(entry, name), zone)
    parsed = dict.get(entry, f"{name}_parsed")
    if found is None and parsed is not None:
        found = datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    return found


def _authors(context: Any) -> tuple[str, ...]:
    names = []
    for author in context.get("authors") or ():
        name = (author.get("name") or author.get("email") or "").strip()
        if name and name not in names:
            names.append(name)
    return tuple(names)
