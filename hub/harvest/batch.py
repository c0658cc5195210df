"""One harvest's batches: gathered as ``fetch`` yields, then written in one transaction each.

A ``Batch`` holds what ``fetch`` yielded since the last one was sent and the
cursor after it; it is sent when it holds ``BATCH`` items or is
``BATCH_SECONDS`` old. Once converted (``hub.harvest.convert``),
``revise_batch`` sets each record's revision by content, and ``accept_batch``
writes the batch through ``Pipeline.accept_checked``, moving the source's
cursor and counts in the same transaction.

A record's revision is set here, by content: the adapter always says
revision 1; when the node has accepted the record before (outbox, or held for
review) with the same content hash, the item is ``unchanged`` and nothing is
written; with other content it becomes the known revision + 1.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from adapters.contract import Failure, Item
from hub import records
from hub.harvest.convert import Converted, describe_error
from hub.harvest.state import ItemProblem, save_progress
from hub.nodedb import now
from hub.outbox import entries as outbox
from hub.outbox import held
from hub.outbox.pipeline import Accepted, Checked, Outcome, Pipeline, check_record
from hub.records import Record

BATCH = 200
"""Records per transaction at most (each commit is a disk flush)."""
BATCH_SECONDS = 2.0
"""A batch is committed at least this often while items keep coming, so a slow
source's cursor moves too."""


@dataclass
class Batch:
    """What ``fetch`` yielded since the last batch was sent, in order, and the cursor after it;
    once converted, each item's ``Converted`` (in the order of the batch's items)."""

    found: list[Item | Failure] = field(default_factory=list)
    items: int = 0
    cursor: str | None = None
    started: float = field(default_factory=time.monotonic)
    converted: list[Converted] = field(default_factory=list)

    def add(self, found: Item | Failure) -> None:
        self.found.append(found)
        if isinstance(found, Item):
            self.items += 1
        if found.cursor is not None:
            self.cursor = found.cursor

    def ready(self, size: int) -> bool:
        return self.items >= size or time.monotonic() - self.started >= BATCH_SECONDS

    def take(self) -> Batch:
        taken = Batch(self.found, self.items, self.cursor, self.started)
        self.found, self.items, self.cursor = [], 0, None
        self.started = time.monotonic()
        return taken

    def __bool__(self) -> bool:
        return bool(self.found or self.cursor is not None)


Finish = Callable[[sqlite3.Connection], None]
"""A last step run inside a batch's transaction (the next check of a complete harvest)."""


@dataclass
class Revised:
    """A converted batch after ``revise_batch``: what goes to the pipeline, and what does not."""

    documents: list[Checked] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)  # the item of each document
    problems: list[ItemProblem] = field(default_factory=list)  # fetch and convert problems
    unchanged: int = 0
    unwritable: list[tuple[str, str]] = field(default_factory=list)  # (where, message)


@dataclass
class Written:
    """What ``accept_batch`` did with a batch, for the harvest's tally and log."""

    results: list[tuple[Item, Accepted]]
    unchanged: int
    unwritable: list[tuple[str, str]]  # (where, message)


def revise_batch(pipeline: Pipeline, state: sqlite3.Connection, batch: Batch) -> Revised:
    """Revise: each converted record with its revision set by content (``revise``); known
    content is left out as unchanged, and each item's problem is noted for the source."""
    revised = Revised()
    seen: dict[str, tuple[int, str]] = {}  # record id -> (revision, hash) in this batch
    converted = iter(batch.converted)
    for found in batch.found:
        if isinstance(found, Failure):
            revised.problems.append(ItemProblem(now(), found.where, "fetch", found.message))
            continue
        result = next(converted)
        if result.error is not None:
            revised.problems.append(ItemProblem(now(), found.where, "convert", result.error))
            continue
        if result.record is None or result.checked is None:
            continue
        try:
            checked = revise(result.record, result.checked, seen, pipeline, state)
        except Exception as exc:  # a record the encoder cannot write: that item's problem
            message = describe_error(exc)
            revised.unwritable.append((found.where, message))
            revised.problems.append(ItemProblem(now(), found.where, "convert", message))
            continue
        if checked is None:
            revised.unchanged += 1
            continue
        if (local := result.record.local_index_number) is not None:
            revised.problems.append(ItemProblem(now(), found.where, "nonconforming", _local(local)))
        revised.documents.append(checked)
        revised.items.append(found)
    return revised


def _local(value: str) -> str:
    """The note kept for a record whose 索引号 is in the site's own form: it is published
    (as ``localIndexNumber``), but the site should fix the form at its source."""
    return (
        f"索引号 {value!r} is not in the standard form; kept as localIndexNumber "
        "(expected ORGCODE/YYYY-NNNNN, e.g. 000014349/2006-00166: fix it in the site's CMS)"
    )


def accept_batch(
    pipeline: Pipeline, source: str, batch: Batch, revised: Revised, finish: Finish | None
) -> Written:
    """Accept and commit the cursor: the revised documents through the pipeline's one way in
    for a batch, whose transaction also moves the source's cursor, adds to its counts and
    problems, and runs ``finish``."""

    def commit_cursor(conn: sqlite3.Connection, results: list[Accepted]) -> None:
        refused = [
            ItemProblem(now(), item.where, result.outcome.value, describe_problems(result))
            for item, result in zip(revised.items, results, strict=True)
            if result.outcome in (Outcome.REFUSED, Outcome.CONFLICT)
        ]
        made = sum(r.outcome in (Outcome.QUEUED, Outcome.HELD) for r in results)
        save_progress(
            conn,
            source,
            cursor=batch.cursor,
            items=batch.items,
            records=made,
            problems=[*revised.problems, *refused],
        )
        if finish is not None:
            finish(conn)

    results = pipeline.accept_checked(revised.documents, also=commit_cursor)
    return Written(
        list(zip(revised.items, results, strict=True)), revised.unchanged, revised.unwritable
    )


def revise(
    record: Record,
    checked: Checked,
    seen: dict[str, tuple[int, str]],
    pipeline: Pipeline,
    state: sqlite3.Connection,
) -> Checked | None:
    """``checked`` with its revision set by content, or ``None`` when its content is known.

    New content of a known record becomes the known revision + 1 (or the
    record's own revision, when a source that keeps revisions says more): the
    record is encoded and checked again with that revision, here, as the
    pipeline would. The last accepted revision is the newer of the outbox's
    and the review queue's (a held or rejected record counts: the same content
    again must not be reviewed twice), or one earlier in the same batch (``seen``).
    """
    known = seen.get(record.id) or _latest(state, record.id)
    digest = checked.content_hash or record.content_hash()
    if known is not None:
        if known[1] == digest:
            return None
        revision = max(record.revision, known[0] + 1)
        if revision != record.revision:
            record = dataclasses.replace(record, revision=revision)
            checked = check_record(
                record,
                checked.source,
                node=pipeline.node,
                reviewer=pipeline.reviewer,
                limits=pipeline.limits,
            )
            digest = checked.content_hash or record.content_hash()
    seen[record.id] = (record.revision, digest)
    return checked


def describe_problems(result: Accepted) -> str:
    """Why the pipeline refused a record, in one line."""
    return "; ".join(f"{p.field}: {p.message}" for p in result.problems)


def _latest(conn: sqlite3.Connection, record_id: str) -> tuple[int, str] | None:
    sent = outbox.latest(conn, record_id)
    row = held.newest(conn, record_id)
    if row is not None and (sent is None or row[0] > sent.revision):
        return row[0], records.parse(row[1], f"held:{record_id}").content_hash()
    return (sent.revision, sent.content_hash) if sent else None
