"""The body of a page whose layout is unknown: a maintained main-content extractor,
or the page's one label/value table.

``adapters.page.fields.find_body`` tries the configured selector and the content
areas of the CMS families it knows (``CONTENT_AREAS``) first. When none of those
is on the page (a county template, a redesign), ``main_content`` asks
trafilatura for the page's main content (docs/adapters/page.md has the
measurement that chose it over readability-lxml) and parses what it gives back
into an element the record's sanitizer reads as it reads a known area.

Some pages are one table: a 行政处罚信息公开表 is rows of label and value cells,
and extractors built for prose keep little of it. ``label_value_table`` finds
such a table; it is the body when it holds more text than the extractor found.
"""

from __future__ import annotations

import logging

import lxml.html
import trafilatura
from lxml import etree

from adapters.page.html import collapse
from adapters.page.labels import field_of, pairs_in
from adapters.page.links import in_chrome

# trafilatura logs a warning for every page it finds no text in: the adapter says so itself.
logging.getLogger("trafilatura").setLevel(logging.ERROR)

_MIN_ROWS = 3
_LONGEST_LABEL = 24  # characters of a label cell


def main_content(root: etree._Element) -> etree._Element | None:
    """The page's main content, or None when there is none: a ``div`` the extractor made
    (not part of ``root``), or the page's own label/value ``table``."""
    extracted = _extract(root)
    table = label_value_table(root)
    if table is not None and len(_text(table)) > len(_text(extracted)):
        return table
    return extracted


def _extract(root: etree._Element) -> etree._Element | None:
    html = etree.tostring(root, encoding="unicode", method="html")
    found = trafilatura.extract(
        html,
        output_format="html",
        include_tables=True,
        include_links=True,
        include_images=True,
        include_comments=False,
        deduplicate=False,
        favor_recall=True,
        with_metadata=False,
    )
    if not found:
        return None
    document = lxml.html.document_fromstring(found)
    body = document.find("body")
    holder = body if body is not None else document
    holder.tag = "div"
    holder.attrib.clear()
    for block in list(holder.iter("p", "div", "li", "tr", "dd", "h1", "h2", "h3", "h4")):
        if block is not holder and pairs_in(collapse(block.text_content())):
            block.drop_tree()  # the page's metadata (索引号：…), not its body
    return holder if collapse(holder.text_content()) else None


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
    labels = [collapse(_cells(row)[i].text_content()) for row in rows for i in (0, 2)
              if i < len(_cells(row))]
    known = sum(field_of(label) is not None for label in labels)
    return known * 2 >= len(labels)


def _copy(element: etree._Element) -> etree._Element:
    copied = lxml.html.fromstring(etree.tostring(element, encoding="unicode", method="html"))
    copied.tail = None
    return copied


def _text(element: etree._Element | None) -> str:
    return "" if element is None else collapse(element.text_content())
