"""The portal's web application, built from its parts.

Each part is a module with ``setup(app)`` that adds its routes and reads the
shared state as ``request.app[PORTAL]``: the pages for people, robots.txt and
the sitemaps, the RSS/Atom feeds, the JSON API, its search, and the OpenAPI
description of the API (last: it describes what the API parts registered).
Listing the parts here, explicitly, keeps start-up free of plugin discovery.
Every error, whatever the part, goes through the one error middleware
(``hub.http.errors``): the pages' HTML error page for people's addresses, the
one JSON shape for the others.
"""

from __future__ import annotations

from aiohttp import web

from hub.http import errors
from hub.web.api import openapi, search
from hub.web.api import records as api
from hub.web.context import PORTAL, Portal
from hub.web.feeds import routes as feeds
from hub.web.pages import routes as pages
from hub.web.pages import sitemaps

PARTS = (pages, sitemaps, feeds, api, search, openapi)


def make_app(portal: Portal) -> web.Application:
    """The aiohttp application serving ``portal`` (not started: see ``hub.http.listen``)."""
    app = web.Application(middlewares=[errors.middleware])
    app[PORTAL] = portal
    for part in PARTS:
        part.setup(app)
    return app
