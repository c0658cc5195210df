"""Hardened XML parsing for untrusted input.

Every record comes from somewhere govhub does not control, so the parser
refuses what XML can be made to do besides describing data:

- no DTD at all: a ``<!DOCTYPE`` is refused, so no entity (internal, external,
  "billion laughs") is ever defined, let alone expanded;
- no network and no file access (external entities, XInclude, schema hints);
- a size limit, checked before parsing starts;
- a nesting-depth limit (libxml2's own limit of 256 levels applies while
  parsing; ``max_depth`` is checked on open content such as bodies).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from lxml import etree

from hub.errors import Problem, RecordInvalid


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one untrusted XML document."""

    max_bytes: int = 4 * 1024 * 1024
    max_depth: int = 64


DEFAULT_LIMITS = Limits()
PARSER_MAX_DEPTH = 256  # libxml2 refuses deeper documents unless XML_PARSE_HUGE is set

_local = threading.local()


def hardened_parser() -> etree.XMLParser:
    """This thread's parser with the protections above (lxml parsers must not be shared
    between threads). For any untrusted XML, not only records."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            # Not collect_ids=False: libxml2 skips IDs through its "load subset" flag, and
            # with that flag set it reads a DOCTYPE's external subset from disk.
        )
        _local.parser = parser
    return parser


def parse_untrusted(
    data: bytes, where: str, limits: Limits = DEFAULT_LIMITS, *, field: str = "record"
) -> etree._ElementTree:
    """Parse ``data`` as XML with the protections above, or raise ``RecordInvalid``."""
    if data.__class__ is not bytes:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"parse_untrusted() takes bytes, not {type(data).__name__}")
        data = bytes(data)
    if len(data) > limits.max_bytes:
        raise RecordInvalid(
            [
                Problem(
                    where,
                    None,
                    field,
                    f"document is {len(data):,} bytes, over the limit of {limits.max_bytes:,}",
                    "a smaller document: link large content as attachments",
                )
            ]
        )
    if declares_doctype(data):
        raise RecordInvalid([_doctype_problem(where, field)])
    try:
        root = etree.fromstring(data, hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise RecordInvalid([_syntax_problem(exc, where, field)]) from None
    tree = root.getroottree()
    if tree.docinfo.internalDTD is not None:  # backstop: libxml2 makes one for any DOCTYPE
        raise RecordInvalid([_doctype_problem(where, field)])
    return tree


# Linear-time: each alternative consumes input, and comment/PI bodies cannot overlap.
_PROLOG_DOCTYPE = re.compile(
    rb"\A(?:\xef\xbb\xbf)?(?:\s|<\?(?:[^?]|\?(?!>))*\?>|<!--(?:[^-]|-(?!->))*-->)*<!DOCTYPE"
)
_WIDE_CODECS = ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be")


def declares_doctype(data: bytes | bytearray | memoryview) -> bool:
    """True when the document's prolog holds a ``<!DOCTYPE``, in any encoding XML allows.

    Checked before parsing so that a DTD never reaches the parser at all.
    """
    whole = bytes(data)
    if b"\x00" in whole[:4] or whole.startswith((b"\xff\xfe", b"\xfe\xff")):
        return any(_PROLOG_DOCTYPE.match(_to_utf8(whole, codec)) for codec in _WIDE_CODECS)
    return b"<!DOCTYPE" in whole and _PROLOG_DOCTYPE.match(whole) is not None


def _to_utf8(data: bytes, codec: str) -> bytes:
    return data.decode(codec, errors="ignore").lstrip("\ufeff").encode("utf-8", errors="ignore")


def _doctype_problem(where: str, field: str) -> Problem:
    return Problem(
        where,
        1,
        field,
        "a <!DOCTYPE> declaration is not allowed (DTDs and entities are refused)",
        "a document without a DOCTYPE; write characters directly, not as entities",
    )


def _syntax_problem(exc: etree.XMLSyntaxError, where: str, field: str) -> Problem:
    message = str(exc.msg or exc).strip()
    line = exc.lineno or None
    if "Excessive depth" in message:
        return Problem(
            where,
            line,
            field,
            f"elements nest deeper than {PARSER_MAX_DEPTH} levels",
            "a flatter document",
        )
    if "Detected an entity reference loop" in message or "entity" in message.lower():
        return Problem(
            where,
            line,
            field,
            f"entities are not allowed: {message}",
            "characters written directly, not as entity references",
        )
    return Problem(where, line, field, f"not well-formed XML: {message}", "well-formed XML")


def nests_deeper_than(element: etree._Element, limit: int) -> bool:
    """True when elements nest more than ``limit`` levels below ``element``."""
    stack = [(element, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in node)
    return False
