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

from adapters.kit.chinese_values import NO_VALUE
from adapters.page.body import main_content, named_as, wrapped
from adapters.page.html import Selector, collapse, compile_selector, without_spaces
from adapters.page.labels import field_of, is_label, pairs_in

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

# Elements a label without a colon can be (``<td>索引号</td><td>…</td>``).
_LABEL_CELLS = frozenset(("td", "th", "dt", "label", "span", "strong", "b", "em", "font"))
# A value is never a list, a table or a form: that is a sidebar or the next section.
_NOT_VALUES = frozenset(("ul", "ol", "table", "form", "li", "dl", "nav", "aside"))
_SITE_PARTS = ("logo", "head", "top", "nav", "foot", "banner", "site")  # whole class names
_ASIDE_WORDS = ("foot", "copyright", "nav", "side", "aside", "hot", "recommend", "related")
_LONGEST_VALUE = 300  # characters of a value outside table cells: longer is the next section
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
    ``body`` is the page's content area, if it has one; ``heading`` its ``h1`` or
    ``<title>``, the title of last resort.
    """

    labels: Mapping[str, str]
    meta: Mapping[str, str]
    labelled: frozenset[str] = frozenset()
    body: etree._Element | None = field(default=None, compare=False)
    heading: str | None = None

    @property
    def describes_itself(self) -> bool:
        """Whether the page says what it is: a title, 索引号 or 发文字号 label, or an
        ``ArticleTitle`` meta tag."""
        if {"title", "index_number", "doc_number"} & set(self.labels):
            return True
        return bool(self.meta.get("ArticleTitle"))

    @property
    def holds_record(self) -> bool:
        """Whether the page describes one piece of information (not a list, guide or index):
        it describes itself, or it has a heading, a labelled publication date and a body
        (a list shows its dates without labels)."""
        dated = "published" in self.labels and self.heading is not None
        return self.describes_itself or (dated and self.body is not None)


def recognise(root: etree._Element, body: Selector | None = None) -> PageFields:
    """The metadata the page shows (table cells, label:value pairs, meta tags) and its body."""
    area = find_body(root, body)
    if area is None and body is None:
        area = main_content(root)  # a layout of no known CMS family
    inside = frozenset(area.iter()) if area is not None else frozenset()
    if area is not None and area.tag == "table":
        area = wrapped(area)
    labels, labelled = label_values(root, skip=inside)
    return PageFields(labels, meta_tags(root), labelled, area, heading(root))


def find_body(root: etree._Element, body: Selector | None = None) -> etree._Element | None:
    """The content area: the configured selector's first element, else the usual CMS areas."""
    for selector in [body] if body is not None else _content_areas():
        for found in selector.select(root):
            if isinstance(found, etree._Element):
                return found
    return None


