"""What every part of the web server shares: the map, the database pool, the base URL.

A part (pages, feeds, API, search) is a module with ``setup(app)`` that adds its
routes; it reaches the shared state as ``request.app[PORTAL]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from hub.federation import Federation


@dataclass
class Portal:
    """The state of one hub's portal.

    ``scope`` is the id of the node whose subtree this hub aggregates (the root
    for the central portal); ``base_url`` is the public address that feeds and
    pages use for absolute links (``https://portal.example.gov.cn``, no slash at
    the end). ``caches`` holds each part's in-process caches, by part name.
    """

    federation: Federation
    pool: AsyncConnectionPool[Any]
    base_url: str
    scope: str
    caches: dict[str, Any] = field(default_factory=dict)


PORTAL = web.AppKey("portal", Portal)
