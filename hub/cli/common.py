"""What every command shares: exit codes, the usage error, common flags."""

from __future__ import annotations

import argparse
from pathlib import Path

from hub.errors import HubError

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class UsageError(HubError):
    """A command was called in a way it cannot work; exit 2 with the message."""


def config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="federation map to use (default: $GOVHUB_CONFIG or ./nodes.toml)",
    )


def listen_flags(parser: argparse.ArgumentParser, *, port: int, serves: str) -> None:
    """``--port`` and ``--host`` for a command that serves HTTP (``serves``: what it serves)."""
    parser.add_argument(
        "--port",
        type=int,
        default=port,
        metavar="N",
        help=f"HTTP port of {serves} (default {port}; 0: any free port)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        metavar="ADDR",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )


def checked_port(port: int) -> int:
    """``port`` when it is one a server can listen on; ``UsageError`` otherwise."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535, not {port}")
    return port
