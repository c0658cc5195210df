"""The harvester: a node's sources, read through their adapters into its pipeline, on schedule.

    every due source (a few at a time):
      fetch(cursor) ─┬─ Item ─ convert ─ revision by content hash ─┐
                     └─ Failure (counted, kept, the source goes on)  │
                                          batch ─ Pipeline.accept_many + cursor, one transaction
      then: the next check (interval, Cache-Control, Retry-After, backoff, parked)

``plan_sources`` checks every source of a node at start-up (adapter installed,
scheduling keys, the adapter's settings) and reports all problems at once.
``Harvester.harvest`` reads one source once; ``Harvester.run`` keeps every
source on its schedule until the node stops.

A record's revision is set here, by content: the adapter always says
revision 1; when the node has accepted the record before (outbox, or held for
review) with the same content hash, the item is ``unchanged`` and nothing is
written; with other content it becomes the known revision + 1.

The cursor moves in the same transaction as the records before it, so a crash
at any point repeats at most one batch, which the content hash then finds
unchanged. The ETag of a harvest's answers is kept only when the whole harvest
has gone through (``DurableValidators``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from adapters.contract import Context, Failure, Item
from adapters.http import HttpClient, Response, RetryLater, Validators
from adapters.registry import Registry
from adapters.settings import read_settings
from hub import records
from hub.errors import ConfigInvalid, HubError, InputError, Problem
from hub.federation import Node, Source
from hub.node import outbox
from hub.node.outbox import now
from hub.node.pipeline import Accepted, Outcome, Pipeline
from hub.node.schedule import Plan, after_failure, after_success, split_plan
from hub.node.sources_state import (
    DurableValidators,
    ItemProblem,
    SourceState,
    all_states,
    save_failure,
    save_progress,
    save_success,
    source_state,
)
from hub.node.state import transaction
from hub.records import Record

log = logging.getLogger(__name__)

BATCH = 200
"""Records per transaction at most (each commit is a disk flush)."""
BATCH_SECONDS = 2.0
"""A batch is committed at least this often while items keep coming, so a slow
source's cursor moves too."""
LOG_EVERY = 1000
"""A progress line in the log every this many items of one harvest."""
CONCURRENCY = 4
"""Sources harvested at once by a running node (``HttpClient`` also limits requests per host)."""
IDLE = 10.0
"""The schedule is read again at least this often (a ``govhub sources reset`` is seen then)."""


# -- Start-up: every source checked -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Planned:
    """A configured source, checked: its adapter class, its settings, its schedule."""

    node: Node
    source: Source  # without govhub's scheduling keys
    adapter: type
    settings: Any
    plan: Plan

    @property
    def name(self) -> str:
        return self.source.name


def plan_sources(node: Node, adapters: Registry, where: str) -> list[Planned]:
    """Every source of ``node``, checked; one ``ConfigInvalid`` with every problem of every source.

    ``AdapterConflict`` (two packages claiming one adapter name) comes from the registry.
    """
    problems: list[Problem] = []
    planned: list[Planned] = []
    for source in node.sources:
        plan, bare, found = split_plan(source, node, where)
        problems.extend(found)
        line = source.line or node.line
        try:
            adapter = adapters.load(source.adapter, where=where, line=line)
        except ConfigInvalid as exc:
            label = f"node[{node.id}].sources[{source.name}].adapter"
            problems.extend(dataclasses.replace(p, field=label) for p in exc.problems)
            continue
        try:
            settings = read_settings(adapter.Settings, bare, node, where)  # type: ignore[attr-defined]
        except ConfigInvalid as exc:
            problems.extend(exc.problems)
            continue
        planned.append(Planned(node, bare, adapter, settings, plan))
    if problems:
        raise ConfigInvalid(problems)
    return planned


# -- What one harvest did ---------------------------------------------------------------------


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
    failures: int = 0  # items the source could not deliver (Failure)
    convert_errors: int = 0
    not_modified: bool = False  # the source's URL answered 304
    error: str | None = None  # the harvest itself failed
    stopped: bool = False  # the node stopped in the middle
    next_check_at: datetime | None = None

    @property
    def problems(self) -> int:
        return self.failures + self.convert_errors + self.refused

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


# -- HTTP, watched ----------------------------------------------------------------------------


