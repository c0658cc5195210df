"""The JSON API: records by id and by filter, the node directory (``/api/...``).

Every route is an ``Operation`` (``hub.web.api.openapi``): its parameters are
parsed and checked before the handler runs, and the same description is
served at ``/openapi.json``. Errors have one shape (``hub.http.errors``).

A record in JSON is the record model (``hub.records.Record``) field by field,
named as in the XML (camelCase: ``indexNumber``, ``docNumber``), every field
present (``null`` or ``[]`` when the record leaves it out), times in ISO 8601
with their offset and days as ``YYYY-MM-DD``; ``body`` is the sanitized XHTML
string and ``extensions`` the foreign elements as XML strings. See
docs/portal-api.md.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from hub.federation import Federation, Node
from hub.http import errors
from hub.records import Record, parse
from hub.store import queries
from hub.store.search.query import SearchHit
from hub.web.api.openapi import (
    Operation,
    Param,
    Schema,
    add_operations,
    dataclass_json,
    dataclass_schema,
    json_name,
    ref,
)
from hub.web.api.params import (
    COMPONENTS,
    DEFAULT_LIMIT,
    FROM,
    ISO_TIME,
    KIND,
    LANG,
    LIMIT,
    NODE,
    NODE_ID_SCHEMA,
    RECORD_ID,
    SCOPE,
    TO,
    TOPIC,
    choice_parser,
    cursor_param,
    date_range,
    json_response,
    known_node,
    next_link,
    node_id,
    portal_node,
    string_schema,
    text_parser,
    text_schema,
)
from hub.web.context import PORTAL

MAX_ISSUER = 200  # characters
VALIDITIES = ("in-force", "amended", "repealed", "expired")
ACTIVE_DAYS = 30  # a node that stored a record within this many days is "active"
SKIP = frozenset({"lines"})


# -- records -----------------------------------------------------------------------


def record_json(record: Record) -> dict[str, Any]:
    """The record as JSON data, as ``#/components/schemas/Record`` describes it."""
    data: dict[str, Any] = dataclass_json(record, SKIP)
    return data


async def get_record(request: web.Request, values: dict[str, Any]) -> web.StreamResponse:
    portal = request.app[PORTAL]
    id_ = values["id"]
    async with portal.pool.connection() as conn:
        stored = await queries.record_by_id(conn, id_)
    if stored is None:
        raise errors.not_found("id", f"no record {id_!r}")
    base = portal.base_url
    links = (
        f'<{base}/records/{id_}>; rel="alternate"; type="text/html", '
        f'<{base}/api/records/{id_}?format=xml>; rel="alternate"; type="application/xml", '
        f'<{base}/api/records/{id_}>; rel="alternate"; type="application/json"'
    )
    headers = {"Link": links, "Cache-Control": "public, max-age=60", "Vary": "Accept"}
    if _wants_xml(request, values.get("format")):
        return web.Response(
            body=stored.xml.encode("utf-8"),
            content_type="application/xml",
            charset="utf-8",
            headers=headers,
        )
    record = parse(stored.xml.encode("utf-8"), id_)
    response = json_response(record_json(record))
    response.headers.update(headers)
    return response


