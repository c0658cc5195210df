"""Read queries of the records' catalogue: the JSON API's (async psycopg, on the
portal's pool) and ``govhub records``' (``hub.store.records.list_records``), one SQL.

Listings are newest first, ordered by ``(published, id)``: a total order that
an update of a record does not change (a new revision keeps its
``published``), so the cursor ``published|id`` of a page's last row pages
through a table that is being written without a gap or a duplicate. The
``validity`` of a record and the per-node counts come from the search
follower's tables (``search_docs``, ``search_node_stats``), so they lag the
records by the follower's delay (about a second); a withdrawn record has no
validity there, so it never matches a ``validity`` filter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql

from hub.records.model import CHINA

PATH = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*")
"""A node path: node ids joined by dots, root first (``cn.gd.gz``)."""


def china_time(value: datetime | None) -> datetime | None:
    return value.astimezone(CHINA) if value is not None else None


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """Which records to list; ``None`` leaves a field free. ``scope`` is a node path
    (that node and every node below it); ``since`` ≤ published < ``until``."""

    node: str | None = None
    scope: str | None = None
    kind: str | None = None
    topic: str | None = None
    issuer: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    validity: str | None = None
    lang: str | None = None

    def __post_init__(self) -> None:
        if self.scope is not None and not PATH.fullmatch(self.scope):
            raise ValueError(f"{self.scope!r} is not a node path such as cn.gd")


@dataclass(frozen=True, slots=True)
class RecordSummary:
    """A row of a listing: the catalogue fields, without the body."""

    id: str
    node: str
    path: str
    kind: str
    revision: int
    title: str
    published: datetime
    updated: datetime | None
    withdrawn: bool
    doc_number: str | None
    index_number: str | None
    topic_class: str | None
    issuers: tuple[str, ...]
    lang: str
    validity: str | None

    @property
    def cursor(self) -> str:
        """Pass as ``after`` to list the records that follow this one."""
        return f"{self.published.isoformat()}|{self.id}"


@dataclass(frozen=True, slots=True)
class StoredXml:
    id: str
    path: str
    xml: str
    stored_at: datetime


@dataclass(frozen=True, slots=True)
class NodeStats:
    """A node's own records as the search follower has counted them."""

    records: int
    withdrawn: int
    last_published: datetime | None
    last_stored: datetime | None


def parse_cursor(cursor: str) -> tuple[datetime, str]:
    """``published|id`` (``RecordSummary.cursor``); ``ValueError`` for anything else."""
    published, _, id_ = cursor.partition("|")
    try:
        when: datetime | None = datetime.fromisoformat(published)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None or not id_:
        raise ValueError(
            f"{cursor!r} is not a records cursor: pass one a listing gave (its `cursor`, or"
            " the `next` link's), such as 2024-05-01T09:00:00+08:00|urn:govhub:gd:x-1"
        )
    return when, id_


async def record_by_id(conn: AsyncConnection[Any], id: str) -> StoredXml | None:
    """The stored XML of record ``id`` (a tombstone when withdrawn), or ``None``."""
    cursor = await conn.execute(
        "SELECT id, path, xml, stored_at FROM records WHERE id = %s", [id], prepare=False
    )
    row = await cursor.fetchone()
    return StoredXml(*row) if row else None


async def list_records(
    conn: AsyncConnection[Any], where: RecordFilter, limit: int, after: str | None = None
) -> list[RecordSummary]:
    """Up to ``limit`` records matching ``where``, newest first, after cursor ``after``.

    Statements are not prepared, so every query is planned for its own values.
    """
    cursor = await conn.execute(*listing(where, limit, after), prepare=False)
    return [summary_of(row) for row in await cursor.fetchall()]


