"""``govhub demo``: the whole federation of nodes.toml in one process.

It runs what a real deployment runs, in order, and says what happened at each step::

    store (embedded PostgreSQL, or GOVHUB_DATABASE_URL)
    bus   (in-process, or RabbitMQ at GOVHUB_BROKER_URL after `govhub broker setup`)
    1. every example record into its own node's pipeline (validate, review, outbox)
    2. every node relays its outbox up
    3. the central hub consumes its subtree into the store
    4. the central portal pushes an emergency notice down
    5. every node takes what came down into its inbox
    6. the portal is served (pages, feeds, API, search; docs/portal-pages.md), with
       the followers that keep its cross-links, search index and feed log current,
       and every node's inbox feeds

The demo keeps its state where a real node and hub keep theirs: the node
states in ``GOVHUB_DATA_DIR/nodes`` and the store in the embedded PostgreSQL in
``GOVHUB_DATA_DIR/postgres`` (or GOVHUB_DATABASE_URL), so ``govhub records``
and the other commands find what it wrote. Running it again finds everything
unchanged, as a redelivery would.

The sample federation and example records ship inside the package
(``hub/samples/``, from ``nodes.toml`` and ``examples/`` of a checkout):
``samples()`` finds them in an installed package or in a checkout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from hub import records
from hub.bus import AmqpBus, MemoryBus
from hub.bus.broker.credentials import node_broker_url
from hub.bus.contract import Bus, Consumer
from hub.bus.topology import down_queue, node_queues, up_queue
from hub.federation import Federation, Node
from hub.http.listen import limits_of
from hub.inbox import entries as inbox
from hub.inbox.consumer import DownChecker, receive_forever
from hub.ingest.consume import Checker, consume_forever
from hub.node.port import View, make_app
from hub.nodedb import open_state, state_path
from hub.outbox import entries as outbox
from hub.outbox.pipeline import Outcome, Pipeline
from hub.outbox.relay import push_message, relay_once
from hub.records.safe_xml import Limits
from hub.review import Reviewer, ReviewPolicy
from hub.settings import Settings
from hub.store import connect, count_records, list_records, migrate
from hub.store.followers import run_followers
from hub.store.opening import database_url
from hub.web.pages.routes import HOME
from hub.web.serve import PortalOptions, serving_portal

T = TypeVar("T")
IDLE = 0.6  # seconds without a delivery after which a consumer round is over


_ADDRESSES = (
    ("every node", "/  (each node's portal page: /nodes/{id}/)"),
    ("a record", "/records/urn:govhub:cn:000014349-2018-00226"),
    ("search", "/search?q=三项制度"),
    ("Traditional", "/nodes/gd/?lang=zh-Hant"),
    ("a province's feed", "/nodes/gd/feed.atom  (also .rss; own.atom: its own records)"),
    ("the JSON API", "/openapi.json"),
    ("stored records", "/records.json?scope=cn.gd"),
    ("a county's inbox", "/nodes/shexian/inbox.atom  (also .rss, .json)"),
    ("a node's status", "/nodes/gz/status"),
)


@dataclass(frozen=True, slots=True)
class Samples:
    """The sample federation map, its example records and the notice pushed down."""

    config: Path
    records: Path
    notice: Path


def samples() -> Samples:
    """The samples of an installed package (``hub/samples``), else of this checkout."""
    installed = Path(__file__).parent / "samples"
    if (installed / "nodes.toml").is_file():
        return Samples(
            installed / "nodes.toml", installed / "records", installed / "push" / "emergency-cn.xml"
        )
    checkout = Path(__file__).parent.parent
    examples = checkout / "examples"
    return Samples(
        checkout / "nodes.toml", examples / "records", examples / "push" / "emergency-cn.xml"
    )


@dataclass
class Demo:
    """The running federation: one state file per node, one store, one bus."""

    federation: Federation
    settings: Settings
    store_url: str
    say: Callable[[str], None] = print
    states: dict[str, sqlite3.Connection] = field(default_factory=dict)
    buses: dict[str, Bus] = field(default_factory=dict)

    # -- the flow -------------------------------------------------------------------------

    async def run(self, examples: Path, notice: Path) -> None:
        limits = Limits(self.settings.max_record_bytes, self.settings.max_depth)
        await self.prepare_bus()
        self.publish(examples, limits)
        await self.relay()
        await self.hub_round()
        await self.push(notice, limits)
        await self.downward_round(records.parse(notice.read_bytes(), str(notice)).id)

    async def prepare_bus(self) -> None:
        """The in-process broker starts empty: declare what `govhub broker setup` would."""
        if not self.settings.broker_url:
            for node in self.federation.nodes.values():
                for spec in node_queues(self.federation, node.id):
                    await self.bus(self.root.id).declare_queue(spec.name, spec.bindings)

    def publish(self, examples: Path, limits: Limits) -> None:
        self.say(f"\n== 1. Publishing the example records in {examples} at their own nodes")
        counts: dict[str, int] = {}
        for path in sorted(examples.glob("*.xml")):
            data = path.read_bytes()
            origin = records.parse(data, str(path), limits=limits).origin.node
            node = self.federation.node(origin)
            result = Pipeline(node, self.state(node.id), Reviewer(ReviewPolicy()), limits).accept(
                data, str(path)
            )
            counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
            self.say(f"  {node.path:<18} {path.name:<28} {result.outcome.value}")
            if result.outcome in (Outcome.REFUSED, Outcome.CONFLICT):
                self.say(str(result))
        self.say("  " + ", ".join(f"{n} {what}" for what, n in counts.items()))

    async def relay(self) -> None:
        self.say("\n== 2. Every node relays its outbox up to the broker")
        total = 0
        for node in self.federation.nodes.values():
            if outbox.counts(self.state(node.id)).pending:
                sent = await relay_once(self.state(node.id), self.bus(node.id))
                total += sent
                self.say(f"  {node.path:<18} sent {sent}")
        self.say(f"  {total} records confirmed by the broker")

    async def hub_round(self) -> None:
        root = self.root
        self.say(f"\n== 3. The hub of {root.name} consumes {up_queue(root.id)} into the store")
        stop = asyncio.Event()
        checker = Checker(self.federation, root.id)
        async with self.bus(root.id).consume(up_queue(root.id), prefetch=200) as consumer:
            work = consume_forever(consumer, checker, lambda: connect(self.store_url), stop)
            tally = await _until_idle(work, stop, consumer)
        outcomes = ", ".join(f"{n} {what}" for what, n in tally.outcomes.items()) or "nothing new"
        self.say(f"  {outcomes}; {tally.dead} dead-lettered")
        with connect(self.store_url) as conn:
            for node in [root, *self.federation.children(root.id)]:
                self.say(f"  {node.path:<18} {count_records(conn, node.path):>3} records in scope")

    async def push(self, notice: Path, limits: Limits) -> None:
        record = records.parse(notice.read_bytes(), str(notice), limits=limits)
        sender = self.federation.node(record.origin.node)
        self.say(f"\n== 4. {sender.name} pushes 「{record.title}」 down to every node")
        message = push_message(record, sender.path)
        await self.bus(sender.id).publish(message)
        self.say(f"  confirmed by the broker: {message.routing_key}")

    async def downward_round(self, notice_id: str) -> None:
        self.say("\n== 5. Every node takes what came down into its inbox")
        reached = []
        for node in self.federation.nodes.values():
            if node.parent is None:
                continue
            stop = asyncio.Event()
            checker = DownChecker(self.federation, node.id)
            async with self.bus(node.id).consume(down_queue(node.id), prefetch=50) as consumer:
                work = receive_forever(consumer, checker, self.state(node.id), stop)
                await _until_idle(work, stop, consumer)
            items = inbox.latest(self.state(node.id), 100)
            if any(item.record_id == notice_id for item in items):
                reached.append(node)
            self.say(f"  {node.path:<18} inbox: {len(items)} records")
        below = len(self.federation.nodes) - 1
        self.say(f"  the notice reached {len(reached)} of {below} nodes below the centre")

    # -- serving ----------------------------------------------------------------------------

    async def serve(self, host: str, port: int, stop: asyncio.Event) -> None:
        """The real portal over the demo's store until ``stop``, as ``govhub hub run`` serves
        it, plus every node's inbox and status (a node serves those itself in production)."""
        followers = asyncio.create_task(run_followers(lambda: connect(self.store_url), stop))
        try:
            options = PortalOptions(host=host, port=port, limits=limits_of(self.settings))
            async with serving_portal(
                self.federation, self.root.id, self.store_url, options, self._extend
            ) as server:
                self.say(f"\n== 6. Serving on {server.url}/")
                for what, path in _ADDRESSES:
                    self.say(f"  {what:<19} {server.url}{path}")
                await stop.wait()
        finally:
            stop.set()
            await asyncio.wait([followers])
        followers.result()  # a follower's error, if one failed

    def _extend(self, app: web.Application) -> None:
        """The demo's additions to the portal: ``/`` shows the node directory; every node's
        inbox and status (operators' addresses, printed on the console, never linked from
        citizens' pages) lead to the node apps under ``/demo/nodes/{id}/``."""
        app[DEMO] = self
        app[HOME] = "/nodes"
        app.router.add_get("/records.json", _records_json)
        app.router.add_get(r"/nodes/{id}/{name:inbox\.(?:atom|rss|json)|status}", _to_node_app)
        for node in self.federation.nodes.values():
            app.add_subapp(f"/demo/nodes/{node.id}/", make_app(View(node, self.state(node.id))))

    # -- resources ----------------------------------------------------------------------------

    @property
    def root(self) -> Node:
        return self.federation.root

    def state(self, node_id: str) -> sqlite3.Connection:
        if node_id not in self.states:
            self.states[node_id] = open_state(state_path(self.settings.data_dir, node_id))
        return self.states[node_id]

    def bus(self, node_id: str) -> Bus:
        return self.buses[node_id]

    async def connect_buses(self) -> None:
        if not self.settings.broker_url:
            shared = MemoryBus()
            for node_id in self.federation.nodes:
                self.buses[node_id] = shared.as_user(node_id)
            return
        for node in self.federation.nodes.values():
            url = node_broker_url(self.settings.broker_url, node, os.environ)
            self.buses[node.id] = await AmqpBus.connect(url)

    async def close(self) -> None:
        for bus in self.buses.values():
            await bus.close()
        for state in self.states.values():
            state.close()


