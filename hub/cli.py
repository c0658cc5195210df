"""The ``govhub`` command line.

Exit codes: 0 success, 1 invalid input found (records, map), 2 usage error
(bad flags, missing files, unreadable settings). Each command is one small
function; docs/cli.md documents every command and flag (a test keeps it so).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from importlib.metadata import version
from pathlib import Path

from hub import records
from hub.errors import ConfigInvalid, Problem
from hub.federation import Federation, load_federation
from hub.records.rules import federation_problems
from hub.records.safe_xml import Limits
from hub.settings import Settings

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command was called in a way it cannot work; exit 2 with the message."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        settings = Settings.from_env(config=getattr(args, "config", None))
        return int(args.handler(args, settings))
    except (UsageError, ConfigInvalid) as exc:
        print(f"govhub: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_INVALID
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
    for add in (_add_validate, _add_nodes, _add_config, _add_demo):
        add(commands)
    return parser


def _config_flag(parser: argparse.ArgumentParser, help_suffix: str = "") -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"federation map to use (default: $GOVHUB_CONFIG or ./nodes.toml){help_suffix}",
    )


# --- govhub validate ---------------------------------------------------------


def _add_validate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "validate",
        help="check record files against the record standard",
        description="Check disclosure record files (or every *.xml below folders): hardened "
        "parse, XML Schema, body sanitization and the standard's rules. Prints one line per "
        "problem; exit 0 when all are valid, 1 when any is invalid, 2 on usage errors.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="record file or folder")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="also check each record's origin against this federation map (nodes.toml)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print problems only, no summary"
    )
    parser.set_defaults(handler=run_validate)


def run_validate(args: argparse.Namespace, settings: Settings) -> int:
    files = list(record_files(args.paths))
    federation = load_federation(settings.config) if args.config else None
    limits = Limits(max_bytes=settings.max_record_bytes, max_depth=settings.max_depth)
    invalid = 0
    for path in files:
        _, found = check_file(path, limits, federation)
        for problem in found:
            print(problem)
        invalid += bool(found)
    if not args.quiet:
        print(
            f"{len(files)} records checked: {len(files) - invalid} valid, {invalid} invalid",
            file=sys.stderr,
        )
    return EXIT_INVALID if invalid else EXIT_OK


def record_files(paths: Sequence[Path]) -> Iterator[Path]:
    """The files named, and every ``*.xml`` below the folders named, in sorted order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.xml") if p.is_file())
        elif path.is_file():
            yield path
        else:
            raise UsageError(f"{path}: no such file or folder")


def check_file(
    path: Path, limits: Limits, federation: Federation | None
) -> tuple[list[records.Record], list[Problem]]:
    """The records in ``path`` (one ``<record>`` or a ``<records>`` batch) and their
    problems, checked against ``federation`` when given."""
    where = str(path)
    size = path.stat().st_size
    if size > limits.max_bytes:
        message = f"file is {size:,} bytes, over the limit of {limits.max_bytes:,}"
        return [], [Problem(where, None, "record", message, "GOVHUB_MAX_RECORD_BYTES to raise it")]
    try:
        found = records.parse_batch(path.read_bytes(), where, limits=limits)
    except records.RecordInvalid as exc:
        return [], exc.problems
    if federation is None:
        return found, []
    return found, [p for record in found for p in federation_problems(record, federation, where)]


# --- govhub nodes ------------------------------------------------------------


def _add_nodes(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "nodes",
        help="check the federation map and print its tree",
        description="Load nodes.toml, report every problem with its line (exit 1), or print "
        "the federation as a tree with each node's level, site code, domain and path.",
    )
    _config_flag(parser)
    parser.set_defaults(handler=run_nodes)


def run_nodes(args: argparse.Namespace, settings: Settings) -> int:
    federation = load_federation(settings.config)
    print(federation.render_tree())
    levels: dict[str, int] = {}
    for node in federation.nodes.values():
        levels[node.level] = levels.get(node.level, 0) + 1
    counts = ", ".join(f"{count} {level}" for level, count in levels.items())
    print(f"\n{len(federation.nodes)} nodes ({counts}) in {settings.config}")
    return EXIT_OK


# --- govhub config -----------------------------------------------------------


def _add_config(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "config",
        help="print the effective settings",
        description="Print every GOVHUB_* setting with its effective value (secrets masked) "
        "and what it does.",
    )
    parser.set_defaults(handler=run_config)


def run_config(args: argparse.Namespace, settings: Settings) -> int:
    rows = settings.describe()
    width = max(len(name) for name, _, _ in rows)
    for name, value, help_text in rows:
        print(f"{name:<{width}}  {value}\n{'':<{width}}  {help_text}")
    return EXIT_OK


# --- govhub demo -------------------------------------------------------------


def _add_demo(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo",
        help="show the federation map and validate the bundled example records",
        description="The README's run command: checks and prints the sample federation from "
        "nodes.toml, then validates every example record against the record standard and the "
        "map, printing one line per record. Needs no servers.",
    )
    _config_flag(parser)
    parser.add_argument(
        "--records",
        type=Path,
        default=Path("examples/records"),
        metavar="DIR",
        help="folder of record files to validate (default: examples/records)",
    )
    parser.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
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


def _version() -> str:
    try:
        return version("govhub")
    except Exception:  # not installed (running from a source tree)
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
