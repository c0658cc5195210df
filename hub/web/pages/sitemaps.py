"""``/robots.txt`` and the sitemaps, so national crawlers and archives can harvest every record.

Addresses (docs/portal-pages.md, "Robots and sitemaps"):

- ``/robots.txt`` allows everything and names the sitemap index;
- ``/sitemap.xml``, a sitemap index: one sitemap per node of the portal's subtree that
  has public records (the node's own records) and one per topic class (主题分类) found
  in the subtree, as the Dutch GPP-Woo publishes one per information category;
- ``/sitemaps/nodes/{id}/{page}.xml`` and ``/sitemaps/topics/{class}/{page}.xml``:
  the record pages' addresses with ``lastmod`` (the record's ``updated``, else its
  ``published`` time), oldest first, at most ``SITEMAP_URLS`` (50,000, the
  sitemaps.org limit) per file; a larger group is split into pages 1, 2, ….

Everything is read from the store on each request, so the files are current as
records arrive, change or are withdrawn (a withdrawn record leaves them). A
request is answered conditionally (``hub.http.conditional``): the validator of a
file is the count of its group's public records and the latest ``stored_at`` of
the group (withdrawals and revisions included), which changes with every change
that can change the file; it is read before the file is listed, so an unchanged
file costs one aggregate query and a 304.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web
from lxml import etree
from psycopg import sql

from hub.errors import RequestError
from hub.federation import Node
from hub.http.conditional import http_date, not_modified
from hub.web.context import PORTAL, Portal

NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
SITEMAP_URLS = web.AppKey("sitemap_urls", int)
"""URLs per sitemap file (50,000 by sitemaps.org; set lower only to test the split)."""
LIMIT = 50_000
CONTENT_TYPE = "application/xml"
_PCHAR = ":@!$&'()*+,;=-._~"  # RFC 3986 pchar: kept as they are in a path segment

# The portal's subtree: the scope's path and the range [path || '.', path || '/') below it.
_GROUPS = sql.SQL(
    "SELECT {column}, count(*) FILTER (WHERE NOT withdrawn), max(stored_at) FROM records"
    " WHERE (path = %(path)s OR (path >= %(path)s || '.' AND path < %(path)s || '/'))"
    " AND {column} IS NOT NULL GROUP BY 1 ORDER BY 1"
)
_FINGERPRINT = sql.SQL(
    "SELECT count(*) FILTER (WHERE NOT withdrawn), max(stored_at) FROM records"
    " WHERE (path = %(path)s OR (path >= %(path)s || '.' AND path < %(path)s || '/'))"
    " AND {column} = %(value)s"
)
_URLS = sql.SQL(
    "SELECT id, coalesce(updated, published) FROM records"
    " WHERE (path = %(path)s OR (path >= %(path)s || '.' AND path < %(path)s || '/'))"
    " AND {column} = %(value)s AND NOT withdrawn"
    " ORDER BY published, id OFFSET %(offset)s LIMIT %(limit)s"
)
_COLUMNS = {"nodes": sql.Identifier("node"), "topics": sql.Identifier("topic_class")}


def setup(app: web.Application) -> None:
    """Add ``/robots.txt``, the sitemap index and the sitemaps to ``app``."""
    app.router.add_get("/robots.txt", _robots)
    app.router.add_get("/sitemap.xml", _index)
    app.router.add_get(r"/sitemaps/{group:nodes|topics}/{value:.+?}/{page:\d{1,9}}.xml", _sitemap)


async def _robots(request: web.Request) -> web.StreamResponse:
    portal = request.app[PORTAL]
    text = f"User-agent: *\nAllow: /\n\nSitemap: {portal.base_url}/sitemap.xml\n"
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def _index(request: web.Request) -> web.StreamResponse:
    portal = request.app[PORTAL]
    per_file = request.app.get(SITEMAP_URLS, LIMIT)
    scope = portal.federation.node(portal.scope)
    groups: list[tuple[str, str, int, datetime]] = []
    async with portal.pool.connection() as conn:
        for group, column in _COLUMNS.items():
            query = _GROUPS.format(column=column)
            for value, count, stored in await (await conn.execute(query, _where(scope))).fetchall():
                groups.append((group, value, count, stored))
    last = max((stored for *_, stored in groups), default=None)
    etag = _etag("index", per_file, *((g, v, c, s.isoformat()) for g, v, c, s in groups))
    if not_modified(request, etag, last):
        return _not_modified(etag, last)
    root = etree.Element(f"{{{NS}}}sitemapindex", nsmap={None: NS})
    for group, value, count, stored in groups:
        for page in range(1, math.ceil(count / per_file) + 1):
            entry = etree.SubElement(root, f"{{{NS}}}sitemap")
            _text(entry, "loc", f"{portal.base_url}{_sitemap_path(group, value, page)}")
            _text(entry, "lastmod", _w3c(stored))
    return _xml(root, etag, last)


def _sitemap_path(group: str, value: str, page: int) -> str:
    return f"/sitemaps/{group}/{quote(value, safe=_PCHAR.replace('/', ''))}/{page}.xml"


async def _sitemap(request: web.Request) -> web.StreamResponse:
    portal = request.app[PORTAL]
    per_file = request.app.get(SITEMAP_URLS, LIMIT)
    group, value = request.match_info["group"], request.match_info["value"]
    page = int(request.match_info["page"])
    scope = portal.federation.node(portal.scope)
    if group == "nodes":
        _node_in_scope(portal, value)
    params = {**_where(scope), "value": value}
    column = _COLUMNS[group]
    async with portal.pool.connection() as conn:
        cur = await conn.execute(_FINGERPRINT.format(column=column), params)
        count, stored = await cur.fetchone() or (0, None)
        if stored is None or not 1 <= page <= math.ceil(count / per_file):
            what = "节点" if group == "nodes" else "主题分类"
            raise RequestError(404, f"没有站点地图：{what} {value[:40]} 第 {page} 页", "page")
        etag = _etag(group, value, page, per_file, count, stored.isoformat())
        if not_modified(request, etag, stored):
            return _not_modified(etag, stored)
        params |= {"offset": (page - 1) * per_file, "limit": per_file}
        rows = await (await conn.execute(_URLS.format(column=column), params)).fetchall()
    return _xml(_urlset(portal.base_url, rows), etag, stored)


def _node_in_scope(portal: Portal, node_id: str) -> None:
    federation = portal.federation
    if node_id not in federation.nodes or not federation.is_in_subtree(node_id, portal.scope):
        raise RequestError(404, f"本门户没有节点 {node_id[:40]}", "value")


def _urlset(base_url: str, rows: Iterable[Sequence[Any]]) -> etree._Element:
    root = etree.Element(f"{{{NS}}}urlset", nsmap={None: NS})
    for record_id, modified in rows:
        entry = etree.SubElement(root, f"{{{NS}}}url")
        _text(entry, "loc", f"{base_url}/records/{quote(record_id, safe=_PCHAR)}")
        _text(entry, "lastmod", _w3c(modified))
    return root


def _where(scope: Node) -> dict[str, Any]:
    return {"path": scope.path}


def _text(parent: etree._Element, name: str, text: str) -> None:
    etree.SubElement(parent, f"{{{NS}}}{name}").text = text


def _w3c(when: datetime) -> str:
    """A W3C Datetime in UTC to the second (``2024-05-21T02:14:09+00:00``), as sitemaps.org
    asks for ``lastmod``."""
    return when.astimezone(UTC).replace(microsecond=0).isoformat()


def _etag(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def _headers(etag: str, last: datetime | None) -> dict[str, str]:
    headers = {"ETag": f'"{etag}"', "Cache-Control": "no-cache"}
    if last is not None:
        headers["Last-Modified"] = http_date(last)
    return headers


def _not_modified(etag: str, last: datetime | None) -> web.Response:
    return web.Response(status=304, headers=_headers(etag, last))


def _xml(root: etree._Element, etag: str, last: datetime | None) -> web.Response:
    body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    response = web.Response(body=body, headers=_headers(etag, last))
    response.content_type, response.charset = CONTENT_TYPE, "utf-8"
    return response
