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
has govhub's one JSON shape (``hub.http.errors``): ``{"status": 400, "error":
"...", "parameter": "kind"}`` (``parameter`` is null when no parameter is at
fault); a refused push adds ``"problems"``, one line per problem. The server is
started by ``hub.http.listen.listen``, with its timeouts and connection limit.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

from aiohttp import web

from adapters.push import PushSource, spool
from hub import records
from hub.errors import Problem, RequestError
from hub.federation import KINDS, Node
from hub.federation.origins import origin_problems
from hub.http import errors
from hub.http.conditional import http_date, not_modified
from hub.http.listen import read_body
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
    app = web.Application(middlewares=[errors.middleware])
    app[VIEW] = view
    app.router.add_get("/inbox.atom", _atom)
    app.router.add_get("/inbox.rss", _rss)
    app.router.add_get("/inbox.json", _json)
    app.router.add_get("/status", _status)
    app.router.add_post("/push/{source}", _push)
    return app


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

    Checked in that order, each failure with its status: 401 no bearer token, or
    one that is not the token of the push source named (an unknown source
    included: nothing is said about which sources exist before a token is
    right), 404 no such source (to a token that opens others), 415 not XML,
    413 too large, 408 too slow, 422 not valid records or not this node's (kept
    in the ``refused`` table with the reasons, like every refused record). 202
    only once the body is durably in the spool; the harvester's push source takes
    it from there.
    """
    view = request.app[VIEW]
    name = request.match_info["source"]
    source = _authenticated(request, view.push, name)
    if request.content_type not in PUSH_TYPES and not request.content_type.endswith("+xml"):
        message = f"{request.content_type!r} is not a record; send Content-Type: application/xml"
        raise RequestError(415, message, "Content-Type")
    body = await read_body(request, source.max_bytes)
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


def _authenticated(
    request: web.Request, sources: Mapping[str, PushSource], name: str
) -> PushSource:
    """The push source ``name`` when the request bears its token. Otherwise 401, the same
    for a wrong token and an unknown source: without a token no one learns which sources
    exist. A token that opens other sources of the node gets a 404 naming those."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or not token.isascii() or not token.isprintable():
        raise RequestError(
            401,
            "send the push token as Authorization: Bearer <token> (printable ASCII)",
            "Authorization",
            headers={"WWW-Authenticate": 'Bearer realm="govhub push"'},
        )
    given = token.encode()
    opens = sorted(
        key for key, s in sources.items() if hmac.compare_digest(given, s.token.encode())
    )
    node = request.app[VIEW].node.id
    if name in opens:
        return sources[name]
    if opens:
        known = ", ".join(opens)
        message = f"node {node!r} has no push source {name[:60]!r} (this token opens: {known})"
        raise RequestError(404, message, "source")
    raise RequestError(
        401,
        f"this token does not open push source {name[:60]!r} of node {node!r}",
        "Authorization",
        headers={"WWW-Authenticate": 'Bearer realm="govhub push", error="invalid_token"'},
    )


async def _refuse(view: View, where: str, problems: list[Problem], body: bytes) -> NoReturn:
    """Keep the refused body with its reasons (never dropped), then answer 422."""

    def keep(conn: sqlite3.Connection) -> None:
        with transaction(conn):
            keep_refused(conn, where, problems, body)

    await view.read(keep)
    count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
    lines = [str(problem) for problem in problems]
    message = f"not taken: {count}; nothing was spooled"
    raise RequestError(422, message, "body", details={"problems": lines})


# -- Parameters and responses --------------------------------------------------


def _kind(request: web.Request) -> str | None:
    kind = request.query.get("kind")
    if kind is None:
        return None
    if kind not in KINDS:
        message = f"{kind[:40]!r} is not a record kind: one of {', '.join(KINDS)}"
        raise RequestError(400, message, "kind")
    return kind


def _limit(request: web.Request) -> int:
    text = request.query.get("limit", str(DEFAULT_LIMIT))
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise RequestError(400, f"{text[:40]!r} is not a number from 1 to {MAX_LIMIT}", "limit")
    return int(text)


def _json_response(body: object, *, status: int = 200, headers: Any = None) -> web.Response:
    text = json.dumps(body, ensure_ascii=False, indent=2)
    return web.Response(text=text, status=status, content_type="application/json", headers=headers)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None
