"""The portal's web pages for people: server-rendered HTML that needs no JavaScript.

Addresses (docs/portal-pages.md): ``/`` (to the portal's root node), ``/nodes``
(the node directory), ``/nodes/{id}/`` (a node's portal home over its subtree),
``/nodes/{id}/catalogue`` (its 信息公开目录), ``/records/{id}`` and ``/search``.
Every page takes ``?lang=zh-Hant`` for Traditional Chinese.

Records are hostile input: templates autoescape everything, and the only markup
written as is is a record body, which the record standard has already reduced
to sanitized XHTML. Pages send a Content-Security-Policy without scripts as a
second line of defence.

The rendering that every page shares (templates, Traditional conversion, the page
context, error pages) is in ``hub.web.pages.render``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from markupsafe import Markup

from hub import records
from hub.errors import HubError, RequestError
from hub.federation import Node
from hub.http import errors
from hub.records import KINDS as RECORD_KINDS
from hub.records.html import body_html
from hub.records.schema import topic_classes
from hub.store.links.queries import by_province, latest_grouped, record_links
from hub.store.search.query import (
    FIRST_YEAR,
    LAST_YEAR,
    SORTS,
    SearchQuery,
    SearchQueryError,
    search,
)
from hub.store.search.snippets import segments
from hub.web import kinds
from hub.web.pages.render import CHINA, TEMPLATES, Templates, View, error_page
from hub.web.traditional import to_traditional

HERE = Path(__file__).parent
LATEST = 20  # records on a node's home page
ALERTS = 5  # emergency notices above them
PAGE = 50  # rows per catalogue or search page
CURSOR = re.compile(r"(\d{4}-\d\d-\d\dT[\d:.]+(?:[+-]\d\d:\d\d|Z))\|(urn:govhub:[!-~]{1,200})")
HOME = web.AppKey("pages_home", str)
"""Where ``/`` leads (set before serving); by default the portal node's home page."""


def setup(app: web.Application) -> None:
    """Add the pages' routes, the static files and the HTML error pages to ``app``."""
    app[TEMPLATES] = Templates.load()
    app[errors.ERROR_PAGE] = error_page
    errors.setup(app)
    app.router.add_get("/", _root)
    app.router.add_get("/nodes", _directory)
    app.router.add_get("/nodes/", _to_directory)
    app.router.add_get("/nodes/{id}", _to_home)
    app.router.add_get("/nodes/{id}/", _home)
    app.router.add_get("/nodes/{id}/catalogue", _catalogue)
    app.router.add_get("/records/{id}", _record)
    app.router.add_get("/search", _search)
    app.router.add_get("/static/{name}", _static)


STATIC = {file.name: file for file in (HERE / "static").iterdir() if file.is_file()}
"""The pages' static files, by name (the stylesheet); nothing else is served from disk."""


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    file = STATIC.get(name)
    if file is None:  # answered here: aiohttp's file handler would send a bare 404
        raise RequestError(404, f"没有文件 /static/{name[:60]}", "name")
    return web.FileResponse(file, headers={"Cache-Control": "public, max-age=3600"})


# -- Pages -------------------------------------------------------------------------------------


async def _root(request: web.Request) -> web.StreamResponse:
    view = View.of(request)
    raise web.HTTPFound(view.url(request.app.get(HOME) or f"/nodes/{view.portal.scope}/"))


