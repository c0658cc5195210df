"""Untrusted HTML → a record body: the body profile's elements, in the XHTML namespace.

Feeds and pages carry HTML written by anyone (and sometimes by an attacker who
took over a CMS). A record body is republished by other sites, so it may hold
text markup only (hub/records/body.py, schemas/xhtml-body.xsd). Two steps:

1. nh3 (the Rust sanitizer ammonia) parses the fragment as a browser would
   and keeps only the elements and attributes that the body profile allows,
   taken from ``hub.records.body`` so that the two lists cannot drift apart;
   scripts and styles go with their content, comments go, URLs keep only the
   http, https and mailto schemes.
2. lxml re-reads that clean HTML and writes each element again in the XHTML
   namespace, checking what XML Schema checks and HTML does not (numbers in
   ``colspan``, lengths in ``width``, language tags), resolving relative URLs
   against the page's address, wrapping bare text in ``<p>`` and flattening
   markup nested deeper than the body allows. Markup nested deeper than a
   record may be at all (``DEFAULT_LIMITS.max_depth``) is refused with an
   ``InputError``: libxml2 would drop what lies below 256 levels without a word.

The result is what ``Record.body`` holds: the body's child elements, each
serialized with its own ``xmlns``, nothing between them.
"""

from __future__ import annotations

import html as html_module
import re
from urllib.parse import quote, urljoin

import nh3
from lxml import etree

from hub.errors import InputError, Problem
from hub.records.body import ELEMENT_ATTRIBUTES, ELEMENTS, GLOBAL_ATTRIBUTES, URL_ATTRIBUTES
from hub.records.model import XHTML_NS
from hub.records.safe_xml import DEFAULT_LIMITS

KEPT_SCHEMES = frozenset({"http", "https", "mailto"})
MAX_DEPTH = 48  # below the body's limit (GOVHUB_MAX_DEPTH, 64) with room to spare
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_HTML_ATTRIBUTES = GLOBAL_ATTRIBUTES - {_XML_LANG}  # nh3 reads HTML: no xml:lang there

