"""Serving the portal: pages, feeds, API and search over the store, on one address."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from hub.federation import Federation
from hub.http.listen import Limits, Server, listen
from hub.web.app import make_app
from hub.web.context import Portal

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PortalOptions:
    """Where the portal listens, and the public address its pages and feeds link to."""

    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = ""  # e.g. https://portal.example.gov.cn; "": the address it listens on
    pool_size: int = 8  # database connections the web server may hold
    limits: Limits = field(default_factory=Limits)  # timeouts and connection limit (GOVHUB_HTTP_*)


@contextlib.asynccontextmanager
async def serving_portal(
    federation: Federation,
    scope: str,
    url: str,
    options: PortalOptions,
    extend: Callable[[web.Application], None] | None = None,
) -> AsyncIterator[Server]:
    """Serve the portal of ``scope`` from the store at ``url`` while the block runs;
    ``extend`` may add routes to the app before it starts (the demo's extras)."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url, open=False, min_size=1, max_size=options.pool_size, kwargs={"autocommit": True}
    )
    await pool.open()
    try:
        portal = Portal(federation, pool, options.base_url.rstrip("/"), scope)
        app = make_app(portal)
        if extend is not None:
            extend(app)
        server = await listen(app, options.host, options.port, limits=options.limits)
        portal.base_url = portal.base_url or server.url
        log.info("portal of %s on %s", scope, server.url, extra={"node": scope, "stage": "portal"})
        try:
            yield server
        finally:
            await server.runner.cleanup()
    finally:
        await pool.close()