@dataclass
class _Watch:
    """What the server said during one harvest: freshness and waits, for the schedule."""

    main_url: str | None
    fresh_until: datetime | None = None
    retry_after: float | None = None
    not_modified: bool = False
    answers: int = 0

    def saw(self, url: str, response: Response) -> None:
        self.answers += 1
        main = url == self.main_url if self.main_url else self.answers == 1
        if main:
            self.fresh_until = response.fresh_until
            self.not_modified = response.not_modified

    def asked_to_wait(self, delay: float) -> None:
        self.retry_after = max(delay, self.retry_after or 0.0)


_WATCH: contextvars.ContextVar[_Watch | None] = contextvars.ContextVar(
    "govhub_harvest_watch", default=None
)


class HarvestHttp(HttpClient):
    """The node's one ``HttpClient``, telling the harvest of each source what the server said
    (``fresh_until``, ``Retry-After``, 304), since the answers themselves go to the adapter."""

    async def get(self, url: str, *, conditional: bool = True) -> Response:
        watch = _WATCH.get()
        try:
            response = await super().get(url, conditional=conditional)
        except RetryLater as exc:
            if watch is not None:
                watch.asked_to_wait(exc.delay)
            raise
        if watch is not None:
            watch.saw(url, response)
        if not response.not_modified:
            self._keep_validators(url, response)
        return response

    def _keep_validators(self, url: str, response: Response) -> None:
        """Keep ``ETag`` and ``Last-Modified`` whatever their case: ``HttpClient`` copies the
        headers into a plain dict, and servers that write ``Etag`` (Go's and aiohttp's
        canonical form) or ``etag`` would otherwise get no conditional GET."""
        found = {name.lower(): value for name, value in response.headers.items()}
        etag, modified = found.get("etag"), found.get("last-modified")
        if (etag or modified) and self.validators.get(url) != Validators(etag, modified):
            self.validators.put(url, Validators(etag, modified))


# -- One harvest ------------------------------------------------------------------------------


@dataclass
class _Batch:
    """Items taken since the last commit: their records, problems and the cursor after them."""

    records: list[tuple[Record, Item]] = field(default_factory=list)
    problems: list[ItemProblem] = field(default_factory=list)
    items: int = 0
    cursor: str | None = None
    started: float = field(default_factory=time.monotonic)

    def move(self, cursor: str | None) -> None:
        if cursor is not None:
            self.cursor = cursor

    def problem(self, where: str, stage: str, message: str) -> None:
        self.problems.append(ItemProblem(now(), where, stage, message))

    def ready(self, size: int) -> bool:
        return len(self.records) >= size or time.monotonic() - self.started >= BATCH_SECONDS

    def take(self) -> _Batch:
        taken = _Batch(self.records, self.problems, self.items, self.cursor, self.started)
        self.records, self.problems, self.items, self.cursor = [], [], 0, None
        self.started = time.monotonic()
        return taken

    def __bool__(self) -> bool:
        return bool(self.records or self.problems or self.items or self.cursor is not None)


Finish = Callable[[sqlite3.Connection], None]


