"""What a node remembers of each source between harvests, in its SQLite state file.

Per source (``source_state``): the adapter's cursor, when to check next, the
consecutive failures and the last one, whether it is parked, and running
counts. Per item problem (``source_problems``): the item, the stage and the
message, the newest ``KEEP_PROBLEMS`` per source. Per URL (``http_validators``):
the ``ETag`` and ``Last-Modified`` of the last full answer, so a conditional GET
still works after a restart.

The functions here run inside the caller's transaction (``hub.nodedb.transaction``):
the harvester moves a cursor in the same transaction as the records before it.
"""

from __future__ import annotations

import contextvars
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.kit.http import Validators
from hub.nodedb import now

KEEP_PROBLEMS = 200
"""Item problems kept per source (older ones are deleted as new ones come)."""


@dataclass(frozen=True, slots=True)
class SourceState:
    source: str
    cursor: str | None = None
    next_check_at: datetime | None = None  # None: due now (or never, when parked)
    errors: int = 0  # consecutive failed harvests
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_success_at: datetime | None = None
    items_seen: int = 0
    records_made: int = 0  # new revisions queued or held
    item_problems: int = 0
    parked: bool = False

    @property
    def condition(self) -> str:
        """``ok``, ``failing`` (errors, still tried) or ``parked`` (no longer tried)."""
        if self.parked:
            return "parked"
        return "failing" if self.errors else "ok"

    def due(self, at: datetime) -> bool:
        return not self.parked and (self.next_check_at is None or self.next_check_at <= at)


@dataclass(frozen=True, slots=True)
class ItemProblem:
    at: datetime
    item: str  # where the item came from (Item.where)
    stage: str  # fetch, convert, refused, or nonconforming (kept, with a note to fix)
    message: str


_COLUMNS = (
    "source, cursor, next_check_at, errors, last_error, last_error_at, last_success_at,"
    " items_seen, records_made, item_problems, parked"
)


