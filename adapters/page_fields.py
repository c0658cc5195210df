"""Recognising what a government web page says about itself: metadata, body, list links.

Chinese government sites built on TRS, Hanweb or their own CMS show a page's
disclosure metadata in one of three ways, and ``recognise`` reads all three:

1. the metadata table of www.gov.cn policy pages (``table.bd1``): a label cell
   (``<b>索 引 号：</b>``) followed by its value cell, by position;
2. label:value pairs in paragraphs, spans or list items
   (``<p><strong>索引号</strong>：000014348/2020-35147</p>``), labels written with
   ASCII or full-width spaces inside (``标　　题``) and an ASCII or full-width colon;
3. the meta tags of the 2017 page-design rules (``ArticleTitle``, ``PubDate``,
   ``ContentSource``, ``SiteIDCode``, ``ColumnName``, ``Url``) and of TRS WCM
   (``contentid``, ``author``).

Values come back as the page wrote them (``PageFields``); ``adapters.chinese_values``
reads them and ``adapters.page`` builds the record. Pages are hostile input: the
parser loads nothing from the network, refuses pages over a size limit and keeps
libxml2's depth limits (``huge_tree`` off).
"""

from __future__ import annotations

import codecs
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from urllib.parse import urldefrag, urljoin, urlsplit

import lxml.html
from cssselect import SelectorError
from lxml import etree
from lxml.cssselect import CSSSelector

MAX_PAGE_BYTES = 5 * 1024 * 1024

# Label (spaces removed) -> field. The first label of a field on the page wins.
LABELS = {
    "索引号": "index_number",
    "主题分类": "topic",
    "发文机关": "issuers",
    "发文单位": "issuers",
    "发文机构": "issuers",
    "发布机构": "issuers",
    "发布单位": "issuers",
    "信息来源": "source",
    "来源": "source",
    "成文日期": "created",
    "发文日期": "created",
    "生成日期": "created",
    "发布日期": "published",
    "发布时间": "published",
    "标题": "title",
    "名称": "title",
    "发文字号": "doc_number",
    "文号": "doc_number",
    "主题词": "keywords",
    "关键词": "keywords",
}
# Meta names read (matched without regard to case; the first non-empty one wins).
META_NAMES = (
    "ArticleTitle",
    "PubDate",
    "ContentSource",
    "SiteIDCode",
    "ColumnName",
    "Url",
    "contentid",
    "author",
    "publishdate",
    "firstpublishedtime",
)
# Where TRS, UCAP and other CMSs put an article's text, most specific first.
CONTENT_AREAS = ("#UCAP-CONTENT", ".TRS_Editor", ".TRS_UEDITOR", ".pages_content", "#zoom")
# Article URLs: TRS (t20200802_1352104.html), www.gov.cn (content_5365945.htm),
# Hanweb (art/2021/3/5/art_1229_123.html), Guangdong (post_7801234.html).
ARTICLE_PATH = re.compile(
    r"(/t\d{8}_\d+|/content_\d+|/art/\d{4}/\d{1,2}/\d{1,2}/art_\d+_\d+|/post_\d+)\.s?html?$"
)

