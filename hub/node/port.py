"""The node's local HTTP port: its inbox for the site's CMS, and its status.

    GET /inbox.atom   Atom 1.0        ?kind=KIND  ?limit=N (default 50, at most 500)
    GET /inbox.rss    RSS 2.0         the same parameters
    GET /inbox.json   the records with their main fields and the record XML
    GET /status       node, outbox, review queue, inbox, consumer and webhook counts
    POST /push/{source}  a record or <records> batch from the site's CMS (bearer token):
                      checked, then spooled durably for the push adapter; 202 Accepted

The inbox endpoints answer conditional requests: the ``ETag`` changes with
every record the inbox takes in, ``Last-Modified`` is when the newest came, and
``If-None-Match`` / ``If-Modified-Since`` get ``304 Not Modified``. Every error
has one JSON shape: ``{"status": 400, "error": "...", "parameter": "kind"}``
(``parameter`` is null when no parameter is at fault); a refused push adds
``"problems"``, one line per problem.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

from aiohttp import web

from adapters.push import PushSource, spool
from hub import records
from hub.errors import HubError, Problem
from hub.federation import KINDS, Node
from hub.federation.origins import origin_problems
from hub.http.conditional import http_date, not_modified
from hub.http.errors import error_body
from hub.inbox import entries as inbox
from hub.inbox.consumer import Tally
from hub.inbox.entries import Item
from hub.inbox.render import atom_bytes, json_bytes, rss_bytes
from hub.inbox.webhook import Webhook
from hub.nodedb import transaction
from hub.outbox import entries as outbox
from hub.outbox import held
from hub.outbox.refused import keep_refused

log = logging.getLogger(__name__)

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T = TypeVar("T")


class ParameterError(web.HTTPBadRequest):
    """A query parameter that cannot be used: 400, naming the parameter."""

    def __init__(self, parameter: str, error: str) -> None:
        super().__init__(reason="Bad Request")
        self.parameter = parameter
        self.error = error


class PushRefused(Exception):
    """A push that is not taken: its status, what is wrong, and with what."""

    def __init__(
        self, status: int, error: str, parameter: str | None, problems: list[Problem] | None = None
    ) -> None:
        super().__init__(error)
        self.status, self.error, self.parameter = status, error, parameter
        self.problems = problems


@dataclass
class View:
    """What the HTTP handlers read: the node, its own state connection, live counters."""

    node: Node
    state: sqlite3.Connection
    tally: Tally | None = None
    webhook: Webhook | None = None
    push: Mapping[str, PushSource] = field(default_factory=dict)  # adapters.push.push_sources

    def __post_init__(self) -> None:
        self._lock = asyncio.Lock()  # one query at a time on this connection, off the loop

    async def read(self, query: Callable[..., T], *args: Any) -> T:
        async with self._lock:
            return await asyncio.to_thread(query, self.state, *args)


VIEW = web.AppKey("view", View)


def make_app(view: View) -> web.Application:
    app = web.Application(middlewares=[_json_errors])
    app[VIEW] = view
    app.router.add_get("/inbox.atom", _atom)
    app.router.add_get("/inbox.rss", _rss)
    app.router.add_get("/inbox.json", _json)
    app.router.add_get("/status", _status)
    app.router.add_post("/push/{source}", _push)
    return app


class ServeError(HubError):
    """The node's HTTP port cannot be opened."""


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


async def listen(app: web.Application, host: str, port: int, *, shutdown: float = 5.0) -> Server:
    """Bind ``host:port`` (port 0: any free port) and start answering."""
    runner = web.AppRunner(app, shutdown_timeout=shutdown, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ServeError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(choose another --port, or stop what uses it)"
        ) from exc
    bound = runner.addresses[0]
    where = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    return Server(runner, f"http://{where}:{bound[1]}")


# -- Handlers ---------------------------------------------------------------------------------


async def _atom(request: web.Request) -> web.StreamResponse:
    return await _inbox(request, "atom", "application/atom+xml", atom_bytes)


async def _rss(request: web.Request) -> web.StreamResponse:
    return await _inbox(request, "rss", "application/rss+xml", rss_bytes)


async def _json(request: web.Request) -> web.StreamResponse:
    return await _inbox(request, "json", "application/json", json_bytes)


Render = Callable[[Node, list[Item], str, datetime], bytes]


async def _inbox(
    request: web.Request, name: str, content_type: str, render: Render
) -> web.StreamResponse:
    """Read the parameters, answer 304 if the client is current, else render the inbox."""
    view = request.app[VIEW]
    kind, limit = _kind(request), _limit(request)
    # The version first, the records second: a record that arrives in between is in the body
    # under the older ETag, so the next request fetches again; never the other way round.
    seq, received_at = await view.read(inbox.last_change)
    etag = f"{name}-{seq}-{kind or 'all'}-{limit}"
    headers = {"ETag": f'"{etag}"', "Cache-Control": "no-cache"}
    modified = received_at.replace(microsecond=0) if received_at else None  # HTTP: seconds
    if modified is not None:
        headers["Last-Modified"] = http_date(modified)
    if not_modified(request, etag, modified):
        return web.Response(status=304, headers=headers)
    items = await view.read(inbox.latest, limit, kind)
    body = render(view.node, items, str(request.url), received_at or EPOCH)
    return web.Response(body=body, content_type=content_type, charset="utf-8", headers=headers)


