"""``listen``: the one way govhub starts an HTTP server (the node's port and its push
endpoint, the portal, the demo), with limits that hold against slow and hostile clients.

``Limits`` (GOVHUB_HTTP_* settings, docs/settings.md):

- ``head_timeout``: seconds a client has to send a request's line and headers, from
  the moment it connects or from the previous response; a connection still sending
  them then (a slowloris trickling header bytes) is closed. aiohttp's keep-alive
  timer, which starts at connect and again after each response, carries it.
- ``body_timeout``: seconds a handler waits for a request body (``read_body``):
  408 in the one error shape when the client is slower. What a handler leaves
  unread of a body is drained for ``LINGER`` seconds at most (less when
  ``body_timeout`` is shorter), then the connection is closed.
- ``max_connections``: open connections at most; one more is answered ``503`` in the
  one error shape and closed at once, before it costs a parser or a task.

A request line over ``MAX_LINE`` bytes (the URL) is a 414, a header over
``MAX_FIELD`` bytes or more than ``MAX_HEADERS`` headers a 431, anything else the
HTTP parser refuses a 400: all in the one JSON error shape (``hub.http.errors``),
logged as one line without a traceback.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol, cast

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from hub.errors import HubError, RequestError
from hub.http.errors import json_error, raw_error

log = logging.getLogger(__name__)

MAX_LINE = 8190  # bytes of the request line (method, URL, version)
MAX_FIELD = 8190  # bytes of one header line
MAX_HEADERS = 100  # headers in one request
LINGER = 5.0  # seconds, at most, spent reading the rest of a body no handler read


@dataclass(frozen=True, slots=True)
class Limits:
    """How long a client may take and how many may be connected (see the module's doc);
    ``limits_of`` reads them from the GOVHUB_HTTP_* settings."""

    head_timeout: float = 20.0
    body_timeout: float = 60.0
    max_connections: int = 512


class HttpSettings(Protocol):
    """The part of ``hub.settings.Settings`` that ``limits_of`` reads."""

    @property
    def http_head_timeout(self) -> float: ...

    @property
    def http_body_timeout(self) -> float: ...

    @property
    def http_max_connections(self) -> int: ...


def limits_of(settings: HttpSettings) -> Limits:
    """The limits the GOVHUB_HTTP_* settings give (``hub.settings.Settings``)."""
    return Limits(
        head_timeout=settings.http_head_timeout,
        body_timeout=settings.http_body_timeout,
        max_connections=settings.http_max_connections,
    )


LIMITS = web.AppKey("http_limits", Limits)
"""The limits an app is served with (set by ``listen``; ``Limits()`` in tests)."""


class ServeError(HubError):
    """An HTTP server cannot be started (the address is taken, or not this machine's)."""


@dataclass(frozen=True)
class Server:
    """A started HTTP server and the address it listens on."""

    runner: web.AppRunner
    url: str

    async def serve_until(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then finish the requests in flight and close."""
        try:
            await stop.wait()
        finally:
            await self.runner.cleanup()


async def listen(
    app: web.Application,
    host: str,
    port: int,
    *,
    limits: Limits | None = None,
    shutdown: float = 5.0,
) -> Server:
    """Bind ``host:port`` (port 0: any free port) and start answering ``app`` within
    ``limits`` (default ``Limits()``); ``ServeError`` when the address cannot be used."""
    limits = limits or Limits()
    app[LIMITS] = limits
    handler_args: dict[str, Any] = {
        "keepalive_timeout": limits.head_timeout,
        # Reading what a handler left of a body (so the client reads the answer) is bounded
        # as the body itself is: a slow client is not given 10 more seconds.
        "lingering_time": min(limits.body_timeout, LINGER),
        "max_line_size": MAX_LINE,
        "max_field_size": MAX_FIELD,
        "max_headers": MAX_HEADERS,
    }
    runner = web.AppRunner(app, shutdown_timeout=shutdown, access_log=None, **handler_args)
    await runner.setup()
    site = _Site(runner, host, port, _Connections(limits.max_connections), handler_args)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ServeError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(choose another --port, or stop what uses it)"
        ) from exc
    bound = runner.addresses[0]
    where = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    return Server(runner, f"http://{where}:{bound[1]}")


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request's body: 413 over ``limit`` bytes, 408 when it takes longer than the
    app's ``Limits.body_timeout``; both in the one error shape."""
    too_large = RequestError(
        413, f"the body is over the limit of {limit:,} bytes; send less at a time", "body"
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    timeout = request.app.get(LIMITS, Limits()).body_timeout
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.content.iter_chunked(65536):
                body += chunk
                if len(body) > limit:
                    raise too_large
    except TimeoutError:
        message = f"the body did not arrive within {timeout:g} seconds; send it again"
        raise RequestError(408, message, "body", headers={"Connection": "close"}) from None
    return bytes(body)


class _Connections:
    """The count of open connections, shared by one server's handlers."""

    def __init__(self, limit: int) -> None:
        self.limit, self.open, self.refused = limit, 0, 0


class _Handler(RequestHandler):
    """aiohttp's handler, refusing connections past the limit and answering what the HTTP
    parser refuses (a long URL, too many headers) in the one error shape."""

    def __init__(self, manager: web.Server, connections: _Connections, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._connections = connections
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._connections.open >= self._connections.limit:
            message = "the server has too many connections; retry shortly"
            cast(asyncio.Transport, transport).write(raw_error(503, "Service Unavailable", message))
            transport.close()
            self._connections.refused += 1
            if self._connections.refused % 100 == 1:  # one line per hundred, not a flood
                log.warning(
                    "%d connection(s) refused so far: %d open, the limit (%s)",
                    self._connections.refused,
                    self._connections.open,
                    "GOVHUB_HTTP_MAX_CONNECTIONS",
                )
            return
        self._connections.open += 1
        self._counted = True
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._counted:
            return
        self._counted = False
        self._connections.open -= 1
        super().connection_lost(exc)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # a response has begun: nothing more to say
            raise ConnectionError("the response was already started")
        if isinstance(exc, LineTooLong):
            status = 414 if _is_request_line(exc.args[0] if exc.args else "") else 431
            text = "the address is too long" if status == 414 else "a header is too long"
            text += f" (at most {exc.args[1] if len(exc.args) > 1 else MAX_LINE} bytes)"
        elif isinstance(exc, BadHttpMessage) and "headers" in str(exc.message).lower():
            status, text = 431, f"too many headers (at most {MAX_HEADERS})"
        elif isinstance(exc, BadHttpMessage):
            status, text = 400, f"the request is not valid HTTP/1.1: {exc.message}"
        else:
            text = "the request failed on the server; it has been logged"
        if status >= 500:
            log.error("error handling request from %s", request.remote, exc_info=exc)
        else:
            log.info("refused request from %s: %s", request.remote, text)
        response = json_error(status, text)
        response.force_close()
        return response


def _is_request_line(line: object) -> bool:
    """Whether the line that was too long is the request's target, not a header: the
    parser quotes the URL (``/…``, ``http://…``) or the whole request line (``GET /…``);
    a header's name or value otherwise."""
    text = bytes(line).decode("latin-1") if isinstance(line, bytes | bytearray) else str(line)
    method, _, rest = text.partition(" ")
    return text.startswith(("/", "*", "http://", "https://")) or (
        method.isalpha() and method.isupper() and rest.startswith(("/", "http"))
    )


class _Site(web.BaseSite):
    """A TCP site whose connections are served by ``_Handler``."""

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        connections: _Connections,
        handler_args: dict[str, Any],
    ) -> None:
        super().__init__(runner)
        self._host, self._port = host, port
        self._connections, self._handler_args = connections, handler_args

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        if server is None:
            raise RuntimeError("the runner is not set up")
        manager: web.Server = server

        def handler() -> _Handler:
            return _Handler(manager, self._connections, loop=loop, **self._handler_args)

        self._server = await loop.create_server(handler, self._host, self._port)
