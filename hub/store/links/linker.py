"""Cross-links between records (资源共享、整体联动), kept by a follower off the hot path.

Two things are derived from every stored record, in the tables of
``hub.store.links.schema``:

- **Relations** (``links``): each ``relations/relation`` becomes a row that
  resolves to a record id: by ``ref`` when that record is stored, else by
  ``docNumber`` in normal form (``国办发[2006]104号`` = ``国办发〔2006〕104号``),
  preferring a record that is not itself a republication, nearest the root, then
  the earliest. A relation whose target has not arrived stays unresolved and is
  resolved when the target is stored, so arrival order does not matter. Pages
  read the rows both ways (``hub.store.links.queries``): a policy shows what
  interprets, amends or repeals it; an interpretation shows its policy.
- **Copy groups** (``linked_records.copy_group``): the republications (转载) of
  one document share a group, so that aggregated views show the document once
  with its copies listed. Two records are copies when one declares
  ``republishes`` the other; or they are of the same kind with the same document
  number in normal form; or they are *near-identical*: same kind, equal title keys
  (``text_key``: NFKC, case-folded, without whitespace, punctuation, symbols or
  control characters) of at least ``MIN_TITLE_KEY`` characters, equal issuer keys
  (the set of their issuers' ``text_key``), no contradiction (document numbers
  equal when both have one, 成文日期 equal when both have one), and published at
  most ``NEAR_DAYS`` days apart. A near-identical match never joins two groups
  with different document numbers (many 任免 notices share one title).

Groups only grow, except that a record which changes or is withdrawn first
leaves its group and then joins whatever it matches now.

This module is the follower that writes both tables (extraction, resolution,
grouping); ``hub.store.links.queries`` holds what the pages read from them.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from hub import records
from hub.codes import normalise_doc_number
from hub.errors import HubError
from hub.store.connection import Connection
from hub.store.follow import follow_forever

log = logging.getLogger(__name__)

LINKER = "links"  # the follower's name in the followers table
MIN_TITLE_KEY = 6  # shorter titles (通知, 公告) say too little to match copies by
NEAR_DAYS = 60  # republications follow the original within weeks
ALERT_URGENCIES = ("urgent", "emergency")


def text_key(text: str) -> str:
    """``text`` reduced to what matters for matching copies: letters, digits, ideographs."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] not in "PSZC")


def issuer_key(issuers: Sequence[str]) -> str:
    return "|".join(sorted({text_key(issuer) for issuer in issuers}))


# -- The follower ------------------------------------------------------------------------------


async def run_linker(connect: Callable[[], Connection], stop: asyncio.Event) -> None:
    """Keep the links up to date until ``stop`` is set (for the hub runner)."""
    await follow_forever(connect, LINKER, link_records, stop)


@dataclass(frozen=True, slots=True)
class _Row:
    id: str
    kind: str
    doc_number_norm: str | None
    published: datetime
    withdrawn: bool
    record: records.Record | None


def link_records(conn: Connection, ids: Sequence[str]) -> None:
    """The follower's handler: relink the records ``ids`` (inside the follower's transaction)."""
    rows = _read(conn, ids)
    _store_relations(conn, rows)
    norms = [r.doc_number_norm for r in rows if r.doc_number_norm]
    _resolve(conn, [r.id for r in rows], norms)
    _store_keys(conn, rows)
    _regroup(conn, rows)


def _read(conn: Connection, ids: Sequence[str]) -> list[_Row]:
    found = conn.execute(
        "SELECT id, kind, doc_number_norm, published, withdrawn, xml FROM records"
        " WHERE id = ANY(%s) ORDER BY id",
        [list(ids)],
    ).fetchall()
    rows = []
    for id_, kind, norm, published, withdrawn, xml in found:
        try:
            record: records.Record | None = records.parse(xml.encode("utf-8"), id_)
        except HubError as exc:  # stored records were valid; a newer schema may disagree
            log.warning("links: record %s no longer parses: %s", id_, exc, extra={"record": id_})
            record = None
        rows.append(_Row(id_, kind, norm, published, withdrawn, record))
    return rows


