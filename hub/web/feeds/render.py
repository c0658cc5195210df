"""RSS 2.0 and Atom 1.0 documents, joined from per-entry fragments.

Building a feed with an XML library for every request is what makes feeds slow
(feedgen: about 4 ms for 100 items); joining bytes that are already rendered
takes a few hundredths of that. So each log row (a record at one revision) is
rendered once per format and script into a *fragment*: the serialized
``<entry>``, ``<at:deleted-entry>`` or ``<item>`` with no namespace
declarations of its own, because the document element declares them all
(``ATOM_NAMESPACES``, ``RSS_NAMESPACES``). A document is a head, the fragments
and a tail.

Every entry carries the whole record as ``gr:record`` (namespace
``urn:govhub:record:1``), exactly as published: a Traditional feed converts
what people read (title, summary, body, categories, authors) but never the
record itself, whose content hash must still match.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import quote

from lxml import etree

from hub.records.decode import record_from_element
from hub.records.html import close_for_html
from hub.records.model import CHINA, XHTML_NS, Attachment
from hub.records.model import NS as RECORD
from hub.records.safe_xml import Limits, parse_untrusted
from hub.store.feed_log.log import LogEntry
from hub.web import kinds
from hub.web.feeds.article import section_elements
from hub.web.traditional import LANGUAGE_TAG, to_traditional

ATOM = "http://www.w3.org/2005/Atom"
TOMBSTONES = "http://purl.org/atompub/tombstones/1.0"
HISTORY = "http://purl.org/syndication/history/1.0"
DC = "http://purl.org/dc/elements/1.1/"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

ATOM_NAMESPACES: dict[str | None, str] = {None: ATOM, "at": TOMBSTONES, "fh": HISTORY, "gr": RECORD}
CONTENT = "http://purl.org/rss/1.0/modules/content/"
RSS_NAMESPACES: dict[str | None, str] = {
    "atom": ATOM,
    "content": CONTENT,
    "dc": DC,
    "fh": HISTORY,
    "gr": RECORD,
}

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SIMPLIFIED = "zh-Hans"
KIND_SCHEME = "urn:govhub:kind"
TOPIC_SCHEME = "urn:govhub:topic"
STATUS_SCHEME = "urn:govhub:status"
WITHDRAWN_MARK = "【已撤回】"
SUMMARY_CHARS = 200
RECORD_LIMITS = Limits(max_bytes=8 * 1024 * 1024, max_depth=64)
GENERATOR = "govhub"


def atom_date(when: datetime) -> str:
    """RFC 3339, in China time, to the second (``2022-04-17T14:46:00+08:00``)."""
    return when.astimezone(CHINA).isoformat(timespec="seconds")


def rss_date(when: datetime) -> str:
    """RFC 822 as RSS 2.0 asks (``Sun, 17 Apr 2022 14:46:00 +0800``)."""
    return format_datetime(when.astimezone(CHINA).replace(microsecond=0))


def record_url(base_url: str, record_id: str) -> str:
    """The portal page of a record (``/records/{record id}``)."""
    return f"{base_url}/records/{quote(record_id, safe=':')}"


# ---- fragments --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Parts:
    """What an entry shows, read from the record, already in the feed's script."""

    title: str
    summary: str | None
    body: list[etree._Element]
    link: str | None
    reason: str | None
    when: datetime | None
    issuers: tuple[str, ...]
    topic: str | None
    record: etree._Element
    attachments: tuple[Attachment, ...]


