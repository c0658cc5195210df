"""``govhub node run``: run one node (relay, downward consumer, local feeds) until stopped."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from urllib.parse import urlsplit

from hub.bus import AmqpBus
from hub.bus.broker.credentials import node_broker_url
from hub.cli.common import EXIT_OK, UsageError, checked_port, config_flag, listen_flags
from hub.federation import Federation, Node, load_federation
from hub.inbox.webhook import Webhook
from hub.node.runner import (
    DEFAULT_PORT,
    run_node,
    state_path,
    stop_on_signals,
)
from hub.settings import Settings


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "node",
        help="run a node",
        description="Run one node of the federation.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    run_parser = actions.add_parser(
        "run",
        help="run one node until SIGTERM or Ctrl-C",
        description="Run one node: relay its outbox up to the broker, receive what its "
        "ancestors push and what it subscribed to into its inbox, and serve the inbox as "
        "Atom, RSS and JSON (and its status) on a local HTTP port. Needs GOVHUB_BROKER_URL and "
        "the node's password variable; the URL's user is replaced by the node's broker user. "
        "Stops gracefully on SIGTERM or Ctrl-C.",
    )
    run_parser.add_argument("--node", required=True, metavar="ID", help="the node to run")
    listen_flags(run_parser, port=DEFAULT_PORT, serves="the local feeds")
    run_parser.add_argument(
        "--webhook", metavar="URL", help="also POST each newly received record's XML to this URL"
    )
    run_parser.add_argument(
        "--user-prefix",
        default="",
        metavar="TEXT",
        help="the prefix given to `govhub broker setup`, if any",
    )
    config_flag(run_parser)
    run_parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    checked_port(args.port)
    if args.webhook and urlsplit(args.webhook).scheme not in ("http", "https"):
        raise UsageError(f"--webhook must be an http:// or https:// URL, not {args.webhook!r}")
    federation = load_federation(settings.config)
    node = federation.node(args.node)
    if not settings.broker_url:
        raise UsageError(
            "a standalone node needs a broker: set GOVHUB_BROKER_URL "
            "(amqp://HOST:5672/VHOST; its user is replaced by the node's broker user). "
            "The in-process bus exists only inside `govhub demo`"
        )
    url = node_broker_url(settings.broker_url, node, os.environ, user_prefix=args.user_prefix)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(_serve(node, federation, settings, url, args))
    return EXIT_OK


async def _serve(
    node: Node, federation: Federation, settings: Settings, url: str, args: argparse.Namespace
) -> None:
    bus = await AmqpBus.connect(url)
    webhook = Webhook(args.webhook, node.id) if args.webhook else None
    stop = asyncio.Event()

    def ready(base: str) -> None:
        print(f"node {node.id} ({node.name}, {node.path}) is running")
        print(f"  state   {state_path(settings.data_dir, node.id)}")
        print(f"  feeds   {base}/inbox.atom  {base}/inbox.rss")
        print(f"  json    {base}/inbox.json  {base}/status")
        if webhook:
            print(f"  webhook {webhook.url}")
        print("stop with Ctrl-C or SIGTERM", flush=True)

    with stop_on_signals(stop):
        await run_node(
            node,
            federation,
            settings,
            bus,
            port=args.port,
            host=args.host,
            stop=stop,
            webhook=webhook,
            user_prefix=args.user_prefix,
            on_ready=ready,
        )
    print(f"node {node.id} stopped", flush=True)
