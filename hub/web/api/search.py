"""The JSON search endpoint ``/api/search`` (the HTML ``/search`` page is another part's).

The query itself is ``hub.store.search.query.search``, re-exported here for the page::

    async with portal.pool.connection() as conn:
        result = await search(conn, SearchQuery("碳汇", scope="cn.gd", limit=20))

``SearchQuery`` raises ``SearchQueryError`` (a ``ValueError`` with
``.parameter``) for a query that cannot run; ``result.hits`` are ranked (every
word in the title, document number or index number first, then newest first; or
newest first with ``sort=date``) and ``result.next_cursor`` pages on. The page
(``/search``) takes the same filter parameters as this endpoint. Syntax and
ranking: docs/portal-api.md.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from hub.store.search.query import (
    COUNT_CAP,
    FIRST_YEAR,
    LAST_YEAR,
    MAX_LIMIT,
    MAX_PARTS,
    MAX_QUERY,
    SORTS,
    SearchHit,
    SearchQuery,
    SearchQueryError,
    SearchResult,
    search,
)
from hub.web.api.openapi import Operation, Param, Schema, add_operations, dataclass_json
from hub.web.api.params import (
    COMPONENTS,
    FROM,
    ISO_TIME,
    KIND,
    LANG,
    NODE,
    RECORD_ID,
    SCOPE,
    TO,
    TOPIC,
    choice_parser,
    cursor_param,
    date_range,
    json_response,
    known_node,
    limit_param,
    next_link,
    string_schema,
)
from hub.web.context import PORTAL

__all__ = ["SearchHit", "SearchQuery", "SearchQueryError", "SearchResult", "search", "setup"]

DEFAULT_LIMIT = 20
# 1 to MAX_PARTS words between white space; no control characters.
_WORD, _SPACE = r"[^\s\x00-\x1f\x7f]+", r"[^\S\x00-\x1f\x7f]"
QUERY = re.compile(rf"{_SPACE}*{_WORD}(?:{_SPACE}+{_WORD}){{0,{MAX_PARTS - 1}}}{_SPACE}*")
CURSOR = re.compile(rf"[hbd]\|{ISO_TIME.pattern}\|{RECORD_ID.pattern}")
YEAR = re.compile(r"[0-9]{4}")


def parse_query(text: str) -> str:
    if not 1 <= len(text) <= MAX_QUERY:
        raise ValueError(f"give 1 to {MAX_QUERY} characters, not {len(text)}")
    if not QUERY.fullmatch(text):
        raise ValueError(
            f"give 1 to {MAX_PARTS} words separated by spaces, without control characters"
        )
    SearchQuery(text)  # the query's own checks: something to look for, no NUL
    return text


def _cursor(text: str) -> str:
    SearchQuery("x", cursor=text)
    return text


def parse_year(text: str) -> int:
    if not YEAR.fullmatch(text) or not FIRST_YEAR <= int(text) <= LAST_YEAR:
        raise ValueError(f"{text[:20]!r} is not a year from {FIRST_YEAR} to {LAST_YEAR}")
    return int(text)


YEAR_PARAM = Param(
    "year",
    "query",
    "only records published in this year (China time); with from/to, both apply",
    {"type": "integer", "minimum": FIRST_YEAR, "maximum": LAST_YEAR},
    parse_year,
)
SORT_PARAM = Param(
    "sort",
    "query",
    "relevance (default: every word in the title, document number or index number first, "
    "then newest first) or date (newest first)",
    {"type": "string", "enum": list(SORTS)},
    choice_parser(SORTS),
)


def hit_json(hit: SearchHit, base: str) -> dict[str, Any]:
    """A search hit as the API gives it: its fields (not its ranking group) and address."""
    data: dict[str, Any] = dataclass_json(hit, frozenset({"group"}))
    data["url"] = f"{base}/api/records/{hit.id}"
    return data


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
        year=values["year"],
        sort=values["sort"] or "relevance",
    )
    async with portal.pool.connection() as conn:
        result = await search(conn, query)
    return json_response(
        {
            "query": values["q"],
            "parts": result.parts,
            "total": result.total,
            "totalMore": result.total_more,
            "hits": [hit_json(hit, portal.base_url) for hit in result.hits],
            "next": next_link(request, result.next_cursor),
        },
        max_age=30,
    )


def _marks(field: str) -> Schema:
    return {
        "type": "array",
        "description": f"where the words are in {field}: [start, end) offsets in characters",
        "items": {
            "type": "array",
            "items": {"type": "integer", "minimum": 0},
            "minItems": 2,
            "maxItems": 2,
        },
    }


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
        "snippet": {
            "type": "string",
            "description": "the record's text as written around the first match",
        },
        "titleMarks": _marks("title"),
        "snippetMarks": _marks("snippet"),
        "url": {"type": "string", "format": "uri"},
    }
    page: dict[str, Schema] = {
        "query": {"type": "string"},
        "parts": {"type": "array", "items": {"type": "string"}},
        "total": {
            "type": "integer",
            "minimum": 0,
            "description": f"records that match, on every page, counted up to {COUNT_CAP}",
        },
        "totalMore": {"type": "boolean", "description": "more records match than total"},
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
        "index number come first, then the rest; newest first within each group (or newest "
        "first with sort=date). Traditional and Simplified characters find each other.",
        get_search,
        (
            Param(
                "q",
                "query",
                f"what to look for: 1 to {MAX_PARTS} words, each required and each with a "
                "letter or digit (format search-query: words as they are once the text is "
                "NFKC-normalised)",
                string_schema(QUERY, minLength=1, maxLength=MAX_QUERY, format="search-query"),
                parse_query,
                True,
            ),
            NODE,
            SCOPE,
            KIND,
            TOPIC,
            LANG,
            FROM,
            TO,
            YEAR_PARAM,
            SORT_PARAM,
            cursor_param(CURSOR, "search cursor", _cursor),
            limit_param(DEFAULT_LIMIT, MAX_LIMIT),
        ),
        {"$ref": "#/components/schemas/SearchPage"},
    )
]


def setup(app: web.Application) -> None:
    """Add ``/api/search``."""
    add_operations(app, OPERATIONS, {**COMPONENTS, **_components()})
