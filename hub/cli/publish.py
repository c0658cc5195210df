"""``govhub publish`` (records into a node's outbox) and ``govhub push`` (notices down)."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from hub import records
from hub.bus import AmqpBus, Message
from hub.bus.broker.credentials import node_broker_url
from hub.cli.common import EXIT_INVALID, EXIT_OK, UsageError, config_flag
from hub.cli.validate import record_files
from hub.federation import Federation, Node, load_federation
from hub.nodedb import open_state, state_path
from hub.outbox.pipeline import Outcome, Pipeline
from hub.outbox.relay import push_message
from hub.records.safe_xml import Limits
from hub.review import Reviewer, ReviewPolicy
from hub.settings import Settings


def add_parser(commands: argparse._SubParsersAction) -> None:
    publish = commands.add_parser(
        "publish",
        help="feed record files through a node's pipeline into its outbox",
        description="Validate each record (and every *.xml below folders), check it belongs to "
        "the node, run the confidentiality review and put it in the node's durable outbox; a "
        "record the review holds waits for `govhub review`. The running node "
        "(`govhub node run`) relays the outbox to the broker. Prints one line per record; exit "
        "1 when any was refused.",
    )
    publish.add_argument(
        "paths", nargs="+", type=Path, metavar="FILE", help="record file or folder"
    )
    _node_flags(publish)
    publish.add_argument(
        "--terms",
        type=Path,
        metavar="FILE",
        help="sensitive-term list for the review (one term per line, # comments)",
    )
    publish.set_defaults(handler=run_publish)

    push = commands.add_parser(
        "push",
        help="push a notice down a portal's subtree (portals only)",
        description="Send one record (usually an emergency notice) from a portal node to every "
        "node below it, over the broker, as the node's broker user; waits for the broker's "
        "confirm. Needs GOVHUB_BROKER_URL and the node's password variable.",
    )
    push.add_argument("file", type=Path, metavar="FILE", help="the record to push")
    _node_flags(push)
    push.add_argument(
        "--user-prefix", default="", metavar="TEXT", help="as given to `govhub broker setup`"
    )
    push.set_defaults(handler=run_push)


def _node_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", required=True, metavar="ID", help="the node (id in nodes.toml)")
    config_flag(parser)


def node_of(settings: Settings, node_id: str) -> tuple[Federation, Node]:
    federation = load_federation(settings.config)
    return federation, federation.node(node_id)


def run_publish(args: argparse.Namespace, settings: Settings) -> int:
    _, node = node_of(settings, args.node)
    policy = ReviewPolicy.from_terms_file(args.terms) if args.terms else ReviewPolicy()
    state = open_state(state_path(settings.data_dir, node.id))
    limits = Limits(max_bytes=settings.max_record_bytes, max_depth=settings.max_depth)
    pipeline = Pipeline(node, state, Reviewer(policy), limits)
    counts: dict[Outcome, int] = {}
    try:
        for path in record_files(args.paths):
            result = pipeline.accept(path.read_bytes(), str(path))
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
            print(f"{path}: {result}")
    finally:
        state.close()
    summary = ", ".join(f"{n} {outcome.value}" for outcome, n in counts.items())
    print(f"node {node.id}: {summary or 'nothing to publish'}")
    failed = counts.get(Outcome.REFUSED) or counts.get(Outcome.CONFLICT)
    return EXIT_INVALID if failed else EXIT_OK


def run_push(args: argparse.Namespace, settings: Settings) -> int:
    federation, node = node_of(settings, args.node)
    if not federation.children(node.id):
        raise UsageError(f"node {node.id!r} has no nodes below it: only a portal can push")
    if not settings.broker_url:
        raise UsageError("push needs GOVHUB_BROKER_URL (the broker the federation uses)")
    limits = Limits(max_bytes=settings.max_record_bytes, max_depth=settings.max_depth)
    record = records.parse(args.file.read_bytes(), str(args.file), limits=limits)
    if record.origin.node != node.id:
        raise UsageError(
            f"{args.file}: the record is node {record.origin.node!r}'s, not {node.id!r}'s"
        )
    url = node_broker_url(settings.broker_url, node, os.environ, user_prefix=args.user_prefix)
    message = push_message(record, node.path)
    asyncio.run(_send(url, message))
    print(f"pushed {record.id} to the subtree of {node.path} ({message.routing_key})")
    return EXIT_OK


async def _send(url: str, message: Message) -> None:
    bus = await AmqpBus.connect(url)
    try:
        await bus.publish(message)
    finally:
        await bus.close()