class Harvester:
    """Harvests one node's sources into its pipeline, over its own state connection."""

    def __init__(
        self,
        node: Node,
        state: sqlite3.Connection,
        pipeline: Pipeline,
        *,
        http: HttpClient | None = None,
        validators: DurableValidators | None = None,
        root: Path = Path("."),
        wake: asyncio.Event | None = None,
        progress: Progress | None = None,
        batch: int = BATCH,
        data_dir: Path | None = None,
    ) -> None:
        self.node, self.state, self.pipeline = node, state, pipeline
        self.data_dir = data_dir  # where adapters keep files of their own (the push spool)
        self.http, self.validators, self.root = http, validators, root
        self.wake, self.progress, self.batch = wake, progress, batch
        self.adapters: dict[str, Any] = {}
        self._lock = asyncio.Lock()  # one transaction at a time on this connection

    def open(self, planned: Sequence[Planned]) -> None:
        """Make every source's adapter; ``ConfigInvalid`` naming each one that refused."""
        problems: list[Problem] = []
        for each in planned:
            try:
                self.adapters[each.name] = self._make(each)
            except ConfigInvalid as exc:
                problems.extend(exc.problems)
            except (HubError, ValueError, OSError) as exc:
                label = f"node[{self.node.id}].sources[{each.name}]"
                line = each.source.line or self.node.line
                problems.append(Problem(each.source.name, line, label, str(exc)))
        if problems:
            raise ConfigInvalid(problems)

    def _make(self, planned: Planned) -> Any:
        extra = {"data_dir": self.data_dir} if self.data_dir is not None else {}
        context = Context(self.node, planned.name, self.http, str(self.root), extra=extra)
        return planned.adapter(planned.settings, context)

    async def harvest(self, planned: Planned, stop: asyncio.Event | None = None) -> Tally:
        """Read ``planned`` once from its cursor into the pipeline; never raises for the
        source's own failures (they are in the tally and the source's state)."""
        if planned.name not in self.adapters:
            self.adapters[planned.name] = self._make(planned)
        adapter = self.adapters[planned.name]
        tally, batch = Tally(), _Batch()
        state = await self._read(source_state, planned.name)
        url = planned.source.settings.get("url")
        watch = _Watch(url if isinstance(url, str) else None)
        token = _WATCH.set(watch)
        try:
            with self._collecting() as pending:
                try:
                    async with contextlib.aclosing(adapter.fetch(state.cursor)) as found:
                        async for item in found:
                            self._take(planned, adapter, item, batch, tally)
                            if batch.ready(self.batch):
                                await self._commit(planned, batch, tally)
                            if stop is not None and stop.is_set():
                                tally.stopped = True
                                break
                except Exception as exc:  # an adapter may raise anything: the source failed
                    await self._commit(planned, batch, tally)
                    await self._fail(planned, state, exc, watch, tally)
                    return tally
                tally.not_modified = watch.not_modified
                if tally.stopped:  # what was read is kept; the source stays due
                    await self._commit(planned, batch, tally)
                    return tally
                await self._commit(
                    planned, batch, tally, self._succeeded(planned, watch, tally, pending)
                )
                if self.validators is not None:
                    self.validators.written(pending)
        finally:
            _WATCH.reset(token)
        log.info(
            "source %s: %s",
            planned.name,
            tally,
            extra={"node": self.node.id, "source": planned.name, "stage": "harvest"},
        )
        return tally

    def _collecting(self) -> contextlib.AbstractContextManager[dict[str, Validators]]:
        if self.validators is None:
            return contextlib.nullcontext({})
        return self.validators.collecting()

    def _take(
        self, planned: Planned, adapter: Any, found: Item | Failure, batch: _Batch, tally: Tally
    ) -> None:
        """One thing ``fetch`` yielded: a record for the batch, or a problem kept and logged."""
        if isinstance(found, Failure):
            tally.failures += 1
            self._problem(planned, batch, found.where, "fetch", found.message)
            batch.move(found.cursor)
            return
        tally.items += 1
        batch.items += 1
        if tally.items % LOG_EVERY == 0:
            log.info(
                "source %s: %s so far",
                planned.name,
                tally,
                extra={"node": self.node.id, "source": planned.name, "stage": "harvest"},
            )
        try:
            record = adapter.convert(found)
            if record is not None and not isinstance(record, Record):
                raise TypeError(f"convert returned {type(record).__name__}, not a Record or None")
        except Exception as exc:  # any error of one item's conversion is that item's problem
            tally.convert_errors += 1
            self._problem(planned, batch, found.where, "convert", describe_error(exc, found.where))
            batch.move(found.cursor)
            return
        if record is None:
            tally.empty += 1
        else:
            tally.records += 1
            batch.records.append((record, found))
        batch.move(found.cursor)
        if self.progress is not None:
            self.progress.update(planned.name, tally)

    def _problem(self, planned: Planned, batch: _Batch, where: str, stage: str, text: str) -> None:
        batch.problem(where, stage, text)
        self._log_problem(planned, where, stage, text)

    async def _commit(
        self, planned: Planned, batch: _Batch, tally: Tally, finish: Finish | None = None
    ) -> None:
        """Write the batch (records through the pipeline, the cursor, the counts) at once."""
        if not batch and finish is None:
            return
        taken = batch.take()
        async with self._lock:
            written = await asyncio.to_thread(self._write, planned, taken, finish)
        tally.unchanged += written.unchanged
        tally.convert_errors += len(written.unwritable)
        for where, message in written.unwritable:
            self._log_problem(planned, where, "convert", message)
        for item, result in written.results:
            tally.count(result)
            if result.outcome is Outcome.REFUSED:
                self._log_problem(planned, item.where, "refused", _problems(result))
        if self.wake is not None and any(r.outcome is Outcome.QUEUED for _, r in written.results):
            self.wake.set()  # the relay sends at once
        if self.progress is not None:
            self.progress.update(planned.name, tally)

    def _write(self, planned: Planned, taken: _Batch, finish: Finish | None) -> _Written:
        """In a worker thread: revisions by content, then one transaction through the pipeline
        that also moves the cursor and adds to the source's counts."""
        written = _Written()
        documents: list[tuple[bytes, str]] = []
        hashes: list[str] = []
        items: list[Item] = []
        seen: dict[str, Record] = {}  # record id -> its newest revision in this batch
        for record, item in taken.records:
            try:
                revised = _revise(self.state, record, seen)
                data, digest = revised.xml_and_hash() if revised else (b"", "")
            except Exception as exc:  # a record the encoder cannot write: that item's problem
                written.unwritable.append((item.where, describe_error(exc)))
                continue
            if revised is None:
                written.unchanged += 1
                continue
            documents.append((data, f"[{planned.name}] {item.where}"))
            hashes.append(digest)
            items.append(item)
        problems = [
            *taken.problems,
            *(ItemProblem(now(), where, "convert", text) for where, text in written.unwritable),
        ]

        def also(conn: sqlite3.Connection, results: list[Accepted]) -> None:
            refused = [
                ItemProblem(now(), item.where, "refused", _problems(result))
                for item, result in zip(items, results, strict=True)
                if result.outcome is Outcome.REFUSED
            ]
            made = sum(r.outcome in (Outcome.QUEUED, Outcome.HELD) for r in results)
            save_progress(
                conn,
                planned.name,
                cursor=taken.cursor,
                items=taken.items,
                records=made,
                problems=[*problems, *refused],
            )
            if finish is not None:
                finish(conn)

        results = self.pipeline.accept_many(documents, also=also, encoded=True, hashes=hashes)
        written.results = list(zip(items, results, strict=True))
        return written

    def _succeeded(
        self, planned: Planned, watch: _Watch, tally: Tally, pending: dict[str, Validators]
    ) -> Finish:
        """The last step of a complete harvest, in its last transaction: the next check, and
        the validators of its answers."""

        def finish(conn: sqlite3.Connection) -> None:
            at = now()
            tally.next_check_at = after_success(
                planned.plan, at, watch.fresh_until, watch.retry_after
            )
            save_success(conn, planned.name, at=at, next_check_at=tally.next_check_at)
            if self.validators is not None:
                self.validators.write(conn, pending)

        return finish

    async def _fail(
        self, planned: Planned, state: SourceState, exc: Exception, watch: _Watch, tally: Tally
    ) -> None:
        """The harvest failed: back off (or wait as the server asked), or park the source."""
        tally.error = describe_error(exc)
        retry = exc.delay if isinstance(exc, RetryLater) else watch.retry_after
        at = now()
        verdict = after_failure(planned.plan, state.errors, at, retry)
        tally.next_check_at = verdict.next_check_at

        def write(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                save_failure(
                    conn,
                    planned.name,
                    at=at,
                    error=tally.error or "",
                    errors=verdict.errors,
                    next_check_at=verdict.next_check_at,
                    parked=verdict.parked,
                )

        async with self._lock:
            await asyncio.to_thread(write, self.state)
        extra = {"node": self.node.id, "source": planned.name, "stage": "harvest"}
        if verdict.parked:
            log.error(
                "source %s parked after %d failures in a row (last: %s); fix it, then run "
                "`govhub sources reset --node %s %s`",
                planned.name,
                verdict.errors,
                tally.error,
                self.node.id,
                planned.name,
                extra=extra,
            )
        else:
            when = (
                verdict.next_check_at.isoformat(timespec="seconds") if verdict.next_check_at else ""
            )
            log.warning(
                "source %s failed (%d in a row, next try %s): %s",
                planned.name,
                verdict.errors,
                when,
                tally.error,
                exc_info=not isinstance(exc, HubError | ValueError | OSError),
                extra=extra,
            )

    def _log_problem(self, planned: Planned, where: str, stage: str, text: str) -> None:
        log.warning(
            "source %s: %s: %s: %s",
            planned.name,
            where,
            stage,
            text,
            extra={"node": self.node.id, "source": planned.name, "stage": stage},
        )

    async def _read(self, query: Callable[..., Any], *args: Any) -> Any:
        async with self._lock:
            return await asyncio.to_thread(query, self.state, *args)

    # -- On schedule --------------------------------------------------------------------------

    async def run(
        self,
        planned: Sequence[Planned],
        stop: asyncio.Event,
        *,
        concurrency: int = CONCURRENCY,
        idle: float = IDLE,
    ) -> None:
        """Harvest every enabled source when it is due, ``concurrency`` at a time, until
        ``stop``; a harvest in progress ends at its next item and keeps what it read."""
        enabled = [p for p in planned if p.plan.enabled]
        running: dict[str, asyncio.Task[Tally]] = {}
        resting: dict[str, datetime] = {}  # sources whose harvest broke in govhub itself
        changed = asyncio.Event()

        def finished(name: str, _: object) -> None:
            running.pop(name, None)
            changed.set()

        async with asyncio.TaskGroup() as group:
            while not stop.is_set():
                changed.clear()
                states: dict[str, SourceState] = await self._read(all_states)
                at = now()
                for each in enabled:
                    name = each.name
                    if len(running) >= concurrency:
                        break
                    if name in running or resting.get(name, at) > at:
                        continue
                    if not states.get(name, SourceState(name)).due(at):
                        continue
                    task = group.create_task(
                        self._guarded(each, stop, resting), name=f"harvest {name}"
                    )
                    running[name] = task
                    task.add_done_callback(functools.partial(finished, name))
                wait = _until_due(enabled, states, running, resting, at, idle)
                await _first_of(stop, changed, wait)

    async def _guarded(
        self, planned: Planned, stop: asyncio.Event, resting: dict[str, datetime]
    ) -> Tally:
        """One scheduled harvest; a failure of govhub's own (the state file, a bug) is
        logged and the source rests for an interval instead of stopping the node."""
        try:
            return await self.harvest(planned, stop)
        except Exception as exc:
            log.exception(
                "harvest of source %s broke",
                planned.name,
                extra={"node": self.node.id, "source": planned.name, "stage": "harvest"},
            )
            resting[planned.name] = now() + timedelta(seconds=planned.plan.interval)
            return Tally(error=describe_error(exc))


@dataclass
class _Written:
    results: list[tuple[Item, Accepted]] = field(default_factory=list)
    unchanged: int = 0
    unwritable: list[tuple[str, str]] = field(default_factory=list)  # (where, message)


def _revise(conn: sqlite3.Connection, record: Record, seen: dict[str, Record]) -> Record | None:
    """``record`` with its revision set by content, or ``None`` when its content is known.

    New content of a known record becomes the known revision + 1 (or the
    record's own revision, when a source that keeps revisions says more).
    The last accepted revision is the newer of the outbox's and the review
    queue's (a held or rejected record counts: the same content again must not
    be reviewed twice), or one earlier in the same batch (``seen``). A record
    never seen needs no hash here: the outbox computes its own.
    """
    earlier = seen.get(record.id)
    known = (earlier.revision, earlier.content_hash()) if earlier else _latest(conn, record.id)
    if known is not None:
        if known[1] == record.content_hash():
            return None
        revision = max(record.revision, known[0] + 1)
        if revision != record.revision:
            record = dataclasses.replace(record, revision=revision)
    seen[record.id] = record
    return record


def _latest(conn: sqlite3.Connection, record_id: str) -> tuple[int, str] | None:
    sent = outbox.latest(conn, record_id)
    row = conn.execute(
        "SELECT revision, body FROM held WHERE record_id = ? ORDER BY revision DESC LIMIT 1",
        (record_id,),
    ).fetchone()
    if row is not None and (sent is None or row[0] > sent.revision):
        return row[0], records.parse(row[1], f"held:{record_id}").content_hash()
    return (sent.revision, sent.content_hash) if sent else None


def _until_due(
    enabled: Sequence[Planned],
    states: dict[str, SourceState],
    running: dict[str, asyncio.Task[Tally]],
    resting: dict[str, datetime],
    at: datetime,
    idle: float,
) -> float:
    """Seconds until the next source not running now is due (at most ``idle``)."""
    wait = idle
    for each in enabled:
        state = states.get(each.name, SourceState(each.name))
        if each.name in running or state.parked:
            continue
        due = max(state.next_check_at or at, resting.get(each.name, at))
        wait = min(wait, (due - at).total_seconds())
    return max(wait, 0.05)


async def _first_of(stop: asyncio.Event, changed: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(changed.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _moment(at: datetime | None) -> str:
    return at.isoformat(timespec="seconds") if at else "-"


def describe_error(exc: BaseException, where: str | None = None) -> str:
    """An exception as a problem's message; an ``InputError``'s problems without the item's
    own location (the message is shown with it)."""
    if isinstance(exc, InputError):
        return "; ".join(_without(str(p), where) for p in exc.problems)
    text = str(exc).strip()
    if isinstance(exc, HubError | ValueError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _without(text: str, where: str | None) -> str:
    return text.removeprefix(f"{where}: ") if where else text


def _problems(result: Accepted) -> str:
    return "; ".join(f"{p.field}: {p.message}" for p in result.problems)
