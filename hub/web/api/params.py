"""The query parameters that the JSON API and search share, how each is parsed and
checked, and the helpers that answer them: node lookups, page links, JSON responses.

A parameter is a ``hub.web.api.openapi.Param``: its name, where it comes from, its
description and JSON schema (served at ``/openapi.json``), and the function that
turns the text into a value or raises ``ValueError`` saying what is wrong.

The schema and the parser share their rules: each regular expression below is
what the parser matches (``fullmatch``) and, anchored, the schema's ``pattern``;
each limit is one constant that both the schema and the error message state.
The patterns keep to the syntax that ECMA-262 (OpenAPI's dialect) and Python's
``re`` read alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from aiohttp import web

from hub.federation import Node
from hub.http import errors
from hub.records import KINDS, LANGUAGES
from hub.records.model import CHINA
from hub.records.schema import topic_classes
from hub.web.api.openapi import PORTAL_NODE, Param, Schema, ref
from hub.web.context import PORTAL, Portal

DEFAULT_LIMIT, MAX_LIMIT = 50, 200  # /api/records; search has its own (hub.store.search)

# A node id, as nodes.toml and the record schema (type NodeId) have it.
NODE_ID = re.compile(r"[a-z][a-z0-9\-]{0,31}")
# A record id: urn:govhub:{node}:{local}, as the record schema (type RecordId) has it.
RECORD_ID = re.compile(rf"urn:govhub:{NODE_ID.pattern}:[A-Za-z0-9][A-Za-z0-9._~\-]{{0,127}}")
# A day of the Gregorian calendar, 0001-01-01 to 9999-12-31, that exists (29 February
# in leap years only), so that every value the pattern admits is a date.
_MONTH_DAY = (
    r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
_LEAP_DAY = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29"
DATE = re.compile(rf"(?!0000)(?:[0-9]{{4}}-{_MONTH_DAY}|{_LEAP_DAY})")
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
_OFFSET = r"[+\-](?:[01][0-9]|2[0-3]):[0-5][0-9]"
# RFC 3339 (ISO 8601 with an offset), the form a time is given to the API in.
DATE_TIME = re.compile(rf"{DATE.pattern}[Tt]{_TIME}(?:\.[0-9]+)?(?:[Zz]|{_OFFSET})")
# A time as the API writes it (``datetime.isoformat`` of a stored time), in cursors.
ISO_TIME = re.compile(rf"{DATE.pattern}T{_TIME}(?:\.[0-9]{{6}})?{_OFFSET}")
# Text with something in it and no control characters (which no name holds).
TEXT = re.compile(r"[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*")


def pattern(regex: re.Pattern[str]) -> str:
    """``regex`` as a JSON Schema ``pattern``, which matches the whole value as ``fullmatch``."""
    return f"^(?:{regex.pattern})$"


def string_schema(regex: re.Pattern[str], **more: Any) -> Schema:
    return {"type": "string", "pattern": pattern(regex), **more}


def parse_when(text: str) -> datetime:
    """``YYYY-MM-DD`` (China Standard Time, start of day) or RFC 3339 (with an offset)."""
    if DATE.fullmatch(text):
        return datetime.combine(date.fromisoformat(text), time(), CHINA)
    if DATE_TIME.fullmatch(text):
        head, dot, rest = text.upper().partition(".")
        if dot:  # fractions beyond microseconds are cut off
            digits = len(rest) - len(rest.lstrip("0123456789"))
            text = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
        return datetime.fromisoformat(text.upper())
    if DATE_TIME.fullmatch(text + "Z"):
        raise ValueError(f"{text!r} has no offset; add +08:00 or Z")
    raise ValueError(
        f"{text!r} is not a date (2021-09-24) or a time with its offset"
        " (2021-09-24T09:30:00+08:00) that exists"
    )


def cursor_param(regex: re.Pattern[str], name: str, check: Callable[[str], object]) -> Param:
    """``cursor``: what a ``next`` link carries, matching ``regex`` and passing ``check``
    (the store's own parser, which raises ``ValueError``)."""

    def parse_cursor(text: str) -> str:
        if not regex.fullmatch(text):
            raise ValueError(f"{text!r} is not a {name}; copy it from a `next` link")
        check(text)
        return text

    return Param(
        "cursor",
        "query",
        f"from a `next` link: the {name} of the last item of the page before",
        string_schema(regex),
        parse_cursor,
    )


WHEN: Schema = {
    "anyOf": [
        string_schema(DATE, format="date"),
        string_schema(DATE_TIME, format="date-time"),
    ],
    "description": "YYYY-MM-DD (a whole day, UTC+8) or an RFC 3339 time with its offset",
}


def until_of(text: str, value: datetime) -> datetime | None:
    """The exclusive end for an inclusive ``to``: a whole day, or the instant itself;
    ``None`` (no end) past the last day there is."""
    try:
        return value + (timedelta(days=1) if DATE.fullmatch(text) else timedelta(microseconds=1))
    except OverflowError:
        return None


def choice_parser(options: tuple[str, ...]) -> Any:
    def parse_choice(text: str) -> str:
        if text not in options:
            raise ValueError(f"{text!r} is not one of {', '.join(options)}")
        return text

    return parse_choice


def text_parser(limit: int) -> Any:
    def parse_text(text: str) -> str:
        if not 1 <= len(text) <= limit or not TEXT.fullmatch(text):
            raise ValueError(
                f"give 1 to {limit} characters, not only spaces, without control characters"
            )
        return text

    return parse_text


def text_schema(limit: int) -> Schema:
    return string_schema(TEXT, minLength=1, maxLength=limit)


def limit_param(default: int, maximum: int) -> Param:
    """``limit``: a page size from 1 to ``maximum``, ``default`` when not given."""

    def parse_limit(text: str) -> int:
        if not re.fullmatch(r"[0-9]{1,9}", text) or not 1 <= int(text) <= maximum:
            raise ValueError(f"{text!r} is not a whole number from 1 to {maximum}")
        return int(text)

    return Param(
        "limit",
        "query",
        f"page size, 1 to {maximum} (default {default})",
        {"type": "integer", "minimum": 1, "maximum": maximum},
        parse_limit,
    )


def node_id(text: str) -> str:
    if not NODE_ID.fullmatch(text):
        raise ValueError(f"{text!r} is not a node id such as gd or gz (see /api/nodes)")
    return text


NODE_ID_SCHEMA = string_schema(NODE_ID, description="a node id (see /api/nodes)")
# A node of the portal: the document served lists their ids (``openapi.serve_document``).
COMPONENTS: dict[str, Schema] = {
    PORTAL_NODE: {**NODE_ID_SCHEMA, "description": "the id of a node of this portal"}
}

NODE = Param("node", "query", "only records of this node (its id)", ref(PORTAL_NODE), node_id)
SCOPE = Param(
    "scope",
    "query",
    "only records of this node and every node below it (its id)",
    ref(PORTAL_NODE),
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
FROM = Param("from", "query", "published at or after (inclusive)", WHEN, parse_when)
TO = Param(
    "to", "query", "published at or before (inclusive; a date: the whole day)", WHEN, parse_when
)
LIMIT = limit_param(DEFAULT_LIMIT, MAX_LIMIT)


def date_range(
    request: web.Request, values: dict[str, Any]
) -> tuple[datetime | None, datetime | None]:
    """``from`` and the exclusive end for ``to`` (a ``to`` before ``from``: a period
    that holds no record, so an empty page)."""
    since, to = values.get("from"), values.get("to")
    until = until_of(request.query["to"], to) if to is not None else None
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
