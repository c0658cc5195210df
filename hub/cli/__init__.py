"""The ``govhub`` command line.

Exit codes: 0 success, 1 invalid input found (records, map), 2 usage error
(bad flags, missing files, unreadable settings). One module per command, each
with ``add_parser`` and ``run``; docs/cli.md documents every command and flag
(a test keeps it so).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import version

from hub.cli import (
    adapter,
    broker,
    config,
    deadletters,
    demo,
    hub,
    node,
    nodes,
    publish,
    records,
    review,
    sources,
    validate,
)
from hub.cli.common import EXIT_INVALID, EXIT_OK, EXIT_USAGE, UsageError
from hub.errors import HubError
from hub.settings import Settings

COMMANDS = (
    validate,
    nodes,
    publish,
    review,
    node,
    sources,
    adapter,
    broker,
    hub,
    records,
    deadletters,
    config,
    demo,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        settings = Settings.from_env(config=getattr(args, "config", None))
        return int(args.handler(args, settings))
    except UsageError as exc:
        print(f"govhub: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HubError as exc:  # invalid input, an unreachable service: said, not a traceback
        print(f"govhub: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="govhub",
        description="Federated information-sharing hub for government websites.",
        epilog="Settings come from GOVHUB_* environment variables (see `govhub config`) "
        "and flags. Docs: docs/cli.md.",
    )
    parser.add_argument("--version", action="version", version=f"govhub {_version()}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def _version() -> str:
    try:
        return version("govhub")
    except Exception:  # not installed (running from a source tree)
        return "unknown"
