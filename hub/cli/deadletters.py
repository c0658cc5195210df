"""``govhub deadletters``: list, show, retry and resolve what the hub could not store.

A retry runs the stored message through the same checks as the hub's consumer
(``ingest.Checker``, with today's federation map) and stores its records if it
now passes, in one transaction with marking the dead letter retried and
resolved; otherwise it reports the reasons found now.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hub.bus import Message
from hub.bus.contract import HeaderValue, check_header
from hub.cli.common import EXIT_INVALID, EXIT_OK, UsageError, config_flag
from hub.federation import Federation, load_federation
from hub.ingest.consume import Checker, Verdict
from hub.records.safe_xml import Limits
from hub.settings import Settings
from hub.store import (
    DeadLetter,
    Outcome,
    dead_letter_by_id,
    list_dead_letters,
    mark_dead_letter_retried,
    mark_resolved,
    upsert_records,
)
from hub.store.connection import Connection, translate_errors
from hub.store.opening import open_store

RESOLUTION = "x-govhub-resolution"
"""Where a resolution (reason, time) is kept: in the dead letter's ``headers``, as
``dead_letters`` has no column for it yet."""
PROPERTIES = ("message_id", "user_id")  # kept beside the headers by the hub's consumer
RETRY_ALL_LIMIT = 100_000  # `retry --all` takes at most this many (oldest first) per run


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "deadletters",
        help="list, show, retry and resolve messages the hub could not store",
        description="Messages the hub could not store (invalid record, unknown node, spoofed "
        "origin), kept with the reason. Uses GOVHUB_DATABASE_URL, or the embedded database in "
        "GOVHUB_DATA_DIR. See docs/hub.md.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)

    listing = actions.add_parser(
        "list", help="list dead letters, oldest first", description="Unresolved ones unless --all."
    )
    listing.add_argument("--all", action="store_true", help="resolved ones too")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.add_argument(
        "--limit", type=int, default=100, metavar="N", help="at most N (default 100)"
    )
    listing.set_defaults(handler=run_list)

    show = actions.add_parser(
        "show", help="one dead letter in full", description="Reason, problems, headers, body."
    )
    show.add_argument("id", type=int, metavar="ID")
    show.set_defaults(handler=run_show)

    retry = actions.add_parser(
        "retry",
        help="check a dead letter again and store it if it now passes",
        description="Run the stored message through the hub's checks again, with today's "
        "federation map; if it passes, store its records and mark it resolved, else print the "
        "reasons. Exit 1 if any still fails.",
    )
    retry.add_argument("id", type=int, nargs="?", metavar="ID")
    retry.add_argument("--all", action="store_true", help="every unresolved dead letter")
    config_flag(retry)
    retry.add_argument(
        "--node",
        metavar="ID",
        help="the hub's portal (default: the one named in the dead letter's source, else the root)",
    )
    retry.add_argument(
        "--user-prefix", default="", metavar="TEXT", help="as given to `govhub hub run`"
    )
    retry.set_defaults(handler=run_retry)

    resolve = actions.add_parser(
        "resolve",
        help="mark a dead letter dealt with",
        description="Mark a dead letter resolved, keeping the reason (it stays in the table).",
    )
    resolve.add_argument("id", type=int, metavar="ID")
    resolve.add_argument("--reason", required=True, metavar="TEXT", help="why (kept with it)")
    resolve.set_defaults(handler=run_resolve)


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    if args.limit <= 0:
        raise UsageError(f"--limit must be a positive number, not {args.limit}")
    with open_store(settings.database_url, settings.data_dir) as conn:
        dead = list_dead_letters(conn, args.limit, include_resolved=args.all)
    for item in dead:
        print(json.dumps(as_json(item), ensure_ascii=False) if args.json else _line(item))
    if not args.json:
        which = "dead letters" if args.all else "unresolved dead letters"
        more = f" (limit {args.limit}: there may be more)" if len(dead) == args.limit else ""
        print(f"{len(dead)} {which}{more}")
    return EXIT_OK


def run_show(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings.database_url, settings.data_dir) as conn:
        item = _existing(conn, args.id)
    print(_line(item))
    for problem in item.problems:
        print(f"  problem: {problem}")
    resolution = item.headers.get(RESOLUTION)
    if isinstance(resolution, dict):
        print(f"  resolved at {resolution.get('at')}: {resolution.get('reason')}")
    print(f"  routing key: {item.routing_key}")
    for name, value in item.headers.items():
        if name != RESOLUTION:
            print(f"  header {name}: {value}")
    print(f"  body ({len(item.body):,} bytes):")
    print(item.body.decode("utf-8", "replace"))
    return EXIT_OK


def run_retry(args: argparse.Namespace, settings: Settings) -> int:
    if (args.id is None) == (not args.all):
        raise UsageError("give a dead letter ID, or --all (not both)")
    federation = load_federation(settings.config)
    limits = Limits(max_bytes=settings.max_record_bytes, max_depth=settings.max_depth)
    failing = 0
    with open_store(settings.database_url, settings.data_dir) as conn:
        todo = list_dead_letters(conn, RETRY_ALL_LIMIT) if args.all else [_existing(conn, args.id)]
        for item in todo:
            if item.resolved:
                print(f"#{item.id}: already resolved, not retried")
                continue
            scope = args.node or scope_of(item, federation)
            checker = Checker(federation, scope, args.user_prefix, limits)
            retried = retry_dead_letter(conn, checker, item)
            print(retried)
            failing += not retried.resolved
    if args.all:
        print(f"{len(todo)} retried: {len(todo) - failing} resolved, {failing} still failing")
    return EXIT_INVALID if failing else EXIT_OK


def run_resolve(args: argparse.Namespace, settings: Settings) -> int:
    if not args.reason.strip():
        raise UsageError("--reason must say why the dead letter is dealt with")
    with open_store(settings.database_url, settings.data_dir) as conn:
        _existing(conn, args.id)
        resolve_dead_letter(conn, args.id, args.reason.strip())
    print(f"#{args.id}: resolved ({args.reason.strip()})")
    return EXIT_OK


@dataclass(frozen=True)
class Retried:
    """The result of one retry: stored and resolved, or the reasons it fails now."""

    id: int
    verdict: Verdict
    outcomes: Sequence[Outcome] = field(default_factory=tuple)

    @property
    def resolved(self) -> bool:
        return not self.verdict.dead and Outcome.CONFLICT not in self.outcomes

    def __str__(self) -> str:
        if self.verdict.reason:
            lines = [f"#{self.id}: still fails: {self.verdict.reason}"]
            return "\n".join(lines + [f"  {p}" for p in self.verdict.problems])
        if self.verdict.refused:
            stored = _outcomes(self.outcomes)
            lines = [f"#{self.id}: partly stored ({stored}); still failing:"]
            for part in self.verdict.refused:
                lines.append(f"  record {part.index} of {part.of}: {part.reason}")
                lines.extend(f"    {p}" for p in part.problems)
            return "\n".join(lines)
        stored = _outcomes(self.outcomes)
        if not self.resolved:
            return (
                f"#{self.id}: conflict ({stored}): the stored record has this revision with "
                "other content; the source must send a higher revision"
            )
        return f"#{self.id}: stored ({stored}), resolved"


def retry_dead_letter(conn: Connection, checker: Checker, item: DeadLetter) -> Retried:
    """Check ``item``'s message again; store its records and resolve it if it passes.

    One transaction: the retry is counted, and the records and the resolution
    are written together or not at all.
    """
    verdict = checker.check_message(message_of(item))
    with conn.transaction():
        mark_dead_letter_retried(conn, item.id)
        if verdict.reason:
            return Retried(item.id, verdict)
        # The records that pass are stored (a later retry stores them again, harmlessly);
        # the dead letter stays open while any record of it still fails.
        outcomes = upsert_records(conn, verdict.records)
        retried = Retried(item.id, verdict, tuple(outcomes))
        if retried.resolved:
            resolve_dead_letter(conn, item.id, f"stored on retry: {_outcomes(outcomes)}")
    return retried


@translate_errors("resolve a dead letter")
def resolve_dead_letter(conn: Connection, id: int, reason: str) -> None:
    """Mark dead letter ``id`` resolved, keeping why and when in its headers."""
    resolution = {"reason": reason, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    mark_resolved(conn, id, {RESOLUTION: resolution})


def message_of(item: DeadLetter) -> Message:
    """The message as the hub received it: key, body, headers, message id, publisher."""
    headers: dict[str, HeaderValue] = {}
    for name, value in item.headers.items():
        if name in PROPERTIES or name == RESOLUTION:
            continue
        try:
            headers[name] = check_header(name, value)
        except (TypeError, ValueError):
            continue  # not something a govhub publisher sends; the checks do not read it
    key = item.routing_key or ""
    user = item.headers.get("user_id")
    return Message(
        key.split(".", 1)[0],
        key,
        item.body,
        headers=headers,
        message_id=str(item.headers.get("message_id") or f"dead-letter-{item.id}"),
        user_id=user if isinstance(user, str) else None,
    )


def scope_of(item: DeadLetter, federation: Federation) -> str:
    """The portal whose hub dead-lettered ``item`` (its source is ``hub:<id>``), else the root."""
    kind, _, node_id = item.source.partition(":")
    if kind == "hub" and node_id in federation.nodes:
        return node_id
    return federation.root.id


def as_json(item: DeadLetter) -> dict[str, Any]:
    return {
        "id": item.id,
        "received_at": item.received_at.isoformat(),
        "source": item.source,
        "reason": item.reason,
        "problems": list(item.problems),
        "routing_key": item.routing_key,
        "message_id": item.headers.get("message_id"),
        "user_id": item.headers.get("user_id"),
        "bytes": len(item.body),
        "retry_count": item.retry_count,
        "retried_at": item.retried_at.isoformat() if item.retried_at else None,
        "resolved": item.resolved,
        "resolution": item.headers.get(RESOLUTION),
    }


def _line(item: DeadLetter) -> str:
    when = item.received_at.strftime("%Y-%m-%d %H:%M:%S%z")
    problems = f" ({len(item.problems)} problems)" if item.problems else ""
    retried = f" retried {item.retry_count}×" if item.retry_count else ""
    resolved = " [resolved]" if item.resolved else ""
    return (
        f"#{item.id}  {when}  {item.source}  {item.routing_key}  "
        f"{item.reason}{problems}{retried}{resolved}"
    )


def _existing(conn: Connection, id: int) -> DeadLetter:
    item = dead_letter_by_id(conn, id)
    if item is None:
        raise UsageError(f"there is no dead letter #{id} (see `govhub deadletters list --all`)")
    return item


def _outcomes(outcomes: Sequence[Outcome]) -> str:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.value] = counts.get(outcome.value, 0) + 1
    return ", ".join(f"{name} {count}" for name, count in counts.items()) or "no records"
