"""One error shape and one error middleware for every HTTP server govhub runs: the
portal (pages, feeds, API), the node's port and its push endpoint.

The shape, built by ``error_body`` only::

    {"status": 400, "error": "limit must be 1 to 200, not 0", "parameter": "limit"}

``parameter`` names the query or path parameter (or header, or ``body``) to fix,
and is ``null`` when no single one is at fault (an unknown address, a database
outage); an error may add members of its own (a refused push's ``problems``).

``middleware`` answers everything that leaves a handler: ``RequestError`` with its
status, aiohttp's ``HTTPException`` (404 unknown address; 405 wrong method, with
``Allow``), a database outage (503) and any other exception (500, logged, no
internals in the response). Before the handler runs it refuses what no handler can
use: a NUL or other control character in a path part or query parameter (400
naming it). An application that has pages for people registers an ``ErrorPage``
under ``ERROR_PAGE``; it renders the error as HTML for the addresses it owns and
returns ``None`` for the machine addresses, which get the JSON shape.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping

import psycopg
from aiohttp import web

from hub.errors import RequestError, Unavailable

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorPage = Callable[[web.Request, int, str | None], web.StreamResponse | None]
"""``(request, status, message)``: the HTML page for this error, or ``None`` for a machine
address. ``message`` is ``None`` for the errors no handler raised (unknown address, wrong
method, outage): the page says what its status means in its own language."""
ERROR_PAGE: web.AppKey[ErrorPage] = web.AppKey("error_page")

MESSAGES = {
    400: "the request cannot be read",
    401: "this address needs credentials",
    403: "this address is not open to this request",
    404: "no such address",
    405: "method not allowed",
    408: "the request was not received in time; send it again",
    413: "the request body is too large",
    414: "the address is too long",
    415: "unsupported Content-Type",
    431: "the request's headers are too many or too large",
    500: "the request failed on the server; it has been logged",
    503: "the service is unavailable; retry shortly",
}


def bad_parameter(parameter: str, message: str) -> RequestError:
    """400 naming ``parameter``."""
    return RequestError(400, message, parameter)


def not_found(parameter: str, message: str) -> RequestError:
    """404 naming the path parameter that names nothing."""
    return RequestError(404, message, parameter)


def error_body(
    status: int, message: str, parameter: str | None = None, **details: object
) -> dict[str, object]:
    """The one JSON error shape."""
    return {"status": status, "error": message, "parameter": parameter, **details}


def json_error(
    status: int,
    message: str,
    parameter: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    **details: object,
) -> web.Response:
    """The error shape as a response (``Cache-Control: no-store``)."""
    return web.Response(
        status=status,
        text=json.dumps(error_body(status, message, parameter, **details), ensure_ascii=False),
        content_type="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def raw_error(status: int, reason: str, message: str) -> bytes:
    """A whole HTTP/1.1 response in the shape, for a connection that has no request object
    (refused at the connection limit, or timed out before its request was read)."""
    body = json.dumps(error_body(status, message), ensure_ascii=False).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaving ``handler`` as the one shape (or the application's error page)."""
    try:
        check_request(request)
        return await handler(request)
    except RequestError as exc:
        return respond(request, exc.status, exc.message, exc.parameter, exc.headers, exc.details)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
        return respond(request, exc.status, None, None, allow)
    except (Unavailable, psycopg.OperationalError) as exc:
        log.warning("%s %s: unavailable: %s", request.method, request.path, exc)
        return respond(request, 503, None, None, {"Retry-After": "10"})
    except Exception:
        log.exception("%s %s failed", request.method, request.path, extra={"stage": "serve"})
        return respond(request, 500, None)


def check_request(request: web.Request) -> None:
    """Refuse a control character (NUL, ESC…) in a path part or a query parameter's name
    or value: no handler, store or page can use one. White space is left to the handler."""
    for name, value in request.match_info.items():
        if _control(value):
            raise bad_parameter(name, f"{name} holds a control character; remove it")
    for name, value in request.query.items():
        if _control(name):
            raise bad_parameter(_printable(name), "a parameter name holds a control character")
        if _control(value):
            raise bad_parameter(name, f"{name} holds a control character; remove it")


def respond(
    request: web.Request,
    status: int,
    message: str | None,
    parameter: str | None = None,
    headers: Mapping[str, str] | None = None,
    details: Mapping[str, object] | None = None,
) -> web.StreamResponse:
    """The error as the application's HTML page where it has one, else the JSON shape."""
    page = request.app.get(ERROR_PAGE)
    if page is not None:
        try:
            found = page(request, status, message)
        except Exception:
            log.exception("the error page for %s failed", request.path, extra={"stage": "serve"})
            found = None
        if found is not None:
            found.headers.update(headers or {})
            return found
    text = message or _message(request, status)
    return json_error(status, text, parameter, headers=headers, **(details or {}))


def setup(app: web.Application) -> None:
    """Put ``middleware`` first in ``app`` once (safe to call from several parts' ``setup``)."""
    if middleware not in app.middlewares:
        app.middlewares.insert(0, middleware)


def _message(request: web.Request, status: int) -> str:
    if status == 404:
        return f"no such address: {_printable(request.path)}"
    if status == 405:
        return f"{_printable(request.method)} is not allowed on {_printable(request.path)}"
    return MESSAGES.get(status, "the request cannot be answered")


def _control(text: str) -> bool:
    return any((ord(c) < 32 and c not in "\t\n\r") or c == "\x7f" for c in text)


def _printable(text: str) -> str:
    """``text`` cut to 200 characters with control characters shown as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:200])