def atom_fragment(entry: LogEntry, xml: str, base_url: str, script: str) -> bytes:
    """The ``<entry>`` (or, for a withdrawal, the ``<at:deleted-entry>``) of one log row."""
    parts = _parts(entry, xml, script)
    page = record_url(base_url, entry.id)
    if entry.withdrawn:
        gone = etree.Element(f"{{{TOMBSTONES}}}deleted-entry", nsmap=ATOM_NAMESPACES)
        gone.set("ref", entry.id)
        gone.set("when", atom_date(parts.when or entry.updated))
        _language(gone, entry, script)
        if parts.issuers:
            by = etree.SubElement(gone, f"{{{TOMBSTONES}}}by")
            _text(by, f"{{{ATOM}}}name", parts.issuers[0])
        _text(gone, f"{{{TOMBSTONES}}}comment", parts.reason or WITHDRAWN_MARK)
        _atom_link(gone, "alternate", "text/html", page)
        _graft_record(gone, parts.record)
        return _bare(gone, ATOM_NAMESPACES)
    item = etree.Element(f"{{{ATOM}}}entry", nsmap=ATOM_NAMESPACES)
    _language(item, entry, script)
    _text(item, f"{{{ATOM}}}id", entry.id)
    _text(item, f"{{{ATOM}}}title", parts.title)
    _text(item, f"{{{ATOM}}}updated", atom_date(entry.updated))
    _text(item, f"{{{ATOM}}}published", atom_date(entry.published))
    for issuer in parts.issuers:
        author = etree.SubElement(item, f"{{{ATOM}}}author")
        _text(author, f"{{{ATOM}}}name", issuer)
    _atom_link(item, "alternate", "text/html", page)
    if parts.link:
        _atom_link(item, "via", "text/html", parts.link)
    for attachment in parts.attachments:
        enclosure = etree.SubElement(item, f"{{{ATOM}}}link", rel="enclosure", href=attachment.href)
        enclosure.set("title", attachment.name)
        if attachment.type:
            enclosure.set("type", attachment.type)
        if attachment.size is not None:
            enclosure.set("length", str(attachment.size))
    if parts.topic:
        category = etree.SubElement(item, f"{{{ATOM}}}category", term=parts.topic)
        category.set("scheme", TOPIC_SCHEME)
    etree.SubElement(item, f"{{{ATOM}}}category", term=entry.kind, scheme=KIND_SCHEME)
    if parts.summary:
        _text(item, f"{{{ATOM}}}summary", parts.summary)
    if parts.body:
        content = etree.SubElement(item, f"{{{ATOM}}}content", type="xhtml")
        content.append(_content_div(parts.body))
    _graft_record(item, parts.record)
    return _bare(item, ATOM_NAMESPACES)


def _content_div(body: list[etree._Element]) -> etree._Element:
    div = etree.Element(f"{{{XHTML_NS}}}div", nsmap={None: XHTML_NS})
    div.extend(body)
    close_for_html(div)  # readers paste xhtml content into HTML: no <a/> there
    return div


def rss_fragment(entry: LogEntry, xml: str, base_url: str, script: str) -> bytes:
    """The ``<item>`` of one log row; a withdrawal keeps its guid, marks its title and
    category, and says why in its description."""
    parts = _parts(entry, xml, script)
    item = etree.Element("item", nsmap=RSS_NAMESPACES)
    title = WITHDRAWN_MARK + parts.title if entry.withdrawn else parts.title
    _text(item, "title", title)
    _text(item, "link", record_url(base_url, entry.id))
    guid = _text(item, "guid", entry.id)
    guid.set("isPermaLink", "false")
    _text(item, "pubDate", rss_date(entry.published))
    description = parts.reason if entry.withdrawn else parts.summary
    if description:
        _text(item, "description", description)
    if parts.body and not entry.withdrawn:
        # The whole article, as HTML text (RSS readers show content:encoded when present).
        html = etree.tostring(_content_div(parts.body), encoding="unicode", method="html")
        _text(item, f"{{{CONTENT}}}encoded", html)
    for issuer in parts.issuers:
        _text(item, f"{{{DC}}}creator", issuer)
    if parts.topic:
        _text(item, "category", parts.topic).set("domain", TOPIC_SCHEME)
    _text(item, "category", entry.kind).set("domain", KIND_SCHEME)
    if entry.withdrawn:
        _text(item, "category", "withdrawn").set("domain", STATUS_SCHEME)
    _graft_record(item, parts.record)
    return _bare(item, RSS_NAMESPACES)


