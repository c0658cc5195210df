"""What a sanitized record body may contain.

A body is republished by other sites, so it may hold text markup only: no
scripts, no event handlers, no inline styles, no ``javascript:`` or ``data:``
URLs, no foreign elements. Adapters produce such bodies with a sanitizer; this
module names the elements and attributes that break the rules, for error
messages; the rules themselves are enforced by the schema
(schemas/xhtml-body.xsd), and a test keeps the two lists equal.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree

from hub.errors import Problem
from hub.records.model import XHTML_NS

ELEMENTS = frozenset(
    (
        *("a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup"),
        *("dd", "del", "div", "dl", "dt", "em", "figcaption", "figure", "hr", "i", "img"),
        *("h1", "h2", "h3", "h4", "h5", "h6", "ins", "li", "ol", "p", "pre", "q", "s"),
        *("small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th"),
        *("thead", "time", "tr", "u", "ul"),
    )
)
GLOBAL_ATTRIBUTES = frozenset(
    {"title", "lang", "dir", "class", "{http://www.w3.org/XML/1998/namespace}lang"}
)
ELEMENT_ATTRIBUTES = {
    "a": frozenset({"href"}),
    "img": frozenset({"src", "alt", "width", "height"}),
    "td": frozenset({"colspan", "rowspan", "align", "valign"}),
    "th": frozenset({"colspan", "rowspan", "align", "valign", "scope"}),
    "col": frozenset({"span", "width"}),
    "colgroup": frozenset({"span"}),
    "ol": frozenset({"start", "type"}),
    "time": frozenset({"datetime"}),
    "blockquote": frozenset({"cite"}),
    "q": frozenset({"cite"}),
    "del": frozenset({"datetime", "cite"}),
    "ins": frozenset({"datetime", "cite"}),
}
URL_ATTRIBUTES = frozenset({"href", "src", "cite"})
SAFE_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_INVISIBLE = re.compile(r"[\x00-\x20\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
_P = f"{{{XHTML_NS}}}"
_P_LENGTH = len(_P)
_NONE: frozenset[str] = frozenset()
ALLOWED_HINT = (
    "text markup only (p, h1-h6, a, img, table, ul/ol/li, strong, em, …); sanitize the body"
)


def explain_body(body: etree._Element, where: str) -> list[Problem]:
    """Why ``body`` is not a sanitized body, element by element.

    The schema (schemas/xhtml-body.xsd) decides validity on the hot path; this
    walk runs only for a body the schema refused, to say what and where.
    """
    problems: list[Problem] = []
    for element in body.iterdescendants():
        tag = element.tag
        if isinstance(tag, str):
            name = tag[_P_LENGTH:] if tag.startswith(_P) else None
            problems.extend(_element_problems(element, name, where))
    return problems


def _element_problems(element: etree._Element, name: str | None, where: str) -> Iterator[Problem]:
    """The problems of one element (none for an allowed element with allowed attributes)."""
    path, line = _path(element), element.sourceline
    if name is None:
        yield Problem(
            where,
            line,
            path,
            "only XHTML elements are allowed in a body",
            f"elements in the {XHTML_NS} namespace",
        )
        return
    if name not in ELEMENTS:
        yield Problem(
            where, line, path, f"element '{name}' is not allowed in a sanitized body", ALLOWED_HINT
        )
        return
    allowed = ELEMENT_ATTRIBUTES.get(name, _NONE)
    for attribute, value in element.attrib.items():
        if attribute not in allowed and attribute not in GLOBAL_ATTRIBUTES:
            message = f"attribute '{attribute}' is not allowed on '{name}'"
            yield Problem(where, line, f"{path}/@{attribute}", message, _attribute_hint(name))
        elif attribute in URL_ATTRIBUTES and not url_is_safe(value):
            message = f"unsafe URL {value[:80]!r}"
            yield Problem(
                where, line, f"{path}/@{attribute}", message, "an http(s), mailto or relative URL"
            )


def url_is_safe(url: str) -> bool:
    """True for http(s), mailto, tel and relative URLs, once invisible characters are gone."""
    match = _SCHEME.match(_INVISIBLE.sub("", url))
    return match is None or match.group(1).lower() in SAFE_SCHEMES


def _attribute_hint(name: str) -> str:
    allowed = sorted(
        (ELEMENT_ATTRIBUTES.get(name, frozenset()) | GLOBAL_ATTRIBUTES)
        - {"{http://www.w3.org/XML/1998/namespace}lang"}
    )
    return f"one of {', '.join(allowed)}; no styles or event handlers"


def _path(element: etree._Element) -> str:
    parts = []
    node = element
    while node is not None and etree.QName(node).localname != "body":
        parts.append(etree.QName(node).localname)
        node = node.getparent()
    return "body/" + "/".join(reversed(parts))