_LABEL = re.compile(
    r"\s*([\u4e00-\u9fff][\u4e00-\u9fff \t\r\n\xa0\u3000]{0,12}?)\s*[:：](.*)", re.S
)
_SPACES = re.compile(r"[ \t\r\n\f\v\xa0]+")
_ALL_SPACES = re.compile(r"[\s\xa0\u3000]+")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:\-]+)""", re.I)
_BLOCK = frozenset(
    (
        *("address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt"),
        *("fieldset", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6"),
        *("header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table"),
        *("tbody", "td", "tfoot", "th", "thead", "tr", "ul"),
    )
)
_DROPPED = ("script", "style", "noscript", "template", "object", "embed")
_CHROME_TAGS = frozenset(("header", "footer", "nav"))
_CHROME_WORDS = ("foot", "header", "nav", "copyright", "crumb")
_LIST_TAGS = frozenset(("ul", "ol", "dl", "table"))
_NEXT_TEXTS = frozenset(("下一页", "下页", "nextpage", "next"))
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


@dataclass(frozen=True, slots=True)
class PageFields:
    """What a page shows about itself, as written.

    ``labels`` maps a field (``index_number``, ``title``, ``issuers``,
    ``doc_number``, ``topic``, ``keywords``, ``created``, ``published``,
    ``source``) to the text shown after its label, empty values left out.
    ``labelled`` names every field whose label is on the page, even with no
    value (``文号：`` with nothing after it still says "this is a document").
    ``meta`` maps the names in ``META_NAMES`` to their non-empty content.
    ``body`` is the page's content area, if it has one.
    """

    labels: Mapping[str, str]
    meta: Mapping[str, str]
    labelled: frozenset[str] = frozenset()
    body: etree._Element | None = field(default=None, compare=False)

    @property
    def holds_record(self) -> bool:
        """Whether the page describes one piece of information (not a list, guide or index)."""
        return bool({"title", "index_number", "doc_number"} & set(self.labels)) or bool(
            self.meta.get("ArticleTitle")
        )


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


def recognise(root: etree._Element, body: Selector | None = None) -> PageFields:
    """The metadata the page shows (table cells, label:value pairs, meta tags) and its body."""
    area = find_body(root, body)
    inside = frozenset(area.iter()) if area is not None else frozenset()
    labels, labelled = label_values(root, skip=inside)
    return PageFields(labels, meta_tags(root), labelled, area)


def find_body(root: etree._Element, body: Selector | None = None) -> etree._Element | None:
    """The content area: the configured selector's first element, else the usual CMS areas."""
    for selector in [body] if body is not None else _content_areas():
        for found in selector.select(root):
            if isinstance(found, etree._Element):
                return found
    return None


@functools.cache
def _content_areas() -> tuple[Selector, ...]:
    return tuple(compile_selector(css) for css in CONTENT_AREAS)


def inner_html(element: etree._Element) -> str:
    """The markup inside ``element`` (not the element itself: a ``<td>`` body has no table)."""
    parts = [_escape(element.text or "")]
    parts.extend(etree.tostring(child, encoding="unicode", method="html") for child in element)
    return "".join(parts)


def meta_tags(root: etree._Element) -> dict[str, str]:
    """The non-empty content of the meta tags in ``META_NAMES``, under those spellings."""
    wanted = {name.lower(): name for name in META_NAMES}
    found: dict[str, str] = {}
    for meta in root.iter("meta"):
        name = wanted.get((meta.get("name") or "").strip().lower())
        content = collapse(meta.get("content") or "")
        if name and content and name not in found:
            found[name] = content
    return found


def label_values(
    root: etree._Element, skip: frozenset[etree._Element] = frozenset()
) -> tuple[dict[str, str], frozenset[str]]:
    """Field -> value text of the page's ``label：value`` pairs, and every field labelled.

    A label is the innermost element whose own inline text starts with a known
    label and a colon. The value is the rest of that text, or when nothing
    follows the colon, the text of the next element (the next table cell).
    Elements inside ``skip`` (the body) are not read: a body may quote labels.
    """
    matches: list[tuple[etree._Element, str, str]] = []
    for element in root.iter():
        if not isinstance(element.tag, str) or element in skip or element.tag in ("html", "head"):
            continue
        match = _LABEL.match(_inline_text(element))
        if match is None:
            continue
        name = LABELS.get(_ALL_SPACES.sub("", match.group(1)))
        if name is not None:
            matches.append((element, name, match.group(2)))
    holders = {ancestor for element, _, _ in matches for ancestor in element.iterancestors()}
    values: dict[str, str] = {}
    labelled: set[str] = set()
    for element, name, rest in matches:
        if element in holders:
            continue  # a container whose text starts with a label another element holds
        labelled.add(name)
        value = collapse(rest) or _next_value(element)
        if value and name not in values:
            values[name] = value
    return values, frozenset(labelled)


def detail_links(
    root: etree._Element, page_url: str, selector: Selector | None = None
) -> list[str]:
    """The detail pages a list page links to, in page order, without repeats.

    With a selector: every matched link (an ``a`` element's ``href``, the links
    inside another matched element, or an XPath string). Without: links to
    article-shaped URLs (``ARTICLE_PATH``) on the list page's own host, outside
    headers, footers and navigation, taken from the list that holds most of them.
    """
    if selector is not None:
        hrefs = [h for found in selector.select(root) for h in _hrefs(found)]
        return _absolute(hrefs, page_url, lambda url: True)
    host = (urlsplit(page_url).hostname or "").lower()

    def article(url: str) -> bool:
        parts = urlsplit(url)
        return (parts.hostname or "").lower() == host and bool(ARTICLE_PATH.search(parts.path))

    groups: dict[etree._Element, list[str]] = {}
    for anchor in root.iter("a"):
        href = anchor.get("href")
        if not href or _in_chrome(anchor):
            continue
        url = _resolve(href, page_url)
        if url is not None and article(url):
            groups.setdefault(_list_of(anchor), []).append(url)
    if not groups:
        return []
    biggest = max(groups.values(), key=len)  # max keeps the first of equal groups
    return list(dict.fromkeys(biggest))


