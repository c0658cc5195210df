"""The harvester: a node's sources, read through their adapters into its pipeline, on schedule.

    every due source (a few at a time):
      fetch(cursor) ─┬─ Item ─┐ batch ─ convert + check (worker processes) ─┐
                     └─ Failure (counted, kept, the source goes on)         │
          revision by content hash ─ Pipeline.accept_checked + cursor, one transaction
      then: the next check (interval, Cache-Control, Retry-After, backoff, parked)

``Harvester.harvest`` reads one source once; ``Harvester.run`` keeps every
source on its schedule until the node stops. The sources are checked before,
at start-up (``hub.harvest.plan``); around the harvest are the batches and
their writing with revisions by content (``hub.harvest.batch``), the batches
in flight between fetch and commit (``hub.harvest.flight``), what the
server said (``hub.harvest.http``), the counts (``hub.harvest.tally``)
and the loop that runs each source when it is due (``hub.harvest.loop``).

Conversion and the record checks (``hub.harvest.workers``) run in worker
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
import functools
import logging
import sqlite3
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.contract import Adapter, Context, Failure, Item
from adapters.kit.http import HttpClient, RetryLater, Validators
from hub.errors import ConfigInvalid, HubError, Problem
from hub.federation import Node
from hub.harvest.batch import (
    BATCH,
    Batch,
    Finish,
    accept_batch,
    describe_problems,
    revise_batch,
)
from hub.harvest.convert import describe_error
from hub.harvest.flight import InFlight
from hub.harvest.http import WATCH, Watch
from hub.harvest.loop import CONCURRENCY, IDLE, run_on_schedule
from hub.harvest.plan import Planned
from hub.harvest.schedule import after_failure, after_success, log_verdict
from hub.harvest.state import (
    DurableValidators,
    SourceState,
    save_failure,
    save_success,
    source_state,
)
from hub.harvest.tally import Progress, Tally
from hub.harvest.workers import AdapterSpec, ConvertPool
from hub.nodedb import now, transaction
from hub.outbox.pipeline import Outcome, Pipeline

log = logging.getLogger(__name__)

LOG_EVERY = 1000
"""A progress line in the log every this many items of one harvest."""


class Harvester:
    """Harvests one node's sources into its pipeline, over its own state connection.

    ``workers``: processes converting items (``hub.harvest.workers``):
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
        self.adapters: dict[str, Adapter] = {}
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

    def _make(self, planned: Planned) -> Adapter:
        context = Context(self.node, planned.name, self.http, str(self.root), extra=self._extra())
        return planned.adapter(planned.settings, context)

    async def harvest(self, planned: Planned, stop: asyncio.Event | None = None) -> Tally:
        """Read ``planned`` once from its cursor into the pipeline; never raises for the
        source's own failures (they are in the tally and the source's state).

        Each batch goes through the phases in order: fetch (``_fetch``, ``_take``:
        the adapter's items from the cursor, gathered into a batch) → convert and
        check (``InFlight.convert``: in a worker process while this one fetches
        on) → revise, accept and commit the cursor (``_commit``: revisions by
        content, then one transaction). Batches are committed in the order they
        were read; the last one also saves the source's next check.
        """
        adapter = self._adapter(planned)
        tally, batch, fetched = Tally(), Batch(), _Fetched()
        state = await self.read_state(source_state, planned.name)
        watch = Watch(_url(planned))
        handle = self.pool.source(self._spec(planned))
        write = functools.partial(self._write, planned, tally)
        in_flight = InFlight(self.pool, handle, adapter, planned.name, write)
        token = WATCH.set(watch)
        try:
            with self._collecting() as validators:
                found = self._fetch(adapter, state.cursor, fetched)
                async with contextlib.aclosing(found):
                    async for item in found:  # fetch
                        self._take(planned, item, batch, tally)
                        if batch.ready(self.batch):
                            await in_flight.convert(batch.take())  # convert, check
                        await in_flight.write_converted()  # revise, accept, commit the cursor
                        if stop is not None and stop.is_set():
                            tally.stopped = True
                            break
                if fetched.error is not None:  # what was read is kept; the source backs off
                    await in_flight.finish(batch.take())
                    await self._fail(planned, state, fetched.error, watch, tally)
                    return tally
                tally.not_modified = watch.not_modified
                if tally.stopped:  # what was read is kept; the source stays due
                    await in_flight.finish(batch.take())
                    return tally
                await in_flight.finish(
                    batch.take(), self._succeeded(planned, watch, tally, validators)
                )
                if self.validators is not None:
                    self.validators.written(validators)
        finally:
            in_flight.cancel()
            WATCH.reset(token)
        log.info(
            "source %s: %s",
            planned.name,
            tally,
            extra={"node": self.node.id, "source": planned.name, "stage": "harvest"},
        )
        return tally

    def _adapter(self, planned: Planned) -> Adapter:
        """The source's adapter, made on its first harvest (``open`` makes them all)."""
        if planned.name not in self.adapters:
            self.adapters[planned.name] = self._make(planned)
        return self.adapters[planned.name]

    def _spec(self, planned: Planned) -> AdapterSpec:
        """How a worker process builds the source's adapter."""
        return AdapterSpec(
            planned.adapter, planned.settings, planned.name, str(self.root), self._extra()
        )

    @staticmethod
    async def _fetch(
        adapter: Adapter, cursor: str | None, fetched: _Fetched
    ) -> AsyncGenerator[Item | Failure, None]:
        """Fetch: what the adapter yields from ``cursor``. An exception of the adapter's ends
        it, kept in ``fetched`` (an adapter may raise anything: the source failed); the
        adapter's generator is closed however the harvest leaves it."""
        found = adapter.fetch(cursor)
        try:
            while True:
                try:
                    item = await anext(found)
                except StopAsyncIteration:
                    return
                except Exception as exc:
                    fetched.error = exc
                    return
                yield item
        finally:
            close = getattr(found, "aclose", None)
            if close is not None:
                await close()

    def _collecting(self) -> contextlib.AbstractContextManager[dict[str, Validators]]:
        if self.validators is None:
            return contextlib.nullcontext({})
        return self.validators.collecting()

    def _take(self, planned: Planned, found: Item | Failure, batch: Batch, tally: Tally) -> None:
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

    def _converted(self, planned: Planned, batch: Batch, tally: Tally) -> None:
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

    async def _write(
        self, planned: Planned, tally: Tally, batch: Batch, finish: Finish | None
    ) -> None:
        """A batch back from convert and check, in read order: counted, then committed."""
        self._converted(planned, batch, tally)
        await self._commit(planned, batch, tally, finish)

    async def _commit(
        self, planned: Planned, batch: Batch, tally: Tally, finish: Finish | None = None
    ) -> None:
        """Revise, accept and commit the cursor: a converted batch's revisions by content,
        then its records through the pipeline with the cursor and the counts, in one
        transaction (``finish`` in it too)."""
        if not batch and finish is None:
            return
        async with self._lock:
            revised = await asyncio.to_thread(revise_batch, self.pipeline, self.state, batch)
            written = await asyncio.to_thread(
                accept_batch, self.pipeline, planned.name, batch, revised, finish
            )
        tally.unchanged += written.unchanged
        tally.convert_errors += len(written.unwritable)
        for where, message in written.unwritable:
            self._log_problem(planned, where, "convert", message)
        for item, result in written.results:
            tally.count(result)
            if result.outcome in (Outcome.REFUSED, Outcome.CONFLICT):
                what = result.outcome.value
                self._log_problem(planned, item.where, what, describe_problems(result))
        if self.wake is not None and any(r.outcome is Outcome.QUEUED for _, r in written.results):
            self.wake.set()  # the relay sends at once
        if self.progress is not None:
            self.progress.update(planned.name, tally)

    def _succeeded(
        self, planned: Planned, watch: Watch, tally: Tally, pending: dict[str, Validators]
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
        self, planned: Planned, state: SourceState, exc: Exception, watch: Watch, tally: Tally
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
        trace = None if isinstance(exc, HubError | ValueError | OSError) else exc  # a bug?
        log_verdict(verdict, self.node.id, planned.name, tally.error, trace=trace)

    def _log_problem(self, planned: Planned, where: str, stage: str, text: str) -> None:
        log.warning(
            "source %s: %s: %s: %s",
            planned.name,
            where,
            stage,
            text,
            extra={"node": self.node.id, "source": planned.name, "stage": stage},
        )

    async def read_state(self, query: Callable[..., Any], *args: Any) -> Any:
        """``query(state, *args)`` on the state connection, in a thread, between writes."""
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
            await run_on_schedule(self, planned, stop, concurrency, idle)
        finally:
            await asyncio.to_thread(self.pool.close)


def _url(planned: Planned) -> str | None:
    url = planned.source.settings.get("url")
    return url if isinstance(url, str) else None


@dataclass
class _Fetched:
    """How a harvest's fetch ended: ``error`` when the adapter raised."""

    error: Exception | None = None