async def _status(request: web.Request) -> web.StreamResponse:
    view = request.app[VIEW]
    sent = await view.read(outbox.counts)
    waiting = await view.read(held.list_held)
    received = await view.read(inbox.counts)
    body = {
        "node": view.node.id,
        "name": view.node.name,
        "path": view.node.path,
        "outbox": asdict(sent),
        "held": len(waiting),
        "inbox": {
            "records": received.records,
            "withdrawn": received.withdrawn,
            "revisions": received.revisions,
            "by_kind": received.by_kind,
            "last_received_at": _iso(received.last_received_at),
        },
        "consumer": asdict(view.tally) if view.tally else None,
        "webhook": (
            {"url": view.webhook.url, "queued": view.webhook.queued, **asdict(view.webhook.stats)}
            if view.webhook
            else None
        ),
    }
    return _json_response(body, headers={"Cache-Control": "no-store"})


PUSH_TYPES = ("application/xml", "text/xml")


async def _push(request: web.Request) -> web.StreamResponse:
    """Take a record or batch from the site's CMS: token, type, size, records, then the spool.

    Checked in that order, each failure with its status: 404 no such push source,
    401 no bearer token, 403 a wrong one, 415 not XML, 413 too large, 422 not
    valid records or not this node's (kept in the ``refused`` table with the
    reasons, like every refused record). 202 only once the body is durably in
    the spool; the harvester's push source takes it from there.
    """
    view = request.app[VIEW]
    name = request.match_info["source"]
    source = view.push.get(name)
    if source is None:
        known = ", ".join(sorted(view.push)) or "none"
        message = f"node {view.node.id!r} has no push source {name!r} (push sources: {known})"
        raise PushRefused(404, message, "source")
    _check_token(request, source)
    if request.content_type not in PUSH_TYPES and not request.content_type.endswith("+xml"):
        message = f"{request.content_type!r} is not a record; send Content-Type: application/xml"
        raise PushRefused(415, message, "Content-Type")
    body = await _body(request, source.max_bytes)
    where = f"push:{name}"
    try:
        found = records.parse_batch(body, where, limits=records.Limits(max_bytes=source.max_bytes))
    except records.RecordInvalid as exc:
        await _refuse(view, where, exc.problems, body)
    problems = [
        p
        for record in found
        for p in origin_problems(
            record, view.node, f"{where} {record.id}", came=f"pushed to node {view.node.id!r}"
        )
    ]
    if not found:
        problems.append(Problem(where, None, "records", "the batch holds no records", "a record"))
    if problems:
        await _refuse(view, where, problems, body)
    spooled = await asyncio.to_thread(spool, source.spool, body)
    log.info(
        "push to %s: %d record(s) spooled as %s",
        name,
        len(found),
        spooled,
        extra={"node": view.node.id, "source": name, "stage": "push"},
    )
    answer = {"status": 202, "accepted": [record.id for record in found], "spooled": spooled}
    return _json_response(answer, status=202)


def _check_token(request: web.Request, source: PushSource) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        message = "send the push token as Authorization: Bearer <token>"
        raise PushRefused(401, message, "Authorization")
    if not hmac.compare_digest(token.strip().encode(), source.token.encode()):
        raise PushRefused(403, f"wrong token for push source {source.name!r}", "Authorization")


async def _body(request: web.Request, limit: int) -> bytes:
    too_large = PushRefused(
        413, f"the body is over the limit of {limit:,} bytes; push fewer records at a time", None
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.content.iter_chunked(65536):
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


async def _refuse(view: View, where: str, problems: list[Problem], body: bytes) -> NoReturn:
    """Keep the refused body with its reasons (never dropped), then answer 422."""

    def keep(conn: sqlite3.Connection) -> None:
        with transaction(conn):
            keep_refused(conn, where, problems, body)

    await view.read(keep)
    count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
    raise PushRefused(422, f"not taken: {count}; nothing was spooled", "body", problems)


# -- Parameters, conditional requests, errors --------------------------------------------------


def _kind(request: web.Request) -> str | None:
    kind = request.query.get("kind")
    if kind is None:
        return None
    if kind not in KINDS:
        raise ParameterError("kind", f"{kind!r} is not a record kind: one of {', '.join(KINDS)}")
    return kind


def _limit(request: web.Request) -> int:
    text = request.query.get("limit", str(DEFAULT_LIMIT))
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise ParameterError("limit", f"{text!r} is not a number from 1 to {MAX_LIMIT}")
    return int(text)


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ParameterError as exc:
        return _error(400, exc.error, exc.parameter)
    except PushRefused as exc:
        response = _error(exc.status, exc.error, exc.parameter, problems=exc.problems)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="govhub push"'
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = f"{exc.reason}: {request.method} {request.path}"
        return _error(exc.status, message, None, headers=exc.headers)
    except Exception:
        log.exception("error serving %s", request.path, extra={"stage": "serve"})
        return _error(500, "internal error; the node's log has the details", None)


def _error(
    status: int,
    error: str,
    parameter: str | None,
    headers: Any = None,
    problems: list[Problem] | None = None,
) -> web.Response:
    body: dict[str, Any] = error_body(status, error, parameter)  # the portal's shape
    if problems is not None:
        body["problems"] = [str(problem) for problem in problems]
    response = _json_response(body, status=status)
    if headers and "Allow" in headers:  # 405 says what is allowed
        response.headers["Allow"] = headers["Allow"]
    return response


def _json_response(body: object, *, status: int = 200, headers: Any = None) -> web.Response:
    text = json.dumps(body, ensure_ascii=False, indent=2)
    return web.Response(text=text, status=status, content_type="application/json", headers=headers)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None
