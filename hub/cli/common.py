"""What every command shares: exit codes, the usage error, common flags."""

from __future__ import annotations

import argparse
from pathlib import Path

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command was called in a way it cannot work; exit 2 with the message."""


def config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="federation map to use (default: $GOVHUB_CONFIG or ./nodes.toml)",
    )