# Elements that flow inside a paragraph; bare runs of them (and of text) at the top get a <p>.
_INLINE = frozenset(
    (
        *("a", "abbr", "b", "br", "cite", "code", "del", "em", "i", "img", "ins", "q", "s"),
        *("small", "span", "strong", "sub", "sup", "time", "u"),
    )
)
# Elements that mean nothing when empty (``<a name="top"></a>``, ``<span></span>``): they
# are left out, so a body never holds an ``<a href="…"/>`` that an HTML page would read
# as an open link. Table cells, list items and the void br, img, hr, col stay.
_DROPPED_WHEN_EMPTY = (
    (_INLINE - {"br", "img"})
    | {"p", "div", "blockquote", "figure"}
    | {f"h{level}" for level in range(1, 7)}
)
# Characters XML 1.0 cannot carry at all; lxml refuses them, so they go first.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
# A tag in nh3's output: it escapes "<" and ">" inside attribute values, so this is exact.
_TAG = re.compile(r"<(/?)([a-z][a-z0-9]*)")
_VOID = frozenset({"br", "img", "hr", "col"})
_ABSOLUTE_WEB = re.compile(r"https?://[^/?#\\]", re.I)
_LANGUAGE_TAG = re.compile(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*")
_LENGTH = re.compile(r"[0-9]{1,5}(%|px)?")
_DIGITS = re.compile(r"[0-9]{1,6}")
_URL_SAFE = "%/:=&?~#+!$,;'@()*[]"

_CLEANER = nh3.Cleaner(
    tags=set(ELEMENTS),
    clean_content_tags={"script", "style"},
    attributes={
        "*": set(_HTML_ATTRIBUTES),
        **{name: set(allowed) for name, allowed in ELEMENT_ATTRIBUTES.items()},
    },
    strip_comments=True,
    link_rel=None,
    url_schemes=set(KEPT_SCHEMES),
)
_TEXT_CLEANER = nh3.Cleaner(tags=set(), clean_content_tags={"script", "style"})
# Where a block starts or ends the text breaks: a space there keeps two cells, items or
# paragraphs apart in plain text ("PM2.5 31微克", not "PM2.531微克"). Inline elements
# (b, span, a) join their text as written, as Chinese text needs.
_BLOCK_EDGE = re.compile(
    r"<(?=/?(?:address|article|aside|blockquote|br|caption|dd|div|dl|dt|figcaption|figure"
    r"|footer|h[1-6]|header|hr|li|main|nav|ol|p|pre|section|table|tbody|td|tfoot|th|thead"
    r"|tr|ul)\b)",
    re.IGNORECASE,
)
_HTML_PARSER = etree.HTMLParser(no_network=True, remove_comments=True, remove_pis=True)


def sanitize_html(
    html: str,
    base_url: str | None = None,
    *,
    where: str = "html",
    max_depth: int = DEFAULT_LIMITS.max_depth,
) -> str | None:
    """``html`` made fit for ``Record.body``, or ``None`` when nothing worth keeping remains.

    Relative URLs are resolved against ``base_url`` when it is given (they stay
    relative otherwise, which the body profile allows). ``InputError`` (naming
    ``where``) when the markup is nested deeper than ``max_depth``.
    """
    cleaned = _CLEANER.clean(_NOT_XML.sub("", html))
    if not cleaned.strip():
        return None
    depth = markup_depth(cleaned)
    if depth > max_depth:
        message = f"the HTML is nested {depth:,} levels deep, over the limit of {max_depth}"
        expected = f"markup nested at most {max_depth} levels (this is broken or hostile HTML)"
        raise InputError([Problem(where, None, "body", message, expected)])
    top = _rewrite(_fragment(cleaned), base_url)
    if not top or not any(_has_content(element) for element in top):
        return None
    return "".join(etree.tostring(element, encoding="unicode", with_tail=False) for element in top)


def markup_depth(cleaned: str) -> int:
    """How deep the elements of nh3's (balanced) output nest."""
    depth = deepest = 0
    for match in _TAG.finditer(cleaned):
        if match.group(1):
            depth -= 1
        elif match.group(2) not in _VOID:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def plain_text(html: str) -> str:
    """The text of an HTML fragment, its whitespace collapsed (for titles and summaries)."""
    cleaned = _NOT_XML.sub("", html)
    if "<" not in cleaned and "&" not in cleaned:
        return " ".join(cleaned.split())
    text = _TEXT_CLEANER.clean(_BLOCK_EDGE.sub(" <", cleaned))
    # nh3 returns text escaped for HTML; read the entities back into characters.
    return " ".join(_NOT_XML.sub("", html_module.unescape(text)).split())


def _fragment(cleaned: str) -> etree._Element:
    """The ``<div>`` holding nh3's output, parsed by libxml2's HTML parser.

    Plain lxml elements, not ``lxml.html``'s: its element classes make every
    element access slower, and nh3's output is already balanced markup.
    """
    root = etree.fromstring(f"<div>{cleaned}</div>", _HTML_PARSER)
    found = root.find("body/div")
    return found if found is not None else etree.Element("div")


def _rewrite(parent: etree._Element, base_url: str | None) -> list[etree._Element]:
    """The top-level XHTML elements for the children of ``parent``, bare runs in <p>."""
    top: list[etree._Element] = []
    paragraph: etree._Element | None = None

    def open_paragraph() -> etree._Element:
        nonlocal paragraph
        if paragraph is None:
            paragraph = etree.Element(f"{{{XHTML_NS}}}p", nsmap={None: XHTML_NS})
            top.append(paragraph)
        return paragraph

    if parent.text and parent.text.strip():
        open_paragraph().text = parent.text
    for child in parent:
        if not isinstance(child.tag, str) or child.tag not in ELEMENTS:
            continue  # nh3 already left only allowed elements; this is a backstop
        if child.tag in _INLINE:
            _copy(child, open_paragraph(), base_url, 1)
        else:
            paragraph = None
            element = etree.Element(f"{{{XHTML_NS}}}{child.tag}", nsmap={None: XHTML_NS})
            _fill(element, child, base_url, 1)
            if not _hollow(element):
                top.append(element)
        if child.tag not in _INLINE and child.tail and child.tail.strip():
            holder = open_paragraph()
            if len(holder):
                last = holder[-1]
                last.tail = (last.tail or "") + child.tail
            else:
                holder.text = (holder.text or "") + child.tail
    return top


def _copy(source: etree._Element, parent: etree._Element, base_url: str | None, depth: int) -> None:
    """Append ``source`` (and what it holds) under ``parent`` as an XHTML element."""
    if depth > MAX_DEPTH or not isinstance(source.tag, str) or source.tag not in ELEMENTS:
        _append_text(parent, "".join(source.itertext()) + (source.tail or ""))
        return
    element = etree.SubElement(parent, f"{{{XHTML_NS}}}{source.tag}")
    _fill(element, source, base_url, depth)
    if _hollow(element):
        parent.remove(element)
        _append_text(parent, source.tail or "")
        return
    element.tail = source.tail


def _hollow(element: etree._Element) -> bool:
    """An element that holds nothing and means nothing empty: leave it out."""
    if element.text or len(element):
        return False
    return etree.QName(element).localname in _DROPPED_WHEN_EMPTY


def _fill(
    element: etree._Element, source: etree._Element, base_url: str | None, depth: int
) -> None:
    for name, value in source.attrib.items():
        kept = _attribute(str(source.tag), str(name), value, base_url)
        if kept is not None:
            element.set(str(name), kept)
    element.text = source.text
    for child in source:
        _copy(child, element, base_url, depth + 1)


def _append_text(parent: etree._Element, text: str) -> None:
    if not text:
        return
    if len(parent):
        last = parent[-1]
        last.tail = (last.tail or "") + text
    else:
        parent.text = (parent.text or "") + text


def _attribute(tag: str, name: str, value: str, base_url: str | None) -> str | None:
    """The value to keep for one attribute, or ``None`` when XML Schema would refuse it."""
    if name not in _HTML_ATTRIBUTES and name not in ELEMENT_ATTRIBUTES.get(tag, ()):
        return None
    if name in URL_ATTRIBUTES:
        return safe_url(value, base_url)
    if name == "lang":
        return value if _LANGUAGE_TAG.fullmatch(value) else None
    if name == "dir":
        return value.lower() if value.lower() in ("ltr", "rtl", "auto") else None
    if name in ("width", "height") or (tag == "col" and name == "width"):
        return value.strip() if _LENGTH.fullmatch(value.strip()) else None
    if name in ("colspan", "span"):
        number = value.strip()
        return number if _DIGITS.fullmatch(number) and int(number) > 0 else None
    if name == "rowspan":
        number = value.strip()
        return number if _DIGITS.fullmatch(number) else None
    if name == "start":
        number = value.strip()
        return number if re.fullmatch(r"-?[0-9]{1,9}", number) else None
    return value


def safe_url(url: str, base_url: str | None = None) -> str | None:
    """``url`` resolved against ``base_url`` and escaped, or ``None`` unless http(s), mailto
    or relative."""
    url = url.strip()
    if base_url and not _ABSOLUTE_WEB.match(url):  # an absolute http(s) URL needs no joining
        try:
            url = urljoin(base_url, url)
        except ValueError:  # e.g. an invalid IPv6 literal
            return None
    scheme = _SCHEME.match(url)
    if scheme is not None and scheme.group(1).lower() not in KEPT_SCHEMES:
        return None
    escaped = quote(url, safe=_URL_SAFE)
    if scheme is None and ":" in escaped.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]:
        return None  # "a:b/c" without a base: the schema would read "a" as a scheme
    return escaped


def _has_content(element: etree._Element) -> bool:
    if "".join(element.itertext()).strip():
        return True
    return any(True for _ in element.iter(f"{{{XHTML_NS}}}img"))