def listing(
    where: RecordFilter, limit: int, after: str | None = None
) -> tuple[sql.Composed, dict[str, Any]]:
    """The query (and its parameters) of ``list_records``; its rows go to ``summary_of``."""
    conditions, params = conditions_of(where)
    if after is not None:
        params["after_published"], params["after_id"] = parse_cursor(after)
        conditions.append(sql.SQL("(r.published, r.id) < (%(after_published)s, %(after_id)s)"))
    params["limit"] = limit
    query = sql.SQL(
        "SELECT r.id, r.node, r.path, r.kind, r.revision, r.title, r.published, r.updated,"
        " r.withdrawn, r.doc_number, r.index_number, r.topic_class, r.issuers, r.lang,"
        " (SELECT s.validity FROM search_docs s WHERE s.id = r.id) FROM records r {}"
        " ORDER BY r.published DESC, r.id DESC LIMIT %(limit)s"
    ).format(where_clause(conditions))
    return query, params


def where_clause(conditions: list[sql.Composable]) -> sql.Composable:
    return sql.SQL("WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")


def summary_of(row: Sequence[Any]) -> RecordSummary:
    id_, node, path, kind, revision, title, published, updated, withdrawn, *rest = row
    doc_number, index_number, topic_class, issuers, lang, validity = rest
    return RecordSummary(
        id_,
        node,
        path,
        kind,
        revision,
        title,
        published.astimezone(CHINA),
        china_time(updated),
        withdrawn,
        doc_number,
        index_number,
        topic_class,
        tuple(issuers),
        lang,
        validity,
    )


def conditions_of(where: RecordFilter) -> tuple[list[sql.Composable], dict[str, Any]]:
    """``where`` as conditions on ``records r`` (and ``search_docs s``), with their values."""
    params: dict[str, Any] = {}
    conditions = filter_conditions(
        params,
        "r.",
        node=where.node,
        kind=where.kind,
        topic=where.topic,
        lang=where.lang,
        scope=where.scope,
        since=where.since,
        until=where.until,
    )
    if where.issuer is not None:
        params["issuer"] = where.issuer
        conditions.append(sql.SQL("r.issuers @> ARRAY[%(issuer)s]::text[]"))
    if where.validity is not None:
        params["validity"] = where.validity
        conditions.append(
            sql.SQL(
                "EXISTS (SELECT 1 FROM search_docs s WHERE s.id = r.id"
                " AND s.validity = %(validity)s AND NOT s.withdrawn)"
            )
        )
    return conditions, params


def filter_conditions(
    params: dict[str, Any],
    alias: str = "",
    *,
    node: str | None = None,
    kind: str | None = None,
    topic: str | None = None,
    lang: str | None = None,
    scope: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[sql.Composable]:
    """The WHERE conditions the API and search share, on the columns of ``records`` (and
    of ``search_docs``, which has the same names), written with ``alias`` (``"r."``);
    their values go into ``params``. A subtree is the path range of ``records_path``."""
    conditions: list[sql.Composable] = []
    prefix = sql.SQL(alias)
    for column, value in (("node", node), ("kind", kind), ("topic_class", topic), ("lang", lang)):
        if value is not None:
            params[column] = value
            conditions.append(
                sql.SQL("{}{} = {}").format(prefix, sql.Identifier(column), sql.Placeholder(column))
            )
    if scope is not None:
        params.update(scope=scope, scope_lo=scope + ".", scope_hi=scope + "/")
        conditions.append(
            sql.SQL(
                "({p}path = %(scope)s OR ({p}path >= %(scope_lo)s AND {p}path < %(scope_hi)s))"
            ).format(p=prefix)
        )
    if since is not None:
        params["since"] = since
        conditions.append(sql.SQL("{}published >= %(since)s").format(prefix))
    if until is not None:
        params["until"] = until
        conditions.append(sql.SQL("{}published < %(until)s").format(prefix))
    return conditions


async def node_stats(conn: AsyncConnection[Any]) -> dict[str, NodeStats]:
    """Per node id: its own records, withdrawn ones, last published and last stored time."""
    cursor = await conn.execute(
        "SELECT node, records, withdrawn, last_published, last_stored FROM search_node_stats",
        prepare=False,
    )
    return {
        node: NodeStats(records, withdrawn, china_time(published), china_time(stored))
        for node, records, withdrawn, published, stored in await cursor.fetchall()
    }
