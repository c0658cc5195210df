"""A record body in HTML (hub.records.html): parsed as a browser parses it (html5lib, the
WHATWG algorithm), the page holds exactly the record's body, and an empty element
(``<a href="…"/>``, ``<div/>``) cannot swallow what follows it.

On the real portal (PostgreSQL) for every example record and a hostile one; and for
bodies generated with every element of schemas/xhtml-body.xsd, empty and not.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ElementTree
from typing import Any

import html5lib
import support.postgres as postgres_fixtures
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from test_links import variant
from test_pages import EXAMPLES, browse, fill

from hub import records
from hub.records.body import ELEMENTS
from hub.records.html import VOID, body_html, close_for_html
from hub.records.model import XHTML_NS, Record
from hub.store.connection import Connection

pg_url = postgres_fixtures.pg_url
pg_conn = postgres_fixtures.pg_conn

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
Tree = tuple[str, tuple[tuple[str, str], ...], str, str, tuple[Any, ...]]


def record_tree(body: str) -> list[Tree]:
    """The record's body as (tag, attributes, text, tail, children), namespaces left out."""
    root = etree.fromstring(f'<div xmlns="{XHTML_NS}">{body}</div>'.encode())
    return [_lxml_tree(child) for child in root]


def _lxml_tree(element: etree._Element) -> Tree:
    attributes = tuple(
        sorted(("xml:lang" if k == XML_LANG else str(k), str(v)) for k, v in element.attrib.items())
    )
    children = tuple(_lxml_tree(child) for child in element)
    return (
        etree.QName(element).localname,
        attributes,
        element.text or "",
        element.tail or "",
        children,
    )


def page_tree(html: str, css_class: str = "body") -> list[Tree]:
    """The children of the page's ``<div class="body">`` as html5lib builds them."""
    document = html5lib.parse(html, treebuilder="etree", namespaceHTMLElements=False)
    found = [e for e in document.iter("div") if e.get("class") == css_class]
    assert len(found) == 1, f"{len(found)} body divs in the page"
    return [_html5lib_tree(child) for child in found[0]]


def _html5lib_tree(element: ElementTree.Element, *, xmlns: bool = True) -> Tree:
    children = tuple(_html5lib_tree(child, xmlns=xmlns) for child in element)
    attributes = tuple(sorted((k, v) for k, v in element.attrib.items() if xmlns or k != "xmlns"))
    return (element.tag, attributes, element.text or "", element.tail or "", children)


def source_link_is_plain(html: str, link: str) -> None:
    """The page's own 原文链接 paragraph after the body is whole, and no body link holds it."""
    document = html5lib.parse(html, treebuilder="etree", namespaceHTMLElements=False)
    paragraphs = [p for p in document.iter("p") if p.get("class") == "source-link"]
    assert len(paragraphs) == 1
    anchors = list(paragraphs[0].iter("a"))
    assert [a.get("href") for a in anchors] == [link]
    assert (paragraphs[0].text or "")[:4] in ("原文链接", "原文鏈接")
    for body in (d for d in document.iter("div") if d.get("class") == "body"):
        assert not [p for p in body.iter("p") if p.get("class") == "source-link"]


# -- the portal's record pages, over HTTP ----------------------------------------------

HOSTILE_BODY = (
    f'<p xmlns="{XHTML_NS}">前文<a href="https://evil.example/"/>中间</p>'
    f'<div xmlns="{XHTML_NS}"/><p xmlns="{XHTML_NS}"><span/><b/>后文</p>'
    f'<pre xmlns="{XHTML_NS}">\n第一行</pre><p xmlns="{XHTML_NS}"/>'
)


def with_body(record: Record, record_id: str, body: str) -> Record:
    changed = variant(record, "gz", record_id)
    return records.parse(dataclasses.replace(changed, body=body).to_xml())


def test_every_record_page_holds_exactly_the_record_body(pg_conn: Connection, pg_url: str) -> None:
    notice = records.parse((EXAMPLES[0].parent / "notice.xml").read_bytes())
    hostile = with_body(notice, "empty-elements-1", HOSTILE_BODY)
    assert hostile.body is not None and '<a href="https://evil.example/"/>' in hostile.body
    fill(pg_conn, hostile)
    shown = [records.parse(p.read_bytes()) for p in EXAMPLES] + [hostile]
    with_bodies = [r for r in shown if r.body and not r.withdrawn]
    assert len(with_bodies) >= 5

    async def work(get: Any) -> None:
        for record in with_bodies:
            for lang in ("zh-Hans", "zh-Hant"):
                page = await get(f"/records/{record.id}", params={"lang": lang})
                assert page.status == 200, record.id
                if lang == "zh-Hans":
                    assert page_tree(page.text) == record_tree(record.body), record.id
                else:  # the text converted; the tree (tags, attributes but title/alt) the same
                    assert _shape(page_tree(page.text)) == _shape(record_tree(record.body))
                if record.link:
                    source_link_is_plain(page.text, record.link)

    browse(pg_url, "cn", work)


