"""The fast path: lxml reads RSS 2.0, RSS 1.0 and Atom 1.0 feeds whose shape it fully knows.

feedparser reads anything, but slowly: a pure-Python SAX handler with many
compatibility rules. Most government feeds are plain, well-formed RSS 2.0 out
of a CMS template, so a hardened lxml parse and a walk over the few elements
we use is enough for them. The rule is strict: :func:`fast_feed` returns
``None`` (and the caller asks feedparser) whenever the document holds anything
whose meaning would need one of feedparser's rules that are not copied here:
an element of a namespace we do not read inside an entry, the same field twice,
``xml:base``, a date we cannot read, Atom XHTML or base64 content, an e-mail
address in an author. The corpus test (tests/test_feed_corpus.py) checks that,
for every feed this path takes, the result equals feedparser's field by field.

The rules copied from feedparser (so that results agree) are marked "as feedparser".
"""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone

from feedparser.mixin import _FeedParserMixin
from lxml import etree

from adapters.feed.entry import Feed, FeedEntry, read_date
from hub.records.safe_xml import declares_doctype, hardened_parser

ATOM = "http://www.w3.org/2005/Atom"
RSS1 = "http://purl.org/rss/1.0/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
DC = "http://purl.org/dc/elements/1.1/"
XML = "http://www.w3.org/XML/1998/namespace"
MAX_BYTES = 20 * 1024 * 1024

# The elements an entry may hold, (namespace, local name) → our field; anything else: decline.
_RSS_ITEM = {
    ("", "title"): "title",
    ("", "link"): "link",
    ("", "description"): "summary",
    ("", "guid"): "guid",
    ("", "pubDate"): "published",
    ("", "author"): "author",
    ("", "category"): "category",
    ("", "comments"): None,
    (CONTENT, "encoded"): "content",
    (DC, "creator"): "author",
    (DC, "date"): "updated",
    (DC, "subject"): "category",
}
_RSS1_ITEM = {
    (RSS1, "title"): "title",
    (RSS1, "link"): "link",
    (RSS1, "description"): "summary",
    (CONTENT, "encoded"): "content",
    (DC, "creator"): "author",
    (DC, "date"): "updated",
    (DC, "subject"): "category",
}
_ATOM_ENTRY = {
    (ATOM, "id"): "guid",
    (ATOM, "title"): "title",
    (ATOM, "link"): "links",
    (ATOM, "published"): "published",
    (ATOM, "updated"): "updated",
    (ATOM, "summary"): "summary",
    (ATOM, "content"): "content",
    (ATOM, "author"): "author",
    (ATOM, "category"): "category",
}
_ATOM_FEED = frozenset(
    (
        *("id", "title", "subtitle", "link", "updated", "category", "generator", "icon"),
        *("logo", "rights"),
    )
)
_REPEATABLE = frozenset({"author", "category", "links"})
# Channel-level namespaces whose elements feedparser maps to nothing we read.
_QUIET = frozenset(
    {
        "",
        "http://purl.org/rss/1.0/modules/syndication/",
        "http://webns.net/mvcb/",
        "http://wellformedweb.org/CommentAPI/",
        "http://purl.org/rss/1.0/modules/slash/",
    }
)
_QUIET_RSS = _QUIET | {DC}
_URI_FIXER = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")  # as feedparser
_ENTITY_IN_URL = re.compile(r"&([A-Za-z0-9_]+);")
_HTML_TYPES = ("text/html", "application/xhtml+xml")


class Decline(Exception):
    """The document is not of a shape the fast path fully understands."""


def fast_feed(data: bytes, zone: timezone) -> Feed | None:
    """The feed read by lxml, or None when feedparser must read it (see the module's rules)."""
    if len(data) > MAX_BYTES or declares_doctype(data) or b"xml:base" in data:
        return None
    try:
        root = etree.fromstring(data, hardened_parser())
    except etree.XMLSyntaxError:
        return None
    try:
        if root.tag == "rss" and root.get("version") == "2.0":
            return _rss(root, zone)
        if root.tag == f"{{{RDF}}}RDF":
            return _rdf(root, zone)
        if root.tag == f"{{{ATOM}}}feed":
            return _atom(root, zone)
    except Decline:
        return None
    return None


