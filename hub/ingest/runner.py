"""The running hub: competing consumers on a portal's up queue, until told to stop.

One flow, top to bottom::

    start N consumers ─ each: its own bus connection, its own store connection,
                        prefetch-bounded, ``ingest.consume_forever`` until stop
    report counts every ``report_every`` seconds
    stop (SIGTERM, SIGINT, or a consumer failed) ─ each consumer finishes the
    batch it holds (stored, then acked) within ``drain_timeout`` ─ whatever is
    still unacked goes back to the queue ─ close

The ack point is ``ingest.consume_forever``'s: after the batch's transaction
has committed. Consumers compete for one queue, so adding consumers (in this
process or in others) spreads the batches; the store's per-record outcomes are
exact under competition (docs/store.md).

Next to the consumers, ``govhub hub run`` serves the portal
(``hub.web.serve``) and runs the followers (``hub.store.followers``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hub.bus.contract import Bus, Consumer
from hub.ingest.consume import Checker, Tally, consume_forever
from hub.lifecycle import drain
from hub.store.connection import Connection

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HubOptions:
    """How the hub consumes: see docs/hub.md for how to choose the numbers."""

    queue: str  # the portal's up queue: topology.up_queue(node id)
    consumers: int = 2  # competing consumers, each with its own connections
    prefetch: int = 200  # unsettled deliveries per consumer (basic.qos)
    batch: int = 100  # deliveries stored per transaction (at most prefetch)
    linger: float = 0.05  # seconds to wait for more deliveries to fill a batch
    drain_timeout: float = 10.0  # on stop: seconds to finish the batches in hand
    report_every: float = 30.0  # seconds between count logs
    source: str = ""  # dead letters name the consumer that gave up on them; "": hub:<node>

    def __post_init__(self) -> None:
        for name in ("consumers", "prefetch", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.batch > self.prefetch:
            raise ValueError(
                f"batch ({self.batch}) cannot exceed prefetch ({self.prefetch}): a consumer "
                "never holds more than prefetch deliveries"
            )


@dataclass(frozen=True, slots=True)
class HubReport:
    """What each consumer did, and the sums."""

    tallies: tuple[Tally, ...]
    consumers: list[Consumer] = field(default_factory=list, repr=False)  # the running ones

    @classmethod
    def empty(cls, consumers: int) -> HubReport:
        return cls(tuple(Tally() for _ in range(consumers)))

    def count(self, outcome: str) -> int:
        return sum(t.outcomes.get(outcome, 0) for t in self.tallies)

    @property
    def stored(self) -> int:
        return sum(sum(t.outcomes.values()) for t in self.tallies)

    @property
    def dead(self) -> int:
        return sum(t.dead for t in self.tallies)

    @property
    def waits_for_database(self) -> int:
        return sum(t.waits_for_database for t in self.tallies)

    @property
    def unacked(self) -> int:
        """Deliveries the running consumers hold now (received, not acked yet)."""
        return sum(consumer.unsettled for consumer in self.consumers)

    def summary(self) -> str:
        kinds = ("inserted", "updated", "unchanged", "stale", "conflict")
        outcomes = ", ".join(f"{kind} {self.count(kind):,}" for kind in kinds)
        return (
            f"{self.stored:,} records ({outcomes}), {self.dead:,} dead letters, "
            f"{sum(t.batches for t in self.tallies):,} batches, "
            f"{self.waits_for_database:,} waits for the database"
        )


async def run_hub(
    connect_bus: Callable[[], Awaitable[Bus]],
    checker: Checker,
    connect_store: Callable[[], Connection],
    stop: asyncio.Event,
    options: HubOptions,
    report: HubReport | None = None,
) -> HubReport:
    """Consume ``options.queue`` with competing consumers until ``stop`` is set.

    ``connect_bus`` opens one bus connection (each consumer calls it once);
    ``connect_store`` opens one store connection (again after the database went
    away). If a consumer fails, the others stop too and its error is raised
    once they have drained: a supervisor (systemd, Docker) restarts the hub,
    and the broker redelivers whatever was not acked. Pass ``report``
    (``HubReport.empty(consumers)``) to watch the counts while it runs.
    """
    report = report or HubReport.empty(options.consumers)
    if len(report.tallies) != options.consumers:
        raise ValueError(f"the report has {len(report.tallies)} tallies, not {options.consumers}")
    node = checker.scope
    workers = [
        asyncio.create_task(
            _consumer(connect_bus, checker, connect_store, stop, options, tally, report),
            name=f"hub-{node}-consumer-{index}",
        )
        for index, tally in enumerate(report.tallies, start=1)
    ]
    reporter = asyncio.create_task(_report(report, node, options.report_every), name="hub-report")
    stopping = asyncio.create_task(stop.wait(), name="hub-stop")
    log.info(
        "hub %s: %d consumers on %s (prefetch %d, batch %d)",
        node,
        options.consumers,
        options.queue,
        options.prefetch,
        options.batch,
        extra={"node": node, "stage": "hub"},
    )
    try:
        await asyncio.wait([*workers, stopping], return_when=asyncio.FIRST_COMPLETED)
        stop.set()  # told to stop, or a consumer ended early (failed): stop them all
        # the consumers still busy are cancelled: their unacked deliveries go back
        await drain(
            workers, options.drain_timeout, f"hub {node}: consumers", {"node": node, "stage": "hub"}
        )
    finally:
        for task in (reporter, stopping, *workers):
            task.cancel()
        await asyncio.gather(reporter, stopping, *workers, return_exceptions=True)
    log.info("hub %s stopped: %s", node, report.summary(), extra={"node": node, "stage": "hub"})
    for task in workers:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error
    return report


async def _consumer(
    connect_bus: Callable[[], Awaitable[Bus]],
    checker: Checker,
    connect_store: Callable[[], Connection],
    stop: asyncio.Event,
    options: HubOptions,
    tally: Tally,
    report: HubReport,
) -> None:
    """One consumer: its own bus connection and (inside consume_forever) store connection."""
    bus = await connect_bus()
    try:
        async with bus.consume(options.queue, prefetch=options.prefetch) as deliveries:
            report.consumers.append(deliveries)
            try:
                await consume_forever(
                    deliveries,
                    checker,
                    connect_store,
                    stop,
                    batch=options.batch,
                    linger=options.linger,
                    source=options.source or f"hub:{checker.scope}",
                    tally=tally,
                )
            finally:
                report.consumers.remove(deliveries)
                # consume_forever has acked everything it stored; what it still holds (the
                # database was down) no one will settle: return it to the queue now.
                await deliveries.close(drain=False)
    finally:
        await bus.close()


async def _report(report: HubReport, node: str, every: float) -> None:
    """Log the counts every ``every`` seconds, with the rate since the last time."""
    last = 0
    while True:
        await asyncio.sleep(every)
        stored = report.stored
        log.info(
            "hub %s: %s; %.0f records/s, %d deliveries in hand",
            node,
            report.summary(),
            (stored - last) / every,
            report.unacked,
            extra={"node": node, "stage": "hub"},
        )
        last = stored
