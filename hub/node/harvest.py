"""The harvester: a node's sources, read through their adapters into its pipeline, on schedule.

    every due source (a few at a time):
      fetch(cursor) ─┬─ Item ─┐ batch ─ convert + check (worker processes) ─┐
                     └─ Failure (counted, kept, the source goes on)         │
          revision by content hash ─ Pipeline.accept_checked + cursor, one transaction
      then: the next check (interval, Cache-Control, Retry-After, backoff, parked)

``plan_sources`` checks every source of a node at start-up (adapter installed,
scheduling keys, the adapter's settings) and reports all problems at once.
``Harvester.harvest`` reads one source once; ``Harvester.run`` keeps every
source on its schedule until the node stops.

A record's revision is set here, by content: the adapter always says
revision 1; when the node has accepted the record before (outbox, or held for
review) with the same content hash, the item is ``unchanged`` and nothing is
written; with other content it becomes the known revision + 1.

Conversion and the record checks (``hub.node.harvest_workers``) run in worker
processes, one per core, while this process fetches the next batch and writes
the last; batches are committed in the order they were read. The cursor moves
in the same transaction as the records before it, so a crash at any point
repeats at most the batches not committed, which the content hash then finds
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
from collections import deque
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
from hub.errors import ConfigInvalid, HubError, Problem
from hub.federation import Node, Source
from hub.node import outbox
from hub.node.harvest_workers import (
    AdapterSpec,
    Converted,
    ConvertPool,
    describe_error,
)
from hub.node.outbox import now
from hub.node.pipeline import Accepted, Checked, Outcome, Pipeline, check_record
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

    def take(self) -> _Batch:
        taken = _Batch(self.found, self.items, self.cursor, self.started)
        self.found, self.items, self.cursor = [], 0, None
        self.started = time.monotonic()
        return taken

    def __bool__(self) -> bool:
        return bool(self.found or self.cursor is not None)


Finish = Callable[[sqlite3.Connection], None]


class Harvester:
    """Harvests one node's sources into its pipeline, over its own state connection.

    ``workers``: processes converting items (``hub.node.harvest_workers``):
    ``None`` for one per CPU core, ``0`` to convert everything in this process.
    The processes start with ``open`` (or the first batch big enough to send
    them, ``POOL_FROM`` items); ``close`` (or the end of ``run``) stops them.
    """

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
        workers: int | None = None,
    ) -> None:
        self.node, self.state, self.pipeline = node, state, pipeline
        self.data_dir = data_dir  # where adapters keep files of their own (the push spool)
        self.http, self.validators, self.root = http, validators, root
        self.wake, self.progress, self.batch = wake, progress, batch
        self.adapters: dict[str, Any] = {}
        self.pool = ConvertPool(node, pipeline.reviewer, pipeline.limits, workers)
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
        if planned:
            self.pool.start()

    def close(self) -> None:
        """Stop the worker processes, if any started."""
        self.pool.close()

    def _extra(self) -> dict[str, Any]:
        return {"data_dir": self.data_dir} if self.data_dir is not None else {}

    def _make(self, planned: Planned) -> Any:
        context = Context(self.node, planned.name, self.http, str(self.root), extra=self._extra())
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
        spec = AdapterSpec(
            planned.adapter, planned.settings, planned.name, str(self.root), self._extra()
        )
        sending = _Sending(self, planned, adapter, self.pool.source(spec), tally)
        token = _WATCH.set(watch)
        try:
            with self._collecting() as pending:
                failed: Exception | None = None
                async with contextlib.aclosing(adapter.fetch(state.cursor)) as found:
                    while True:
                        try:
                            item = await anext(found)
                        except StopAsyncIteration:
                            break
                        except Exception as exc:  # an adapter may raise anything: it failed
                            failed = exc
                            break
                        self._take(planned, item, batch, tally)
                        if batch.ready(self.batch):
                            await sending.send(batch.take())
                        await sending.commit_done()
                        if stop is not None and stop.is_set():
                            tally.stopped = True
                            break
                if failed is not None:
                    await sending.finish(batch.take())
                    await self._fail(planned, state, failed, watch, tally)
                    return tally
                tally.not_modified = watch.not_modified
                if tally.stopped:  # what was read is kept; the source stays due
                    await sending.finish(batch.take())
                    return tally
                finish = self._succeeded(planned, watch, tally, pending)
                await sending.finish(batch.take(), finish)
                if self.validators is not None:
                    self.validators.written(pending)
        finally:
            sending.cancel()
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

    def _take(self, planned: Planned, found: Item | Failure, batch: _Batch, tally: Tally) -> None:
        """One thing ``fetch`` yielded, into the batch; a failure is counted and logged now."""
        batch.add(found)
        if isinstance(found, Failure):
            tally.failures += 1
            self._log_problem(planned, found.where, "fetch", found.message)
            return
        tally.items += 1
        if tally.items % LOG_EVERY == 0:
            log.info(
                "source %s: %s so far",
                planned.name,
                tally,
                extra={"node": self.node.id, "source": planned.name, "stage": "harvest"},
            )

    def _converted(self, planned: Planned, batch: _Batch, tally: Tally) -> None:
        """A batch back from conversion: its counts, and its items' problems logged."""
        items = (found for found in batch.found if isinstance(found, Item))
        for item, result in zip(items, batch.converted, strict=True):
            if result.record is not None:
                tally.records += 1
            if result.error is not None:
                tally.convert_errors += 1
                self._log_problem(planned, item.where, "convert", result.error)
            elif result.record is None:
                tally.empty += 1

    async def _commit(
        self, planned: Planned, batch: _Batch, tally: Tally, finish: Finish | None = None
    ) -> None:
        """Write a converted batch (records through the pipeline, the cursor, the counts)."""
        if not batch and finish is None:
            return
        async with self._lock:
            written = await asyncio.to_thread(self._write, planned, batch, finish)
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

    def _write(self, planned: Planned, batch: _Batch, finish: Finish | None) -> _Written:
        """In a worker thread: revisions by content, then one transaction through the pipeline
        that also moves the cursor and adds to the source's counts."""
        written = _Written()
        problems: list[ItemProblem] = []
        documents: list[Checked] = []
        items: list[Item] = []
        seen: dict[str, tuple[int, str]] = {}  # record id -> (revision, hash) in this batch
        converted = iter(batch.converted)
        for found in batch.found:
            if isinstance(found, Failure):
                problems.append(ItemProblem(now(), found.where, "fetch", found.message))
                continue
            result = next(converted)
            if result.error is not None:
                problems.append(ItemProblem(now(), found.where, "convert", result.error))
                continue
            if result.record is None or result.checked is None:
                continue
            try:
                checked = self._revise(result.record, result.checked, seen)
            except Exception as exc:  # a record the encoder cannot write: that item's problem
                message = describe_error(exc)
                written.unwritable.append((found.where, message))
                problems.append(ItemProblem(now(), found.where, "convert", message))
                continue
            if checked is None:
                written.unchanged += 1
                continue
            documents.append(checked)
            items.append(found)

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
                cursor=batch.cursor,
                items=batch.items,
                records=made,
                problems=[*problems, *refused],
            )
            if finish is not None:
                finish(conn)

        results = self.pipeline.accept_checked(documents, also=also)
        written.results = list(zip(items, results, strict=True))
        return written

    def _revise(
        self, record: Record, checked: Checked, seen: dict[str, tuple[int, str]]
    ) -> Checked | None:
        """``checked`` with its revision set by content, or ``None`` when its content is known.

        New content of a known record becomes the known revision + 1 (or the
        record's own revision, when a source that keeps revisions says more): the
        record is encoded and checked again with that revision, here, as the
        pipeline would. The last accepted revision is the newer of the outbox's
        and the review queue's (a held or rejected record counts: the same content
        again must not be reviewed twice), or one earlier in the same batch (``seen``).
        """
        known = seen.get(record.id) or _latest(self.state, record.id)
        if known is not None:
            if known[1] == checked.content_hash:
                return None
            revision = max(record.revision, known[0] + 1)
            if revision != record.revision:
                record = dataclasses.replace(record, revision=revision)
                checked = check_record(
                    record,
                    checked.source,
                    node=self.node,
                    reviewer=self.pipeline.reviewer,
                    limits=self.pipeline.limits,
                )
        seen[record.id] = (record.revision, checked.content_hash)
        return checked

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
        concurrency: int | None = None,
        idle: float = IDLE,
    ) -> None:
        """Harvest every enabled source when it is due, ``concurrency`` at a time, until
        ``stop``; a harvest in progress ends at its next item and keeps what it read.

        ``concurrency`` defaults to ``CONCURRENCY``, plus room for the worker
        processes' batches: while workers convert some sources' items, others are
        fetched and written. The workers stop when this returns.
        """
        if concurrency is None:
            concurrency = CONCURRENCY + (self.pool.in_flight if self.pool.workers else 0)
        try:
            await self._run(planned, stop, concurrency, idle)
        finally:
            await asyncio.to_thread(self.pool.close)

    async def _run(
        self, planned: Sequence[Planned], stop: asyncio.Event, concurrency: int, idle: float
    ) -> None:
        enabled = [p for p in planned if p.plan.enabled]
        running: dict[str, asyncio.Task[Tally]] = {}
        resting: dict[str, datetime] = {}  # sources whose harvest broke in govhub itself
        changed = asyncio.Event()
        done: list[str] = []  # harvests finished since the states were read
        states: dict[str, SourceState] = {}
        read_at = -idle  # when every state was last read

        def finished(name: str, _: object) -> None:
            running.pop(name, None)
            done.append(name)
            changed.set()

        async with asyncio.TaskGroup() as group:
            while not stop.is_set():
                changed.clear()
                # Every state at least every ``idle`` seconds (a reset is seen then); in
                # between only those of the harvests just finished: reading a thousand
                # sources' states each time one finishes would cost more than harvesting.
                if time.monotonic() - read_at >= idle:
                    done.clear()
                    states, read_at = await self._read(all_states), time.monotonic()
                while done:
                    name = done.pop()
                    states[name] = await self._read(source_state, name)
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
                # With every slot taken only a finished harvest (``changed``) frees one:
                # no need to look for the next due source before that.
                full = len(running) >= concurrency
                wait = idle if full else _until_due(enabled, states, running, resting, at, idle)
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