async def _to_directory(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently(View.of(request).url("/nodes"))


async def _to_home(request: web.Request) -> web.StreamResponse:
    view = View.of(request)
    raise web.HTTPMovedPermanently(view.url(f"/nodes/{view.node(request.match_info['id']).id}/"))


async def _directory(request: web.Request) -> web.StreamResponse:
    view = View.of(request)
    root = view.federation.node(view.portal.scope)
    nodes = [
        (n, n.path.count(".") - root.path.count(".")) for n in view.federation.subtree(root.id)
    ]
    return view.render("directory.html", node=root, nodes=nodes)


async def _home(request: web.Request) -> web.StreamResponse:
    view = View.of(request)
    node = view.node(request.match_info["id"])
    async with view.portal.pool.connection() as conn:
        alerts = await latest_grouped(conn, node.path, ALERTS, alerts=True)
        latest = await latest_grouped(conn, node.path, LATEST)
    chain = [n for n in reversed(view.federation.ancestors(node.id)) if _in_scope(view, n)]
    return view.render(
        "home.html",
        node=node,
        alerts=alerts,
        latest=[item for item in latest if item.id not in {a.id for a in alerts}],
        chain=chain,
        children=view.federation.children(node.id),
    )


def _in_scope(view: View, node: Node) -> bool:
    return view.federation.is_in_subtree(node.id, view.portal.scope)


async def _record(request: web.Request) -> web.StreamResponse:
    view = View.of(request)
    record_id = request.match_info["id"]
    async with view.portal.pool.connection() as conn:
        cur = await conn.execute("SELECT xml FROM records WHERE id = %s", [record_id])
        row = await cur.fetchone()
        if row is None:
            raise RequestError(404, f"没有记录 {record_id[:80]}", "id")
        links = await record_links(conn, record_id)
    try:
        record = records.parse(row[0].encode("utf-8"), record_id)
    except HubError as exc:
        raise RequestError(500, "这条记录无法显示") from exc
    node = view.node(record.origin.node)
    api = f"/api/records/{record.id}"
    alternates = [
        ("XML", "application/xml", view.url(api, format="xml")),
        ("JSON", "application/json", view.url(api)),
    ]
    return view.render(
        "record.html",
        node=node,
        record=record,
        body=_body(record.body, view.lang),
        sections=kinds.sections(record),
        links=links,
        implementations=by_province(view.federation, links.incoming_of("implements")),
        copies=by_province(view.federation, links.copies),
        alternates=alternates,
    )


def _body(body: str | None, lang: str) -> Markup | None:
    """The record's sanitized XHTML body as HTML (``hub.records.html``: every element
    closed, so an empty ``<a/>`` cannot swallow the page), its text (never its
    addresses) converted if asked."""
    if not body:
        return None
    convert = to_traditional if lang == "zh-Hant" else None
    return Markup(body_html(body, convert))  # noqa: S704 - sanitized by the record standard


_TOPICS = """
SELECT topic_class, count(*) FROM records WHERE node = %(node)s AND NOT withdrawn
GROUP BY 1 ORDER BY 2 DESC, 1
"""
_YEARS = """
SELECT extract(year FROM published AT TIME ZONE 'Asia/Shanghai')::int, count(*)
FROM records WHERE node = %(node)s AND NOT withdrawn GROUP BY 1 ORDER BY 1 DESC
"""
_CATALOGUE = """
SELECT id, index_number, title, doc_number, published, topic_class FROM records
WHERE node = %(node)s AND NOT withdrawn
  AND (%(topic)s::text IS NULL OR topic_class = %(topic)s)
  AND (%(from)s::timestamptz IS NULL OR (published >= %(from)s AND published < %(to)s))
  AND (%(after_published)s::timestamptz IS NULL
       OR (published, id) < (%(after_published)s, %(after_id)s::text))
ORDER BY published DESC, id DESC LIMIT %(limit)s
"""


async def _catalogue(request: web.Request) -> web.StreamResponse:
    view = View.of(request)
    node = view.node(request.match_info["id"])
    topic = request.query.get("topic") or None
    if topic is not None and len(topic) > 40:
        raise RequestError(400, "主题分类参数过长", "topic")
    year = _year(request.query.get("year"))
    after = _cursor(request.query.get("after"))
    params: dict[str, Any] = {
        "node": node.id,
        "topic": topic,
        "from": datetime(year, 1, 1, tzinfo=CHINA) if year else None,
        "to": datetime(year + 1, 1, 1, tzinfo=CHINA) if year else None,
        "after_published": after[0] if after else None,
        "after_id": after[1] if after else None,
        "limit": PAGE + 1,
    }
    async with view.portal.pool.connection() as conn:
        topics = await (await conn.execute(_TOPICS, params)).fetchall()
        years = await (await conn.execute(_YEARS, params)).fetchall()
        rows = await (await conn.execute(_CATALOGUE, params)).fetchall()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    next_page = None
    if more:
        last = rows[-1]
        cursor = f"{last[4].astimezone(UTC).isoformat()}|{last[0]}"
        next_page = view.url(request.path, topic=topic, year=year, after=cursor)
    return view.render(
        "catalogue.html",
        node=node,
        topic=topic,
        year=year,
        topics=topics,
        years=years,
        rows=rows,
        next_page=next_page,
    )


def _year(text: str | None) -> int | None:
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or not 1949 <= int(text) <= 2100:
        raise RequestError(400, f"年份参数无效：{text[:20]}（应为四位年份，如 2019）", "year")
    return int(text)


def _cursor(text: str | None) -> tuple[datetime, str] | None:
    if not text:
        return None
    found = CURSOR.fullmatch(text)
    try:
        when = datetime.fromisoformat(found.group(1)) if found else None
    except ValueError:
        when = None
    if found is None or when is None:
        raise RequestError(400, "翻页参数 after 无效（请从列表的“下一页”链接进入）", "after")
    return when, found.group(2)


async def _search(request: web.Request) -> web.StreamResponse:
    """Search through ``hub.store.search.query`` (Traditional and Simplified find each
    other there). Filters and sort take the JSON API's names (node, scope, kind, topic,
    year, sort, cursor); each result shows its title and snippet as written, matches
    marked, in the page's script."""
    view = View.of(request)
    q = request.query.get("q", "").strip()
    given = _search_filters(view, request.query)
    scope = view.node(given["scope"] or view.portal.scope)
    result = None
    if q:
        cursor = request.query.get("cursor") or request.query.get("after") or None
        try:
            query = SearchQuery(
                q,
                scope=scope.path,
                node=given["node"],
                kind=given["kind"],
                topic=given["topic"],
                year=int(given["year"]) if given["year"] else None,
                sort=given["sort"] or "relevance",
                limit=PAGE,
                cursor=cursor,
            )
            async with view.portal.pool.connection() as conn:
                result = await search(conn, query)
        except SearchQueryError as exc:
            raise RequestError(
                400, f"搜索参数 {exc.parameter} 无效：{exc}", exc.parameter
            ) from None

    def link(**change: str | None) -> str:
        """This search with ``change`` (a filter set, or None: removed), first page."""
        return view.url("/search", q=q, **{**given, **change})

    next_page = None
    if result is not None and result.next_cursor:
        next_page = view.url("/search", q=q, **given, cursor=result.next_cursor)
    rows = [
        (hit, segments(hit.title, hit.title_marks), segments(hit.snippet, hit.snippet_marks))
        for hit in (result.hits if result else [])
    ]
    return view.render(
        "search.html",
        node=scope,
        q=q,
        result=result,
        rows=rows,
        given=given,
        link=link,
        next_page=next_page,
        topics=topic_classes(),
        record_kinds=list(RECORD_KINDS),
        sorts={"relevance": "相关度", "date": "发布日期"},
    )


def _search_filters(view: View, query: Mapping[str, str]) -> dict[str, str | None]:
    """The search page's filters (the JSON API's names), checked; each a 400 naming it."""
    given = {name: query.get(name) or None for name in ("scope", "node", "kind", "topic")}
    given |= {"year": query.get("year") or None, "sort": query.get("sort") or None}
    for name in ("scope", "node"):
        value = given[name]
        if value is not None and (
            value not in view.federation.nodes or not _in_scope(view, view.federation.node(value))
        ):
            raise RequestError(400, f"节点参数无效：{name}={value[:40]}", name)
    checks = {
        "kind": (RECORD_KINDS, "、".join(RECORD_KINDS)),
        "topic": (topic_classes(), "主题分类，如 综合政务"),
        "sort": (SORTS, "relevance、date"),
    }
    for name, (allowed, hint) in checks.items():
        value = given[name]
        if value is not None and value not in allowed:
            raise RequestError(400, f"参数 {name}={value[:40]} 无效（可用：{hint}）", name)
    year = given["year"]
    if year is not None and not (
        re.fullmatch(r"[0-9]{4}", year) and FIRST_YEAR <= int(year) <= LAST_YEAR
    ):
        raise RequestError(
            400, f"参数 year={year[:20]} 无效（{FIRST_YEAR} 至 {LAST_YEAR} 年）", "year"
        )
    return given