def _store_relations(conn: Connection, rows: Sequence[_Row]) -> None:
    conn.execute("DELETE FROM links WHERE source = ANY(%s)", [[r.id for r in rows]])
    values = [
        (row.id, position, rel.type, rel.ref, _norm(rel.doc_number))
        for row in rows
        if row.record is not None
        for position, rel in enumerate(row.record.relations, start=1)
    ]
    if values:
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO links (source, position, type, target_ref, target_doc_number_norm)"
                " VALUES (%s, %s, %s, %s, %s)",
                values,
            )


def _norm(doc_number: str | None) -> str | None:
    return normalise_doc_number(doc_number) if doc_number else None


_RESOLVE = """
UPDATE links AS l SET target = n.target
FROM (
    SELECT l2.source, l2.position, coalesce(
        (SELECT r.id FROM records r WHERE r.id = l2.target_ref),
        (SELECT r.id FROM records r
          WHERE r.doc_number_norm = l2.target_doc_number_norm AND r.id <> l2.source
          ORDER BY r.withdrawn,
                   EXISTS (SELECT 1 FROM links x
                            WHERE x.source = r.id AND x.type = 'republishes'),
                   length(r.path) - length(replace(r.path, '.', '')),
                   r.published, r.id
          LIMIT 1)) AS target
    FROM links l2
    WHERE l2.source = ANY(%(ids)s) OR l2.target_ref = ANY(%(ids)s)
       OR l2.target = ANY(%(ids)s) OR l2.target_doc_number_norm = ANY(%(norms)s)
) AS n
WHERE l.source = n.source AND l.position = n.position
  AND l.target IS DISTINCT FROM n.target
"""


def _resolve(conn: Connection, ids: list[str], norms: list[str]) -> None:
    """Resolve the links that these records could change: their own, and those aimed at them."""
    conn.execute(_RESOLVE, {"ids": ids, "norms": norms})


def _keys(row: _Row) -> tuple[str, str, date | None]:
    """The record's title key, issuer key and 成文日期, as copies are matched by them."""
    if row.record is None:
        return "", "", None
    return text_key(row.record.title), issuer_key(row.record.issuers), row.record.created


def _is_alert(row: _Row) -> bool:
    record = row.record
    return bool(
        record
        and not row.withdrawn
        and (record.kind == "emergency" or record.urgency in ALERT_URGENCIES)
    )


# The records of the batch leave their groups: the others of a group that one of them
# names are relabelled with their smallest id (a label is always a member's id).
_DETACH = """
WITH moved AS (
    SELECT copy_group AS old, min(id) AS new FROM linked_records
    WHERE copy_group = ANY(%(ids)s) AND NOT (id = ANY(%(ids)s)) GROUP BY copy_group)
UPDATE linked_records k SET copy_group = moved.new FROM moved
WHERE k.copy_group = moved.old AND NOT (k.id = ANY(%(ids)s))
"""

_KEYS = """
INSERT INTO linked_records (id, copy_group, kind, title_key, issuer_key, created, alert)
SELECT id, id, kind, title_key, issuer_key, created, alert
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::date[], %s::boolean[])
    AS i(id, kind, title_key, issuer_key, created, alert)
ON CONFLICT (id) DO UPDATE SET copy_group = excluded.copy_group, kind = excluded.kind,
    title_key = excluded.title_key, issuer_key = excluded.issuer_key,
    created = excluded.created, alert = excluded.alert
"""


def _store_keys(conn: Connection, rows: Sequence[_Row]) -> None:
    """Write the records' matching keys, each in a group of its own for now."""
    conn.execute(_DETACH, {"ids": [r.id for r in rows]})
    keys = [_keys(row) for row in rows]
    conn.execute(
        _KEYS,
        [
            [r.id for r in rows],
            [r.kind for r in rows],
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [_is_alert(r) for r in rows],
        ],
    )