class _Sending:
    """One harvest's batches on their way: sent to be converted (in a worker process, or
    here), then committed in the order they were read, so the cursor only moves forward."""

    def __init__(
        self, harvester: Harvester, planned: Planned, adapter: Any, handle: Any, tally: Tally
    ) -> None:
        self.harvester, self.planned, self.adapter = harvester, planned, adapter
        self.handle, self.tally = handle, tally
        self.pending: deque[tuple[_Batch, asyncio.Future[list[Converted]]]] = deque()

    async def send(self, batch: _Batch) -> None:
        """Send ``batch``; wait for the oldest while too many are on their way."""
        pool = self.harvester.pool
        items = [found for found in batch.found if isinstance(found, Item)]
        converting: asyncio.Future[list[Converted]]
        if pool.takes(self.handle, items):
            converting = asyncio.ensure_future(pool.convert(self.handle, self.adapter, items))
        else:  # converted now, as the harvest goes: no worker's round trip to wait for
            converting = asyncio.get_running_loop().create_future()
            converting.set_result(pool.here(self.adapter, items, self.planned.name))
        self.pending.append((batch, converting))
        while len(self.pending) > pool.in_flight:
            await self._commit_next()

    async def commit_done(self) -> None:
        """Commit the batches whose conversion is done, oldest first."""
        while self.pending and self.pending[0][1].done():
            await self._commit_next()

    async def finish(self, last: _Batch, finish: Finish | None = None) -> None:
        """Send the last batch, commit every batch; ``finish`` runs in the last transaction."""
        if last:
            await self.send(last)
        if not self.pending:
            await self.harvester._commit(self.planned, _Batch(), self.tally, finish)
            return
        while len(self.pending) > 1:
            await self._commit_next()
        await self._commit_next(finish)

    async def _commit_next(self, finish: Finish | None = None) -> None:
        batch, converting = self.pending[0]
        batch.converted = await converting
        self.pending.popleft()
        self.harvester._converted(self.planned, batch, self.tally)
        await self.harvester._commit(self.planned, batch, self.tally, finish)

    def cancel(self) -> None:
        """Leaving early (an error, cancellation): the batches not committed are dropped, and
        read again from the cursor by the next harvest."""
        for _, converting in self.pending:
            converting.cancel()
        self.pending.clear()


@dataclass
class _Written:
    results: list[tuple[Item, Accepted]] = field(default_factory=list)
    unchanged: int = 0
    unwritable: list[tuple[str, str]] = field(default_factory=list)  # (where, message)


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
    soonest = at + timedelta(seconds=idle)
    for each in enabled:
        name = each.source.name
        if name in running:
            continue
        state = states.get(name)
        if state is not None and state.parked:
            continue
        due = state.next_check_at if state is not None and state.next_check_at else at
        rest = resting.get(name)
        if rest is not None and rest > due:
            due = rest
        if due <= at:
            return 0.05  # due now (a slot is free: the loop takes it at once)
        soonest = min(soonest, due)
    return max((soonest - at).total_seconds(), 0.05)


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


def _problems(result: Accepted) -> str:
    return "; ".join(f"{p.field}: {p.message}" for p in result.problems)
