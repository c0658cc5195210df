"""``govhub records``: list what the hub has stored, for operators and scripts."""

from __future__ import annotations

import argparse
import json

from hub.cli.common import EXIT_OK, UsageError
from hub.records import KINDS
from hub.settings import Settings
from hub.store import count_records, list_records
from hub.store.opening import open_store
from hub.store.queries import RecordSummary


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "records",
        help="list the records stored by the hub",
        description="List stored records, newest first: id, node path, kind, revision, "
        "publication time and title (withdrawn ones marked). Uses GOVHUB_DATABASE_URL, or the "
        "embedded database in GOVHUB_DATA_DIR.",
    )
    parser.add_argument("--scope", metavar="PATH", help="only this node path and below, e.g. cn.gd")
    parser.add_argument("--node", metavar="ID", help="only records of this node")
    parser.add_argument("--kind", choices=KINDS, help="only records of this kind")
    parser.add_argument(
        "--limit", type=int, default=50, metavar="N", help="at most N records (default 50)"
    )
    parser.add_argument(
        "--after", metavar="CURSOR", help="continue after this cursor (from the previous page)"
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per line, with a cursor for paging"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.limit <= 0:
        raise UsageError(f"--limit must be a positive number, not {args.limit}")
    try:
        with open_store(settings.database_url, settings.data_dir) as conn:
            rows = list_records(conn, args.scope, args.node, args.kind, args.limit, args.after)
            total = count_records(conn, args.scope)
    except ValueError as exc:  # a malformed cursor
        raise UsageError(f"--after: {exc}") from None
    for row in rows:
        print(_json(row) if args.json else _line(row))
    if not args.json:
        more = f"; next page: --after '{rows[-1].cursor}'" if len(rows) == args.limit else ""
        print(f"{len(rows)} shown of {total} in scope{more}")
    return EXIT_OK


def _line(row: RecordSummary) -> str:
    mark = " [withdrawn]" if row.withdrawn else ""
    when = row.published.strftime("%Y-%m-%d %H:%M%z")
    return f"{row.id}  {row.path}  {row.kind}  r{row.revision}  {when}  {row.title}{mark}"


def _json(row: RecordSummary) -> str:
    return json.dumps(
        {
            "id": row.id,
            "node": row.node,
            "path": row.path,
            "kind": row.kind,
            "revision": row.revision,
            "published": row.published.isoformat(),
            "title": row.title,
            "withdrawn": row.withdrawn,
            "cursor": row.cursor,
        },
        ensure_ascii=False,
    )
