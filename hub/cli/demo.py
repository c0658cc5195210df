"""``govhub demo``: the README's run command, on embedded defaults."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
from pathlib import Path

from hub.cli.common import EXIT_INVALID, EXIT_OK, checked_port, config_flag, listen_flags
from hub.cli.validate import check_file, record_files
from hub.demo import Samples, bus_description, running_demo, samples
from hub.federation import Federation, load_federation
from hub.records.safe_xml import Limits
from hub.settings import Settings

EXAMPLES = Path("examples")
LOCAL = Samples(Path("nodes.toml"), EXAMPLES / "records", EXAMPLES / "push" / "emergency-cn.xml")
"""A checkout's samples, relative to the current folder: used when present, else those
shipped in the package, so that the demo runs from any folder."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo",
        help="run the sample federation in one process and serve what it made",
        description="The README's run command; needs no servers. Checks and prints the sample "
        "federation (./nodes.toml, else the one shipped with govhub) "
        "and validates the example records; then runs the "
        "federation in one process (an embedded PostgreSQL unless GOVHUB_DATABASE_URL is set, "
        "the in-process bus unless GOVHUB_BROKER_URL is set): every example record goes "
        "through its node's pipeline, up the bus, into the hub's store; the central portal "
        "pushes an emergency notice down to every node's inbox; then it serves the portal "
        "(pages, feeds, JSON API, search; `/` is the node directory), the stored records and "
        "every node's inbox feeds until Ctrl-C.",
    )
    config_flag(parser)
    parser.add_argument(
        "--records",
        type=Path,
        metavar="DIR",
        help="folder of record files to publish (default: ./examples/records, else the "
        "example records shipped with govhub)",
    )
    parser.add_argument(
        "--notice",
        type=Path,
        metavar="FILE",
        help="the notice the central portal pushes down (default: "
        "./examples/push/emergency-cn.xml, else the one shipped with govhub)",
    )
    listen_flags(parser, port=8080, serves="the portal")
    parser.add_argument(
        "--once", action="store_true", help="run the federation once and exit, serving nothing"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    checked_port(args.port)
    shipped = samples()
    if args.config is None and "GOVHUB_CONFIG" not in os.environ and not LOCAL.config.exists():
        settings = dataclasses.replace(settings, config=shipped.config)
    args.records = args.records or (LOCAL.records if LOCAL.records.is_dir() else shipped.records)
    args.notice = args.notice or (LOCAL.notice if LOCAL.notice.is_file() else shipped.notice)
    federation = load_federation(settings.config)
    _heading(f"Federation map {settings.config}: {len(federation.nodes)} nodes")
    print(federation.render_tree())
    if not _examples_valid(args.records, federation, settings):
        return EXIT_INVALID
    print(f"\nbus: {bus_description(settings)}")
    asyncio.run(_federation(federation, settings, args))
    return EXIT_OK


def _examples_valid(folder: Path, federation: Federation, settings: Settings) -> bool:
    files = list(record_files([folder]))
    limits = Limits(max_bytes=settings.max_record_bytes, max_depth=settings.max_depth)
    _heading(f"Validating {len(files)} example records in {folder}")
    invalid = 0
    width = max(len(node.path) for node in federation.nodes.values())
    for path in files:
        found, problems = check_file(path, limits, federation)
        if problems:
            invalid += 1
            for problem in problems:
                print(f"  ✗ {problem}")
            continue
        for record in found:
            node = federation.node(record.origin.node)
            print(f"  ✓ {record.kind:<14} {node.path:<{width}} {record.title[:40]}")
    print(f"  {len(files) - invalid} valid, {invalid} invalid")
    return invalid == 0


async def _federation(federation: Federation, settings: Settings, args: argparse.Namespace) -> None:
    async with running_demo(federation, settings, print) as demo:
        await demo.run(args.records, args.notice)
        if args.once:
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print("\nStop with Ctrl-C.")
        await demo.serve(args.host, args.port, stop)


def _heading(text: str) -> None:
    print(f"\n== {text}")