def _shape(trees: list[Tree]) -> list[Any]:
    return [
        (tag, [k for k, _ in attributes], _shape(list(children)))
        for tag, attributes, _, _, children in trees
    ]


# -- generated bodies: every element of the body schema, empty or not ------------------

PHRASING = sorted(
    {"a", "abbr", "b", "cite", "code", "del", "em", "i", "ins", "q", "s", "small", "span"}
    | {"strong", "sub", "sup", "time", "u"}
)
HEADINGS = [f"h{n}" for n in range(1, 7)]
TEXT = st.lists(
    st.sampled_from([*"ab 中文<>&\"'\n\t/=\u3000", "&amp;", "]]>", "--", "</a>"]), max_size=5
).map("".join)
URLS = st.sampled_from(
    ["https://evil.example/", "/政务/公开 2024.html?a=1&b=2", "mailto:x@gov.cn", "#top", ""]
)


def _element(tag: str, children: list[etree._Element], text: str = "", **attrs: str) -> Any:
    element = etree.Element(f"{{{XHTML_NS}}}{tag}", nsmap={None: XHTML_NS})
    element.text = text or None
    element.extend(children)
    for name, value in attrs.items():
        element.set(name, value)
    return element


@st.composite
def inline(draw: st.DrawFn, depth: int, in_link: bool = False) -> Any:
    choices = ["br", "img"] + [t for t in PHRASING if not (in_link and t == "a")]
    tag = draw(st.sampled_from(choices))
    if tag == "br":
        return _element("br", [])
    if tag == "img":
        return _element("img", [], src=draw(URLS), alt=draw(TEXT))
    children = draw(st.lists(inline(depth - 1, in_link or tag == "a"), max_size=2 if depth else 0))
    for child in children:
        child.tail = draw(TEXT) or None
    attrs = {"href": draw(URLS)} if tag == "a" else {}
    if draw(st.booleans()):
        attrs["title"] = draw(TEXT)
    return _element(tag, children, draw(TEXT), **attrs)


def _phrasing_content(draw: st.DrawFn, tag: str, depth: int) -> Any:
    children = draw(st.lists(inline(depth), max_size=3))
    for child in children:
        child.tail = draw(TEXT) or None
    return _element(tag, children, draw(TEXT))


@st.composite
def block(draw: st.DrawFn, depth: int) -> Any:
    kinds = ["p", "pre", "hr", *HEADINGS, "table"]
    if depth:
        kinds += ["div", "blockquote", "ul", "ol", "dl", "figure"]
    kind = draw(st.sampled_from(kinds))
    if kind == "hr":
        return _element("hr", [])
    if kind in ("p", "pre", *HEADINGS):
        element = _phrasing_content(draw, kind, 2)
        if draw(st.booleans()):
            element.set(XML_LANG, "en")
        return element
    if kind == "table":
        return draw(table())
    blocks = st.lists(block(depth - 1), max_size=2)
    if kind in ("div", "blockquote"):
        return _element(kind, draw(blocks))
    if kind in ("ul", "ol"):
        items = [_element("li", draw(blocks)) for _ in range(draw(st.integers(0, 2)))]
        return _element(kind, items)
    if kind == "dl":
        terms = [
            _phrasing_content(draw, "dt", 1)
            if draw(st.booleans())
            else _element("dd", draw(blocks))
            for _ in range(draw(st.integers(0, 3)))
        ]
        return _element("dl", terms)
    caption = [_phrasing_content(draw, "figcaption", 1)] if draw(st.booleans()) else []
    return _element("figure", draw(blocks) + caption)


@st.composite
def table(draw: st.DrawFn) -> Any:
    parts = []
    if draw(st.booleans()):
        parts.append(_phrasing_content(draw, "caption", 1))
    if draw(st.booleans()):
        columns = [_element("col", [], span="1") for _ in range(draw(st.integers(0, 2)))]
        parts.append(_element("colgroup", columns))
    for section in draw(st.lists(st.sampled_from(["thead", "tbody", "tfoot"]), max_size=3)):
        rows = []
        for _ in range(draw(st.integers(0, 2))):
            cells = [
                _phrasing_content(draw, draw(st.sampled_from(["td", "th"])), 1)
                for _ in range(draw(st.integers(0, 2)))
            ]
            rows.append(_element("tr", cells))
        parts.append(_element(section, rows))
    return _element("table", parts)


