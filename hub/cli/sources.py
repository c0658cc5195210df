"""``govhub sources``: what each node's sources are doing; un-park one; harvest now."""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from adapters.registry import registry
from hub.cli.common import EXIT_INVALID, EXIT_OK, UsageError, config_flag
from hub.federation import Federation, Node, Source, load_federation
from hub.harvest.harvester import Harvester
from hub.harvest.http import HarvestHttp
from hub.harvest.plan import Planned, plan_sources
from hub.harvest.schedule import split_plan
from hub.harvest.state import (
    DurableValidators,
    SourceState,
    all_states,
    recent_problems,
    reset,
    validators_of,
)
from hub.harvest.tally import Tally
from hub.nodedb import open_state, state_path, transaction
from hub.outbox.pipeline import Pipeline
from hub.records.safe_xml import Limits
from hub.review import Reviewer, ReviewPolicy
from hub.settings import Settings


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "sources",
        help="the sources nodes harvest: their state; reset one; harvest now",
        description="Without an action: every source of every node (or of --node) with its "
        "state (ok, failing, parked), next check, errors, last error, counts, cursor and HTTP "
        "validators. `reset` un-parks a source; `run` harvests now, once.",
    )
    parser.add_argument("--node", dest="list_node", metavar="ID", help="only this node's sources")
    parser.add_argument(
        "--json", dest="list_json", action="store_true", help="one JSON object per source"
    )
    config_flag(parser)
    parser.set_defaults(handler=run_list)
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    again = actions.add_parser(
        "reset",
        help="un-park a source: no errors, checked at once",
        description="Clear a source's consecutive errors and last error and make it due now; "
        "a parked source is harvested again (by the running node within 10 s). Cursor and "
        "counts stay.",
    )
    again.add_argument("--node", required=True, metavar="ID", help="the source's node")
    again.add_argument("source", metavar="SOURCE", help="the source's name in nodes.toml")
    _config(again)
    again.set_defaults(handler=run_reset)
    now = actions.add_parser(
        "run",
        help="harvest a node's sources now, once, and print what came of it",
        description="Harvest SOURCE (or every enabled source of the node) once, now, from "
        "its cursor, into the node's outbox: the same as the running node does on schedule, "
        "with a progress line on a terminal. Exit 1 when a harvest failed or an item had a "
        "problem.",
    )
    now.add_argument("--node", required=True, metavar="ID", help="the node")
    now.add_argument("source", nargs="?", metavar="SOURCE", help="only this source")
    now.add_argument("--json", action="store_true", help="one JSON object per source")
    _config(now)
    now.set_defaults(handler=run_now)


def _config(parser: argparse.ArgumentParser) -> None:
    """``--config`` on an action, not hiding one given before the action."""
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="federation map to use (default: $GOVHUB_CONFIG or ./nodes.toml)",
    )


# -- govhub sources ---------------------------------------------------------------------------


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    federation = load_federation(settings.config)
    nodes = [federation.node(args.list_node)] if args.list_node else federation.nodes.values()
    shown = 0
    for node in nodes:
        for entry in _describe_node(node, federation, settings):
            shown += 1
            print(json.dumps(entry, ensure_ascii=False) if args.list_json else _text(entry))
    if not shown and not args.list_json:
        where = f"node {args.list_node}" if args.list_node else "the federation"
        print(f"{where} has no sources ([[node.sources]] in {federation.where})")
    return EXIT_OK


def _describe_node(node: Node, federation: Federation, settings: Settings) -> Iterator[dict]:
    if not node.sources:
        return
    path = state_path(settings.data_dir, node.id)
    state = open_state(path) if path.exists() else None  # listing creates no state files
    try:
        states = all_states(state) if state else {}
        for source in node.sources:
            plan, bare, _ = split_plan(source, node, federation.where)
            current = states.get(source.name)
            url = bare.settings.get("url")
            found = validators_of(state, url) if state and isinstance(url, str) else None
            problem = recent_problems(state, source.name, 1) if state else []
            entry: dict[str, Any] = {
                "node": node.id,
                "source": source.name,
                "adapter": source.adapter,
                "state": current.condition if current else "new",
                "enabled": plan.enabled,
                "interval": plan.interval,
                "max_errors": plan.max_errors,
                **_state_fields(current or SourceState(source.name)),
                "url": url if isinstance(url, str) else None,
                "etag": found.etag if found else None,
                "last_modified": found.last_modified if found else None,
                "last_problem": (
                    {
                        "at": _iso(problem[0].at),
                        "item": problem[0].item,
                        "stage": problem[0].stage,
                        "message": problem[0].message,
                    }
                    if problem
                    else None
                ),
            }
            if not plan.enabled:
                entry["state"] = "disabled"
            yield entry
    finally:
        if state is not None:
            state.close()


def _state_fields(state: SourceState) -> dict[str, Any]:
    return {
        "next_check_at": _iso(state.next_check_at),
        "errors": state.errors,
        "last_error": state.last_error,
        "last_error_at": _iso(state.last_error_at),
        "last_success_at": _iso(state.last_success_at),
        "items_seen": state.items_seen,
        "records_made": state.records_made,
        "item_problems": state.item_problems,
        "cursor": state.cursor,
    }


