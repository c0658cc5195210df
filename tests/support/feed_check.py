"""A feed checker for the RSS 2.0 and Atom 1.0 rules that apply to what govhub emits.

It is not a full validator: it checks the rules our feeds could break —
required elements, elements that may appear once, dates (RFC 3339 in Atom,
RFC 822 in RSS), absolute and well-formed ids, one alternate link per type and
language, authors, ``xml:lang`` and RSS ``<language>`` values, unique entries,
RFC 5005 history links and RFC 6721 tombstones. Each problem is reported under
the event class the W3C feed validator uses for it (``MissingElement``,
``InvalidRFC3339Date``, …), so that tests can hold this checker to the
validator's own test cases (../shared/corpora/feedvalidator, see
tests/test_feed_checker.py).

Input is untrusted: no DTD, no entities, no network; a size limit.
"""

from __future__ import annotations

import calendar
import re
from collections import Counter
from dataclasses import dataclass, field

from lxml import etree

ATOM = "http://www.w3.org/2005/Atom"
HISTORY = "http://purl.org/syndication/history/1.0"
TOMBSTONES = "http://purl.org/atompub/tombstones/1.0"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MAX_BYTES = 16 * 1024 * 1024

COVERED = (
    "SAXError",
    "MissingElement",
    "MissingAttribute",
    "DuplicateElement",
    "DuplicateEntries",
    "DuplicateAtomLink",
    "InvalidRFC3339Date",
    "InvalidRFC2822Date",
    "IncorrectDOW",
    "InvalidLanguage",
    "InvalidFullLink",
    "InvalidURN",
    "FeedHistoryRelInEntry",
    "FeedRelInCompleteFeed",
)
"""The event classes this checker can report."""

PARENTS = frozenset(
    ("feed", "entry", "author", "contributor", "category", "channel", "item", "rss")
)
ELEMENTS = frozenset(
    (
        "id",
        "title",
        "updated",
        "published",
        "subtitle",
        "rights",
        "generator",
        "icon",
        "logo",
        "summary",
        "content",
        "source",
        "name",
        "uri",
        "email",
        "author",
        "link",
        "category",
        "scheme",
        "xml:lang",
        "channel",
        "description",
        "language",
        "lastBuildDate",
        "pubDate",
        "guid",
        "comments",
        "docs",
        "ttl",
        "webMaster",
        "managingEditor",
        "copyright",
        "when",
        "ref",
    )
)
ATTRIBUTES = frozenset(("href", "term", "version", "ref", "when"))


def in_scope(kind: str, params: dict[str, str]) -> bool:
    """Whether an expected validator event (class and parameters) is one this checker
    covers: its class, and the parent, element and attribute it names."""
    return (
        kind in COVERED
        and params.get("parent", "feed") in PARENTS
        and params.get("element", "id") in ELEMENTS
        and params.get("attr", "href") in ATTRIBUTES
    )


HISTORY_RELS = ("current", "first", "last", "next", "previous", "prev-archive", "next-archive")
PAGING_RELS = tuple(rel for rel in HISTORY_RELS if rel != "current")

RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:Z|[+-](\d\d):(\d\d))\Z"
)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
RFC822 = re.compile(
    r"(?:(?P<dow>[a-z]{3})\s*,\s*)?(?P<day>\d{1,2})\s+(?P<month>[a-z]{3})\s+(?P<year>\d{2,4})"
    r"\s+(?P<hour>\d\d)\s*:\s*(?P<minute>\d\d)(?:\s*:\s*(?P<second>\d\d))?"
    r"\s*(?:[+-]\d{4}|UT|GMT|[ECMP][SD]T|[A-IK-Z])\Z",
    re.I,
)
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*\Z|[ixIX](?:-[A-Za-z0-9]{1,8})+\Z")
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
URN = re.compile(r"urn:([^:]*):", re.I)
NID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}\Z")


@dataclass(frozen=True, slots=True)
class Event:
    """One problem: the validator's event class, its parameters, and a line to look at."""

    kind: str
    params: dict[str, str] = field(default_factory=dict)
    line: int | None = None

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"line {self.line}: {self.kind}" + (f" ({shown})" if shown else "")


def check_feed(data: bytes) -> list[Event]:
    """Every problem found in a feed document (an empty list when it passes)."""
    if len(data) > MAX_BYTES:
        return [Event("SAXError", {"reason": f"over {MAX_BYTES} bytes"})]
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        return [Event("SAXError", {"reason": str(exc)}, exc.lineno)]
    checker = _Checker()
    if root.tag == f"{{{ATOM}}}feed":
        checker.atom_feed(root)
    elif root.tag == "rss":
        checker.rss(root)
    return checker.events