BODIES = st.lists(block(2), min_size=1, max_size=4).map(
    lambda top: "".join(etree.tostring(e, encoding="unicode") for e in top)
)
PAGE = (
    '<!DOCTYPE html><html lang="zh-Hans"><head><title>t</title></head><body><article>'
    '<div class="body">{body}</div><p class="source-link">原文链接：'
    '<a href="https://www.gz.gov.cn/x.html">https://www.gz.gov.cn/x.html</a></p></article>'
    "<footer>页脚</footer></body></html>"
)


def test_the_generators_reach_every_element_of_the_body_schema() -> None:
    generated = set(PHRASING) | {"br", "img", "p", "pre", "hr", "table", "caption", "colgroup"}
    generated |= {"col", "thead", "tbody", "tfoot", "tr", "td", "th", "div", "blockquote"}
    generated |= {"ul", "ol", "li", "dl", "dt", "dd", "figure", "figcaption", *HEADINGS}
    assert generated == ELEMENTS
    assert VOID <= ELEMENTS


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BODIES)
def test_a_generated_body_is_the_same_tree_in_the_page(body: str) -> None:
    record = records.parse(dataclasses.replace(_NOTICE, body=body).to_xml())
    assert record.body is not None  # the schema takes it, empty elements and all
    page = PAGE.format(body=body_html(record.body))
    assert page_tree(page) == record_tree(record.body)
    source_link_is_plain(page, "https://www.gz.gov.cn/x.html")
    document = html5lib.parse(page, treebuilder="etree", namespaceHTMLElements=False)
    footer = next(document.iter("footer"))
    assert footer.text == "页脚" and not list(footer)


@settings(max_examples=100, deadline=None)
@given(BODIES)
def test_atom_xhtml_content_pasted_into_html_is_the_same_tree(body: str) -> None:
    """Feed readers often put ``type="xhtml"`` content into HTML as it is: no ``<a/>``."""
    div = etree.fromstring(f'<div xmlns="{XHTML_NS}" class="body">{body}</div>'.encode())
    close_for_html(div)
    markup = etree.tostring(div, encoding="unicode")
    for element in div.iter():
        name = etree.QName(element).localname
        assert name in VOID or len(element) or element.text is not None
    document = html5lib.parse(
        PAGE.replace('<div class="body">{body}</div>', markup),
        treebuilder="etree",
        namespaceHTMLElements=False,
    )
    shown = next(d for d in document.iter("div") if d.get("class") == "body")
    expected = record_tree(body)
    got = [_html5lib_tree(child, xmlns=False) for child in shown]  # declarations: inert
    if not any(pre.text and pre.text.startswith("\n") for pre in div.iter(f"{{{XHTML_NS}}}pre")):
        # (an HTML parser drops a newline after <pre>: XML content cannot say otherwise)
        assert got == expected


_NOTICE = records.parse((EXAMPLES[0].parent / "notice.xml").read_bytes())


@st.composite
def any_tree(draw: st.DrawFn, depth: int) -> Any:
    """Any element of the body schema inside any other, as the schema allows (HTML does not:
    ``<p>`` in ``<p>``, ``<a>`` in ``<a>``, ``<td>`` outside a table)."""
    tag = draw(st.sampled_from(sorted(ELEMENTS)))
    if tag in VOID:
        return _element(tag, [])
    children = draw(st.lists(any_tree(depth - 1), max_size=3)) if depth else []
    for child in children:
        child.tail = draw(TEXT) or None
    attrs = {"href": draw(URLS)} if tag == "a" else {}
    return _element(tag, children, draw(TEXT), **attrs)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(any_tree(3), min_size=1, max_size=4))
def test_whatever_the_body_holds_the_rest_of_the_page_stays_as_it_is(top: list[Any]) -> None:
    """A browser may rearrange markup HTML cannot hold, but only inside the body's ``<div>``."""
    body = "".join(etree.tostring(e, encoding="unicode") for e in top)
    record = records.parse(dataclasses.replace(_NOTICE, body=body).to_xml())
    assert record.body is not None
    page = PAGE.format(body=body_html(record.body))
    source_link_is_plain(page, "https://www.gz.gov.cn/x.html")
    document = html5lib.parse(page, treebuilder="etree", namespaceHTMLElements=False)
    [article] = document.iter("article")
    assert [child.tag for child in article][-1] == "p"  # the source link ends the article
    footer = next(document.iter("footer"))
    assert footer.text == "页脚" and not list(footer)
    assert [child.tag for child in next(document.iter("body"))] == ["article", "footer"]