def _text(entry: dict[str, Any]) -> str:
    state = entry["state"]
    if state == "parked":
        state += f" (after {entry['errors']} failures; `govhub sources reset` when fixed)"
    elif state == "failing":
        state += f" ({entry['errors']} in a row, parked at {entry['max_errors']})"
    next_check = entry["next_check_at"] or ("-" if entry["state"] == "parked" else "now")
    lines = [
        f"{entry['node']}/{entry['source']}  {entry['adapter']}  {state}",
        f"  next check    {next_check} (every {entry['interval']:g} s)",
        f"  last success  {entry['last_success_at'] or '-'}",
        f"  last error    {entry['last_error'] or '-'}",
        f"  items seen    {entry['items_seen']:,}",
        f"  records made  {entry['records_made']:,}",
        f"  item problems {entry['item_problems']:,}",
        f"  cursor        {entry['cursor'] or '-'}",
    ]
    problem = entry["last_problem"]
    if problem:
        lines.insert(6, f"    last: {problem['item']}: {problem['stage']}: {problem['message']}")
    if entry["url"]:
        lines.append(f"  url           {entry['url']}")
        lines.append(f"  etag          {entry['etag'] or '-'}")
        lines.append(f"  last-modified {entry['last_modified'] or '-'}")
    return "\n".join(lines)


# -- govhub sources reset ---------------------------------------------------------------------


def run_reset(args: argparse.Namespace, settings: Settings) -> int:
    federation = load_federation(settings.config)
    node = federation.node(args.node)
    source = source_of(node, args.source)
    state = open_state(state_path(settings.data_dir, node.id))
    try:
        with transaction(state):
            after = reset(state, source.name)
    finally:
        state.close()
    print(
        f"{node.id}/{source.name}: reset; {after.errors} errors, next check now "
        f"(cursor {after.cursor or '-'} kept)"
    )
    return EXIT_OK


def source_of(node: Node, name: str) -> Source:
    """The source called ``name`` of ``node``; a usage error naming the close ones otherwise."""
    for source in node.sources:
        if source.name == name:
            return source
    names = [s.name for s in node.sources]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    known = ", ".join(names) or "none"
    raise UsageError(f"node {node.id!r} has no source {name!r}{hint} (its sources: {known})")


# -- govhub sources run -----------------------------------------------------------------------


def run_now(args: argparse.Namespace, settings: Settings) -> int:
    federation = load_federation(settings.config)
    node = federation.node(args.node)
    if not node.sources:
        raise UsageError(f"node {node.id!r} has no sources ([[node.sources]] in nodes.toml)")
    planned = plan_sources(node, registry(), federation.where)
    if args.source:
        wanted = source_of(node, args.source).name
        chosen = [p for p in planned if p.name == wanted]
    else:
        chosen = [p for p in planned if p.plan.enabled]
    tallies = asyncio.run(_harvest(node, settings, planned, chosen))
    for each, tally in zip(chosen, tallies, strict=True):
        if args.json:
            print(json.dumps(_tally_fields(node, each, tally), ensure_ascii=False))
        else:
            when = f"; next check {_iso(tally.next_check_at)}" if tally.next_check_at else ""
            print(f"{node.id}/{each.name}: {tally}{when}")
    bad = any(t.error or t.problems for t in tallies)
    return EXIT_INVALID if bad else EXIT_OK


async def _harvest(
    node: Node, settings: Settings, planned: list[Planned], chosen: list[Planned]
) -> list[Tally]:
    state = open_state(state_path(settings.data_dir, node.id))
    progress = TerminalProgress(sys.stderr) if sys.stderr.isatty() else None
    try:
        validators = DurableValidators.load(state)
        async with HarvestHttp(validators) as http:
            limits = Limits(max_bytes=settings.max_record_bytes, max_depth=settings.max_depth)
            pipeline = Pipeline(node, state, Reviewer(ReviewPolicy()), limits)
            harvester = Harvester(
                node,
                state,
                pipeline,
                http=http,
                validators=validators,
                root=settings.config.resolve().parent,
                progress=progress,
                workers=settings.harvest_workers,
            )
            harvester.open(planned)
            try:
                tallies = []
                for each in chosen:
                    tallies.append(await harvester.harvest(each))
                    if progress is not None:
                        progress.clear()
                return tallies
            finally:
                harvester.close()
    finally:
        state.close()


def _tally_fields(node: Node, planned: Planned, tally: Tally) -> dict[str, Any]:
    return {
        "node": node.id,
        "source": planned.name,
        "items": tally.items,
        "records": tally.records,
        "without_record": tally.empty,
        "queued": tally.queued,
        "held": tally.held,
        "unchanged": tally.unchanged,
        "stale": tally.stale,
        "refused": tally.refused,
        "conflict": tally.conflict,
        "unreadable": tally.failures + tally.convert_errors,
        "not_modified": tally.not_modified,
        "error": tally.error,
        "next_check_at": _iso(tally.next_check_at),
    }


class TerminalProgress:
    """A one-line counter on a terminal, redrawn with ``\\r`` at most ten times a second."""

    def __init__(self, stream: TextIO, every: float = 0.1) -> None:
        self.stream, self.every = stream, every
        self._drawn, self._width = 0.0, 0

    def update(self, source: str, tally: Tally) -> None:
        moment = time.monotonic()
        if moment - self._drawn < self.every:
            return
        self._drawn = moment
        line = (
            f"{source}: {tally.items:,} items, {tally.records:,} records "
            f"({tally.queued:,} queued, {tally.unchanged:,} unchanged), "
            f"{tally.problems:,} problems"
        )
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def clear(self) -> None:
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width, self._drawn = 0, 0.0


def _iso(at: datetime | None) -> str | None:
    return at.isoformat(timespec="seconds") if at else None
