"""The harvester: a node's sources, read through their adapters into its pipeline, on schedule.

    every due source (a few at a time):
      fetch(cursor) ─┬─ Item ─┐ batch ─ convert + check (worker processes) ─┐
                     └─ Failure (counted, kept, the source goes on)         │
          revision by content hash ─ Pipeline.accept_checked + cursor, one transaction
      then: the next check (interval, Cache-Control, Retry-After, backoff, parked)

``Harvester.harvest`` reads one source once; ``Harvester.run`` keeps every
source on its schedule until the node stops. The sources are checked before,
at start-up (``hub.harvest.plan``); around the harvest are the batches and
their writing with revisions by content (``hub.harvest.batch``), what the
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
import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from adapters.contract import Context, Failure, Item
from adapters.kit.http import HttpClient, RetryLater, Validators
from hub.errors import ConfigInvalid, HubError, Problem
from hub.federation import Node
from hub.harvest.batch import BATCH, Batch, Finish, describe_problems, write_batch
from hub.harvest.convert import Converted, describe_error
from hub.harvest.http import WATCH, Watch
from hub.harvest.loop import CONCURRENCY, IDLE, run_on_schedule
from hub.harvest.plan import Planned
from hub.harvest.schedule import after_failure, after_success
from hub.harvest.state import (
    DurableValidators,
    SourceState,
    save_failure,
    save_success,
    source_state,
)
from hub.harvest.tally import Progress, Tally
from hub.harvest.workers import AdapterSpec, ConvertPool
from hub.nodedb import transaction
from hub.outbox.entries import now
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
        tally, batch = Tally(), Batch()
        state = await self.read_state(source_state, planned.name)
        url = planned.source.settings.get("url")
        watch = Watch(url if isinstance(url, str) else None)
        spec = AdapterSpec(
            planned.adapter, planned.settings, planned.name, str(self.root), self._extra()
        )
        sending = _Sending(self, planned, adapter, self.pool.source(spec), tally)
        token = WATCH.set(watch)
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
            WATCH.reset(token)
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

    async def _commit(
        self, planned: Planned, batch: Batch, tally: Tally, finish: Finish | None = None
    ) -> None:
        """Write a converted batch (records through the pipeline, the cursor, the counts)."""
        if not batch and finish is None:
            return
        async with self._lock:
            written = await asyncio.to_thread(
                write_batch, self.pipeline, self.node, self.state, planned.name, batch, finish
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


class _Sending:
    """One harvest's batches on their way: sent to be converted (in a worker process, or
    here), then committed in the order they were read, so the cursor only moves forward."""

    def __init__(
        self, harvester: Harvester, planned: Planned, adapter: Any, handle: Any, tally: Tally
    ) -> None:
        self.harvester, self.planned, self.adapter = harvester, planned, adapter
        self.handle, self.tally = handle, tally
        self.pending: deque[tuple[Batch, asyncio.Future[list[Converted]]]] = deque()

    async def send(self, batch: Batch) -> None:
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

    async def finish(self, last: Batch, finish: Finish | None = None) -> None:
        """Send the last batch, commit every batch; ``finish`` runs in the last transaction."""
        if last:
            await self.send(last)
        if not self.pending:
            await self.harvester._commit(self.planned, Batch(), self.tally, finish)
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
