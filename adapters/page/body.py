"""The body of a page whose layout is unknown: a maintained main-content extractor,
or the page's one label/value table.

``adapters.page.fields.find_body`` tries the configured selector and the content
areas of the CMS families it knows (``CONTENT_AREAS``) first. When none of those
is on the page (a county template, a redesign), ``main_content`` asks
readability-lxml for the page's main content (docs/adapters/page.md has the
measurement that chose it over trafilatura), drops the metadata blocks it may
keep (``索引号：…`` lines, label rows) and gives an element the record's
sanitizer reads as it reads a known area.

Some pages are one table: a 行政处罚信息公开表 is rows of label and value cells,
and extractors built for prose keep little of it. ``label_value_table`` finds
such a table; it is the body when it holds most of the text the extractor found.
"""

from __future__ import annotations

import logging
import re

import lxml.html
from lxml import etree
from readability import Document

from adapters.page.html import collapse
from adapters.page.labels import field_of, pairs_in
from adapters.page.links import in_chrome

# readability logs every candidate it scores at INFO and DEBUG: not the adapter's story.
logging.getLogger("readability").setLevel(logging.WARNING)

_MIN_ROWS = 3
CHROME_NAMES = (
    *("foot", "bottom", "copyright", "nav", "header", "crumb", "share", "menu", "side"),
    *("aside", "hot", "recommend", "related", "banner", "toolbar"),
)
"""Words that start a class or id word of a page's chrome (``footer``, ``right-side``,
``hotnews``), not of its content (``inside`` is no ``side``)."""
_WORDS = re.compile(r"[a-z0-9]+")


def named_as(element: etree._Element, words: tuple[str, ...] = CHROME_NAMES) -> bool:
    """Whether a word of the element's class or id starts with one of ``words``."""
    names = f"{element.get('class') or ''} {element.get('id') or ''}".lower()
    return any(token.startswith(words) for token in _WORDS.findall(names))


_BLOCKS = frozenset(("p", "div", "li", "tr", "table", "ul", "ol", "dl", "h1", "h2", "h3", "h4"))
_TABLE_SHARE = 0.6  # of the extracted text: a label/value table that big is the body
_LONGEST_LABEL = 24  # characters of a label cell


def main_content(root: etree._Element) -> etree._Element | None:
    """The page's main content, or None when there is none: a ``div`` the extractor made
    (not part of ``root``), or the page's own label/value ``table``."""
    extracted = _extract(root)
    table = label_value_table(root)
    if table is not None and len(_text(table)) >= _TABLE_SHARE * len(_text(extracted)):
        return table  # the page is its table: what else the extractor kept is chrome
    return extracted


def _extract(root: etree._Element) -> etree._Element | None:
    html = etree.tostring(root, encoding="unicode", method="html")
    try:
        found = Document(html).summary(html_partial=True)
        if not found.strip():
            return None
        holder = lxml.html.fragment_fromstring(found, create_parent="div")
    except Exception:  # readability asserts and raises on odd pages: then there is no body
        return None
    blocks = list(holder.iter("p", "div", "li", "tr", "dd", "dt", "h1", "h2", "h3", "h4"))
    for block in reversed(blocks):  # innermost first: a container is judged on what is left
        if (
            block is not holder
            and block.getparent() is not None
            and (
                block.tag == "h1" or _not_body(block)  # the h1 is the record's title
            )
        ):
            block.drop_tree()  # the page's metadata (索引号：…) or chrome, not its body
    for block in reversed(list(holder.iter("div", "p", "li", "span", "section", "table"))):
        if block is not holder and block.getparent() is not None and _empty(block):
            block.drop_tree()  # what held only metadata or chrome
    return holder if collapse(holder.text_content()) else None


def _empty(block: etree._Element) -> bool:
    if collapse(block.text_content()):
        return False
    kept = ("img", "table", "video", "audio", "iframe", "object")
    return not any(e is not block for e in block.iter(*kept))


def _not_body(block: etree._Element) -> bool:
    """A block named as chrome (``class="footer"``, ``id="share"``, ``class="hot"``), or
    one that holds no other block and shows metadata: ``索引号：…`` pairs, or a row whose
    first cell is a label."""
    if named_as(block):
        return True
    if block.tag in ("tr", "dt"):
        first = collapse(next((c for c in block if isinstance(c.tag, str)), block).text_content())
        return field_of(first) is not None or bool(pairs_in(first))
    if any(isinstance(e.tag, str) and e.tag in _BLOCKS for e in block.iterdescendants()):
        return False  # a container: its own blocks are judged one by one
    return bool(pairs_in(collapse(block.text_content())))


def label_value_table(root: etree._Element) -> etree._Element | None:
    """The page's biggest table of label and value cells (rows of 2 or 4 cells, short
    labels), outside navigation and footers, or None."""
    best: etree._Element | None = None
    for table in root.iter("table"):
        if in_chrome(table) or table.find(".//table") is not None:
            continue
        rows = [row for row in table.iter("tr") if _cells(row)]
        pairs = [row for row in rows if _label_row(_cells(row))]
        if len(pairs) < _MIN_ROWS or len(pairs) < 0.8 * len(rows) or _metadata(pairs):
            continue
        if best is None or len(_text(table)) > len(_text(best)):
            best = table
    return best


def wrapped(table: etree._Element) -> etree._Element:
    """A ``div`` holding a copy of ``table``: the body's markup keeps its ``<table>``."""
    holder = etree.Element("div")
    holder.append(_copy(table))
    return holder


def _cells(row: etree._Element) -> list[etree._Element]:
    return [cell for cell in row if cell.tag in ("td", "th")]


def _label_row(cells: list[etree._Element]) -> bool:
    if len(cells) not in (2, 4):
        return False
    labels = [collapse(cells[i].text_content()) for i in range(0, len(cells), 2)]
    return all(0 < len(label) <= _LONGEST_LABEL for label in labels)


def _metadata(rows: list[etree._Element]) -> bool:
    """Whether most label cells are metadata labels (索引号, 发布机构…): the page's
    metadata table, not its body."""
    labels = [
        collapse(_cells(row)[i].text_content())
        for row in rows
        for i in (0, 2)
        if i < len(_cells(row))
    ]
    known = sum(field_of(label) is not None for label in labels)
    return known * 2 >= len(labels)


def _copy(element: etree._Element) -> etree._Element:
    copied = lxml.html.fromstring(etree.tostring(element, encoding="unicode", method="html"))
    copied.tail = None
    return copied


def _text(element: etree._Element | None) -> str:
    return "" if element is None else collapse(element.text_content())
