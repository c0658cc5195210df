"""``govhub adapter check``: what an adapter makes of a configured source or a sample file.

Nothing is published and no state is written: the items are fetched from the
start, converted and validated, and the report says how many items, how many
records, every problem with the item it came from, and which record fields the
records fill. ``--xml`` prints the valid records as one ``<records>`` batch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import mimetypes
import sys
import tomllib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from adapters.contract import Context, Failure
from adapters.kit.http import HttpClient
from adapters.registry import registry
from adapters.settings import read_settings
from hub import records
from hub.cli.common import EXIT_INVALID, EXIT_OK, UsageError, config_flag
from hub.cli.sources import TerminalProgress, source_of
from hub.federation import Node, Source, load_federation
from hub.harvest.convert import describe_error
from hub.harvest.plan import plan_sources
from hub.harvest.tally import Tally
from hub.http.listen import listen
from hub.records import NS, Record, RecordInvalid
from hub.records.safe_xml import Limits
from hub.settings import Settings

SKIPPED_FIELDS = {"id", "revision", "origin", "kind", "lines"}
"""Record fields every record has by construction: not worth a coverage line."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "adapter",
        help="try an adapter on a configured source or a sample file, publishing nothing",
        description="Check what an adapter makes of its input before a node harvests it.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="run a source or an adapter on a sample file; report records, problems, coverage",
        description="`govhub adapter check --node ID SOURCE` runs a configured source from the "
        "start; `govhub adapter check ADAPTER FILE` runs an adapter on a sample file (its "
        "`sample` setting gets the file's path, or, for `url`, the address of the file served "
        "on a loopback port). Nothing is published and no state is written. Reports items, "
        "records, every problem with the item it came from (an item that gives no record is "
        "explained: what was missing and where the adapter looked), the warnings about records "
        "it still made, and field coverage. Exit 1 when anything had a problem or an item gave "
        "no record.",
    )
    check.add_argument(
        "name",
        metavar="NAME",
        help="the source (with --node and no FILE) or the adapter (with FILE)",
    )
    check.add_argument("file", nargs="?", type=Path, metavar="FILE", help="a sample file")
    check.add_argument(
        "--node",
        metavar="ID",
        help="the source's node; with FILE, whose records to make (default: the root node)",
    )
    check.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an adapter setting, with FILE (TOML value, else text); repeatable",
    )
    check.add_argument(
        "--xml", action="store_true", help="print the valid records as a <records> batch"
    )
    config_flag(check)
    check.set_defaults(handler=run_check)


@dataclass
class Report:
    """What the check found.

    Every item is counted once: it gave a record (``produced``), held none
    (``empty``, each explained in ``problems`` when the adapter can say why) or
    failed to convert (``failed``), so ``items == produced + empty + failed``.
    ``warnings`` are what the adapter logged about records it still made (a
    索引号 kept in the site's own form, a topic left out).
    """

    items: int = 0
    empty: int = 0
    failed: int = 0
    produced: list[Record] = field(default_factory=list)
    valid: list[Record] = field(default_factory=list)
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (where, stage, message)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (where, message)
    error: str | None = None

    def coverage(self) -> list[tuple[str, int]]:
        """(XML name, how many records fill it) for every optional record field."""
        counts = []
        for spec in dataclasses.fields(Record):
            if spec.name in SKIPPED_FIELDS:
                continue
            filled = sum(_filled(getattr(r, spec.name)) for r in self.produced)
            counts.append((_xml_name(spec.name), filled))
        return counts


