"""``govhub demo``: the README's run command, on embedded defaults."""

from __future__ import annotations

import argparse
from pathlib import Path

from hub.cli.common import EXIT_INVALID, EXIT_OK, config_flag
from hub.cli.validate import check_file, record_files
from hub.federation import load_federation
from hub.records.safe_xml import Limits
from hub.settings import Settings


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo",
        help="show the federation map and validate the bundled example records",
        description="The README's run command: checks and prints the sample federation from "
        "nodes.toml, then validates every example record against the record standard and the "
        "map, printing one line per record. Needs no servers.",
    )
    config_flag(parser)
    parser.add_argument(
        "--records",
        type=Path,
        default=Path("examples/records"),
        metavar="DIR",
        help="folder of record files to validate (default: examples/records)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    federation = load_federation(settings.config)
    _heading(f"Federation map {settings.config}: {len(federation.nodes)} nodes")
    print(federation.render_tree())
    files = list(record_files([args.records]))
    limits = Limits(max_bytes=settings.max_record_bytes, max_depth=settings.max_depth)
    _heading(f"Validating {len(files)} example records in {args.records}")
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
    _heading(f"{len(files) - invalid} valid, {invalid} invalid")
    print("Next: `govhub validate PATH...` checks your own records (docs/records.md).")
    return EXIT_INVALID if invalid else EXIT_OK


def _heading(text: str) -> None:
    print(f"\n== {text}")
