"""What the pages read from the cross-link tables (``links``, ``linked_records``).

The tables are written by the link follower (``hub.store.links.linker``, whose
docstring says how relations resolve and how copy groups form). A record page
reads its links both ways and its copies (``record_links``); a node's home
lists the latest records with each copy group once (``latest_grouped``); copies
are shown grouped by province (``by_province``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from hub.federation import Federation

OUTGOING = {  # how a record page names what the record relates to
    "interprets": "解读对象",
    "implements": "贯彻落实",
    "republishes": "转载自",
    "amends": "修改",
    "repeals": "废止",
    "replies-to": "答复",
}

AsyncConnection = psycopg.AsyncConnection[Any]


@dataclass(frozen=True, slots=True)
class Linked:
    """A record at the other end of a link, as a page lists it."""

    id: str
    title: str
    node: str
    path: str
    published: datetime
    type: str = ""  # the relation type, for links


@dataclass(frozen=True, slots=True)
class Unresolved:
    """A declared relation whose target is not stored (yet)."""

    type: str
    ref: str | None
    doc_number: str | None


@dataclass(frozen=True, slots=True)
class RecordLinks:
    outgoing: tuple[Linked, ...]  # what this record relates to
    unresolved: tuple[Unresolved, ...]
    incoming: tuple[Linked, ...]  # what relates to this record (or to a copy of it)
    copies: tuple[Linked, ...]  # other records in its copy group

    def incoming_of(self, *types: str) -> tuple[Linked, ...]:
        return tuple(link for link in self.incoming if link.type in types)


def _linked(row: Sequence[Any], type_: str) -> Linked:
    """A ``Linked`` from the five columns id, title, node, path, published."""
    id_, title, node, path, published = row
    return Linked(id_, title, node, path, published, type_)


_OUTGOING = """
SELECT r.id, r.title, r.node, r.path, r.published,
       l.type, l.target_ref, l.target_doc_number_norm, l.target IS NULL
FROM links l LEFT JOIN records r ON r.id = l.target AND NOT r.withdrawn
WHERE l.source = %(id)s ORDER BY l.position
"""
# What points at the record or at any copy of it (republications are listed as copies).
_INCOMING = """
SELECT DISTINCT ON (r.id, l.type) r.id, r.title, r.node, r.path, r.published, l.type
FROM links l JOIN records r ON r.id = l.source AND NOT r.withdrawn
WHERE l.target IN (
        SELECT id FROM linked_records
        WHERE copy_group = (SELECT copy_group FROM linked_records WHERE id = %(id)s)
        UNION SELECT %(id)s)
  AND l.source <> %(id)s AND l.type <> 'republishes'
ORDER BY r.id, l.type
"""
_COPIES = """
SELECT r.id, r.title, r.node, r.path, r.published
FROM linked_records k JOIN records r ON r.id = k.id
WHERE k.copy_group = (SELECT copy_group FROM linked_records WHERE id = %(id)s)
  AND k.id <> %(id)s AND NOT r.withdrawn
ORDER BY r.path, r.published, r.id
"""


async def record_links(conn: AsyncConnection, record_id: str) -> RecordLinks:
    """Every link of ``record_id`` in both directions, withdrawn records left out."""
    params = {"id": record_id}
    outgoing, unresolved = [], []
    for row in await (await conn.execute(_OUTGOING, params)).fetchall():
        type_, ref, norm, missing = row[5:]
        if row[0] is not None:
            outgoing.append(_linked(row[:5], type_))
        elif missing:
            unresolved.append(Unresolved(type_, ref, norm))
    rows = await (await conn.execute(_INCOMING, params)).fetchall()
    incoming = sorted((Linked(*row) for row in rows), key=lambda x: (x.published, x.id))
    rows = await (await conn.execute(_COPIES, params)).fetchall()
    copies = tuple(_linked(row, "republishes") for row in rows)
    return RecordLinks(tuple(outgoing), tuple(unresolved), tuple(incoming), copies)


@dataclass(frozen=True, slots=True)
class Listed:
    """One line of an aggregated list: a record, and the copies of it that are not shown."""

    id: str
    title: str
    node: str
    path: str
    kind: str
    published: datetime
    group: str
    copies: tuple[Linked, ...] = ()


_LATEST = """
SELECT r.id, r.title, r.node, r.path, r.kind, r.published, coalesce(k.copy_group, r.id)
FROM records r LEFT JOIN linked_records k ON k.id = r.id
WHERE (r.path = %(scope)s OR (r.path >= %(lo)s AND r.path < %(hi)s))
  AND NOT r.withdrawn AND (k.alert OR NOT %(alerts)s)
ORDER BY r.published DESC, r.id DESC LIMIT %(window)s
"""


async def latest_grouped(
    conn: AsyncConnection, scope_path: str, limit: int, *, alerts: bool = False
) -> list[Listed]:
    """The newest active records in the subtree at ``scope_path``, each copy group once.

    A group is shown by its member nearest the root (then the earliest) among
    the newest ``4 * limit`` records, and lists its other members nationwide.
    ``alerts``: only emergency notices and urgent records.
    """
    params = {
        "scope": scope_path,
        "lo": scope_path + ".",
        "hi": scope_path + "/",
        "alerts": alerts,
        "window": 4 * limit,
    }
    chosen: dict[str, Listed] = {}
    for row in await (await conn.execute(_LATEST, params)).fetchall():
        item = Listed(*row)
        best = chosen.get(item.group)
        if best is None or _rank(item) < _rank(best):
            chosen[item.group] = item
    shown = sorted(chosen.values(), key=lambda x: (x.published, x.id), reverse=True)[:limit]
    copies = await copies_of(conn, [item.group for item in shown])
    return [
        dataclasses.replace(
            item, copies=tuple(c for c in copies.get(item.group, ()) if c.id != item.id)
        )
        for item in shown
    ]


def _rank(item: Listed) -> tuple[int, datetime, str]:
    return (item.path.count("."), item.published, item.id)


_GROUPS = """
SELECT k.copy_group, r.id, r.title, r.node, r.path, r.published
FROM linked_records k JOIN records r ON r.id = k.id
WHERE k.copy_group = ANY(%s) AND NOT r.withdrawn ORDER BY r.path, r.published, r.id
"""


async def copies_of(conn: AsyncConnection, groups: Sequence[str]) -> dict[str, list[Linked]]:
    """The active members of each copy group (groups of one are left out)."""
    found: dict[str, list[Linked]] = {}
    for row in await (await conn.execute(_GROUPS, [list(groups)])).fetchall():
        found.setdefault(row[0], []).append(_linked(row[1:], "republishes"))
    return {group: members for group, members in found.items() if len(members) > 1}


def province_of(federation: Federation, node_id: str) -> str:
    """The province a node belongs to (its own id when provincial), else the root's id."""
    if node_id not in federation.nodes:
        return federation.root.id
    for node in (federation.node(node_id), *federation.ancestors(node_id)):
        if node.level == "provincial":
            return node.id
    return federation.root.id


def by_province(federation: Federation, items: Sequence[Linked]) -> list[tuple[str, list[Linked]]]:
    """``items`` grouped by province (the central government's first), in map order."""
    order = {node_id: index for index, node_id in enumerate(federation.nodes)}
    groups: dict[str, list[Linked]] = {}
    for item in items:
        groups.setdefault(province_of(federation, item.node), []).append(item)
    return sorted(groups.items(), key=lambda kv: order.get(kv[0], len(order)))