def _rss(root: etree._Element, zone: timezone) -> Feed:
    channels = [child for child in root if child.tag == "channel"]
    if len(channels) != 1 or len(root) != 1 or _has_lang(root.iter()):
        raise Decline
    channel = channels[0]
    authors: list[str] = []
    language = None
    items = []
    for child in channel:
        name = _name(child)
        if name == ("", "item"):
            items.append(child)
        elif items and name[1] == "language":
            raise Decline  # as feedparser: a language applies only to what follows it
        elif name in (("", "managingEditor"), ("", "author"), (DC, "creator"), (DC, "author")):
            authors.append(_plain_author(child))
        elif name == ("", "language"):
            language = _text(child)
        elif name == (DC, "language") or (name[0] not in _QUIET_RSS and name != (ATOM, "link")):
            raise Decline
    if len(authors) > 1:
        raise Decline
    # as feedparser: <language> names the feed's language, not its entries'
    entries = tuple(_item(item, _RSS_ITEM, None, zone, atom=False) for item in items)
    return Feed(tuple(a for a in authors if a), language or None, entries, "fast")


def _rdf(root: etree._Element, zone: timezone) -> Feed:
    if _has_lang(root.iter()):
        raise Decline
    items = [child for child in root if child.tag == f"{{{RSS1}}}item"]
    language = None
    if any(item.get(f"{{{RDF}}}about") is None for item in items):
        raise Decline
    for child in root:
        if child.tag == f"{{{RSS1}}}channel":
            for part in child:
                if _name(part)[0] == DC and etree.QName(part).localname in ("creator", "language"):
                    raise Decline
        elif child.tag not in (f"{{{RSS1}}}item", f"{{{RSS1}}}image", f"{{{RSS1}}}textinput"):
            raise Decline
    entries = tuple(_item(item, _RSS1_ITEM, language, zone, atom=False) for item in items)
    return Feed((), None, entries, "fast")


def _atom(root: etree._Element, zone: timezone) -> Feed:
    if _has_lang(root.iterdescendants()):
        raise Decline
    language = root.get(f"{{{XML}}}lang") or root.get("lang")
    if language is not None:
        language = language.replace("_", "-") or None
    authors: list[str] = []
    entries = []
    for child in root:
        name = _name(child)
        if name == (ATOM, "entry"):
            entries.append(_item(child, _ATOM_ENTRY, language, zone, atom=True))
        elif name == (ATOM, "author"):
            authors.extend(_atom_author(child))
        elif name[0] != ATOM or name[1] not in _ATOM_FEED:
            raise Decline
    return Feed(tuple(authors), language, tuple(entries), "fast")


def _item(
    item: etree._Element,
    known: Mapping[tuple[str, str], str | None],
    language: str | None,
    zone: timezone,
    *,
    atom: bool,
) -> FeedEntry:
    found: dict[str, list[etree._Element]] = {}
    for child in item:
        name = _name(child)
        if name not in known:
            raise Decline
        field = known[name]
        if field is not None:
            found.setdefault(field, []).append(child)
    for field, elements in found.items():
        if len(elements) > 1 and field not in _REPEATABLE:
            raise Decline
    first = {field: elements[0] for field, elements in found.items()}
    title, title_is_html = None, False
    if "title" in first:
        title, title_is_html = _title(first["title"], atom=atom)
    guid = first.get("guid")
    guid_text = _text(guid) if guid is not None else item.get(f"{{{RDF}}}about")
    identifier = _fix_uri(guid_text) if guid_text and _guid_is_link(guid) else guid_text
    link = _link(found, first, atom=atom)
    if link is None and guid is not None and _guid_is_link(guid):
        link = identifier or None  # as feedparser: a permalink guid is the link
    summary = _html(first["summary"], atom=atom) if "summary" in first else None
    content = _html(first["content"], atom=atom) if "content" in first else None
    authors: list[str] = []
    for element in found.get("author", ()):
        authors.extend(_atom_author(element) if atom else [_plain_author(element)])
    return FeedEntry(
        id=identifier or None,
        title=title,
        title_is_html=title_is_html,
        link=link,
        published=_date(first.get("published"), zone),
        updated=_date(first.get("updated"), zone),
        summary=summary if summary else content,  # as feedparser: content stands in
        content=content or None,
        authors=tuple(dict.fromkeys(a for a in authors if a)),
        categories=_categories(found.get("category", []), atom=atom),
        # as feedparser: the language of the entry's title, so none for an entry without one
        language=language if "title" in found else None,
    )


