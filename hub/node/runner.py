"""``run_node``: one node at work, until it is told to stop.

One task group runs the node's parts, each on its own connection to the
node's state file::

    relay      outbox ──► up exchange                  (confirmed, with backoff)
    consumer   <id>.down ──► inbox ──► webhook          (checked, acked after the commit)
    server     inbox, status ──► http://HOST:PORT/      (feeds and JSON for the site's CMS)
    harvester  sources ──► pipeline ──► outbox          (when the node has [[node.sources]])

Stopping (SIGTERM, SIGINT, or the caller's ``stop`` event): every part
finishes what it holds and returns, within ``drain_timeout`` or it is
cancelled; the consumer returns what it did not take to the queue, the
server finishes the requests in flight, a harvest in progress commits what it
has read (its cursor with it), then the bus is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from adapters.push import push_sources
from adapters.registry import Registry, registry
from hub.bus.contract import Bus
from hub.bus.topology import down_queue
from hub.federation import Federation, Node
from hub.harvest.harvester import Harvester
from hub.harvest.http import HarvestHttp
from hub.harvest.plan import plan_sources
from hub.harvest.state import DurableValidators
from hub.http.listen import limits_of, listen
from hub.inbox.consumer import DownChecker, Tally, receive_forever
from hub.inbox.webhook import Webhook
from hub.lifecycle import drain
from hub.node.port import View, make_app
from hub.nodedb import open_state, state_path
from hub.outbox.pipeline import Pipeline
from hub.outbox.relay import relay_forever
from hub.records.safe_xml import Limits
from hub.review import Reviewer, ReviewPolicy
from hub.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "run_node", "state_path", "stop_on_signals"]

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8081
PREFETCH = 50
"""Deliveries from ``<id>.down`` unsettled at most (the consumer handles one at a time)."""


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT set ``stop`` (a graceful stop) instead of killing."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for number in signals:
        loop.add_signal_handler(number, stop.set)
    try:
        yield
    finally:
        for number in signals:
            loop.remove_signal_handler(number)


async def run_node(
    node: Node,
    federation: Federation,
    settings: Settings,
    bus: Bus,
    *,
    port: int = DEFAULT_PORT,
    host: str = DEFAULT_HOST,
    stop: asyncio.Event,
    wake: asyncio.Event | None = None,
    webhook: Webhook | None = None,
    user_prefix: str = "",
    on_ready: Callable[[str], None] | None = None,
    drain_timeout: float = 10.0,
    tally: Tally | None = None,
    adapters: Registry | None = None,
) -> Tally:
    """Run the node until ``stop`` is set; close ``bus`` at the end; return the consumer's tally.

    ``wake`` is set by whoever adds to the outbox (the relay then sends at
    once); ``on_ready`` gets the server's base URL once it listens (port 0:
    any free port). The root node has no ``<id>.down`` queue: it runs no consumer.
    A node with sources harvests them (``adapters``: the installed adapters by
    default); every problem of their configuration stops it at start-up, before
    anything runs (``ConfigInvalid``).
    """
    tally = tally or Tally()
    wake = wake or asyncio.Event()
    path = state_path(settings.data_dir, node.id)
    planned = plan_sources(node, adapters or registry(), federation.where) if node.sources else []
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(bus.close)  # the last step out
        connections = stack.enter_context(_connections(path, 4 if planned else 3))
        relay_state, inbox_state, http_state = connections[:3]
        harvester = None
        if planned:
            harvester = await _harvester(node, settings, connections[3], wake, stack)
            harvester.open(planned)
        consumer = None
        if node.parent is not None:
            queue = down_queue(node.id)
            consumer = await stack.enter_async_context(bus.consume(queue, prefetch=PREFETCH))
        root = str(settings.config.resolve().parent)
        push = push_sources(node, settings.data_dir, os.environ, where=federation.where, root=root)
        app = make_app(View(node, http_state, tally, webhook, push=push))
        server = await listen(app, host, port, limits=limits_of(settings))
        log.info("node %s serving on %s", node.id, server.url, extra={"node": node.id})
        if on_ready is not None:
            on_ready(server.url)
        async with asyncio.TaskGroup() as group:
            tasks: list[asyncio.Task[object]] = [
                group.create_task(relay_forever(relay_state, bus, stop, wake), name="relay"),
                group.create_task(server.serve_until(stop), name="server"),
            ]
            if consumer is not None:
                checker = DownChecker(federation, node.id, user_prefix)
                offer = webhook.offer if webhook else None
                receiving = receive_forever(
                    consumer, checker, inbox_state, stop, on_kept=offer, tally=tally
                )
                tasks.append(group.create_task(receiving, name="consumer"))
            if webhook is not None:
                tasks.append(group.create_task(webhook.run(stop), name="webhook"))
            if harvester is not None:
                harvesting = harvester.run(planned, stop)
                tasks.append(group.create_task(harvesting, name="harvester"))
            await stop.wait()
            await drain(tasks, drain_timeout, f"node {node.id}", {"node": node.id})
    log.info("node %s stopped", node.id, extra={"node": node.id})
    return tally


async def _harvester(
    node: Node,
    settings: Settings,
    state: sqlite3.Connection,
    wake: asyncio.Event,
    stack: contextlib.AsyncExitStack,
) -> Harvester:
    """The harvester of a node with sources: one shared HTTP client whose conditional-GET
    validators live in the state file, and the node's pipeline on its own connection."""
    validators = DurableValidators.load(state)
    http = await stack.enter_async_context(HarvestHttp(validators))
    limits = Limits(max_bytes=settings.max_record_bytes, max_depth=settings.max_depth)
    pipeline = Pipeline(node, state, Reviewer(ReviewPolicy()), limits)
    root = settings.config.resolve().parent  # relative paths in sources: from nodes.toml's folder
    return Harvester(
        node,
        state,
        pipeline,
        http=http,
        validators=validators,
        root=root,
        wake=wake,
        data_dir=settings.data_dir,
        workers=settings.harvest_workers,
    )


@contextlib.contextmanager
def _connections(path: Path, count: int) -> Iterator[list[sqlite3.Connection]]:
    """``count`` connections to the state file: SQLite in WAL mode takes one writer at a time
    and readers alongside, so each part of the node has its own."""
    connections: list[sqlite3.Connection] = []
    try:
        connections.extend(open_state(path) for _ in range(count))
        yield connections
    finally:
        for conn in connections:
            conn.close()
