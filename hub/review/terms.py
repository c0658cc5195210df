"""Sensitive terms: the node's terms file, and a matcher whose cost hardly grows with the list.

The matcher indexes every term by its first two characters (as one integer: the
two UTF-16 code units of a BMP character pair; a lone astral character is such
a pair itself). A text is searched in three C-speed steps: its UTF-16 encoding
viewed as 32-bit integers at both alignments gives every adjacent pair of
code units; ``set.intersection`` keeps the pairs that begin some term; only the
terms under those keys are then looked for with ``str.find``. The cost is one
set lookup per character, whatever the number of terms, plus the finds for the
few keys a text really contains. One-character terms are looked up among the
text's characters.

``bench/review.py`` measures it against ``any(term in text for term in terms)``.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from hub.errors import ConfigInvalid, Problem

MAX_TERM_CHARACTERS = 100
TERMS_FILE_EXPECTED = "UTF-8 text, one term per line, '#' starting a comment line"


def read_terms(path: str | Path) -> tuple[str, ...]:
    """The terms of a terms file: one per line, NFKC-normalised, first occurrence kept.

    Blank lines and lines whose first non-blank character is ``#`` are skipped;
    a UTF-8 byte order mark is allowed. Raises ``ConfigInvalid`` naming the file
    and line of every line that is not UTF-8 or is longer than
    ``MAX_TERM_CHARACTERS``.
    """
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        message = f"cannot be read: {exc.strerror}"
        raise ConfigInvalid([Problem(where, None, "terms", message, "a readable file")]) from None
    terms: dict[str, None] = {}
    problems = []
    for number, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").splitlines(), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            message = f"is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1})"
            problems.append(Problem(where, number, "term", message, TERMS_FILE_EXPECTED))
            continue
        term = unicodedata.normalize("NFKC", line).strip()
        if len(term) > MAX_TERM_CHARACTERS:
            message = f"is {len(term):,} characters long, over the limit of {MAX_TERM_CHARACTERS}"
            problems.append(Problem(where, number, "term", message, "one short term per line"))
        elif term and not term.startswith("#"):
            terms.setdefault(term)
    if problems:
        raise ConfigInvalid(problems)
    return tuple(terms)


class TermMatcher:
    """Finds every occurrence of every term (overlapping ones included) in a text.

    Terms and texts must already be folded the same way (``hub.review.text``).
    """

    __slots__ = ("_by_key", "_keys", "_singles")

    def __init__(self, terms: Iterable[str]) -> None:
        by_key: dict[int, list[str]] = {}
        singles = set()
        for term in dict.fromkeys(terms):
            code_units = term.encode("utf-16-le", "surrogatepass")
            if len(code_units) >= 4:
                by_key.setdefault(int.from_bytes(code_units[:4], sys.byteorder), []).append(term)
            elif term:
                singles.add(term)
        self._by_key = {key: tuple(found) for key, found in by_key.items()}
        self._keys = frozenset(by_key)
        self._singles = frozenset(singles)

    def __len__(self) -> int:
        return sum(map(len, self._by_key.values())) + len(self._singles)

    def find(self, text: str) -> list[tuple[int, str]]:
        """``(start, term)`` of every occurrence, by start and then term."""
        candidates: list[str] = []
        if self._keys and text:
            code_units = memoryview(text.encode("utf-16-le", "surrogatepass"))
            size = len(code_units)
            even = code_units[: size - size % 4].cast("I")
            odd = code_units[2 : size - (size - 2) % 4].cast("I")
            for key in self._keys.intersection(even) | self._keys.intersection(odd):
                candidates.extend(self._by_key[key])
        if self._singles:
            candidates.extend(self._singles.intersection(text))
        found = []
        for term in candidates:
            start = text.find(term)
            while start >= 0:
                found.append((start, term))
                start = text.find(term, start + 1)
        found.sort()
        return found