# Every candidate copy of each batch record: (record, strong?, candidate's group, days apart).
_CANDIDATES = """
WITH b AS (
    SELECT * FROM unnest(%(ids)s::text[], %(norms)s::text[], %(kinds)s::text[],
                         %(titles)s::text[], %(issuers)s::text[], %(created)s::date[],
                         %(published)s::timestamptz[])
        AS b(id, norm, kind, title, issuers, created, published)
), pairs AS (
    SELECT b.id, true AS strong, l.target AS other, b.published FROM b
    JOIN links l ON l.source = b.id AND l.type = 'republishes' AND l.target IS NOT NULL
    UNION ALL
    SELECT b.id, true, l.source, b.published FROM b
    JOIN links l ON l.target = b.id AND l.type = 'republishes'
    UNION ALL
    SELECT b.id, true, r.id, b.published FROM b
    JOIN records r ON r.doc_number_norm = b.norm AND r.kind = b.kind
    UNION ALL
    SELECT b.id, false, k.id, b.published FROM b
    JOIN linked_records k ON k.title_key = b.title AND k.issuer_key = b.issuers
        AND k.kind = b.kind AND length(b.title) >= %(min_title)s
    JOIN records r ON r.id = k.id
    WHERE (b.norm IS NULL OR r.doc_number_norm IS NULL OR r.doc_number_norm = b.norm)
      AND (b.created IS NULL OR k.created IS NULL OR k.created = b.created)
      AND r.published BETWEEN b.published - %(near)s AND b.published + %(near)s
)
SELECT p.id, p.strong, k.copy_group, abs(extract(epoch FROM r.published - p.published)), k.id
FROM pairs p JOIN linked_records k ON k.id = p.other JOIN records r ON r.id = p.other
WHERE p.other <> p.id AND NOT r.withdrawn
"""

_GROUP_NUMBERS = """
SELECT k.copy_group, array_agg(DISTINCT r.doc_number_norm)
FROM linked_records k JOIN records r ON r.id = k.id
WHERE k.copy_group = ANY(%s) AND r.doc_number_norm IS NOT NULL AND NOT r.withdrawn
GROUP BY k.copy_group
"""

_RELABEL = """
UPDATE linked_records k SET copy_group = m.new
FROM unnest(%s::text[], %s::text[]) AS m(old, new) WHERE k.copy_group = m.old
"""


def _regroup(conn: Connection, rows: Sequence[_Row]) -> None:
    """Join each record's group with every group it is a copy of (see the module docstring).

    Candidates are read in one statement; the merging is done here, over group labels
    (union-find, the smallest label wins), and written back in one statement.
    """
    active = [row for row in rows if not row.withdrawn and row.record is not None]
    if not active:
        return
    keys = [_keys(row) for row in active]
    found = conn.execute(
        _CANDIDATES,
        {
            "ids": [r.id for r in active],
            "norms": [r.doc_number_norm for r in active],
            "kinds": [r.kind for r in active],
            "titles": [k[0] for k in keys],
            "issuers": [k[1] for k in keys],
            "created": [k[2] for k in keys],
            "published": [r.published for r in active],
            "min_title": MIN_TITLE_KEY,
            "near": timedelta(days=NEAR_DAYS),
        },
    ).fetchall()
    labels = {r.id for r in active} | {row[2] for row in found}
    groups = _Groups(dict(conn.execute(_GROUP_NUMBERS, [list(labels)]).fetchall()))
    candidates: dict[str, list[tuple[bool, float, str, str]]] = {}
    for id_, strong, group, apart, other in found:
        candidates.setdefault(id_, []).append((not strong, float(apart), other, group))
    for row in active:
        for weak, _, _, group in sorted(candidates.get(row.id, ())):
            groups.join(row.id, group, check=weak)
    moves = groups.moves()
    if moves:
        conn.execute(_RELABEL, [list(moves), list(moves.values())])


class _Groups:
    """Copy groups being merged: union-find over labels, with each group's document numbers."""

    def __init__(self, numbers: dict[str, list[str]]) -> None:
        self.parent: dict[str, str] = {}
        self.numbers = {label: set(values) for label, values in numbers.items()}

    def find(self, label: str) -> str:
        while (up := self.parent.get(label, label)) != label:
            label = up
        return label

    def join(self, a: str, b: str, *, check: bool) -> None:
        """Merge the groups of ``a`` and ``b``; with ``check``, only if that puts no two
        different document numbers in one group."""
        a, b = self.find(a), self.find(b)
        if a == b:
            return
        merged = self.numbers.get(a, set()) | self.numbers.get(b, set())
        if check and len(merged) > 1:
            return
        root, child = min(a, b), max(a, b)
        self.parent[child] = root
        self.numbers[root] = merged

    def moves(self) -> dict[str, str]:
        """Old label -> new label, for every group that was merged into another."""
        return {label: self.find(label) for label in self.parent}
