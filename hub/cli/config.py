"""``govhub config``: print the effective settings."""

from __future__ import annotations

import argparse

from hub.cli.common import EXIT_OK
from hub.settings import Settings


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "config",
        help="print the effective settings",
        description="Print every GOVHUB_* setting with its effective value (secrets masked) "
        "and what it does.",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    rows = settings.describe()
    width = max(len(name) for name, _, _ in rows)
    for name, value, help_text in rows:
        print(f"{name:<{width}}  {value}\n{'':<{width}}  {help_text}")
    return EXIT_OK