DEMO = web.AppKey("demo", Demo)


async def _until_idle(work: Coroutine[Any, Any, T], stop: asyncio.Event, consumer: Consumer) -> T:
    """Run a consumer coroutine until it has had nothing to do for ``IDLE`` seconds."""
    task = asyncio.ensure_future(work)
    quiet = 0.0
    while not task.done() and quiet < IDLE:
        await asyncio.sleep(0.1)
        quiet = 0.0 if consumer.unsettled else quiet + 0.1
    stop.set()
    return await task


async def _to_node_app(request: web.Request) -> web.StreamResponse:
    """A node's inbox or status, at the address a reader of the demo expects."""
    demo = request.app[DEMO]
    node_id = request.match_info["id"]
    if node_id not in demo.federation.nodes:
        raise web.HTTPNotFound(text=f"no node {node_id!r} in the map")
    target = request.rel_url.with_path(f"/demo/nodes/{node_id}/{request.match_info['name']}")
    raise web.HTTPTemporaryRedirect(str(target))


async def _records_json(request: web.Request) -> web.Response:
    demo = request.app[DEMO]
    scope = request.query.get("scope") or None
    with connect(demo.store_url) as conn:
        rows = list_records(conn, scope_path=scope, limit=200)
    body = [
        {
            "id": r.id,
            "path": r.path,
            "kind": r.kind,
            "revision": r.revision,
            "published": r.published.isoformat(),
            "title": r.title,
            "withdrawn": r.withdrawn,
        }
        for r in rows
    ]
    return web.Response(
        text=json.dumps(body, ensure_ascii=False, indent=1), content_type="application/json"
    )


@contextlib.asynccontextmanager
async def running_demo(
    federation: Federation, settings: Settings, say: Callable[[str], None]
) -> AsyncIterator[Demo]:
    """A demo with its store and buses open; closed again on the way out."""
    with _store(settings.database_url, settings.data_dir, say) as url:
        demo = Demo(federation, settings, url, say)
        await demo.connect_buses()
        try:
            yield demo
        finally:
            await demo.close()


@contextlib.contextmanager
def _store(url: str, data_dir: Path, say: Callable[[str], None]) -> Iterator[str]:
    with database_url(url, data_dir, say) as resolved:
        with connect(resolved) as conn:
            migrate(conn)
        yield resolved


def bus_description(settings: Settings) -> str:
    if settings.broker_url:
        return "RabbitMQ at GOVHUB_BROKER_URL (run `govhub broker setup` first)"
    return "the in-process bus (same routing as RabbitMQ; set GOVHUB_BROKER_URL for the real one)"


__all__ = ["Demo", "Samples", "bus_description", "running_demo", "samples"]
