"""The query's plans: how common its terms are, read from what ``ANALYZE`` keeps.

A common term matches so many rows that reading the GIN posting list and sorting
every match costs more than walking the newest rows and checking each
(``hub.store.search.query``). ``frequencies`` estimates, from ``pg_stats``, how
many rows hold every part of a query; the statistics are kept ``STATS_TTL``
seconds per connection.
"""

from __future__ import annotations

import math
import time
import weakref
from typing import Any

from psycopg import AsyncConnection

from hub.store.search.terms import query_terms, term_id

STATS_TTL = 300.0  # seconds the term frequencies read from pg_stats are kept


async def frequencies(conn: AsyncConnection[Any], parts: list[str]) -> dict[str, float]:
    """Per column, the estimated share of rows holding every part, and (``rows``) the
    table's size. A part is taken as common as its rarest term (the bigrams of one word
    go together), parts as independent of each other; a term that is not among
    ANALYZE's common ones counts as 0."""
    rows, common = await _common_terms(conn)
    per_part = [[term_id(t) for t in query_terms(p)] for p in parts]
    estimate: dict[str, float] = {"rows": rows}
    for column in ("terms", "heading_terms"):
        known = common.get(column, {})
        estimate[column] = math.prod(
            min((known.get(t, 0.0) for t in ids), default=1.0) for ids in per_part
        )
    return estimate


_COMMON: weakref.WeakKeyDictionary[
    AsyncConnection[Any], tuple[float, float, dict[str, dict[int, float]]]
] = weakref.WeakKeyDictionary()
"""Per connection (pooled connections live long): when read, the table's estimated rows,
and the common terms with their frequencies per column, as ANALYZE left them in
pg_stats. Kept STATS_TTL seconds."""


def forget_term_statistics() -> None:
    """Read pg_stats again at the next query (after an ANALYZE that should count now)."""
    _COMMON.clear()


async def _common_terms(conn: AsyncConnection[Any]) -> tuple[float, dict[str, dict[int, float]]]:
    read_at, rows, common = _COMMON.get(conn, (-STATS_TTL, 0.0, {}))
    if time.monotonic() - read_at < STATS_TTL:
        return rows, common
    cursor = await conn.execute(
        "SELECT attname, most_common_elems::text::integer[], most_common_elem_freqs,"
        " (SELECT reltuples FROM pg_class WHERE oid = 'search_docs'::regclass)"
        " FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'search_docs'"
        " AND attname IN ('terms', 'heading_terms') AND most_common_elems IS NOT NULL",
        prepare=False,
    )
    found = await cursor.fetchall()
    rows = float(found[0][3]) if found else 0.0
    common = {column: dict(zip(elems, freqs, strict=False)) for column, elems, freqs, _ in found}
    _COMMON[conn] = (time.monotonic(), rows, common)
    return rows, common
