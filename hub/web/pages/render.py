"""How a portal page is rendered: templates, the context every page shares, error pages.

One Jinja environment per language. The Traditional one (``?lang=zh-Hant``)
converts the templates' own text and every value a page prints, so handlers give
their context in Simplified, as stored; only markup is converted by its maker.
``View`` is what every page knows about its request (the portal, the language,
how to link, the node's feeds) and renders a page with the headers every page
sends; ``error_page`` renders any error of a page's address as an HTML page (the
one error middleware, ``hub.http.errors``, calls it). The routes and their
handlers: ``hub.web.pages.routes``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from markupsafe import Markup

from hub.errors import RequestError
from hub.federation import Federation, Node
from hub.records.model import CHINA
from hub.store.links.queries import OUTGOING
from hub.web import kinds
from hub.web.context import PORTAL, Portal
from hub.web.kinds import human_size
from hub.web.pages.tags import crumbs, page_tags
from hub.web.traditional import to_traditional

HERE = Path(__file__).parent
LANGUAGES = ("zh-Hans", "zh-Hant")
FEED_SUFFIXES = (".atom", ".rss", ".xml", ".json")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' http: https:;"
    " form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
LEVELS = {
    "central": "中央",
    "department": "部门",
    "provincial": "省级",
    "municipal": "市级",
    "county": "县级",
}
VALIDITY = kinds.VALIDITY
KINDS = kinds.KIND_NAMES


@dataclass(frozen=True)
class Templates:
    """One Jinja environment per language; the Traditional one converts as it renders."""

    simplified: jinja2.Environment
    traditional: jinja2.Environment

    @classmethod
    def load(cls) -> Templates:
        files = jinja2.FileSystemLoader(HERE / "templates")
        return cls(_environment(files, None), _environment(_Converted(files), _finalize))

    def get(self, lang: str, name: str) -> jinja2.Template:
        env = self.traditional if lang == "zh-Hant" else self.simplified
        return env.get_template(name)


class _Converted(jinja2.BaseLoader):
    """The templates with their own text turned Traditional (Jinja code is ASCII)."""

    def __init__(self, inner: jinja2.BaseLoader) -> None:
        self.inner = inner

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self.inner.get_source(environment, template)
        return to_traditional(source), filename, uptodate


def _finalize(value: Any) -> Any:
    """Every value a Traditional page prints, converted; markup was converted by its maker."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return to_traditional(value)
    return value


def _environment(
    loader: jinja2.BaseLoader, finalize: Callable[[Any], Any] | None
) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=loader,
        autoescape=True,
        finalize=finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(levels=LEVELS, validity=VALIDITY, kinds=KINDS, outgoing=OUTGOING)
    # The switch names the other version in its own script: markup is never converted.
    env.globals["simplified_name"] = Markup("简体中文")
    env.filters["size"] = human_size
    env.filters["day"] = lambda when: when.astimezone(CHINA).strftime("%Y-%m-%d") if when else ""
    return env


TEMPLATES = web.AppKey("pages_templates", Templates)


