"""Aligned text columns for ``Federation.render_tree``, wide (CJK) characters included."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

_GAP = "  "


def render_rows(rows: Sequence[Sequence[str]]) -> str:
    """Join rows of cells into lines whose columns line up on a terminal."""
    widths = [max(display_width(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = (
        _GAP.join(pad(cell, width) for cell, width in zip(row, widths, strict=True)) for row in rows
    )
    return "\n".join(line.rstrip() for line in lines)


def display_width(text: str) -> int:
    """Terminal columns taken by ``text``: two for wide and full-width characters."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def pad(text: str, width: int) -> str:
    """``text`` padded with spaces to ``width`` terminal columns."""
    return text + " " * (width - display_width(text))