def next_page(root: etree._Element, page_url: str, selector: Selector | None = None) -> str | None:
    """The next list page: the selector's first link, else the link that says 下一页."""
    if selector is not None:
        hrefs = [h for found in selector.select(root) for h in _hrefs(found)]
    else:
        hrefs = [
            anchor.get("href") or ""
            for anchor in root.iter("a")
            if _ALL_SPACES.sub("", anchor.text_content()).strip("<>»›").lower() in _NEXT_TEXTS
        ]
    links = _absolute(hrefs, page_url, lambda url: True)
    return next((url for url in links if url != page_url), None)


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


def without_label(text: str) -> str:
    """``发布日期：2020-08-02`` → ``2020-08-02``: a selector often catches the label too."""
    match = _LABEL.fullmatch(text)
    if match and _ALL_SPACES.sub("", match.group(1)) in LABELS:
        return collapse(match.group(2))
    return text


def _inline_text(element: etree._Element) -> str:
    """The text an element shows before its first block-level child."""
    parts = [element.text or ""]
    for child in element:
        if not isinstance(child.tag, str):
            parts.append(child.tail or "")
            continue
        if child.tag in _BLOCK:
            break
        parts.append(child.text_content())
        parts.append(child.tail or "")
    return "".join(parts)


def _next_value(label: etree._Element) -> str:
    """The value written after a label element: its next sibling (cell), climbing wrappers."""
    holder = label
    own = _ALL_SPACES.sub("", holder.text_content())
    parent = holder.getparent()
    while parent is not None and _ALL_SPACES.sub("", parent.text_content()) == own:
        holder, parent = parent, parent.getparent()
    following = holder.getnext()
    while following is not None and not isinstance(following.tag, str):
        following = following.getnext()
    if following is None:
        return ""
    value = collapse(following.text_content())
    match = _LABEL.fullmatch(value)
    if match and _ALL_SPACES.sub("", match.group(1)) in LABELS:
        return ""  # the next cell is another label: this one is empty
    return value


def _in_chrome(element: etree._Element) -> bool:
    for ancestor in element.iterancestors():
        if ancestor.tag in _CHROME_TAGS:
            return True
        names = f"{ancestor.get('class') or ''} {ancestor.get('id') or ''}".lower()
        if any(word in names for word in _CHROME_WORDS):
            return True
    return False


def _list_of(anchor: etree._Element) -> etree._Element:
    for ancestor in anchor.iterancestors():
        if ancestor.tag in _LIST_TAGS:
            return ancestor
    parent = anchor.getparent()
    return parent if parent is not None else anchor


def _hrefs(found: Found) -> list[str]:
    if isinstance(found, str):
        return [found]
    if found.tag == "a":
        return [found.get("href") or ""]
    return [anchor.get("href") or "" for anchor in found.iter("a")]


def _absolute(hrefs: Iterable[str], page_url: str, keep: Callable[[str], bool]) -> list[str]:
    urls = (_resolve(href, page_url) for href in hrefs)
    return list(dict.fromkeys(url for url in urls if url is not None and keep(url)))


def _resolve(href: str, page_url: str) -> str | None:
    """``href`` as an absolute http(s) URL without its fragment, or None."""
    href = href.strip()
    if not href or href.startswith("#"):
        return None
    try:
        url = urldefrag(urljoin(page_url, href)).url
    except ValueError:
        return None
    return url if urlsplit(url).scheme in ("http", "https") else None


def _codec(name: str) -> str | None:
    """The Python codec for a declared charset (GB2312 and GBK as GB18030), or None."""
    try:
        codec = codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None
    return "gb18030" if codec in ("gb2312", "gbk", "gb18030", "cp936") else codec


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
