"""What one harvest did: its counts (``Tally``), and what shows them while it runs (``Progress``).

The harvester (``hub.harvest.harvester``) adds to a ``Tally`` as items are read,
converted and written; the tally is logged when the harvest ends, returned to
``govhub sources run`` and ``govhub adapter check``, and handed to ``Progress``
after every batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from hub.outbox.pipeline import Accepted


@dataclass
class Tally:
    """The counts of one harvest of one source."""

    items: int = 0  # items the adapter found
    records: int = 0  # records converted from them
    empty: int = 0  # items that hold no record
    queued: int = 0
    held: int = 0
    unchanged: int = 0
    stale: int = 0
    refused: int = 0
    conflict: int = 0  # a revision accepted before, with other content: kept as refused
    failures: int = 0  # items the source could not deliver (Failure)
    convert_errors: int = 0
    not_modified: bool = False  # the source's URL answered 304
    error: str | None = None  # the harvest itself failed
    stopped: bool = False  # the node stopped in the middle
    next_check_at: datetime | None = None

    @property
    def problems(self) -> int:
        return self.failures + self.convert_errors + self.refused + self.conflict

    def count(self, result: Accepted) -> None:
        setattr(self, result.outcome.value, getattr(self, result.outcome.value) + 1)

    def __str__(self) -> str:
        parts = [_count(self.items, "item")]
        if self.not_modified and not self.items:
            parts[0] += " (not modified)"
        outcomes = [
            f"{n:,} {name}"
            for name, n in (
                ("queued", self.queued),
                ("held", self.held),
                ("unchanged", self.unchanged),
                ("stale", self.stale),
                ("refused", self.refused),
                ("conflict", self.conflict),
            )
            if n
        ]
        made = f" ({', '.join(outcomes)})" if outcomes else ""
        parts.append(_count(self.records, "record") + made)
        if self.empty:
            parts.append(f"{self.empty:,} without a record")
        if self.failures or self.convert_errors:
            parts.append(f"{self.failures + self.convert_errors:,} unreadable")
        if self.error:
            parts.append(f"failed: {self.error}")
        if self.stopped:
            parts.append("stopped before the end")
        return ", ".join(parts)


class Progress(Protocol):
    """Shown while a harvest runs (``govhub sources run`` draws a line on the terminal)."""

    def update(self, source: str, tally: Tally) -> None: ...


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
