"""The harvester's worker processes: adapters' ``convert`` and the record checks, on every core.

One Python process runs one core at a time (the GIL), and most of a harvest's
CPU goes into per-item work that needs no state: the adapter's ``convert``,
encoding the record and its content hash, validation, the origin check and the
confidentiality review. ``ConvertPool`` runs that work in worker processes::

    main process                                     worker (one per core)
    fetch (HTTP, the adapter's parsing) ─ batch ─►   convert ─ encode + hash
                                                     ─ validate ─ origin ─ review
    revision by content hash ─ outbox, cursor  ◄──   Converted per item

The main process keeps everything with state: HTTP (one client, its
validators), the schedule, revisions (the state file) and every write (one
writer). Items go in batches, one task per batch of one source: items of one
feed share the parsed feed, which pickling a list writes once, not once an item
(batches and results go pickled by ``hub.harvest.transfer``).

A worker builds each source's adapter once, from picklable parts (``AdapterSpec``:
the class, its settings, the source's name, root and extras) with ``http=None``:
``convert`` reads only its item. The node and the node's ``Reviewer`` are
shipped once, when the worker starts. ``convert_items`` (``hub.harvest.convert``)
is the same work done in the main process: for batches too small to be worth the
trip, with the pool turned off, and for a batch whose worker died twice.

A worker that dies (a crash in a C library, a kill) breaks the whole pool: its
batches come back with ``BrokenProcessPool``, the pool is built again and each
batch is sent once more; a batch that breaks the new pool too is converted in
the main process, as it would be without workers. Nothing is committed before
its batch's results are back, so the cursor never passes an item not written.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import multiprocessing
import os
import pickle
import signal
import time
from collections.abc import Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from adapters.contract import Adapter, Context, Item
from hub.federation import Node
from hub.harvest.convert import Converted, convert_items, describe_error
from hub.harvest.transfer import dumps
from hub.records.safe_xml import Limits
from hub.records.schema import record_schema
from hub.review import Reviewer
from hub.review.text import fold

log = logging.getLogger(__name__)

POOL_FROM = 16
"""Batches of fewer items are converted in the main process: the trip to a worker and
back costs about what converting a dozen items does."""
IN_FLIGHT = 2
"""Batches sent to the pool at once per worker (one being converted, one waiting)."""
MAX_BREAKS = 3
"""Pools broken in a row (no batch converted in between) before the harvester stops
using worker processes: workers that cannot even start would otherwise cost every
batch two tries."""


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """What a worker needs to build a source's adapter: never the HTTP client."""

    adapter: type[Adapter]
    settings: Any  # the adapter's own Settings dataclass
    source: str
    root: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def build(self, node: Node) -> Adapter:
        return self.adapter(self.settings, Context(node, self.source, None, self.root, self.extra))


# -- In a worker --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Setup:
    node: Node
    reviewer: Reviewer
    limits: Limits


_setup: _Setup | None = None
_adapters: dict[str, Adapter] = {}


def _start(setup: bytes) -> None:
    """A worker's first step: the node and its reviewer, once. Ctrl-C is the main process's
    to act on (it stops the harvest and then the pool), not every worker's."""
    global _setup
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _setup = pickle.loads(setup)  # noqa: S301 (from the parent process)
    # What the first record would otherwise pay for: the compiled XML Schema (about a
    # second) and the review's folding table (an unpickled Reviewer skips its __init__).
    record_schema()
    fold("")


def _ready() -> int:
    """A task that only makes the pool start a worker (each is started on demand)."""
    return os.getpid()


def _convert_in_worker(key: str, source: str, spec: bytes, items: bytes) -> tuple[bytes, float]:
    """One batch in a worker: its results (pickled) and the CPU seconds they took."""
    started = time.process_time()
    if _setup is None:
        raise RuntimeError("the harvest worker was started without its setup")
    adapter = _adapters.get(key)
    if adapter is None:
        adapter = pickle.loads(spec).build(_setup.node)  # noqa: S301 (from the parent process)
        _adapters[key] = adapter
    batch: list[Item] = pickle.loads(items)  # noqa: S301 (from the parent process)
    converted = convert_items(
        adapter,
        batch,
        source,
        node=_setup.node,
        reviewer=_setup.reviewer,
        limits=_setup.limits,
    )
    return dumps(converted), time.process_time() - started


# -- In the main process ------------------------------------------------------------------------


@dataclass
class PoolStats:
    """What the pool did: for ``govhub sources`` output and ``./dev bench harvest``."""

    batches: int = 0  # converted by workers
    items: int = 0
    worker_cpu: float = 0.0  # CPU seconds the workers spent on batches
    in_process: int = 0  # batches converted in the main process instead
    broken: int = 0  # times a worker died and the pool was built again


@dataclass
class PoolSource:
    """A source as the pool knows it: how workers build its adapter."""

    key: str
    spec: bytes | None  # None: this source's batches stay in the main process
    source: str