class _Checker:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def report(self, kind: str, at: etree._Element, /, **params: str) -> None:
        self.events.append(Event(kind, params, at.sourceline))

    # ---- Atom (RFC 4287, RFC 5005, RFC 6721) ----

    def atom_feed(self, feed: etree._Element) -> None:
        self.languages(feed)
        self.once(
            feed,
            "feed",
            ("id", "title", "updated", "subtitle", "rights", "generator", "icon", "logo"),
        )
        self.required(feed, "feed", ("id", "title", "updated"))
        self.common(feed, "feed")
        complete = feed.find(f"{{{HISTORY}}}complete") is not None
        for link in feed.findall(f"{{{ATOM}}}link"):
            if complete and link.get("rel") in PAGING_RELS:
                self.report("FeedRelInCompleteFeed", link, rel=link.get("rel", ""))
        feed_author = feed.find(f"{{{ATOM}}}author") is not None
        seen: Counter[tuple[str, str]] = Counter()
        for entry in feed.findall(f"{{{ATOM}}}entry"):
            self.atom_entry(entry, feed_author)
            seen[(_text(entry, "id"), _text(entry, "updated"))] += 1
        for (entry_id, _), count in seen.items():
            if entry_id and count > 1:
                self.report("DuplicateEntries", feed, parent="entry", element="id", value=entry_id)
        for gone in feed.findall(f"{{{TOMBSTONES}}}deleted-entry"):
            self.tombstone(gone)

    def atom_entry(self, entry: etree._Element, feed_author: bool) -> None:
        once = ("id", "title", "updated", "published", "summary", "content", "rights", "source")
        self.once(entry, "entry", once)
        self.required(entry, "entry", ("id", "title", "updated"))
        self.common(entry, "entry")
        source = entry.find(f"{{{ATOM}}}source")
        has_author = entry.find(f"{{{ATOM}}}author") is not None or (
            source is not None and source.find(f"{{{ATOM}}}author") is not None
        )
        if not feed_author and not has_author:
            self.report("MissingElement", entry, parent="entry", element="author")
        for link in entry.findall(f"{{{ATOM}}}link"):
            if link.get("rel") in HISTORY_RELS:
                self.report("FeedHistoryRelInEntry", link, rel=link.get("rel", ""))

    def common(self, parent: etree._Element, name: str) -> None:
        """What feeds and entries share: dates, id, people, links, categories."""
        for tag in ("updated", "published"):
            for date in parent.findall(f"{{{ATOM}}}{tag}"):
                if not _rfc3339(date.text or ""):
                    self.report("InvalidRFC3339Date", date, parent=name, element=tag)
        for ident in parent.findall(f"{{{ATOM}}}id"):
            self.full_uri(ident, (ident.text or ""), parent=name, element="id")
        for tag in ("author", "contributor"):
            for person in parent.findall(f"{{{ATOM}}}{tag}"):
                self.once(person, tag, ("name", "uri", "email"))
                self.required(person, tag, ("name",))
        self.links(parent, name)
        for category in parent.findall(f"{{{ATOM}}}category"):
            if category.get("term") is None:
                self.report("MissingAttribute", category, element="category", attr="term")
            scheme = category.get("scheme")
            if scheme is not None:
                self.full_uri(category, scheme, parent="category", element="scheme")

    def links(self, parent: etree._Element, name: str) -> None:
        """Every link has an href; one alternate link per (type, hreflang)."""
        alternates: Counter[tuple[str, str]] = Counter()
        for link in parent.findall(f"{{{ATOM}}}link"):
            if link.get("href") is None:
                self.report("MissingAttribute", link, parent=name, element="link", attr="href")
            if link.get("rel", "alternate") == "alternate":
                alternates[(link.get("type", ""), link.get("hreflang", ""))] += 1
        if any(count > 1 for count in alternates.values()):
            self.report("DuplicateAtomLink", parent, parent=name, element="link")

    def tombstone(self, gone: etree._Element) -> None:
        for attr in ("ref", "when"):
            if gone.get(attr) is None:
                self.report("MissingAttribute", gone, element="at:deleted-entry", attr=attr)
        when = gone.get("when")
        if when is not None and not _rfc3339(when):
            self.report("InvalidRFC3339Date", gone, element="when")
        ref = gone.get("ref")
        if ref is not None:
            self.full_uri(gone, ref, element="ref")

    def full_uri(self, at: etree._Element, value: str, /, **params: str) -> None:
        if not SCHEME.match(value) or any(c.isspace() for c in value):
            self.report("InvalidFullLink", at, **params)
            return
        urn = URN.match(value)
        if urn and not NID.match(urn.group(1)):
            self.report("InvalidURN", at, **params)

    # ---- RSS 2.0 ----

    def rss(self, rss: etree._Element) -> None:
        if rss.get("version") is None:
            self.report("MissingAttribute", rss, element="rss", attr="version")
        self.once(rss, "rss", ("channel",), atom=False)
        channel = rss.find("channel")
        if channel is None:
            self.report("MissingElement", rss, parent="rss", element="channel")
            return
        self.required(channel, "channel", ("title", "link", "description"), atom=False)
        channel_once = (
            "title",
            "link",
            "description",
            "language",
            "copyright",
            "docs",
            "managingEditor",
            "webMaster",
            "pubDate",
            "lastBuildDate",
            "generator",
            "ttl",
        )
        self.once(channel, "channel", channel_once, atom=False)
        for tag in ("pubDate", "lastBuildDate"):
            for date in channel.findall(tag):
                self.rfc822(date, "channel", tag)
        for language in channel.findall("language"):
            if not LANGUAGE.match(language.text or ""):
                self.report("InvalidLanguage", language, parent="channel", element="language")
        for item in channel.findall("item"):
            if item.find("title") is None and item.find("description") is None:
                self.report("MissingElement", item, parent="item", element="title")
            item_once = (
                "title",
                "link",
                "description",
                "author",
                "comments",
                "guid",
                "pubDate",
                "source",
            )
            self.once(item, "item", item_once, atom=False)
            for date in item.findall("pubDate"):
                self.rfc822(date, "item", "pubDate")
        self.languages(rss)

    def rfc822(self, date: etree._Element, parent: str, tag: str) -> None:
        kind = _rfc822(date.text or "")
        if kind:
            self.report(kind, date, parent=parent, element=tag)

    # ---- shared ----

    def once(
        self, parent: etree._Element, name: str, tags: tuple[str, ...], *, atom: bool = True
    ) -> None:
        counts = Counter(child.tag for child in parent)
        for tag in tags:
            if counts[f"{{{ATOM}}}{tag}" if atom else tag] > 1:
                self.report("DuplicateElement", parent, parent=name, element=tag)

    def required(
        self, parent: etree._Element, name: str, tags: tuple[str, ...], *, atom: bool = True
    ) -> None:
        for tag in tags:
            if parent.find(f"{{{ATOM}}}{tag}" if atom else tag) is None:
                self.report("MissingElement", parent, parent=name, element=tag)

    def languages(self, root: etree._Element) -> None:
        for element in root.iter():
            value = element.get(XML_LANG)
            if value and not LANGUAGE.match(value):
                self.report("InvalidLanguage", element, element="xml:lang")