def _wants_xml(request: web.Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "xml"
    accept = request.headers.get("Accept", "")
    return ("application/xml" in accept or "text/xml" in accept) and "json" not in accept


def listed_json(item: queries.RecordSummary | SearchHit, base: str) -> dict[str, Any]:
    """A record as a list (of records, of search hits) shows it, with its API address."""
    data: dict[str, Any] = dataclass_json(item, frozenset())
    data["url"] = f"{base}/api/records/{item.id}"
    return data


async def get_records(request: web.Request, values: dict[str, Any]) -> web.StreamResponse:
    portal = request.app[PORTAL]
    known_node(portal, "node", values["node"])
    scope = known_node(portal, "scope", values["scope"])
    since, until = date_range(request, values)
    where = queries.RecordFilter(
        node=values["node"],
        scope=scope.path if scope else None,
        kind=values["kind"],
        topic=values["topic"],
        issuer=values["issuer"],
        since=since,
        until=until,
        validity=values["validity"],
        lang=values["lang"],
    )
    limit = values["limit"] or DEFAULT_LIMIT
    async with portal.pool.connection() as conn:
        rows = await queries.list_records(conn, where, limit + 1, values["cursor"])
    more = len(rows) > limit
    rows = rows[:limit]
    return json_response(
        {
            "records": [listed_json(r, portal.base_url) for r in rows],
            "next": next_link(request, rows[-1].cursor if more else None),
        },
        max_age=30,
    )


CURSOR = re.compile(rf"{ISO_TIME.pattern}\|{RECORD_ID.pattern}")


# -- nodes ---------------------------------------------------------------------------


def node_json(
    node: Node, federation: Federation, stats: dict[str, queries.NodeStats], now: datetime
) -> dict[str, Any]:
    own = stats.get(node.id)
    subtree = sum(stats[n.id].records for n in federation.subtree(node.id) if n.id in stats)
    last = own.last_stored if own else None
    status = "no-records"
    if last is not None:
        status = "active" if now - last <= timedelta(days=ACTIVE_DAYS) else "quiet"
    return {
        "id": node.id,
        "name": node.name,
        "level": node.level,
        "parent": node.parent,
        "path": node.path,
        json_name("site_code"): node.site_code,
        "domain": node.domain,
        "languages": list(node.languages),
        "children": [child.id for child in federation.children(node.id)],
        "records": {
            "own": own.records if own else 0,
            "ownWithdrawn": own.withdrawn if own else 0,
            "subtree": subtree,
        },
        "lastPublished": own.last_published.isoformat() if own and own.last_published else None,
        "lastStored": last.isoformat() if last else None,
        "status": status,
    }


async def get_nodes(request: web.Request, values: dict[str, Any]) -> web.StreamResponse:
    portal = request.app[PORTAL]
    federation = portal.federation
    scope = known_node(portal, "scope", values["scope"]) or federation.node(portal.scope)
    async with portal.pool.connection() as conn:
        stats = await queries.node_stats(conn)
    now = datetime.now(UTC)
    nodes = [node_json(n, federation, stats, now) for n in federation.subtree(scope.id)]
    return json_response({"nodes": nodes})


async def get_node(request: web.Request, values: dict[str, Any]) -> web.StreamResponse:
    portal = request.app[PORTAL]
    federation = portal.federation
    node = portal_node(portal, values["id"])
    if node is None:
        raise errors.not_found("id", f"no node {values['id']!r} in this portal (see /api/nodes)")
    async with portal.pool.connection() as conn:
        stats = await queries.node_stats(conn)
    return json_response(node_json(node, federation, stats, datetime.now(UTC)))


def _record_id(text: str) -> str:
    if not RECORD_ID.fullmatch(text):
        raise ValueError(f"{text!r} is not a record id (urn:govhub:NODE:LOCAL)")
    return text


# -- the description ---------------------------------------------------------------------


def _components() -> dict[str, Schema]:
    components: dict[str, Schema] = {}
    dataclass_schema(Record, components, skip=SKIP)
    dataclass_schema(queries.RecordSummary, components, skip=frozenset())
    summary = components["RecordSummary"]
    summary["properties"]["url"] = {"type": "string", "format": "uri"}
    summary["required"] = sorted(summary["properties"])
    when = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}
    components["RecordPage"] = {
        "type": "object",
        "required": ["records", "next"],
        "properties": {
            "records": {"type": "array", "items": ref("RecordSummary")},
            "next": {"type": ["string", "null"], "description": "the next page; null: last"},
        },
    }
    node_properties: dict[str, Schema] = {
        "id": {"type": "string"},
        "name": {"type": "string", "description": "the agency's legal name"},
        "level": {"type": "string"},
        "parent": {"type": ["string", "null"]},
        "path": {"type": "string"},
        "siteCode": {"type": "string"},
        "domain": {"type": "string"},
        "languages": {"type": "array", "items": {"type": "string"}},
        "children": {"type": "array", "items": {"type": "string"}},
        "records": {
            "type": "object",
            "required": ["own", "ownWithdrawn", "subtree"],
            "properties": {k: {"type": "integer"} for k in ("own", "ownWithdrawn", "subtree")},
        },
        "lastPublished": when,
        "lastStored": when,
        "status": {"type": "string", "enum": ["active", "quiet", "no-records"]},
    }
    components["Node"] = {
        "type": "object",
        "required": sorted(node_properties),
        "properties": node_properties,
    }
    components["NodeList"] = {
        "type": "object",
        "required": ["nodes"],
        "properties": {"nodes": {"type": "array", "items": ref("Node")}},
    }
    return components


RECORD_ID_PARAM = Param(
    "id", "path", "record id, urn:govhub:NODE:LOCAL", string_schema(RECORD_ID), _record_id
)
OPERATIONS = [
    Operation(
        "/api/records/{id}",
        "getRecord",
        "One record",
        "The record as JSON (every field), or its XML with `format=xml` or "
        "`Accept: application/xml`. A withdrawn record is its tombstone.",
        get_record,
        (
            RECORD_ID_PARAM,
            Param(
                "format",
                "query",
                "json (default) or xml",
                {"type": "string", "enum": ["json", "xml"]},
                choice_parser(("json", "xml")),
            ),
        ),
        ref("Record"),
        (400, 404),
        {"application/xml": {"type": "string", "description": "urn:govhub:record:1 XML"}},
        {
            "Link": {
                "description": "the record's HTML page, XML and JSON (rel=alternate)",
                "required": True,
                "schema": {"type": "string"},
            },
            "Vary": {"required": True, "schema": {"type": "string", "const": "Accept"}},
        },
    ),
    Operation(
        "/api/records",
        "listRecords",
        "Records by filter",
        "Newest first by (published, id); follow `next` for the following page.",
        get_records,
        (
            NODE,
            SCOPE,
            KIND,
            TOPIC,
            Param(
                "issuer",
                "query",
                "issuing agency (发文机关), exact",
                text_schema(MAX_ISSUER),
                text_parser(MAX_ISSUER),
            ),
            FROM,
            TO,
            Param(
                "validity",
                "query",
                "validity (有效性)",
                {"type": "string", "enum": list(VALIDITIES)},
                choice_parser(VALIDITIES),
            ),
            LANG,
            cursor_param(CURSOR, "records cursor", queries.parse_cursor),
            LIMIT,
        ),
        ref("RecordPage"),
    ),
    Operation(
        "/api/nodes",
        "listNodes",
        "The node directory",
        "Every node of the portal's subtree (or of `scope`), with record counts and status.",
        get_nodes,
        (SCOPE,),
        ref("NodeList"),
    ),
    Operation(
        "/api/nodes/{id}",
        "getNode",
        "One node",
        "A node of the federation with its record counts and status.",
        get_node,
        (Param("id", "path", "node id", NODE_ID_SCHEMA, node_id),),
        ref("Node"),
        (400, 404),
    ),
]


def setup(app: web.Application) -> None:
    """Add the record and node routes of the JSON API."""
    add_operations(app, OPERATIONS, {**COMPONENTS, **_components()})
