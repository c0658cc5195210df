"""``govhub nodes``: check the federation map and print its tree."""

from __future__ import annotations

import argparse

from hub.cli.common import EXIT_OK, config_flag
from hub.federation import load_federation
from hub.settings import Settings


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "nodes",
        help="check the federation map and print its tree",
        description="Load nodes.toml, report every problem with its line (exit 1), or print "
        "the federation as a tree with each node's level, site code, domain and path.",
    )
    config_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    federation = load_federation(settings.config)
    print(federation.render_tree())
    levels: dict[str, int] = {}
    for node in federation.nodes.values():
        levels[node.level] = levels.get(node.level, 0) + 1
    counts = ", ".join(f"{count} {level}" for level, count in levels.items())
    print(f"\n{len(federation.nodes)} nodes ({counts}) in {settings.config}")
    return EXIT_OK
