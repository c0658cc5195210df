"""Reading a government web page as HTML: decoded, parsed defensively, selected from.

Chinese servers often declare the wrong charset (``ISO-8859-1``, a Tomcat
default, or UTF-8 for a GBK page), so ``decode_page`` tries the BOM, the HTTP
charset, ``<meta charset>``, then UTF-8 and GB18030, and keeps the first that
decodes. Pages are hostile input: ``read_html`` loads nothing from the network,
refuses pages over a size limit and keeps libxml2's depth limits (``huge_tree``
off). A ``Selector`` is what a source configures in nodes.toml: CSS, or XPath
after ``xpath:``. ``adapters.page.fields`` and ``adapters.page.links`` read the
tree this module gives.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import lxml.html
from cssselect import SelectorError
from lxml import etree
from lxml.cssselect import CSSSelector

MAX_PAGE_BYTES = 5 * 1024 * 1024
_SPACES = re.compile(r"[ \t\r\n\f\v\xa0]+")
_ALL_SPACES = re.compile(r"[\s\xa0\u3000]+")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:\-]+)""", re.I)
_DROPPED = ("script", "style", "noscript", "template", "object", "embed")
_LATIN1 = frozenset(("iso8859-1", "ascii", "cp1252"))  # codec names of server defaults

Found: TypeAlias = etree._Element | str


@dataclass(frozen=True, slots=True)
class Selector:
    """A configured selector: CSS by default, XPath after an ``xpath:`` prefix."""

    text: str
    select: Callable[[etree._Element], list[Found]]

    def first_text(self, root: etree._Element) -> str | None:
        """The text of the first match (whitespace collapsed), or None when nothing matches."""
        for found in self.select(root):
            text = text_of(found)
            if text:
                return text
        return None

    def all_texts(self, root: etree._Element) -> list[str]:
        return [text for text in map(text_of, self.select(root)) if text]


def compile_selector(text: str) -> Selector:
    """A ``Selector`` for ``text``; ``ValueError`` saying what is wrong with its syntax."""
    if text.startswith("xpath:"):
        expression = text[len("xpath:") :].strip()
        try:
            xpath = etree.XPath(expression)
        except etree.XPathSyntaxError as exc:
            raise ValueError(f"{expression!r} is not an XPath expression: {exc}") from None

        def by_xpath(root: etree._Element) -> list[Found]:
            try:
                result: Any = xpath(root)
            except etree.XPathError as exc:
                raise ValueError(f"XPath {expression!r} failed: {exc}") from None
            if isinstance(result, list):
                return [r if isinstance(r, etree._Element) else str(r) for r in result]
            return [] if result is None or result == "" else [str(result)]

        return Selector(text, by_xpath)
    try:
        css = CSSSelector(text, translator="html")
    except SelectorError as exc:
        raise ValueError(f"{text!r} is not a CSS selector: {exc}") from None
    return Selector(text, lambda root: list(css(root)))


def read_html(
    data: bytes, declared: str | None = None, *, max_bytes: int = MAX_PAGE_BYTES
) -> etree._Element:
    """The page's element tree, parsed defensively; ``ValueError`` for a page too big or empty.

    ``declared`` is the charset of the HTTP ``Content-Type``. Scripts, styles and
    comments are dropped here: their text is never metadata and never body.
    """
    if len(data) > max_bytes:
        raise ValueError(f"page is {len(data):,} bytes, over the limit of {max_bytes:,}")
    text = decode_page(data, declared)
    if not text.strip():
        raise ValueError("page is empty")
    try:
        root = lxml.html.document_fromstring(text.encode("utf-8"), parser=_parser())
    except (etree.ParserError, ValueError) as exc:
        raise ValueError(f"not readable as HTML: {exc}") from None
    for element in list(root.iter(*_DROPPED)):
        element.drop_tree()
    return root


def _parser() -> lxml.html.HTMLParser:
    """A new hardened parser per page: lxml parsers must not be shared between threads."""
    return lxml.html.HTMLParser(
        encoding="utf-8",
        remove_comments=True,  # commented-out metadata (<!--<p>成文日期：…</p>-->) is not shown
        remove_pis=True,
        no_network=True,
        huge_tree=False,
        recover=True,
    )


def decode_page(data: bytes, declared: str | None = None) -> str:
    """The page's text: BOM, then the HTTP charset, then ``<meta charset>``, then UTF-8 or GB18030.

    GB2312 and GBK are read as GB18030, their superset. A charset that fails to
    decode the bytes gives way to the next candidate, because Chinese servers
    often declare ``ISO-8859-1`` (a Tomcat default) or UTF-8 for GBK pages.
    """
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16")):
        if data.startswith(bom):
            return data.decode(name, errors="replace")
    if data.startswith(codecs.BOM_UTF16_BE):
        return data.decode("utf-16", errors="replace")
    found = _META_CHARSET.search(data[:16384])
    meta = _codec(found.group(1).decode("ascii", "replace")) if found else None
    header = _codec(declared) if declared else None
    default = header if header in _LATIN1 else None  # a server default: tried last
    header = None if default else header
    candidates = [c for c in (header, meta, "utf-8", "gb18030", default) if c is not None]
    for name in dict.fromkeys(candidates):
        try:
            return data.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode(candidates[0], errors="replace")


def text_of(found: Found) -> str:
    """The visible text of a selector match, whitespace collapsed."""
    if isinstance(found, etree._Element):
        return collapse(found.text_content())
    return collapse(found)


def collapse(text: str) -> str:
    """``text`` with runs of ASCII spaces and line breaks made one space, ends trimmed.

    Full-width spaces inside are kept (they separate 主题词); at the ends they go.
    """
    return _SPACES.sub(" ", text).strip(" \u3000")


def _codec(name: str) -> str | None:
    """The Python codec for a declared charset (GB2312 and GBK as GB18030), or None."""
    try:
        codec = codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None
    return "gb18030" if codec in ("gb2312", "gbk", "gb18030", "cp936") else codec


def without_spaces(text: str) -> str:
    """``text`` with every space gone, full-width and non-breaking ones too: how labels
    and link texts compare (``索 引 号`` is ``索引号``)."""
    return _ALL_SPACES.sub("", text)
