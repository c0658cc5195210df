"""A record body written into HTML: every element closed the way an HTML parser reads it.

A body is XHTML, where ``<a href="…"/>`` and ``<div/>`` are empty elements. An
HTML parser knows only its void elements (``br``, ``hr``, ``img``, ``col`` in a
body) as empty: it reads ``<a href="…"/>`` as an open tag, and everything after
it, the rest of the page included, becomes part of the link. So wherever a body
goes into HTML (the portal's record pages, the feeds' entry content), it goes
through here: every element that is not void gets its end tag (``<a …></a>``),
void ones close themselves (``<br/>``, which HTML reads as ``<br>``).

lxml writes the markup (XML serialisation, after giving each empty non-void
element an empty text, which lxml writes as a start and an end tag). Not
``method="html"``: libxml2's HTML writer percent-escapes ``href`` and ``src``
(``中文`` becomes ``%E4%B8%AD%E6%96%87``) and drops the newline an HTML parser
strips after ``<pre>``, so the page would no longer hold the record's body.
"""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from hub.records.model import XHTML_NS
from hub.records.safe_xml import parse_untrusted

VOID = frozenset({"br", "hr", "img", "col"})
"""The body elements (schemas/xhtml-body.xsd) that HTML reads as empty: no end tag."""

NEWLINE_EATERS = frozenset({"pre"})
"""Body elements after whose start tag an HTML parser drops one newline."""

_LOCAL = len(XHTML_NS) + 2


def body_html(body: str, convert: Callable[[str], str] | None = None) -> str:
    """``body`` (a record's XHTML body, as ``Record.body`` holds it) as HTML markup.

    ``convert`` is applied to the text and to the ``title`` and ``alt``
    attributes (never to addresses), e.g. Simplified to Traditional Chinese.
    Comments and processing instructions are left out.
    """
    wrapper = f'<div xmlns="{XHTML_NS}">{body}</div>'.encode()
    root = parse_untrusted(wrapper, "body", field="body").getroot()
    etree.strip_tags(root, etree.Comment, etree.ProcessingInstruction)
    for element in root.iter():
        if element.tag.startswith(f"{{{XHTML_NS}}}"):
            element.tag = element.tag[_LOCAL:]
        if convert is not None:
            _convert(element, convert)
    etree.cleanup_namespaces(root)
    close_for_html(root)
    for pre in root.iter(*NEWLINE_EATERS):
        if pre.text and pre.text.startswith("\n"):  # the parser drops one: keep the record's
            pre.text = "\n" + pre.text
    return "".join(etree.tostring(child, encoding="unicode") for child in root)


def close_for_html(root: etree._Element) -> None:
    """Give each empty element below ``root`` that is not void an empty text, in place,
    so that lxml writes ``<a …></a>``, never ``<a …/>``.

    Works on XHTML-namespaced trees too: an Atom entry's ``type="xhtml"``
    content stays XML, but feed readers often paste it into HTML as it is.
    """
    for element in root.iterdescendants():
        if not isinstance(element.tag, str) or etree.QName(element).localname in VOID:
            continue
        if element.text is None and len(element) == 0:
            element.text = ""


def _convert(element: etree._Element, convert: Callable[[str], str]) -> None:
    if element.text:
        element.text = convert(element.text)
    if element.tail:
        element.tail = convert(element.tail)
    for attribute in ("title", "alt"):
        value = element.get(attribute)
        if value:
            element.set(attribute, convert(value))
