"""``govhub validate``: check record files against the record standard."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from hub import records
from hub.cli.common import EXIT_INVALID, EXIT_OK, UsageError
from hub.errors import Problem
from hub.federation import Federation, load_federation
from hub.federation.origins import federation_problems
from hub.records.safe_xml import Limits
from hub.settings import Settings


def add_parser(commands: argparse._SubParsersAction) -> None:
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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
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
