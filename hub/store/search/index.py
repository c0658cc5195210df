"""The search index follower: keeps ``search_docs`` up to date with ``records``.

The index lives in ``search_docs`` (see ``hub.store.search.schema``) and is
written by a *follower* (``hub.store.follow``), so the hub's write path
(``upsert_records``) pays nothing for it::

    records ─ changes ─► index_records: text from the stored XML ─ terms ─► search_docs

What is kept of a record, and its terms: ``hub.store.search.terms``; the query
that reads the index: ``hub.store.search.query``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from psycopg import sql

from hub.errors import RecordInvalid
from hub.store.connection import Connection
from hub.store.follow import follow_forever
from hub.store.search.terms import IndexedText, indexed_text

log = logging.getLogger(__name__)

FOLLOWER = "search"

_READ = (
    "SELECT id, node, path, kind, topic_class, lang, published, withdrawn, title,"
    " doc_number_norm, index_number, stored_at, xml FROM records WHERE id = ANY(%s)"
)
_SEARCH_COLUMNS = [
    *["id", "node", "path", "kind", "topic_class", "lang", "validity", "published"],
    *["withdrawn", "heading", "content", "heading_terms", "terms"],
]
_STATS = """
INSERT INTO search_node_stats AS s (node, records, withdrawn, last_published, last_stored)
SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::timestamptz[],
                     %s::timestamptz[])
ON CONFLICT (node) DO UPDATE SET
    records = s.records + excluded.records,
    withdrawn = s.withdrawn + excluded.withdrawn,
    last_published = greatest(s.last_published, excluded.last_published),
    last_stored = greatest(s.last_stored, excluded.last_stored)
"""


def index_records(conn: Connection, ids: Sequence[str]) -> None:
    """Bring ``search_docs`` and ``search_node_stats`` up to date for ``ids`` (a
    follower's handler: runs inside the follower's transaction)."""
    rows = conn.execute(_READ, [list(ids)]).fetchall()
    before = dict(
        conn.execute(
            "SELECT id, withdrawn FROM search_docs WHERE id = ANY(%s)", [list(ids)]
        ).fetchall()
    )
    stats: dict[str, list[Any]] = {}
    docs = []
    for id_, node, path, kind, topic, lang, published, withdrawn, *rest in rows:
        title, doc_number, index_number, stored_at, xml = rest
        text = IndexedText("", "", None, [], [])
        if not withdrawn:
            try:
                text = indexed_text(title, doc_number, index_number, xml, id_)
            except (RecordInvalid, ValueError) as exc:  # stored XML is valid: a bug if seen
                log.error("search index skips the text of %s: %s", id_, exc, extra={"record": id_})
        fields = (id_, node, path, kind, topic, lang, text.validity, published, withdrawn)
        docs.append((*fields, text.heading, text.content, text.heading_terms, text.terms))
        count = stats.setdefault(node, [0, 0, published, stored_at])
        count[0] += id_ not in before
        count[1] += int(withdrawn) - int(before.get(id_, False))
        count[2], count[3] = max(count[2], published), max(count[3], stored_at)
    conn.execute("DELETE FROM search_docs WHERE id = ANY(%s)", [list(ids)])
    columns = sql.SQL(", ").join(map(sql.Identifier, _SEARCH_COLUMNS))
    with conn.cursor().copy(sql.SQL("COPY search_docs ({}) FROM STDIN").format(columns)) as copy:
        for doc in docs:  # arrays as literals: psycopg's list dumper costs a third of the work
            copy.write_row([*doc[:-2], _array_literal(doc[-2]), _array_literal(doc[-1])])
    if stats:
        conn.execute(_STATS, [list(stats), *map(list, zip(*stats.values(), strict=True))])


def _array_literal(values: list[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


async def run_search_indexer(
    connect: Callable[[], Connection], stop: asyncio.Event, *, batch: int = 500, idle: float = 1.0
) -> None:
    """Keep the search index up to date until ``stop`` is set (``govhub hub run`` runs
    this next to the consumers; two hubs may both run it, the follower lock serialises
    them). ``connect`` opens an autocommit connection in the hub's schema."""
    await follow_forever(connect, FOLLOWER, index_records, stop, batch=batch, idle=idle)