def _parts(entry: LogEntry, xml: str, script: str) -> _Parts:
    root = parse_untrusted(xml.encode("utf-8"), entry.id, RECORD_LIMITS).getroot()
    convert = script == "Hant" and entry.lang == SIMPLIFIED

    def text(value: str | None) -> str | None:
        if value is None:
            return None
        return to_traditional(value) if convert else value

    body_element = root.find(f"{{{RECORD}}}body")
    body = [copy.deepcopy(child) for child in body_element] if body_element is not None else []
    model = record_from_element(root, entry.id)  # checked when stored: read, not checked again
    sections = kinds.sections(model, table=True)
    shown = section_elements(sections)
    summary = root.findtext(f"{{{RECORD}}}summary")
    if not summary:  # the body's text, or else its kind's section (办事指南, 问答)
        plain = ""
        if body_element is not None:
            plain = " ".join("".join(body_element.itertext()).split())
        elif sections[0].id in ("service", "interaction"):
            plain = " ".join(kinds.plain(sections[0]).split())
        summary = plain[:SUMMARY_CHARS] + ("…" if len(plain) > SUMMARY_CHARS else "") or None
    body += shown
    if convert:
        for child in body:
            _convert_tree(child)
    link = root.find(f"{{{RECORD}}}link")
    status = root.find(f"{{{RECORD}}}status")
    when = status.get("at") if status is not None else None
    return _Parts(
        title=text(root.findtext(f"{{{RECORD}}}title") or entry.id) or entry.id,
        summary=text(summary),
        body=body,
        link=link.get("href") if link is not None else None,
        reason=text(status.get("reason")) if status is not None else None,
        when=datetime.fromisoformat(when) if when else None,
        issuers=tuple(text(issuer) or issuer for issuer in entry.issuers),
        topic=text(entry.topic_class),
        record=root,
        attachments=model.attachments,
    )


def _convert_tree(element: etree._Element) -> None:
    for node in element.iter():
        if node.text:
            node.text = to_traditional(node.text)
        if node.tail and node is not element:
            node.tail = to_traditional(node.tail)


def _language(element: etree._Element, entry: LogEntry, script: str) -> None:
    """Declare the entry's language where it differs from the feed's."""
    feed_lang = LANGUAGE_TAG if script == "Hant" else SIMPLIFIED
    if entry.lang != SIMPLIFIED and entry.lang != feed_lang:
        element.set(XML_LANG, entry.lang)


def _graft_record(parent: etree._Element, record: etree._Element) -> None:
    """Copy the record under ``parent`` in the ``gr:`` prefix declared by the document.

    Stored records use ``urn:govhub:record:1`` as their default namespace; inside
    a feed that would make feed readers that ignore namespaces (feedparser in
    loose mode) take the record's ``<title>`` for the entry's.
    """
    copied = etree.SubElement(parent, record.tag, attrib=dict(record.attrib))
    copied.text = record.text
    for child in record:
        if isinstance(child.tag, str) and child.tag.startswith(f"{{{RECORD}}}"):
            _graft_record(copied, child)
            copied[-1].tail = child.tail
        else:
            copied.append(copy.deepcopy(child))


def embedded_record(item: etree._Element) -> bytes | None:
    """The record an entry, tombstone or item carries, as a standalone record document
    (what a subscriber passes to ``hub.records.parse``); ``None`` if it has none."""
    found = item.find(f"{{{RECORD}}}record")
    if found is None:
        return None
    holder = etree.Element("holder", nsmap={None: RECORD})
    _graft_record(holder, found)
    return etree.tostring(holder[0], encoding="utf-8")


def _text(parent: etree._Element, tag: str, value: str) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.text = value
    return element


def _atom_link(parent: etree._Element, rel: str, media_type: str, href: str) -> None:
    etree.SubElement(parent, f"{{{ATOM}}}link", rel=rel, type=media_type, href=href)


_DECLARATIONS: dict[tuple[str, int], bytes] = {}


