"""Where a query's parts are in a record's text as written: marks and snippets.

The index compares normalised text (``hub.store.search.terms.normalise``: NFKC,
lower case, Simplified characters); a reader sees the text as it was written,
with its full-width punctuation (，：（）……) and in its own script. So marks are
found in a copy of the written text normalised one character at a time, each
character of that copy remembering which written character it came from, and
are given back as ``(start, end)`` offsets into the written text. The page
escapes the text between the marks and wraps the marked parts in ``<mark>``
(``segments``); the JSON API gives the offsets.

Brackets count as one kind (``[2006]`` marks ``〔2006〕``), as the document number's
normal form does; spaces are one space.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from hub.store.search.terms import fold_char, fold_script

Span = tuple[int, int]

BEFORE = 30  # characters of a snippet before the first match
AFTER = 90  # and from it on
_CHUNK = 4_000  # characters of written text aligned at a time while looking for a part
_OPEN, _CLOSE = "[(【〔〖（［", "])】〕〗）］"
_BRACKETS = {**dict.fromkeys(_OPEN, "〔"), **dict.fromkeys(_CLOSE, "〕")}
_SPACES = re.compile(r"\s+")


@functools.lru_cache(maxsize=1 << 14)
def _char_form(char: str) -> str:
    """How one written character compares: as ``normalise`` makes it, brackets unified."""
    if char.isspace():
        return " "
    form = "".join(fold_char(c) for c in unicodedata.normalize("NFKC", char).lower())
    return "".join(_BRACKETS.get(c, c) for c in form)


def _comparable(part: str) -> str:
    return "".join(_BRACKETS.get(c, c) for c in part)


def _aligned(text: str) -> tuple[str, list[int]]:
    """``text`` normalised one character at a time, and for each character of the result
    the offset in ``text`` of the character it came from."""
    forms: list[str] = []
    origin: list[int] = []
    for offset, char in enumerate(text):
        form = _char_form(char)
        forms.append(form)
        origin.extend([offset] * len(form))
    return "".join(forms), origin


def marks(text: str, parts: list[str]) -> list[Span]:
    """Every place in ``text`` (as written) where a part occurs, in order, not overlapping."""
    if not text or not parts:
        return []
    aligned, origin = _aligned(text)
    return _merge(_found(aligned, origin, parts, 0))


def _found(aligned: str, origin: list[int], parts: list[str], base: int) -> list[Span]:
    spans: list[Span] = []
    for part in {_comparable(p) for p in parts if p}:
        start = aligned.find(part)
        while start >= 0:
            end = start + len(part)
            spans.append((base + origin[start], base + origin[end - 1] + 1))
            start = aligned.find(part, end)
    return spans


def _merge(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def snippet(text: str, parts: list[str], *, found: bool = True) -> tuple[str, list[Span]]:
    """About ``BEFORE + AFTER`` characters of ``text`` (as written, spaces and line breaks
    made one space) around the first part found, with the marks inside it; ``…`` where
    text was left out. ``found=False`` (the index says no part is in the text) starts
    at the beginning without looking."""
    first = _first(text, parts) if found else None
    start = max(first - BEFORE, 0) if first is not None else 0
    end = start + BEFORE + AFTER
    excerpt = text[start:end]
    pieces = segments(excerpt, marks(excerpt, parts))
    out: list[str] = ["…" if start else ""]
    result: list[Span] = []
    offset = len(out[0])
    for piece, marked in pieces:
        piece = _SPACES.sub(" ", piece)
        if marked:
            result.append((offset, offset + len(piece)))
        out.append(piece)
        offset += len(piece)
    if end < len(text):
        out.append("…")
    return "".join(out), result


def _first(text: str, parts: list[str]) -> int | None:
    """Offset in ``text`` of the first part found. Most text is found as it is once
    folded and lower-cased (both keep every offset), which costs a few string scans;
    other text (full-width Latin letters, another bracket) is aligned a chunk at a time."""
    lowered = text.lower()
    if len(lowered) == len(text):
        quick = fold_script(lowered)
        found = [i for i in (quick.find(p) for p in parts) if i >= 0]
        if found:
            return min(found)
    longest = max((len(p) for p in parts), default=0)
    for base in range(0, len(text), _CHUNK):
        chunk = text[base : base + _CHUNK + 4 * longest]
        aligned, origin = _aligned(chunk)
        spans = _found(aligned, origin, parts, base)
        if spans:
            return min(s for s, _ in spans)
    return None


def segments(text: str, spans: list[Span]) -> list[tuple[str, bool]]:
    """``text`` cut at ``spans``: (piece, marked) in order, no empty piece."""
    pieces: list[tuple[str, bool]] = []
    at = 0
    for start, end in spans:
        start, end = max(start, at), min(end, len(text))
        if start >= end:
            continue
        if start > at:
            pieces.append((text[at:start], False))
        pieces.append((text[start:end], True))
        at = end
    if at < len(text):
        pieces.append((text[at:], False))
    return pieces
