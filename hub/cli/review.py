"""``govhub review``: the confidentiality review queue of a node (保密审查)."""

from __future__ import annotations

import argparse
import getpass
import json

from hub.cli.common import EXIT_OK, UsageError, config_flag
from hub.cli.publish import node_of
from hub.nodedb import open_state, state_path
from hub.outbox import held
from hub.outbox.pipeline import Pipeline
from hub.review import Reviewer, ReviewPolicy
from hub.settings import Settings


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "review",
        help="list, show, approve or reject records held by the confidentiality review",
        description="Records whose title, summary, body or messages carry a classification "
        "marking, a sensitive term or personal data are held, not published. Approve releases "
        "one to the outbox; reject keeps it unpublished. Every decision is kept in the audit "
        "trail with who, when and why.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the records waiting for review")
    listing.add_argument("--all", action="store_true", help="decided ones too")
    show = actions.add_parser("show", help="one held record: findings, decision, audit trail")
    show.add_argument("record_id", metavar="RECORD", help="the record id (urn:govhub:…)")
    show.add_argument("--xml", action="store_true", help="also print the record XML")
    for name, helptext in (("approve", "publish a held record"), ("reject", "never publish it")):
        action = actions.add_parser(name, help=helptext)
        action.add_argument("record_id", metavar="RECORD", help="the record id (urn:govhub:…)")
        action.add_argument("--reason", required=True, help="why (kept in the audit trail)")
        action.add_argument(
            "--by", default=getpass.getuser(), help="who decides (default: the login name)"
        )
        action.add_argument("--revision", type=int, help="which revision (default: the newest)")
        action.set_defaults(decision=name)
    for action in actions.choices.values():
        action.add_argument("--node", required=True, metavar="ID", help="the node")
        config_flag(action)
        action.add_argument("--json", action="store_true", help="machine-readable output")
        action.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    _, node = node_of(settings, args.node)
    state = open_state(state_path(settings.data_dir, node.id))
    try:
        if hasattr(args, "decision"):
            pipeline = Pipeline(node, state, Reviewer(ReviewPolicy()))
            current = held.held_record(state, args.record_id, args.revision)
            decide = pipeline.approve if args.decision == "approve" else pipeline.reject
            try:
                decision = decide(
                    current.record_id, current.revision, actor=args.by, reason=args.reason
                )
            except held.ReviewError as exc:
                raise UsageError(str(exc)) from None
            _print([decision], args.json)
        elif hasattr(args, "record_id"):
            item = held.held_record(state, args.record_id)
            _print([item], args.json, trail=held.audit_trail(state, item.record_id), xml=args.xml)
        else:
            _print(held.list_held(state, None if args.all else "held"), args.json)
    except held.ReviewError as exc:
        raise UsageError(str(exc)) from None
    finally:
        state.close()
    return EXIT_OK


def _print(
    items: list[held.Held],
    as_json: bool,
    *,
    trail: list[held.AuditEntry] | None = None,
    xml: bool = False,
) -> None:
    for item in items:
        if as_json:
            data = {
                "record": item.record_id,
                "revision": item.revision,
                "state": item.state,
                "held_at": item.held_at,
                "findings": list(item.findings),
                "decided_by": item.decided_by,
                "decided_at": item.decided_at,
                "reason": item.reason,
            }
            if trail is not None:
                data["audit"] = [_entry(entry) for entry in trail]
            print(json.dumps(data, ensure_ascii=False))
            continue
        decided = (
            f" by {item.decided_by} at {item.decided_at}: {item.reason}" if item.decided_by else ""
        )
        print(f"{item.record_id}  r{item.revision}  {item.state}{decided}")
        for finding in item.findings:
            print(f"    {finding['field']}: {finding['reason']}")
        for entry in trail or []:
            print(f"    audit {entry.at} {entry.actor} {entry.action}: {entry.reason}")
        if xml:
            print(item.body.decode())
    if not items and not as_json:
        print("nothing held for review")


def _entry(entry: held.AuditEntry) -> dict[str, object]:
    return {
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "revision": entry.revision,
        "reason": entry.reason,
    }
