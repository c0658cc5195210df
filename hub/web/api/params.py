"""The query parameters that the JSON API and search share, how each is parsed and
checked, and the helpers that answer them: node lookups, page links, JSON responses.

A parameter is a ``hub.web.api.openapi.Param``: its name, where it comes from, its
description and JSON schema (served at ``/openapi.json``), and the function that
turns the text into a value or raises ``ValueError`` saying what is wrong.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta
from typing import Any

from aiohttp import web

from hub.federation import Node
from hub.http import errors
from hub.records import KINDS, LANGUAGES
from hub.records.model import CHINA
from hub.records.schema import topic_classes
from hub.web.api.openapi import Param
from hub.web.context import PORTAL, Portal

DEFAULT_LIMIT, MAX_LIMIT = 50, 200


def parse_when(text: str) -> datetime:
    """``YYYY-MM-DD`` (China Standard Time, start of day) or ISO 8601 with an offset."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), CHINA)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (2021-09-24) or a time with offset") from None
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no offset; add +08:00 or Z")
    return value


def until_of(text: str, value: datetime) -> datetime:
    """The exclusive end for an inclusive ``to``: a whole day, or the instant itself."""
    return value + (timedelta(days=1) if len(text) == 10 else timedelta(microseconds=1))


def choice_parser(options: tuple[str, ...]) -> Any:
    def parse_choice(text: str) -> str:
        if text not in options:
            raise ValueError(f"{text!r} is not one of {', '.join(options)}")
        return text

    return parse_choice


def text_parser(limit: int) -> Any:
    def parse_text(text: str) -> str:
        if not text.strip() or len(text) > limit:
            raise ValueError(f"give 1 to {limit} characters")
        return text

    return parse_text


def parse_limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise ValueError(f"{text!r} is not a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def node_id(text: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9\-]{0,31}", text):
        raise ValueError(f"{text!r} is not a node id such as gd or gz")
    return text


NODE = Param("node", "query", "only records of this node (its id)", {"type": "string"}, node_id)
SCOPE = Param(
    "scope",
    "query",
    "only records of this node and every node below it (its id)",
    {"type": "string"},
    node_id,
)
KIND = Param(
    "kind", "query", "record kind", {"type": "string", "enum": list(KINDS)}, choice_parser(KINDS)
)


def _topic(text: str) -> str:
    if text not in topic_classes():
        raise ValueError(f"{text!r} is not a topic class (主题分类) such as 综合政务")
    return text


TOPIC = Param(
    "topic",
    "query",
    "topic class (主题分类), e.g. 综合政务",
    {"type": "string", "enum": list(topic_classes())},
    _topic,
)
LANG = Param(
    "lang",
    "query",
    "record language",
    {"type": "string", "enum": list(LANGUAGES)},
    choice_parser(LANGUAGES),
)
WHEN = {"type": "string", "description": "YYYY-MM-DD (UTC+8) or ISO 8601 with offset"}
FROM = Param("from", "query", "published at or after (inclusive)", WHEN, parse_when)
TO = Param(
    "to", "query", "published at or before (inclusive; a date: the whole day)", WHEN, parse_when
)
LIMIT = Param(
    "limit",
    "query",
    f"page size (default {DEFAULT_LIMIT})",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
    parse_limit,
)


def date_range(
    request: web.Request, values: dict[str, Any]
) -> tuple[datetime | None, datetime | None]:
    """``from`` and the exclusive end for ``to``; 400 when ``to`` is before ``from``."""
    since, to = values.get("from"), values.get("to")
    until = until_of(request.query["to"], to) if to is not None else None
    if since is not None and until is not None and until <= since:
        raise errors.bad_parameter("to", "to is before from")
    return since, until


def portal_node(portal: Portal, node_id: str) -> Node | None:
    """The node ``node_id`` if it is in the portal's subtree, else ``None``."""
    try:
        node = portal.federation.node(node_id)
    except KeyError:
        return None
    return node if portal.federation.is_in_subtree(node.id, portal.scope) else None


def known_node(portal: Portal, name: str, node_id: str | None) -> Node | None:
    """The node a filter names; 400 naming ``name`` when it is not in the portal."""
    if node_id is None:
        return None
    node = portal_node(portal, node_id)
    if node is None:
        raise errors.bad_parameter(name, f"no node {node_id!r} in this portal (see /api/nodes)")
    return node


def next_link(request: web.Request, cursor: str | None) -> str | None:
    """The absolute address of the next page, or ``None``."""
    if cursor is None:
        return None
    base = request.app[PORTAL].base_url
    return base + str(request.rel_url.update_query(cursor=cursor))


def json_response(body: Any, *, max_age: int = 60) -> web.Response:
    return web.Response(
        text=json.dumps(body, ensure_ascii=False),
        content_type="application/json",
        headers={"Cache-Control": f"public, max-age={max_age}"},
    )
