"""``govhub hub run``: the portal's hub, storing its subtree's records and serving its
portal (pages, feeds, API, search) until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from hub.bus import AmqpBus
from hub.bus.broker.credentials import node_broker_url
from hub.bus.contract import Bus
from hub.bus.topology import node_queues, up_queue
from hub.cli.common import EXIT_OK, UsageError, checked_port, config_flag, listen_flags
from hub.federation import Federation, Node, load_federation
from hub.http.listen import limits_of
from hub.ingest.consume import Checker
from hub.ingest.runner import HubOptions, HubReport, run_hub
from hub.records.safe_xml import Limits
from hub.settings import Settings
from hub.store import connect, migrate, wait_for_database
from hub.store.followers import run_followers
from hub.store.opening import database_url
from hub.web.serve import PortalOptions, serving_portal

LOG_KEYS = ("node", "source", "record", "stage")
DATABASE_WAIT = 30.0  # seconds the hub waits for the database at start-up
RECONNECT_INTERVAL = 2.0  # seconds between attempts to reach the broker again


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "hub",
        help="run the hub that stores a portal's subtree in PostgreSQL",
        description="The hub of a portal: consumes the records its subtree publishes and "
        "stores them (docs/hub.md).",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    run_parser = actions.add_parser(
        "run",
        help="consume the portal's up queue into the store until SIGTERM",
        description="Run competing consumers on the portal's up queue: each delivery is "
        "checked (route, node, publisher, record, origin), good records and dead letters are "
        "stored in one transaction per batch, then acked. Needs GOVHUB_BROKER_URL; connects as "
        "the portal node's broker user with the password from its credential variable. "
        "GOVHUB_DATABASE_URL empty: the embedded database. It also serves the portal of the "
        "node's subtree over HTTP (pages, feeds, JSON API, search: docs/portal-pages.md) and "
        "keeps the cross-links, search index and feed log up to date. SIGTERM or SIGINT: "
        "finish the batches in hand (at most --drain-timeout seconds), then exit.",
    )
    config_flag(run_parser)
    run_parser.add_argument(
        "--node", metavar="ID", help="the portal whose subtree to store (default: the root)"
    )
    run_parser.add_argument(
        "--consumers", type=int, default=2, metavar="N", help="competing consumers (default 2)"
    )
    run_parser.add_argument(
        "--prefetch",
        type=int,
        default=200,
        metavar="N",
        help="unacked deliveries each consumer may hold (default 200)",
    )
    run_parser.add_argument(
        "--batch",
        type=int,
        default=100,
        metavar="N",
        help="deliveries stored per transaction, at most --prefetch (default 100)",
    )
    run_parser.add_argument(
        "--user-prefix", default="", metavar="TEXT", help="as given to `govhub broker setup`"
    )
    run_parser.add_argument(
        "--drain-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="on SIGTERM, how long to finish the batches in hand (default 10)",
    )
    listen_flags(run_parser, port=8080, serves="the portal")
    run_parser.add_argument(
        "--base-url",
        default="",
        metavar="URL",
        help="public address of the portal that pages and feeds link to, e.g. "
        "https://portal.example.gov.cn (default: the address it listens on)",
    )
    run_parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.broker_url:
        raise UsageError(
            "GOVHUB_BROKER_URL is empty: `govhub hub run` consumes from RabbitMQ "
            "(e.g. amqp://mq.example.gov.cn:5672/govhub); the in-process bus is only for "
            "`govhub demo`"
        )
    federation = load_federation(settings.config)
    node = _portal(federation, args.node)
    try:
        options = HubOptions(
            queue=up_queue(node.id),
            consumers=args.consumers,
            prefetch=args.prefetch,
            batch=args.batch,
            drain_timeout=args.drain_timeout,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.base_url and not args.base_url.startswith(("http://", "https://")):
        raise UsageError(f"--base-url {args.base_url!r} must start with http:// or https://")
    web = PortalOptions(
        host=args.host,
        port=checked_port(args.port),
        base_url=args.base_url,
        limits=limits_of(settings),
    )
    broker = node_broker_url(settings.broker_url, node, os.environ, user_prefix=args.user_prefix)
    limits = Limits(max_bytes=settings.max_record_bytes, max_depth=settings.max_depth)
    checker = Checker(federation, node.id, args.user_prefix, limits)
    configure_logging()
    with database_url(settings.database_url, settings.data_dir) as url:
        wait_for_database(url, DATABASE_WAIT)
        with connect(url) as conn:
            migrate(conn)
        report = asyncio.run(_serve(broker, checker, url, options, federation, web))
    print(f"hub {node.id}: {report.summary()}")
    return EXIT_OK


def _portal(federation: Federation, node_id: str | None) -> Node:
    node = federation.node(node_id) if node_id else federation.root
    if not _has_up(federation, node):
        portals = ", ".join(n.id for n in federation.nodes.values() if _has_up(federation, n))
        raise UsageError(
            f"node {node.id!r} has no nodes below it, so no up queue: run the hub of a "
            f"portal ({portals})"
        )
    return node


def _has_up(federation: Federation, node: Node) -> bool:
    return any(q.name == up_queue(node.id) for q in node_queues(federation, node.id))


async def _serve(
    broker: str,
    checker: Checker,
    url: str,
    options: HubOptions,
    federation: Federation,
    web: PortalOptions,
) -> HubReport:
    """Run the hub, its portal and its followers until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)

    async def connect_bus() -> Bus:
        return await AmqpBus.connect(
            broker, drain_timeout=options.drain_timeout, reconnect_interval=RECONNECT_INTERVAL
        )

    try:
        async with serving_portal(federation, checker.scope, url, web):
            followers = asyncio.create_task(run_followers(lambda: connect(url), stop))
            try:
                report = await run_hub(connect_bus, checker, lambda: connect(url), stop, options)
            finally:
                stop.set()
                await asyncio.wait([followers])
            followers.result()  # a follower's error, if one failed
            return report
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


class KeyFormatter(logging.Formatter):
    """Log lines that end with the fixed structured keys a record carries (node=cn stage=hub)."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        pairs = [f"{key}={getattr(record, key)}" for key in LOG_KEYS if hasattr(record, key)]
        return " ".join([text, *pairs])


def configure_logging(level: int = logging.INFO) -> None:
    """INFO and up to stderr, with the structured keys; left alone if already configured."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