def _bare(element: etree._Element, namespaces: dict[str | None, str]) -> bytes:
    """``element`` serialized without the namespace declarations of its start tag."""
    key = (element.tag, id(namespaces))
    declarations = _DECLARATIONS.get(key)
    if declarations is None:
        empty = etree.tostring(etree.Element(element.tag, nsmap=namespaces))
        declarations = empty[empty.index(b" ") : -2]
        _DECLARATIONS[key] = declarations
    data = etree.tostring(element, encoding="utf-8")
    head = data.index(b">")
    if data.find(declarations, 0, head) < 0:
        raise AssertionError(f"unexpected start tag {data[: head + 1]!r}")
    return data.replace(declarations, b"", 1)


# ---- documents --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedHead:
    """Everything a document says about itself, whatever its format."""

    feed_id: str
    title: str
    subtitle: str
    self_url: str
    html_url: str
    twin_url: str  # the same feed in the other format
    lang: str
    updated: datetime
    author: str
    current_url: str | None = None  # set on archive pages
    prev_archive: str | None = None
    next_archive: str | None = None
    archive: bool = False  # complete: will never change


def atom_document(head: FeedHead, fragments: Iterable[bytes]) -> bytes:
    feed = etree.Element(f"{{{ATOM}}}feed", nsmap=ATOM_NAMESPACES)
    feed.set(XML_LANG, head.lang)
    _text(feed, f"{{{ATOM}}}id", head.feed_id)
    _text(feed, f"{{{ATOM}}}title", head.title)
    _text(feed, f"{{{ATOM}}}subtitle", head.subtitle)
    _text(feed, f"{{{ATOM}}}updated", atom_date(head.updated))
    author = etree.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, f"{{{ATOM}}}name", head.author)
    _text(author, f"{{{ATOM}}}uri", head.html_url)
    _text(feed, f"{{{ATOM}}}generator", GENERATOR)
    _atom_link(feed, "self", "application/atom+xml", head.self_url)
    _atom_link(feed, "alternate", "text/html", head.html_url)
    _atom_link(feed, "alternate", "application/rss+xml", head.twin_url)
    _history(feed, f"{{{ATOM}}}link", head, "application/atom+xml")
    return _join(feed, fragments, b"</feed>")


def rss_document(head: FeedHead, fragments: Iterable[bytes]) -> bytes:
    rss = etree.Element("rss", nsmap=RSS_NAMESPACES, version="2.0")
    channel = etree.SubElement(rss, "channel")
    _text(channel, "title", head.title)
    _text(channel, "link", head.html_url)
    _text(channel, "description", head.subtitle)
    _text(channel, "language", head.lang)
    _text(channel, "lastBuildDate", rss_date(head.updated))
    _text(channel, "generator", GENERATOR)
    link = etree.SubElement(channel, f"{{{ATOM}}}link", rel="self", href=head.self_url)
    link.set("type", "application/rss+xml")
    _history(channel, f"{{{ATOM}}}link", head, "application/rss+xml")
    return _join(rss, fragments, b"</channel></rss>")


def _history(parent: etree._Element, tag: str, head: FeedHead, media_type: str) -> None:
    """RFC 5005 links (and ``fh:archive`` on a complete archive page)."""
    for rel, href in (
        ("current", head.current_url),
        ("prev-archive", head.prev_archive),
        ("next-archive", head.next_archive),
    ):
        if href:
            etree.SubElement(parent, tag, rel=rel, type=media_type, href=href)
    if head.archive:
        etree.SubElement(parent, f"{{{HISTORY}}}archive")


def _join(root: etree._Element, fragments: Iterable[bytes], tail: bytes) -> bytes:
    head = etree.tostring(root, encoding="utf-8", xml_declaration=False)
    if head.endswith(b"/>"):  # no children: <rss .../> cannot happen, <feed/> cannot either
        raise AssertionError("a feed head has children")
    head = head[: -len(tail)]
    return b"".join((b'<?xml version="1.0" encoding="utf-8"?>\n', head, *fragments, tail))
