"""The ``records`` table: revision-ordered upserts, tombstones, and the queries behind
``govhub records``.

``upsert_records`` writes a batch in one transaction with two or three round
trips, whatever its size:

1. one statement, rows ordered by id: ``INSERT … ON CONFLICT (id) DO UPDATE …
   WHERE false`` inserts the ids that are new and locks the rows of those that
   exist without changing them, in the same order for every consumer (so
   consumers that write overlapping batches never deadlock), and returns the
   ids it inserted;
2. read the revision and content hash of the locked rows (sent in the same
   pipeline as 1, after it);
3. work out every record's outcome in Python, replaying the batch in order
   against what was read, so duplicates of one id resolve as if sent one by one;
4. ``UPDATE … WHERE revision < new revision`` the rows that a higher revision
   replaces, in one statement.

Rows are sent as one array per column (``unnest``). From step 1 until the
transaction ends no other writer can change these rows, so the outcomes are
exact, and the UPDATE checks the revision itself, so a lower revision never
overwrites a higher one whatever happens.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from psycopg import sql

from hub.records import Record
from hub.store.connection import Connection, translate_errors
from hub.store.errors import StoreError
from hub.store.queries import (
    PATH,
    RecordFilter,
    RecordSummary,
    conditions_of,
    listing,
    summary_of,
    where_clause,
)


class Outcome(StrEnum):
    INSERTED = "inserted"  # the id was new
    UPDATED = "updated"  # a higher revision replaced the stored one
    UNCHANGED = "unchanged"  # same revision, same content: a redelivery
    STALE = "stale"  # a lower revision than the stored one: ignored
    CONFLICT = "conflict"  # same revision, different content: ignored, to be reported


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as the ``records`` table holds it (field order is column order)."""

    id: str
    node: str
    path: str
    kind: str
    revision: int
    content_hash: str
    title: str
    published: datetime
    updated: datetime | None
    withdrawn: bool
    withdrawn_reason: str | None
    withdrawn_at: datetime | None
    doc_number: str | None
    doc_number_norm: str | None
    index_number: str | None
    topic_class: str | None
    issuers: tuple[str, ...]
    lang: str
    xml: str

    @classmethod
    def from_record(cls, record: Record, path: str) -> StoredRecord:
        """The row for ``record``, whose origin node sits at ``path`` (``cn.gd.gz``)."""
        if not PATH.fullmatch(path) or path.rsplit(".", 1)[-1] != record.origin.node:
            raise ValueError(
                f"{record.id}: path {path!r} is not the path of origin node "
                f"{record.origin.node!r} (expected Federation.node(id).path)"
            )
        status = record.status
        xml, content_hash = record.xml_and_hash()
        return cls(
            id=record.id,
            node=record.origin.node,
            path=path,
            kind=record.kind,
            revision=record.revision,
            content_hash=content_hash,
            title=record.title,
            published=record.published,
            updated=record.updated,
            withdrawn=record.withdrawn,
            withdrawn_reason=status.reason if record.withdrawn and status else None,
            withdrawn_at=status.at if record.withdrawn and status else None,
            doc_number=record.doc_number,
            doc_number_norm=record.doc_number_normalised,
            index_number=record.index_number,
            topic_class=record.topic.top if record.topic else None,
            issuers=record.issuers,
            lang=record.language,
            xml=xml.decode("utf-8"),
        )


COLUMNS = tuple(f.name for f in fields(StoredRecord))
ARRAY_TYPES = {
    "revision": "integer[]",
    "published": "timestamptz[]",
    "updated": "timestamptz[]",
    "withdrawn": "boolean[]",
    "withdrawn_at": "timestamptz[]",
}


@translate_errors("store records")
def upsert_records(conn: Connection, records: Sequence[StoredRecord]) -> list[Outcome]:
    """Store ``records`` in one transaction; return each one's outcome, in input order.

    Inside the caller's ``conn.transaction()`` this uses a savepoint and commits
    nothing; otherwise it commits. Call it once per transaction: the row locks
    it takes are held until the transaction ends.
    """
    if not records:
        return []
    candidates: dict[str, StoredRecord] = {}
    for record in records:  # per id, the first record with the highest revision
        best = candidates.get(record.id)
        if best is None or record.revision > best.revision:
            candidates[record.id] = record
    with conn.transaction():
        with conn.pipeline():  # steps 1 and 2 travel together: one round trip
            inserting = conn.execute(_INSERT_OR_LOCK, _arrays(list(candidates.values())))
            reading = conn.execute(
                "SELECT id, revision, content_hash FROM records WHERE id = ANY(%s)",
                [list(candidates)],
            )
            inserted = {row[0] for row in inserting.fetchall()}
            stored = {row[0]: (row[1], row[2]) for row in reading if row[0] not in inserted}
        outcomes, final = _replay(records, stored)
        if any(final.get(id_) is not candidates[id_] for id_ in inserted):
            raise StoreError("store records", "a new id was inserted twice", "report this bug")
        updates = [record for id_, record in final.items() if id_ not in inserted]
        if updates and _update(conn, updates) != {r.id for r in updates}:
            raise StoreError("store records", "a locked row changed", "report this bug")
    return outcomes


