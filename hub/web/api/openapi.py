"""The JSON API's routes, described once: the router and ``/openapi.json`` read the same list.

A part of the API declares each route as an ``Operation`` (path, parameters with
their parsers and JSON schemas, response schema) and calls ``add_operations``.
That registers the route with a wrapper that parses and checks every parameter
(unknown, repeated, missing or unparsable → 400 naming it, in the shape of
``hub.http.errors``) and records the operation for the OpenAPI 3.1 document that
``setup`` serves at ``/openapi.json``. A route cannot exist without its
description, nor a description without its route.

``GET /api/`` answers an index of the API: the document's address and each
operation's (``serve_index``).

``dataclass_schema`` gives the JSON Schema of a dataclass (the record model),
so that a response built field by field from the same dataclass has the schema
the document states.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from aiohttp import web

from hub.http import errors
from hub.web.context import PORTAL

Schema = dict[str, Any]
ApiHandler = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]
OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"
DOCUMENT_PATH = "/openapi.json"
PORTAL_NODE = "PortalNode"  # the component naming a node of the portal (its ids listed)


def ref(name: str) -> Schema:
    """A reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


CACHE_CONTROL: Schema = {
    "description": "how long the answer may be kept",
    "required": True,
    "schema": {"type": "string", "pattern": "^public, max-age=[0-9]+$"},
}
NO_STORE: Schema = {
    "description": "no-store: an error is not kept",
    "schema": {"type": "string", "const": "no-store"},
}
# What the HTTP server refuses before any route reads the request (hub.http.listen),
# in the same error shape: every operation can meet these.
SERVER_ERRORS = (414, 431)


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: ``parse`` turns the text into a value or raises ``ValueError``."""

    name: str
    where: Literal["query", "path"]
    description: str
    schema: Schema
    parse: Callable[[str], Any] = str
    required: bool = False


@dataclass(frozen=True, slots=True)
class Operation:
    """One GET route of the API."""

    path: str  # aiohttp and OpenAPI alike: /api/records/{id}
    operation_id: str
    summary: str
    description: str
    handler: ApiHandler
    params: tuple[Param, ...]
    response: Schema  # the 200 JSON body
    errors: tuple[int, ...] = (400,)
    alternates: Mapping[str, Schema] = field(default_factory=dict)  # other 200 media types
    headers: Mapping[str, Schema] = field(default_factory=dict)  # of the 200, besides caching


OPERATIONS = web.AppKey("api_operations", list[Operation])
COMPONENTS = web.AppKey("api_components", dict[str, Schema])

ERROR_SCHEMA: Schema = {
    "type": "object",
    "description": "Every error of the API has this shape.",
    "required": ["status", "error", "parameter"],
    "properties": {
        "status": {"type": "integer", "description": "the HTTP status, repeated"},
        "error": {"type": "string", "description": "what is wrong and how to fix it"},
        "parameter": {
            "type": ["string", "null"],
            "description": "the parameter at fault, or null",
        },
    },
}
ERROR_TEXT = {
    400: "a parameter is unknown, repeated, missing or invalid (named in `parameter`)",
    404: "the path parameter names nothing (named in `parameter`)",
    500: "the server failed; the failure is logged",
    414: "the address is over 8,190 bytes",
    431: "more than 100 headers, or one over 8,190 bytes",
    503: "the database is unavailable; retry shortly",
}


def add_operations(
    app: web.Application, operations: list[Operation], components: Mapping[str, Schema]
) -> None:
    """Register ``operations`` as GET routes of ``app`` and describe them in its document."""
    errors.setup(app)
    app.setdefault(OPERATIONS, []).extend(operations)
    app.setdefault(COMPONENTS, {}).update(components)
    for operation in operations:
        app.router.add_get(operation.path, _checked(operation), allow_head=False)


def _checked(operation: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    known = {p.name for p in operation.params if p.where == "query"}

    async def handle(request: web.Request) -> web.StreamResponse:
        for name in request.query:
            if name not in known:
                allowed = ", ".join(sorted(known)) or "none"
                raise errors.bad_parameter(name, f"unknown parameter {name!r} (known: {allowed})")
        values: dict[str, Any] = {}
        for param in operation.params:
            if param.where == "path":
                raw: str | None = request.match_info.get(param.name)
            else:
                given = request.query.getall(param.name, [])
                if len(given) > 1:
                    raise errors.bad_parameter(param.name, f"{param.name} is given more than once")
                raw = given[0] if given else None
            if raw is None:
                if param.required:
                    raise errors.bad_parameter(param.name, f"{param.name} is required")
                values[param.name] = None
                continue
            try:
                values[param.name] = param.parse(raw)
            except ValueError as exc:
                raise errors.bad_parameter(param.name, f"{param.name}: {exc}") from exc
        return await operation.handler(request, values)

    return handle


def document(operations: list[Operation], components: Mapping[str, Schema], server: str) -> Schema:
    """The OpenAPI 3.1 document of ``operations``."""
    paths: dict[str, Any] = {}
    for operation in operations:
        responses: dict[str, Any] = {
            "200": {
                "description": "OK",
                "headers": {"Cache-Control": CACHE_CONTROL, **operation.headers},
                "content": {
                    "application/json": {"schema": operation.response},
                    **{media: {"schema": s} for media, s in operation.alternates.items()},
                },
            }
        }
        for status in sorted({*operation.errors, *SERVER_ERRORS, 500, 503}):
            responses[str(status)] = {
                "description": ERROR_TEXT[status],
                "headers": {"Cache-Control": NO_STORE},
                "content": {"application/json": {"schema": ref("Error")}},
            }
        paths.setdefault(operation.path, {})["get"] = {
            "operationId": operation.operation_id,
            "summary": operation.summary,
            "description": operation.description,
            "parameters": [
                {
                    "name": p.name,
                    "in": p.where,
                    "required": p.required or p.where == "path",
                    "description": p.description,
                    "schema": p.schema,
                }
                for p in operation.params
            ],
            "responses": responses,
        }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "govhub portal API",
            "version": API_VERSION,
            "description": "Disclosure records of the federation, its nodes, and search. "
            "See docs/portal-api.md.",
        },
        "servers": [{"url": server or "/"}],
        "paths": paths,
        "components": {"schemas": {"Error": ERROR_SCHEMA, **components}},
    }


async def serve_document(request: web.Request) -> web.Response:
    """The document of the operations registered, for this portal: its address as the
    server, and the ids of its nodes as the values of ``PortalNode``."""
    app = request.app
    portal = app.get(PORTAL)
    registered: dict[str, Schema] = app.get(COMPONENTS, {})
    components = {**registered}
    if portal is not None and PORTAL_NODE in components:
        ids = [node.id for node in portal.federation.subtree(portal.scope)]
        components[PORTAL_NODE] = {**components[PORTAL_NODE], "enum": ids}
    server = portal.base_url if portal is not None else ""
    body = document(app.get(OPERATIONS, []), components, server)
    return _json(body, indent=1)


async def serve_index(request: web.Request, values: dict[str, Any]) -> web.Response:
    """``GET /api/``: where the document is, and every operation with its address."""
    portal = request.app.get(PORTAL)
    base = portal.base_url if portal is not None else ""
    return _json(
        {
            "openapi": base + DOCUMENT_PATH,
            "version": API_VERSION,
            "operations": [
                {
                    "operationId": op.operation_id,
                    "method": "GET",
                    "path": op.path,
                    "url": base + op.path,
                    "summary": op.summary,
                }
                for op in request.app.get(OPERATIONS, [])
            ],
        }
    )


def _json(body: Any, indent: int | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(body, ensure_ascii=False, indent=indent),
        content_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )


INDEX_SCHEMA: Schema = {
    "type": "object",
    "required": ["openapi", "version", "operations"],
    "properties": {
        "openapi": {"type": "string", "description": "the address of this document"},
        "version": {"type": "string", "const": API_VERSION},
        "operations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["operationId", "method", "path", "url", "summary"],
                "properties": {
                    "operationId": {"type": "string"},
                    "method": {"type": "string", "const": "GET"},
                    "path": {"type": "string", "description": "as in `paths`, a template"},
                    "url": {"type": "string", "description": "the path on this server"},
                    "summary": {"type": "string"},
                },
            },
        },
    },
}
INDEX = Operation(
    "/api/",
    "apiIndex",
    "The index of the API",
    "Where the OpenAPI document is, and every operation with its address.",
    serve_index,
    (),
    ref("ApiIndex"),
)


def setup(app: web.Application) -> None:
    """Serve ``/openapi.json`` (describing whatever ``add_operations`` registered) and the
    index ``/api/``."""
    add_operations(app, [INDEX], {"ApiIndex": INDEX_SCHEMA})
    app.router.add_get(DOCUMENT_PATH, serve_document, allow_head=False)


# -- JSON Schema of dataclasses --------------------------------------------------------


def json_name(name: str) -> str:
    """A field's JSON name: camelCase as in the XML (``index_number`` → ``indexNumber``)."""
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def dataclass_schema(cls: type, components: dict[str, Schema], *, skip: frozenset[str]) -> Schema:
    """Add the schema of ``cls`` (and of the dataclasses it holds) to ``components``;
    return a ``$ref`` to it. Every field is present; an absent value is ``null``."""
    name = cls.__name__
    if name not in components:
        components[name] = {}  # placeholder against recursion
        hints = typing.get_type_hints(cls)
        properties = {
            json_name(f.name): _type_schema(hints[f.name], components, skip)
            for f in dataclasses.fields(cls)
            if f.name not in skip
        }
        components[name] = {
            "type": "object",
            "required": sorted(properties),
            "properties": properties,
        }
    return {"$ref": f"#/components/schemas/{name}"}


def _type_schema(hint: Any, components: dict[str, Schema], skip: frozenset[str]) -> Schema:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        return {"anyOf": [_type_schema(inner[0], components, skip), {"type": "null"}]}
    if origin is tuple:
        return {"type": "array", "items": _type_schema(args[0], components, skip)}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return dataclass_schema(hint, components, skip=skip)
    simple: dict[Any, Schema] = {
        str: {"type": "string"},
        int: {"type": "integer"},
        bool: {"type": "boolean"},
        datetime: {"type": "string", "format": "date-time"},
        date: {"type": "string", "format": "date"},
    }
    if hint in simple:
        return simple[hint]
    raise TypeError(f"no JSON schema for {hint!r}")


def dataclass_json(value: Any, skip: frozenset[str]) -> Any:
    """``value`` as JSON data, following ``dataclass_schema``: ISO 8601 dates."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            json_name(f.name): dataclass_json(getattr(value, f.name), skip)
            for f in dataclasses.fields(value)
            if f.name not in skip
        }
    if isinstance(value, tuple | list):
        return [dataclass_json(v, skip) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
