"""The JSON search endpoint ``/api/search`` (the HTML ``/search`` page is another part's).

The query itself is ``hub.store.search.query.search``, re-exported here for the page::

    async with portal.pool.connection() as conn:
        result = await search(conn, SearchQuery("碳汇", scope="cn.gd", limit=20))

``SearchQuery`` raises ``SearchQueryError`` (a ``ValueError`` with
``.parameter``) for a query that cannot run; ``result.hits`` are ranked (every
word in the title, document number or index number first, then newest first)
and ``result.next_cursor`` pages on. Syntax and ranking: docs/portal-api.md.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.store.search.query import SearchHit, SearchQuery, SearchQueryError, SearchResult, search
from hub.web.api.openapi import Operation, Param, Schema, add_operations
from hub.web.api.params import (
    FROM,
    KIND,
    LANG,
    NODE,
    SCOPE,
    TO,
    TOPIC,
    date_range,
    json_response,
    known_node,
    next_link,
    parse_limit,
)
from hub.web.api.records import listed_json
from hub.web.context import PORTAL

__all__ = ["SearchHit", "SearchQuery", "SearchQueryError", "SearchResult", "search", "setup"]

DEFAULT_LIMIT = 20


def _query_text(text: str) -> str:
    SearchQuery(text)  # the same checks as the query's own
    return text


def _cursor(text: str) -> str:
    SearchQuery("x", cursor=text)
    return text


async def get_search(request: web.Request, values: dict[str, Any]) -> web.StreamResponse:
    portal = request.app[PORTAL]
    known_node(portal, "node", values["node"])
    scope = known_node(portal, "scope", values["scope"])
    since, until = date_range(request, values)
    # A query that cannot run raises SearchQueryError: a 400 naming its parameter.
    query = SearchQuery(
        values["q"],
        scope=scope.path if scope else None,
        node=values["node"],
        kind=values["kind"],
        topic=values["topic"],
        lang=values["lang"],
        since=since,
        until=until,
        limit=values["limit"] or DEFAULT_LIMIT,
        cursor=values["cursor"],
    )
    async with portal.pool.connection() as conn:
        result = await search(conn, query)
    return json_response(
        {
            "query": values["q"],
            "parts": result.parts,
            "hits": [listed_json(hit, portal.base_url) for hit in result.hits],
            "next": next_link(request, result.next_cursor),
        },
        max_age=30,
    )


def _components() -> dict[str, Schema]:
    hit: dict[str, Schema] = {
        "id": {"type": "string"},
        "node": {"type": "string"},
        "kind": {"type": "string"},
        "title": {"type": "string"},
        "published": {"type": "string", "format": "date-time"},
        "docNumber": {"type": ["string", "null"]},
        "indexNumber": {"type": ["string", "null"]},
        "inHeading": {
            "type": "boolean",
            "description": "every word is in the title, document number or index number",
        },
        "snippet": {"type": "string", "description": "normalised text around the first match"},
        "url": {"type": "string", "format": "uri"},
    }
    page: dict[str, Schema] = {
        "query": {"type": "string"},
        "parts": {"type": "array", "items": {"type": "string"}},
        "hits": {"type": "array", "items": {"$ref": "#/components/schemas/SearchHit"}},
        "next": {"type": ["string", "null"]},
    }
    return {
        "SearchHit": {"type": "object", "required": sorted(hit), "properties": hit},
        "SearchPage": {"type": "object", "required": sorted(page), "properties": page},
    }


OPERATIONS = [
    Operation(
        "/api/search",
        "search",
        "Search records",
        "Every white-space-separated word of `q` must occur (Chinese: any substring; Latin "
        "words and numbers: whole). Records with every word in the title, document number or "
        "index number come first, then the rest; newest first within each group.",
        get_search,
        (
            Param("q", "query", "what to look for", {"type": "string"}, _query_text, True),
            NODE,
            SCOPE,
            KIND,
            TOPIC,
            LANG,
            FROM,
            TO,
            Param("cursor", "query", "from a `next` link", {"type": "string"}, _cursor),
            Param(
                "limit",
                "query",
                f"page size (default {DEFAULT_LIMIT})",
                {"type": "integer", "minimum": 1, "maximum": 100},
                parse_limit,
            ),
        ),
        {"$ref": "#/components/schemas/SearchPage"},
    )
]


def setup(app: web.Application) -> None:
    """Add ``/api/search``."""
    add_operations(app, OPERATIONS, _components())