class ConvertPool:
    """Worker processes converting batches of items for one node's harvester."""

    def __init__(
        self, node: Node, reviewer: Reviewer, limits: Limits, workers: int | None = None
    ) -> None:
        self.node, self.reviewer, self.limits = node, reviewer, limits
        self.workers = max(0, workers if workers is not None else (os.cpu_count() or 1))
        self.stats = PoolStats()
        self._setup = b""
        if self.workers:
            try:
                self._setup = dumps(_Setup(node, reviewer, limits))
            except Exception as exc:  # a reviewer of another kind, holding what cannot go
                log.warning(
                    "node %s: no harvest worker processes: its reviewer cannot be sent to"
                    " them (%s)",
                    node.id,
                    describe_error(exc),
                    extra={"node": node.id, "stage": "harvest"},
                )
                self.workers = 0
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._generation = 0
        self._breaks = 0  # pools broken since a worker last converted a batch
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._sources: dict[str, PoolSource] = {}

    @property
    def in_flight(self) -> int:
        """Batches one source may have sent and not yet committed."""
        return IN_FLIGHT * max(1, self.workers)

    def source(self, spec: AdapterSpec) -> PoolSource:
        """The pool's handle for a source (its adapter's parts pickled once)."""
        known = self._sources.get(spec.source)
        if known is not None:
            return known
        try:
            blob: bytes | None = dumps(spec)
            key = f"{spec.source}:{hashlib.sha256(blob).hexdigest()[:16]}"  # type: ignore[arg-type]
        except Exception as exc:  # an adapter with unpicklable settings stays in-process
            log.warning(
                "source %s: its adapter cannot go to a worker process (%s); converting here",
                spec.source,
                describe_error(exc),
                extra={"node": self.node.id, "source": spec.source, "stage": "harvest"},
            )
            blob, key = None, spec.source
        made = PoolSource(key, blob, spec.source)
        self._sources[spec.source] = made
        return made

    def start(self) -> list[concurrent.futures.Future[int]]:
        """Start every worker now (each loads the schema, about a second of CPU), rather
        than with the first batches; done when the futures are."""
        if not self.workers:
            return []
        executor, _ = self._current()
        return [executor.submit(_ready) for _ in range(self.workers)]

    def takes(self, handle: PoolSource, items: Sequence[Item]) -> bool:
        """Whether ``items`` go to a worker (else ``here``): the pool is on, the source's
        adapter can go, and the batch is worth the trip."""
        return self.workers > 0 and handle.spec is not None and len(items) >= POOL_FROM

    async def convert(
        self, handle: PoolSource, adapter: Adapter, items: list[Item]
    ) -> list[Converted]:
        """The batch converted in a worker; here if no worker could."""
        done = await self._in_worker(handle, items)
        if done is None:
            self.stats.in_process += 1
            done = self.here(adapter, items, handle.source)
        return done

    def here(self, adapter: Adapter, items: Sequence[Item], source: str) -> list[Converted]:
        """The batch converted in this process, by the main process's own adapter."""
        return convert_items(
            adapter, items, source, node=self.node, reviewer=self.reviewer, limits=self.limits
        )

    async def _in_worker(self, handle: PoolSource, items: list[Item]) -> list[Converted] | None:
        """The batch's results from a worker, or ``None`` to convert it here."""
        if handle.spec is None:
            return None
        try:
            blob = dumps(items)
        except Exception as exc:
            self._stay_here(handle, f"its items cannot be pickled ({describe_error(exc)})")
            return None
        async with self._slot():
            for attempt in (1, 2):
                if not self.workers:
                    break
                executor, generation = self._current()
                try:
                    future = executor.submit(
                        _convert_in_worker, handle.key, handle.source, handle.spec, blob
                    )
                    data, cpu = await asyncio.wrap_future(future)
                    converted: list[Converted] = pickle.loads(data)  # noqa: S301 (our worker)
                except BrokenProcessPool:
                    self._broke(generation, handle.source, attempt)
                    continue
                except Exception as exc:  # the adapter would not build in a worker
                    self._stay_here(handle, describe_error(exc))
                    return None
                self._breaks = 0
                self.stats.batches += 1
                self.stats.items += len(items)
                self.stats.worker_cpu += cpu
                return converted
        return None

    def _slot(self) -> asyncio.Semaphore:
        """The pool's batch slots, for the running event loop (a harvester may outlive one)."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(self.in_flight))
        return self._slots[1]

    def _current(self) -> tuple[concurrent.futures.ProcessPoolExecutor, int]:
        if self._executor is None:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context(
                "forkserver" if "forkserver" in methods else "spawn"
            )
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=context,
                initializer=_start,
                initargs=(self._setup,),
            )
            self._generation += 1
        return self._executor, self._generation

    def _broke(self, generation: int, source: str, attempt: int) -> None:
        """A worker died: the pool is built again (once for all the batches it broke)."""
        if generation == self._generation and self._executor is not None:
            self.stats.broken += 1
            self._breaks += 1
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
            if self._breaks >= MAX_BREAKS and self.workers:
                log.error(
                    "node %s: harvest worker processes died %d times in a row; converting in"
                    " the main process from now on (see the log above for why they died)",
                    self.node.id,
                    self._breaks,
                    extra={"node": self.node.id, "stage": "harvest"},
                )
                self.workers = 0
        then = "sent again" if attempt == 1 and self.workers else "converted in the main process"
        log.warning(
            "source %s: a harvest worker process died; its batch is %s",
            source,
            then,
            extra={"node": self.node.id, "source": source, "stage": "harvest"},
        )

    def _stay_here(self, handle: PoolSource, why: str) -> None:
        log.warning(
            "source %s: converting in the main process: %s",
            handle.source,
            why,
            extra={"node": self.node.id, "source": handle.source, "stage": "harvest"},
        )
        handle.spec = None

    def close(self) -> None:
        """Stop the workers (a later batch starts new ones)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