def heading(root: etree._Element) -> str | None:
    """The page's own heading: its one ``h1`` (outside navigation), else its ``<title>``
    without the site name after ``_``, ``|`` or `` - ``."""
    headings = [collapse(h.text_content()) for h in root.iter("h1") if not _site_heading(h)]
    headings = [h for h in headings if h]
    if len(headings) == 1 and len(headings[0]) <= 200:
        return headings[0]
    title = root.find(".//title")
    text = collapse(title.text_content()) if title is not None else ""
    text = re.split(r"\s*(?:_|\||｜| - | — |--)\s*", text)[0] if text else ""
    return text if 2 <= len(text) <= 200 else None


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

    A label is the innermost element whose own inline text starts with a label
    ``adapters.page.labels`` knows by meaning, and a colon; or a table cell (or
    ``dt``, ``span``…) that holds a known label alone. The value is the rest of
    that text up to the next known label, else the text right after the label
    element, else the next cell. An empty value (nothing, ``无``, or another
    label) gives no field, and a list, table or long text is never a value.
    Elements inside ``skip`` (the body) are not read: a body may quote labels.
    """
    matches: list[tuple[etree._Element, list[tuple[str, str]]]] = []
    for element in root.iter():
        if not isinstance(element.tag, str) or element in skip or element.tag in ("html", "head"):
            continue
        text = _inline_text(element)
        pairs = pairs_in(text)
        if not pairs and element.tag in _LABEL_CELLS and len(element) == 0:
            name = field_of(text) if len(text) <= 24 else None
            pairs = [(name, "")] if name is not None else []
        if pairs and not _aside(element):
            matches.append((element, pairs))
    holders = {ancestor for element, _ in matches for ancestor in element.iterancestors()}
    values: dict[str, str] = {}
    labelled: set[str] = set()
    for element, pairs in matches:
        if element in holders:
            continue  # a container whose text starts with a label another element holds
        for number, (name, rest) in enumerate(pairs):
            labelled.add(name)
            value = _value(rest)
            if not value and number == len(pairs) - 1:
                value = _after_break(element, name) or _next_value(element)
            if value and name not in values:
                values[name] = value
    return values, frozenset(labelled)


def without_label(text: str) -> str:
    """``发布日期：2020-08-02`` → ``2020-08-02``: a selector often catches the label too."""
    pairs = pairs_in(text)
    if len(pairs) == 1:
        return collapse(pairs[0][1])
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


def _site_heading(h1: etree._Element) -> bool:
    """Whether an ``h1`` is the site's (its logo, in the page header or navigation) rather
    than the article's: ``div.header h1.logo`` is, ``div.article-header h1`` is not."""
    for each in (h1, *h1.iterancestors()):
        if each.tag in ("nav", "footer"):
            return True
        if each.tag == "header":  # the page's header, unless it is an article's own
            return not any(a.tag in ("article", "main") for a in each.iterancestors())
        names = f"{each.get('class') or ''} {each.get('id') or ''}".lower().split()
        if any(name.startswith(_SITE_PARTS) for name in names):
            return True
    return False


def _aside(element: etree._Element) -> bool:
    """Whether labels here are not the page's own: in a form (a search box's 标题：), a
    footer or navigation, or a sidebar, a box of hot or related items. A page's header
    (``div.article-header``) holds its own metadata, so it is read."""
    for each in (element, *element.iterancestors()):
        if each.tag in ("form", "footer", "nav", "aside") or named_as(each, _ASIDE_WORDS):
            return True
    return False


def _value(text: str) -> str:
    """A value as written, or "" for nothing, ``无`` or a label's own text."""
    value = collapse(text).lstrip(":： \u3000").strip(" \u3000|｜")
    if not value or value in NO_VALUE or is_label(value) or pairs_in(value) or field_of(value):
        return ""
    return value


def _after_break(element: etree._Element, name: str) -> str:
    """The value on the next line of the label's own cell (``<td>索引号：<br/>…</td>``)."""
    blocks = [child for child in element if isinstance(child.tag, str) and child.tag in _BLOCK]
    if not blocks or any(child.tag != "br" for child in blocks):
        return ""
    pairs = pairs_in(collapse(element.text_content()))
    if not pairs or pairs[0][0] != name:
        return ""
    value = _value(pairs[0][1])
    return value if len(value) <= _LONGEST_VALUE else ""


def _next_value(label: etree._Element) -> str:
    """The value written after a label element: its tail text, else its next sibling
    (the next cell), climbing wrappers that hold nothing but the label."""
    if label.tail and label.tail.strip(" \t\r\n\xa0\u3000:："):
        return _value(label.tail)
    holder = label
    own = without_spaces(holder.text_content())
    parent = holder.getparent()
    while parent is not None and without_spaces(parent.text_content()) == own:
        holder, parent = parent, parent.getparent()
    if holder is not label and holder.tail and holder.tail.strip(" \t\r\n\xa0\u3000:："):
        return _value(holder.tail)
    following = holder.getnext()
    while following is not None and not isinstance(following.tag, str):
        following = following.getnext()
    if following is None or any(
        isinstance(e.tag, str) and e.tag in _NOT_VALUES for e in following.iter()
    ):
        return ""
    cell = holder.tag in ("td", "th", "dt")
    if cell and following.tag not in ("td", "th", "dd"):
        return ""
    if named_as(following):
        return ""  # a sidebar or a box of links after an empty label
    value = _value(following.text_content())
    return value if cell or len(value) <= _LONGEST_VALUE else ""


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
