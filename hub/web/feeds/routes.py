"""The feed addresses: RSS 2.0 and Atom 1.0 for a node's own records or its subtree.

    /nodes/{id}/feed.atom   /nodes/{id}/feed.rss    the node and every node below it
    /nodes/{id}/own.atom    /nodes/{id}/own.rss     the node's own records

Query parameters: ``kind``, ``topic`` (主题分类 class), ``issuer``, ``lang`` (the
record's language) keep part of the scope; ``script=Hant`` gives the
Traditional Chinese version; ``page=K`` an RFC 5005 page (see
docs/portal-feeds.md). Anything else, or a bad value, is a 400 in the portal's
JSON error shape.

Documents are built and cached by ``hub.web.feeds.documents``.
"""

from __future__ import annotations

from aiohttp import web

from hub.errors import RequestError
from hub.http import errors
from hub.http.conditional import not_modified
from hub.records.model import KINDS, LANGUAGES
from hub.records.schema import topic_classes
from hub.store.feed_log.log import Filters
from hub.web.context import PORTAL, Portal
from hub.web.feeds.documents import (
    PAGE_SIZE,
    Document,
    FeedRequest,
    FeedState,
    cached_document,
)

PARAMETERS = ("kind", "topic", "issuer", "lang", "script", "page")
SCRIPTS = {"hans": "Hans", "hant": "Hant"}
MAX_ISSUER = 200
CACHE_KEY = "feeds"


def setup(app: web.Application, *, page_size: int = PAGE_SIZE, head_ttl: float = 1.0) -> None:
    """Add the feed routes. ``page_size`` is for tests: see ``PAGE_SIZE``."""
    app[PORTAL].caches[CACHE_KEY] = FeedState(page_size=page_size, head_ttl=head_ttl)
    errors.setup(app)
    app.router.add_get(r"/nodes/{id}/{name:(feed|own)}.{format:(atom|rss)}", serve_feed)


async def serve_feed(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    state: FeedState = portal.caches[CACHE_KEY]
    feed = parse_request(request, portal)
    document = await cached_document(portal, state, feed)
    return respond(request, document)


def respond(request: web.Request, document: Document) -> web.Response:
    """200 with the document, or 304 when the client's copy is current."""
    headers = {
        "ETag": document.etag,
        "Last-Modified": document.http_date,
        "Cache-Control": document.cache_control,
    }
    if not_modified(request, document.etag.strip('"'), document.last_modified):
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=document.body, headers=headers, content_type=document.media_type, charset="utf-8"
    )


# ---- the address ------------------------------------------------------------------------


def parse_request(request: web.Request, portal: Portal) -> FeedRequest:
    """The checked feed address, or ``RequestError`` naming what to fix."""
    node_id = request.match_info["id"]
    federation = portal.federation
    if node_id not in federation.nodes or not federation.is_in_subtree(node_id, portal.scope):
        raise RequestError(404, f"no node {node_id[:60]!r} in this portal", "id")
    query = request.query
    for name in query:
        if name not in PARAMETERS:
            allowed = ", ".join(PARAMETERS)
            raise RequestError(
                400, f"unknown parameter {name[:40]!r} (known: {allowed})", name[:40]
            )
        if len(query.getall(name)) > 1:
            raise RequestError(400, f"{name} is given more than once; give it once", name)
    kind = _choice(query.get("kind"), "kind", KINDS)
    topic = _choice(query.get("topic"), "topic", topic_classes())
    lang = _choice(query.get("lang"), "lang", LANGUAGES)
    issuer = query.get("issuer")
    if issuer is not None and (
        not issuer.strip() or len(issuer) > MAX_ISSUER or not issuer.isprintable()
    ):
        raise RequestError(
            400, f"issuer must be an agency name of 1 to {MAX_ISSUER} characters", "issuer"
        )
    script_text = query.get("script")
    script = "Hans" if script_text is None else SCRIPTS.get(script_text.lower())
    if script is None:
        raise RequestError(400, "script must be Hans (Simplified) or Hant (Traditional)", "script")
    page_text = query.get("page")
    page = None
    if page_text is not None:
        if not page_text.isdigit() or not page_text.isascii() or len(page_text) > 15:
            raise RequestError(400, "page must be a page number (0, 1, 2, …)", "page")
        page = int(page_text)
    return FeedRequest(
        node=federation.node(node_id),
        own=request.match_info["name"] == "own",
        format=request.match_info["format"],
        filters=Filters(kind=kind, topic=topic, issuer=issuer, lang=lang),
        script=script,
        page=page,
    )


def _choice(value: str | None, name: str, allowed: tuple[str, ...]) -> str | None:
    if value is None or value in allowed:
        return value
    raise RequestError(400, f"{name} must be one of {', '.join(allowed)}; not {value[:40]!r}", name)