def _text(parent: etree._Element, tag: str) -> str:
    return (parent.findtext(f"{{{ATOM}}}{tag}") or "").strip()


def _rfc3339(value: str) -> bool:
    match = RFC3339.match(value)
    if not match:
        return False
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year or 1, month)[1]:
        return False
    offset_hours, offset_minutes = match.group(7), match.group(8)
    if offset_hours is not None and (int(offset_hours) > 23 or int(offset_minutes) > 59):
        return False
    return hour < 24 and minute < 60 and second <= 60


def _rfc822(value: str) -> str | None:
    """``None`` for a valid RFC 822 date, else the event class to report."""
    match = RFC822.match(_uncomment(value).strip())
    if not match or match["month"].title() not in MONTHS:
        return "InvalidRFC2822Date"
    year = int(match["year"])
    if len(match["year"]) < 4:  # RFC 2822 §4.3: obsolete two- and three-digit years
        year += 2000 if year < 50 else 1900
    day, month = int(match["day"]), MONTHS.index(match["month"].title()) + 1
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return "InvalidRFC2822Date"
    if int(match["hour"]) > 23 or int(match["minute"]) > 59 or int(match["second"] or 0) > 60:
        return "InvalidRFC2822Date"
    dow = match["dow"] and match["dow"].title()
    if dow is not None:
        if dow not in DAYS:
            return "InvalidRFC2822Date"
        if DAYS[calendar.weekday(year, month, day)] != dow:
            return "IncorrectDOW"
    return None


def _uncomment(value: str) -> str:
    """``value`` with RFC 2822 comments (nested, with ``\\`` escapes) turned into spaces."""
    kept: list[str] = []
    depth, escaped = 0, False
    for char in value:
        if depth:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if not depth:
                    kept.append(" ")
        elif char == "(":
            depth = 1
        else:
            kept.append(char)
    return "".join(kept)
