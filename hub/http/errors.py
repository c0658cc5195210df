"""One JSON shape for every error of the JSON API: ``{"status", "error", "parameter"}``.

``{"status": 400, "error": "limit must be 1 to 200, not 0", "parameter": "limit"}``:
``parameter`` names the query or path parameter to fix, and is ``null`` when
no single parameter is at fault (an unknown address, a database outage).

``middleware`` turns everything that leaves a handler under ``/api/`` (and
``/openapi.json``) into that shape: ``ApiError``, aiohttp's ``HTTPException``
(404 for an unknown address, 405 for a wrong method) and any other exception
(500, logged, with no internals in the response). Other parts of the portal
may add the middleware for their own paths with ``middleware_for(prefixes)``,
or build the response themselves with ``json_error``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from hub.store.errors import DatabaseUnavailable, StoreError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_PREFIXES = ("/api/", "/openapi.json")


class ApiError(Exception):
    """Raise in a handler to answer with the JSON error shape."""

    def __init__(self, status: int, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.parameter = status, message, parameter


def bad_parameter(parameter: str, message: str) -> ApiError:
    """400 naming ``parameter``."""
    return ApiError(400, message, parameter)


def not_found(parameter: str, message: str) -> ApiError:
    """404 naming the path parameter that names nothing."""
    return ApiError(404, message, parameter)


def error_body(status: int, message: str, parameter: str | None = None) -> dict[str, object]:
    return {"status": status, "error": message, "parameter": parameter}


def json_error(status: int, message: str, parameter: str | None = None) -> web.Response:
    """The error shape as a response (``Cache-Control: no-store``)."""
    return web.Response(
        status=status,
        text=json.dumps(error_body(status, message, parameter), ensure_ascii=False),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def middleware_for(prefixes: Sequence[str]) -> Middleware:
    """A middleware giving the JSON error shape to requests whose path starts with a prefix."""

    @web.middleware
    async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(tuple(prefixes)):
            return await handler(request)
        try:
            return await handler(request)
        except ApiError as exc:
            return json_error(exc.status, exc.message, exc.parameter)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = json_error(exc.status, _http_message(exc, request), None)
            if "Allow" in exc.headers:  # a 405 says which methods the address takes
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        except DatabaseUnavailable as exc:
            log.warning("API request %s: %s", request.path, exc)
            return json_error(503, "the database is unavailable; retry shortly")
        except StoreError as exc:
            log.error("API request %s: %s", request.path, exc)
            return json_error(500, "the request failed on the server; it has been logged")
        except Exception:
            log.exception("API request %s failed", request.path)
            return json_error(500, "the request failed on the server; it has been logged")

    return json_errors


middleware = middleware_for(API_PREFIXES)


def setup(app: web.Application) -> None:
    """Add ``middleware`` to ``app`` once (safe to call from several parts' ``setup``)."""
    if middleware not in app.middlewares:
        app.middlewares.append(middleware)


def _http_message(exc: web.HTTPException, request: web.Request) -> str:
    if exc.status == 404:
        return f"no such address: {request.path} (see /openapi.json)"
    if exc.status == 405:
        return f"{request.method} is not allowed on {request.path}"
    return exc.reason
