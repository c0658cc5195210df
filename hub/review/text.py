"""The text a review reads: a body's plain text, and every field folded for matching.

``body_text`` turns the sanitized XHTML body into plain text: text content only
(no tag or attribute is ever matched), one line per block element or ``<br>``.
Finding offsets in the body are offsets into this string.

``Folded`` is one field's text as the rules match it, with the way back to the
original offsets:

- every character NFKC-normalised on its own and lower-cased (full-width
  ``１３８`` → ``138``, ``ＦＬＧ`` → ``flg``, ``＊`` → ``*``, ``（`` → ``(``,
  ideographic space → space, compatibility ideographs → unified ones);
- format characters (Unicode category Cf: zero-width spaces and joiners, BOM,
  soft hyphen, bidirectional controls) and variation selectors removed;
- ``compact``: the same text also without the spaces and tabs that sit between
  two CJK characters (``法 轮 功`` → ``法轮功``), for the sensitive terms.

Characters are normalised one by one (not as a string), so every folded
character comes from exactly one original character; composing sequences of
combining marks are therefore not composed, which no rule here needs.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable

from lxml import etree

from hub.records.model import XHTML_NS
from hub.records.safe_xml import hardened_parser

_BLOCKS = frozenset(
    (
        *("address", "blockquote", "caption", "dd", "div", "dl", "dt", "figcaption"),
        *("figure", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ol", "p", "pre", "table"),
        *("tbody", "td", "tfoot", "th", "thead", "tr", "ul"),
    )
)
_BREAKS = frozenset(("br", "hr"))
_PREFIX = f"{{{XHTML_NS}}}"
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_GAP = re.compile(f"(?<=[{_CJK}])[ \t]+(?=[{_CJK}])")


def body_text(body: str) -> str:
    """The plain text of a record body: text content, one line per block element.

    Raises ``lxml.etree.XMLSyntaxError`` for a body that is not well-formed (a
    body read by ``hub.records.parse`` always is).
    """
    root = etree.fromstring(f"<body>{body}</body>", hardened_parser())
    parts: list[str] = []
    for event, element in etree.iterwalk(root, events=("start", "end")):
        if element is root:
            continue
        tag = element.tag
        name = tag.removeprefix(_PREFIX) if isinstance(tag, str) else ""
        if event == "start":
            if name in _BREAKS or (name in _BLOCKS and parts and parts[-1] != "\n"):
                parts.append("\n")
            if element.text and name:  # a comment's text is not content
                parts.append(element.text)
        else:
            if name in _BLOCKS and parts and parts[-1] != "\n":
                parts.append("\n")
            if element.tail:
                parts.append(element.tail)
    return "".join(parts).strip("\n")


def fold(text: str) -> str:
    """``text`` NFKC-normalised character by character, lower-cased, format characters gone."""
    table, _, astral = _table()
    folded = text.translate(table)
    if not folded.isascii() and astral.search(folded):
        folded = astral.sub(lambda match: _fold_char(match.group()), folded)
    return folded


def compact(folded: str) -> str:
    """``folded`` without the spaces and tabs between two CJK characters."""
    return _CJK_GAP.sub("", folded)


class Folded:
    """One field's text as the rules read it, and the way back to original offsets."""

    __slots__ = ("_compact", "_compact_edits", "_edits", "original", "text")

    def __init__(self, original: str) -> None:
        self.original = original
        self.text = fold(original)
        self._edits: _Edits | None = None
        self._compact: str | None = None
        self._compact_edits: _Edits | None = None

    @property
    def compact(self) -> str:
        if self._compact is None:
            self._compact = compact(self.text)
        return self._compact

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of ``text[start:end]``."""
        if self._edits is None:
            self._edits = _fold_edits(self.original)
        return self._edits.span(start, end)

    def compact_span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of ``compact[start:end]``."""
        if self._compact_edits is None:
            gaps = ((m.start(), m.end() - m.start(), 0) for m in _CJK_GAP.finditer(self.text))
            self._compact_edits = _Edits(gaps)
        return self.span(*self._compact_edits.span(start, end))


class _Edits:
    """Where a derived text differs in length from its source, to map offsets back.

    Built from ``(source start, source length, derived length)`` edits in source
    order; every other character maps one to one.
    """

    __slots__ = ("_edits", "_starts")

    def __init__(self, edits: Iterable[tuple[int, int, int]]) -> None:
        # (derived start, derived length, source start, source length)
        self._edits: list[tuple[int, int, int, int]] = []
        shift = 0
        for source, source_length, length in edits:
            self._edits.append((source + shift, length, source, source_length))
            shift += length - source_length
        self._starts = [edit[0] for edit in self._edits]

    def source(self, index: int) -> int:
        k = bisect_right(self._starts, index) - 1
        if k < 0:
            return index
        start, length, source, source_length = self._edits[k]
        if index < start + length:
            return source  # one of the characters a single source character became
        return source + source_length + index - start - length

    def span(self, start: int, end: int) -> tuple[int, int]:
        return self.source(start), self.source(end - 1) + 1


def _fold_edits(original: str) -> _Edits:
    resizing = _table()[1]
    return _Edits(
        (match.start(), 1, len(_fold_char(match.group()))) for match in resizing.finditer(original)
    )


def _fold_char(char: str) -> str:
    if unicodedata.category(char) == "Cf" or "\ufe00" <= char <= "\ufe0f":
        return ""
    if "\U000e0100" <= char <= "\U000e01ef":  # variation selectors supplement
        return ""
    return unicodedata.normalize("NFKC", char).lower()


@functools.cache
def _table() -> tuple[list[int | str | None], re.Pattern[str], re.Pattern[str]]:
    """The folding table of the BMP for ``str.translate``, a pattern of the characters that
    fold to more or fewer than one, and a pattern of the characters beyond the BMP."""
    table: list[int | str | None] = []
    resizing = []
    for code in range(0x10000):
        char = chr(code)
        folded = _fold_char(char)
        table.append(code if folded == char else folded or None)
        if len(folded) != 1:
            resizing.append(char)
    astral = "\U00010000-\U0010ffff"
    return (
        table,
        re.compile(f"[{_char_class(resizing)}{astral}]"),
        re.compile(f"[{astral}]"),
    )


def _char_class(chars: list[str]) -> str:
    """A regex character class body for ``chars`` (sorted), written as ranges."""
    ranges: list[list[int]] = []
    for code in map(ord, chars):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "".join(
        re.escape(chr(low)) if low == high else f"{re.escape(chr(low))}-{re.escape(chr(high))}"
        for low, high in ranges
    )