def _title(element: etree._Element, *, atom: bool) -> tuple[str, bool]:
    if atom:
        kind = element.get("type", "text")
        if kind not in ("text", "html") or len(element):
            raise Decline
        return _text(element), kind == "html"
    if len(element):
        raise Decline
    value = _text(element)
    return value, _looks_like_html(value)


def _html(element: etree._Element, *, atom: bool) -> str:
    """The HTML an element holds (escaped text for Atom ``type="text"``)."""
    if len(element) or element.get("mode") or element.get("src") is not None:
        raise Decline
    if not atom:
        return _text(element)
    kind = element.get("type", "text")
    if kind == "html":
        return _text(element)
    if kind == "text":
        return html.escape(_text(element), quote=False)
    raise Decline


def _link(
    found: dict[str, list[etree._Element]], first: dict[str, etree._Element], *, atom: bool
) -> str | None:
    if not atom:
        element = first.get("link")
        if element is None:
            return None
        if len(element):
            raise Decline
        value = _fix_uri(_text(element)).replace("&amp;", "&")  # as feedparser
        return _ENTITY_IN_URL.sub(r"&\1", value) or None
    chosen = None
    for element in found.get("links", ()):
        rel = element.get("rel", "alternate")
        kind = element.get("type", "application/atom+xml" if rel == "self" else "text/html")
        href = element.get("href")
        if href is None:
            raise Decline
        if rel == "alternate" and kind in _HTML_TYPES:
            chosen = _fix_uri(href.strip())  # as feedparser: the last alternate wins
    return chosen


def _guid_is_link(guid: etree._Element | None) -> bool:
    return guid is not None and guid.get("isPermaLink", guid.get("ispermalink", "true")) == "true"


def _date(element: etree._Element | None, zone: timezone) -> datetime | None:
    if element is None:
        return None
    value = _text(element)
    if not value:
        return None
    found = read_date(value, zone)
    if found is None:
        raise Decline  # feedparser knows more date formats than we do
    return found


def _plain_author(element: etree._Element) -> str:
    value = _text(element)
    if "@" in value or "(" in value or "<" in value or len(element):
        raise Decline  # feedparser splits "name (e-mail)" by its own rules
    return value


def _atom_author(element: etree._Element) -> list[str]:
    names = {etree.QName(part).localname: _text(part) for part in element}
    if any(_name(part)[0] != ATOM for part in element):
        raise Decline
    name = names.get("name") or names.get("email") or ""
    return [name] if name else []


def _categories(elements: list[etree._Element], *, atom: bool) -> tuple[str, ...]:
    terms = []
    for element in elements:
        if len(element):
            raise Decline
        term = (element.get("term") or element.get("label")) if atom else _text(element)
        if atom and element.get("term") is None:
            raise Decline
        if term:
            terms.append(term.strip())
    return tuple(t for t in terms if t)


def _has_lang(elements: Iterator[etree._Element]) -> bool:
    """True when one of ``elements`` names a language (feedparser inherits it its own way)."""
    return any(e.get(f"{{{XML}}}lang") is not None or e.get("lang") is not None for e in elements)


def _name(element: etree._Element) -> tuple[str, str]:
    if not isinstance(element.tag, str):
        raise Decline
    qname = etree.QName(element)
    return qname.namespace or "", qname.localname


def _text(element: etree._Element) -> str:
    """The element's text, stripped, with feedparser's two repairs of mis-encoded text."""
    return _repair((element.text or "").strip())


def _repair(value: str) -> str:
    if value.isascii():  # nothing to repair (most text in most feeds: checked in C)
        return value
    # as feedparser: UTF-8 that was read as ISO-8859-1 and encoded again is undone …
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        value = value.encode("iso-8859-1").decode("utf-8")
    # … and C1 control characters are read as the Windows-1252 characters they stand for.
    if _C1.search(value) is None:  # str.translate looks up every character: skip it if it can
        return value
    return value.translate(_C1_AS_CP1252)


_C1 = re.compile("[\x80-\x9f]")


def _c1_table() -> dict[int, str]:
    table = {}
    for code in range(0x80, 0xA0):
        try:
            table[code] = bytes([code]).decode("cp1252")
        except UnicodeDecodeError:
            continue
    return table


_C1_AS_CP1252 = _c1_table()


def _fix_uri(uri: str) -> str:
    return _URI_FIXER.sub(r"\1\3", uri)


def _looks_like_html(value: str) -> bool:
    """As feedparser decides whether an RSS title is HTML."""
    return bool(_FeedParserMixin.looks_like_html(value))