def source_state(conn: sqlite3.Connection, source: str) -> SourceState:
    """The state of ``source``; a fresh one (due now) if it was never harvested."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM source_state WHERE source = ?",  # noqa: S608 (constant)
        (source,),
    ).fetchone()
    return _state(row) if row else SourceState(source)


def all_states(conn: sqlite3.Connection) -> dict[str, SourceState]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM source_state").fetchall()  # noqa: S608
    return {row[0]: _state(row) for row in rows}


def save_progress(
    conn: sqlite3.Connection,
    source: str,
    *,
    cursor: str | None,
    items: int,
    records: int,
    problems: Iterable[ItemProblem] = (),
) -> None:
    """Move the cursor (``None``: keep it) and add to the counts; keep the item problems."""
    _ensure(conn, source)
    found = list(problems)
    conn.execute(
        "UPDATE source_state SET cursor = COALESCE(?, cursor), items_seen = items_seen + ?,"
        " records_made = records_made + ?, item_problems = item_problems + ? WHERE source = ?",
        (cursor, items, records, len(found), source),
    )
    if not found:
        return
    conn.executemany(
        "INSERT INTO source_problems (source, at, item, stage, message) VALUES (?, ?, ?, ?, ?)",
        [(source, p.at.isoformat(), p.item, p.stage, p.message) for p in found],
    )
    conn.execute(
        "DELETE FROM source_problems WHERE source = ? AND seq <= (SELECT seq FROM"
        " source_problems WHERE source = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
        (source, source, KEEP_PROBLEMS),
    )


def save_success(
    conn: sqlite3.Connection, source: str, *, at: datetime, next_check_at: datetime
) -> None:
    """A complete harvest: the failures are over, the source is not parked."""
    _ensure(conn, source)
    conn.execute(
        "UPDATE source_state SET errors = 0, parked = 0, last_success_at = ?,"
        " next_check_at = ? WHERE source = ?",
        (at.isoformat(), next_check_at.isoformat(), source),
    )


def save_failure(
    conn: sqlite3.Connection,
    source: str,
    *,
    at: datetime,
    error: str,
    errors: int,
    next_check_at: datetime | None,
    parked: bool,
) -> None:
    _ensure(conn, source)
    conn.execute(
        "UPDATE source_state SET errors = ?, last_error = ?, last_error_at = ?,"
        " next_check_at = ?, parked = ? WHERE source = ?",
        (
            errors,
            error,
            at.isoformat(),
            next_check_at.isoformat() if next_check_at else None,
            int(parked),
            source,
        ),
    )


def reset(conn: sqlite3.Connection, source: str, at: datetime | None = None) -> SourceState:
    """Un-park ``source``: no errors, checked at once. Cursor and counts stay."""
    _ensure(conn, source)
    conn.execute(
        "UPDATE source_state SET errors = 0, parked = 0, last_error = NULL,"
        " last_error_at = NULL, next_check_at = ? WHERE source = ?",
        ((at or now()).isoformat(), source),
    )
    return source_state(conn, source)


def recent_problems(conn: sqlite3.Connection, source: str, limit: int = 10) -> list[ItemProblem]:
    """The newest item problems of ``source``, newest first."""
    rows = conn.execute(
        "SELECT at, item, stage, message FROM source_problems WHERE source = ?"
        " ORDER BY seq DESC LIMIT ?",
        (source, limit),
    ).fetchall()
    return [
        ItemProblem(datetime.fromisoformat(at), item, stage, msg) for at, item, stage, msg in rows
    ]


def _ensure(conn: sqlite3.Connection, source: str) -> None:
    conn.execute("INSERT INTO source_state (source) VALUES (?) ON CONFLICT DO NOTHING", (source,))


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _state(row: Any) -> SourceState:
    source, cursor, next_at, errors, error, error_at, success_at, items, made, found, parked = row
    return SourceState(
        source,
        cursor,
        _when(next_at),
        errors,
        error,
        _when(error_at),
        _when(success_at),
        items,
        made,
        found,
        bool(parked),
    )


# -- HTTP validators -------------------------------------------------------------------------

_PENDING: contextvars.ContextVar[dict[str, Validators] | None] = contextvars.ContextVar(
    "govhub_pending_validators", default=None
)


class DurableValidators:
    """The ``ValidatorStore`` of a node's ``HttpClient``, kept in ``http_validators``.

    A validator is only worth keeping once the items of its answer are
    committed: saved earlier, a crash in between would turn the next check
    into a ``304 Not Modified`` and the items would be lost. So, inside
    ``collecting()`` (one harvest), new validators wait in a pending table of
    that harvest (a context variable, so concurrent harvests on the one shared
    client stay apart) and are written by ``write`` in the harvest's final
    transaction, or forgotten when the harvest fails.
    """

    def __init__(self, known: Mapping[str, Validators] | None = None) -> None:
        self.known: dict[str, Validators] = dict(known or {})

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> DurableValidators:
        rows = conn.execute("SELECT url, etag, last_modified FROM http_validators").fetchall()
        return cls({url: Validators(etag, modified) for url, etag, modified in rows})

    def get(self, url: str) -> Validators | None:
        pending = _PENDING.get()
        if pending is not None and url in pending:
            return pending[url]
        return self.known.get(url)

    def put(self, url: str, validators: Validators) -> None:
        pending = _PENDING.get()
        if pending is None:
            self.known[url] = validators  # outside a harvest: in memory only
        else:
            pending[url] = validators

    @contextmanager
    def collecting(self) -> Iterator[dict[str, Validators]]:
        """The validators that answers give inside this block, held back until written."""
        pending: dict[str, Validators] = {}
        token = _PENDING.set(pending)
        try:
            yield pending
        finally:
            _PENDING.reset(token)

    def write(self, conn: sqlite3.Connection, pending: Mapping[str, Validators]) -> None:
        """Save ``pending`` (inside the caller's transaction)."""
        stamp = now().isoformat()
        conn.executemany(
            "INSERT INTO http_validators (url, etag, last_modified, saved_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (url) DO UPDATE SET etag = excluded.etag,"
            " last_modified = excluded.last_modified, saved_at = excluded.saved_at",
            [(url, v.etag, v.last_modified, stamp) for url, v in pending.items()],
        )

    def written(self, pending: Mapping[str, Validators]) -> None:
        """After the commit: the next requests use them."""
        self.known.update(pending)


def validators_of(conn: sqlite3.Connection, url: str) -> Validators | None:
    """What ``http_validators`` holds for ``url`` (shown by ``govhub sources``)."""
    row = conn.execute(
        "SELECT etag, last_modified FROM http_validators WHERE url = ?", (url,)
    ).fetchone()
    return Validators(*row) if row else None