@dataclass(frozen=True)
class View:
    """What every page knows about its request: the portal, the language, how to link."""

    request: web.Request
    portal: Portal
    lang: str

    @classmethod
    def of(cls, request: web.Request) -> View:
        lang = request.query.get("lang", "zh-Hans")
        if lang not in LANGUAGES:
            raise RequestError(
                400, f"不支持的语言参数 lang={lang[:20]}（可用：zh-Hans、zh-Hant）", "lang"
            )
        return cls(request, request.app[PORTAL], lang)

    @property
    def federation(self) -> Federation:
        return self.portal.federation

    def url(self, path: str, **params: Any) -> str:
        """``path`` with ``params`` (None left out) and the page's language."""
        query = {k: v for k, v in params.items() if v is not None and v != ""}
        if self.lang != "zh-Hans":
            query["lang"] = self.lang
        return path + ("?" + urlencode(query) if query else "")

    def switch(self) -> str:
        """This page in the other language."""
        query = {k: v for k, v in self.request.query.items() if k != "lang"}
        if self.lang == "zh-Hans":
            query["lang"] = "zh-Hant"
        return self.request.path + ("?" + urlencode(query) if query else "")

    def node(self, node_id: str) -> Node:
        """A node of this portal's subtree, or a 404 page."""
        if node_id not in self.federation.nodes or not self.federation.is_in_subtree(
            node_id, self.portal.scope
        ):
            raise RequestError(404, f"本门户没有节点 {node_id[:40]}", "id")
        return self.federation.node(node_id)

    def node_name(self, node_id: str) -> str:
        node = self.federation.nodes.get(node_id)
        return node.name if node else node_id

    def feed_url(self, path: str) -> str:
        """A feed's address; Traditional feeds take ``script=Hant`` (``lang`` filters
        records by their language there: see hub.web.feeds.routes)."""
        return path + ("?script=Hant" if self.lang == "zh-Hant" else "")

    def feeds(self, node: Node) -> list[tuple[str, str, str]]:
        """Autodiscovery links (title, type, href) of a node's feeds (see hub.web.feeds.routes)."""
        base = f"/nodes/{node.id}/"
        atom, rss = "application/atom+xml", "application/rss+xml"
        return [
            (f"{node.name}（含下级）Atom", atom, self.feed_url(base + "feed.atom")),
            (f"{node.name}（含下级）RSS", rss, self.feed_url(base + "feed.rss")),
            (f"{node.name} Atom", atom, self.feed_url(base + "own.atom")),
            (f"{node.name} RSS", rss, self.feed_url(base + "own.rss")),
        ]

    def render(self, name: str, *, node: Node, status: int = 200, **context: Any) -> web.Response:
        """The page ``name`` for ``node`` (whose legal name the page states), with the meta
        tags and the 当前位置 breadcrumb its kind carries (``hub.web.pages.tags``)."""
        portal_node = self.federation.node(self.portal.scope)
        context.setdefault("feeds", self.feeds(node))
        context.setdefault("alternates", [])
        context.setdefault("meta_tags", page_tags(name, node, context))
        context.setdefault("crumbs", crumbs(name, node, portal_node, context, self.url))
        text = (
            self.request.app[TEMPLATES]
            .get(self.lang, name)
            .render(
                view=self,
                lang=self.lang,
                node=node,
                portal_node=portal_node,
                canonical=self.portal.base_url + self.request.path_qs,
                status=status,
                **context,
            )
        )
        return web.Response(
            text=text,
            status=status,
            content_type="text/html",
            charset="utf-8",
            headers=SECURITY_HEADERS,
        )


STATUS_TEXT = {
    400: "请求参数无效",
    401: "需要登录凭据",
    403: "无权访问",
    404: "页面不存在",
    405: "不支持此请求方法",
    408: "请求超时，请重试",
    413: "请求内容过大",
    414: "网址过长",
    500: "服务器出错，已记录，请稍后再试",
    503: "数据库暂时不可用，请稍后再试",
}


def error_page(request: web.Request, status: int, message: str | None) -> web.Response | None:
    """The error as an HTML page, or ``None`` for the API's and the feeds' addresses, which
    answer in the JSON error shape (``hub.http.errors``)."""
    if machine_address(request.path):
        return None
    text = message or STATUS_TEXT.get(status, "无法处理此请求")
    lang = request.query.get("lang", "zh-Hans")
    view = View(request, request.app[PORTAL], lang if lang in LANGUAGES else "zh-Hans")
    root = view.federation.node(view.portal.scope)
    return view.render("error.html", node=root, status=status, message=text)


def machine_address(path: str) -> bool:
    """The API's and the feeds' addresses, which answer errors in the JSON shape."""
    return path.startswith("/api/") or path == "/openapi.json" or path.endswith(FEED_SUFFIXES)