def run_check(args: argparse.Namespace, settings: Settings) -> int:
    federation = load_federation(settings.config)
    root = settings.config.resolve().parent
    if args.file is None:
        if args.sets:
            raise UsageError("--set goes with FILE; a configured source takes nodes.toml's keys")
        if not args.node:
            raise UsageError(
                "give --node ID with a SOURCE (or an ADAPTER and a sample FILE): "
                f"govhub adapter check --node ID {args.name}"
            )
        node = federation.node(args.node)
        source = source_of(node, args.name)
        [planned] = plan_sources(
            dataclasses.replace(node, sources=(source,)), registry(), federation.where
        )
        title = f"source {node.id}/{source.name} (adapter {source.adapter})"
        report = asyncio.run(_check(node, planned.name, planned.adapter, planned.settings, root))
    else:
        node = federation.node(args.node) if args.node else federation.root
        if not args.file.is_file():
            raise UsageError(f"{args.file}: no such file")
        adapter = registry().load(args.name, where="govhub adapter check")
        report, title = asyncio.run(_check_sample(node, adapter, args.file, args.sets, root))
    out = sys.stderr if args.xml else sys.stdout
    print(_report(title, node, report), file=out)
    if args.xml:
        print(batch_xml(report.valid).decode(), end="")
    return EXIT_INVALID if report.error or report.problems else EXIT_OK


async def _check_sample(
    node: Node, adapter: type, file: Path, sets: Sequence[str], root: Path
) -> tuple[Report, str]:
    sample = getattr(adapter, "sample", None)
    if not isinstance(sample, str):
        raise UsageError(
            f"adapter {adapter.name!r} names no sample setting (class attribute `sample`); "  # type: ignore[attr-defined]
            "check a configured source instead: govhub adapter check --node ID SOURCE"
        )
    values = dict(_setting(text) for text in sets)
    async with _sample_value(sample, file) as value:
        values[sample] = value
        source = Source("check", adapter.name, values)  # type: ignore[attr-defined]
        where = f"sample {file.name} and --set"
        checked = read_settings(adapter.Settings, source, node, where)  # type: ignore[attr-defined]
        if sample == "url":  # a throwaway loopback address: problems name the file instead
            title = f"adapter {adapter.name} on {file} (served as {sample} on a loopback port)"  # type: ignore[attr-defined]
            report = await _check(node, "check", adapter, checked, root)
            return _renamed(report, value, str(file)), title
        title = f"adapter {adapter.name} on {file} ({sample} = {value})"  # type: ignore[attr-defined]
        return await _check(node, "check", adapter, checked, root), title


def _renamed(report: Report, url: str, file: str) -> Report:
    """``report`` with the loopback ``url`` of a sample written as the sample's file."""

    def named(text: str) -> str:
        return text.replace(url, file)

    report.problems = [(named(w), stage, named(m)) for w, stage, m in report.problems]
    report.warnings = [(named(w), named(m)) for w, m in report.warnings]
    report.error = named(report.error) if report.error else None
    return report


@contextlib.asynccontextmanager
async def _sample_value(sample: str, file: Path) -> AsyncIterator[str]:
    """The value of the sample setting: the file's path, or for ``url`` its loopback address."""
    if sample != "url":
        yield str(file.resolve())
        return
    data = file.read_bytes()
    content_type = _content_type(file)

    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=data, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/" + file.name, handle)
    server = await listen(app, "127.0.0.1", 0)
    try:
        yield f"{server.url}/{file.name}"
    finally:
        await server.runner.cleanup()


def _content_type(file: Path) -> str:
    by_suffix = {".rss": "application/rss+xml", ".atom": "application/atom+xml"}
    guessed = by_suffix.get(file.suffix.lower()) or mimetypes.guess_type(file.name)[0]
    return guessed or "application/octet-stream"