def _replay(
    records: Sequence[StoredRecord], stored: dict[str, tuple[int, str]]
) -> tuple[list[Outcome], dict[str, StoredRecord]]:
    """Each record's outcome as if applied one by one, and the row each changed id ends with."""
    state = dict(stored)
    final: dict[str, StoredRecord] = {}
    outcomes = []
    for record in records:
        old = state.get(record.id)
        if old is None:
            outcome = Outcome.INSERTED
        elif record.revision > old[0]:
            outcome = Outcome.UPDATED
        elif record.revision < old[0]:
            outcome = Outcome.STALE
        elif record.content_hash == old[1]:
            outcome = Outcome.UNCHANGED
        else:
            outcome = Outcome.CONFLICT
        if outcome in (Outcome.INSERTED, Outcome.UPDATED):
            state[record.id] = (record.revision, record.content_hash)
            final[record.id] = record
        outcomes.append(outcome)
    return outcomes, final


def _update(conn: Connection, updates: list[StoredRecord]) -> set[str]:
    """Write ``updates`` over their (locked) rows; the ids written."""
    return {row[0] for row in conn.execute(_UPDATE, _arrays(updates)).fetchall()}


def _arrays(rows: list[StoredRecord]) -> list[list[Any]]:
    """The rows as one array per column, for ``unnest``."""
    columns: list[list[Any]] = [[getattr(r, name) for r in rows] for name in COLUMNS]
    issuers = COLUMNS.index("issuers")  # text[] per row: arrays of arrays must be rectangular
    columns[issuers] = [json.dumps(i, ensure_ascii=False) for i in columns[issuers]]
    return columns


def _statements() -> tuple[sql.Composed, sql.Composed]:
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS)
    arrays = sql.SQL(", ").join(
        sql.SQL("%b::{}").format(sql.SQL(ARRAY_TYPES.get(c, "text[]"))) for c in COLUMNS
    )
    values = sql.SQL(", ").join(
        sql.SQL("ARRAY(SELECT jsonb_array_elements_text(i.issuers::jsonb)) AS issuers")
        if c == "issuers"
        else sql.SQL("i.{}").format(sql.Identifier(c))
        for c in COLUMNS
    )
    incoming = sql.SQL("SELECT {values} FROM unnest({arrays}) AS i({cols})").format(
        values=values, arrays=arrays, cols=cols
    )
    # Inserts new ids and locks existing rows (WHERE false: locked, never changed), in id
    # order, so that consumers writing overlapping batches cannot deadlock.
    insert_or_lock = sql.SQL(
        "INSERT INTO records ({cols}) SELECT {cols} FROM ({incoming}) AS v ORDER BY v.id"
        " ON CONFLICT (id) DO UPDATE SET id = excluded.id WHERE false RETURNING id"
    ).format(cols=cols, incoming=incoming)
    assignments = sql.SQL(", ").join(
        sql.SQL("{0} = v.{0}").format(sql.Identifier(c)) for c in COLUMNS if c != "id"
    )
    update = sql.SQL(
        "UPDATE records AS r SET {assignments}, stored_at = now(),"
        " change_xid = pg_current_xact_id() FROM ({incoming}) AS v"
        " WHERE r.id = v.id AND r.revision < v.revision RETURNING r.id"
    ).format(assignments=assignments, incoming=incoming)
    return insert_or_lock, update


_INSERT_OR_LOCK, _UPDATE = _statements()


@translate_errors("list records")
def list_records(
    conn: Connection,
    scope_path: str | None = None,
    node: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    after: str | None = None,
) -> list[RecordSummary]:
    """Records newest first (``published``, then id), withdrawn ones included.

    ``scope_path`` keeps the records of that node and the nodes below it
    (``cn.gd`` matches ``cn.gd`` and ``cn.gd.gz``, not ``cn.gdx``). ``after`` is
    the ``cursor`` of the last row of the previous page. The same query as the
    JSON API's (``hub.store.queries.list_records``), on a plain connection.
    """
    where = RecordFilter(node=node, scope=scope_path, kind=kind)
    return [summary_of(row) for row in conn.execute(*listing(where, limit, after)).fetchall()]


@translate_errors("count records")
def count_records(conn: Connection, scope_path: str | None = None) -> int:
    """How many records (tombstones included) the node at ``scope_path`` and its subtree hold."""
    conditions, params = conditions_of(RecordFilter(scope=scope_path))
    query = sql.SQL("SELECT count(*) FROM records r {}").format(where_clause(conditions))
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


@translate_errors("read a record")
def record_xml(conn: Connection, id: str) -> str | None:
    """The stored XML of record ``id`` (a tombstone for a withdrawn one), or ``None``."""
    row = conn.execute("SELECT xml FROM records WHERE id = %s", [id]).fetchone()
    return str(row[0]) if row else None
