"""Recognising what a government web page says about itself: its metadata and body.

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

Values come back as the page wrote them (``PageFields``); ``adapters.kit.chinese_values``
reads them and ``adapters.page.record`` builds the record. The tree comes from
``adapters.page.html``, which parses the page defensively.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from lxml import etree

from adapters.page.html import Selector, collapse, compile_selector, without_spaces

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

_LABEL = re.compile(
    r"\s*([\u4e00-\u9fff][\u4e00-\u9fff \t\r\n\xa0\u3000]{0,12}?)\s*[:：](.*)", re.S
)
_BLOCK = frozenset(
    (
        *("address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt"),
        *("fieldset", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6"),
        *("header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table"),
        *("tbody", "td", "tfoot", "th", "thead", "tr", "ul"),
    )
)


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
        name = LABELS.get(without_spaces(match.group(1)))
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


def without_label(text: str) -> str:
    """``发布日期：2020-08-02`` → ``2020-08-02``: a selector often catches the label too."""
    match = _LABEL.fullmatch(text)
    if match and without_spaces(match.group(1)) in LABELS:
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
    own = without_spaces(holder.text_content())
    parent = holder.getparent()
    while parent is not None and without_spaces(parent.text_content()) == own:
        holder, parent = parent, parent.getparent()
    following = holder.getnext()
    while following is not None and not isinstance(following.tag, str):
        following = following.getnext()
    if following is None:
        return ""
    value = collapse(following.text_content())
    match = _LABEL.fullmatch(value)
    if match and without_spaces(match.group(1)) in LABELS:
        return ""  # the next cell is another label: this one is empty
    return value


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