def _setting(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` from ``--set``: the value as TOML when it parses (``5``, ``true``,
    ``["a", "b"]``), else as text."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise UsageError(f"--set {text!r}: write KEY=VALUE, e.g. --set kind=notice")
    try:
        parsed = tomllib.loads(f"value = {value}")["value"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip(), parsed


async def _check(node: Node, name: str, adapter: type, settings: Any, root: Path) -> Report:
    """Fetch from the start, convert, validate; nothing written anywhere."""
    report = Report()
    progress = TerminalProgress(sys.stderr) if sys.stderr.isatty() else None
    tally = Tally()
    warnings = _Warnings()
    logging.getLogger("adapters").addHandler(warnings)
    async with HttpClient() as http:  # validators in memory: every answer in full
        instance = adapter(settings, Context(node, name, http, str(root)))
        try:
            async with contextlib.aclosing(instance.fetch(None)) as found:
                async for entry in found:
                    if isinstance(entry, Failure):
                        report.problems.append((entry.where, "fetch", entry.message))
                        continue
                    report.items += 1
                    warnings.found.clear()
                    _convert(instance, entry, report)
                    report.warnings.extend(
                        (entry.where, message.removeprefix(f"{entry.where}: "))
                        for message in warnings.found
                    )
                    if progress is not None:
                        tally.items, tally.records = report.items, len(report.produced)
                        tally.refused = len(report.problems)
                        progress.update(name, tally)
        except Exception as exc:  # the adapter may raise anything: that is the finding
            report.error = describe_error(exc)
        finally:
            logging.getLogger("adapters").removeHandler(warnings)
            if progress is not None:
                progress.clear()
    return report


class _Warnings(logging.Handler):
    """The warnings adapters log while one item converts (``adapters.*`` loggers)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.found.append(record.getMessage())


def _convert(instance: Any, entry: Any, report: Report) -> None:
    try:
        record = instance.convert(entry)
        if record is None:
            report.empty += 1
            explain = getattr(instance, "explain", None)
            why = explain(entry) if callable(explain) else "the adapter made no record of it"
            report.problems.append((entry.where, "no record", why))
            return
        data = record.to_xml()
    except Exception as exc:  # one item's problem, reported with the item
        report.failed += 1
        report.problems.append((entry.where, "convert", describe_error(exc, entry.where)))
        return
    report.produced.append(record)
    try:
        report.valid.append(records.parse(data, entry.where, limits=Limits()))
    except RecordInvalid as exc:
        for problem in exc.problems:
            message = f"{problem.field}: {problem.message}"
            if problem.expected:
                message += f" (expected {problem.expected})"
            report.problems.append((entry.where, "record", message))


def _report(title: str, node: Node, report: Report) -> str:
    produced = len(report.produced)
    without = report.empty + report.failed
    lines = [
        f"{title}, records of node {node.id}",
        f"items found       {report.items:,}",
        f"records produced  {produced:,}",
        f"without a record  {without:,} ({report.empty:,} held none, "
        f"{report.failed:,} failed to convert)",
        f"valid records     {len(report.valid):,}",
    ]
    if report.error:
        lines.append(f"failed: {report.error}")
    if report.warnings:
        lines.append(f"warnings          {len(report.warnings):,}")
        lines.extend(f"  {where}: {message}" for where, message in report.warnings)
    if report.problems:
        lines.append(f"problems          {len(report.problems):,}")
        lines.extend(f"  {where}: {stage}: {message}" for where, stage, message in report.problems)
    if produced:
        lines.append(f"field coverage (of {produced:,} records):")
        cells = [f"{name} {filled}/{produced}" for name, filled in report.coverage()]
        for start in range(0, len(cells), 6):
            lines.append("  " + ", ".join(cells[start : start + 6]))
    return "\n".join(lines)


def batch_xml(found: Sequence[Record]) -> bytes:
    """Records as one ``<records>`` document, as ``hub.records.parse_batch`` reads it.

    Each record is written by the record encoder as it is (bodies keep their
    exact whitespace), without its XML declaration, inside the batch element.
    """
    parts = [b"<?xml version='1.0' encoding='UTF-8'?>\n", f'<records xmlns="{NS}">\n'.encode()]
    for record in found:
        document = record.to_xml(pretty=True)
        parts.append(document[document.index(b"?>") + 2 :].lstrip())
    parts.append(b"</records>\n")
    return b"".join(parts)


def _filled(value: Any) -> bool:
    return value is not None and value != () and value != ""


def _xml_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
