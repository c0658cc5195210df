"""What a page says about itself, as the 2017 government-site rules ask: meta tags and 当前位置.

Every page carries the site tags of the page's node (``SiteName``, ``SiteDomain``,
``SiteIDCode``); a list page adds its column's (``ColumnName``,
``ColumnDescription``, ``ColumnKeywords``, ``ColumnType``), a record page its
article's (``ArticleTitle``, ``PubDate`` as ``yyyy-MM-dd HH:mm`` China time,
``ContentSource``). Legacy page adapters, govhub's own among them
(``adapters.page.fields``), read these tags, so a portal page can be harvested
like any government page. The templates escape every value.

The 当前位置 breadcrumb of list and record pages runs home › node › column ›
record; ``crumbs`` gives its ``(label, href)`` steps, the last without a link.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hub.federation import Node
from hub.records.model import CHINA, Record

Meta = list[tuple[str, str]]
Crumbs = list[tuple[str, str | None]]
CATALOGUE = "信息公开目录"
DIRECTORY = "站点导航"
PUBDATE_FORMAT = "%Y-%m-%d %H:%M"  # the guideline's yyyy-MM-dd HH:mm


def site_tags(node: Node) -> Meta:
    """The home-page tags, which every page carries: the node's name, domain, site code."""
    return [("SiteName", node.name), ("SiteDomain", node.domain), ("SiteIDCode", node.site_code)]


def page_tags(template: str, node: Node, context: Mapping[str, Any]) -> Meta:
    """The meta tags of the page ``template`` renders for ``node`` from ``context``."""
    tags = site_tags(node)
    if template == "record.html":
        record: Record = context["record"]
        tags += [
            ("ArticleTitle", record.title),
            ("PubDate", record.published.astimezone(CHINA).strftime(PUBDATE_FORMAT)),
            ("ContentSource", "、".join(record.issuers) or node.name),
        ]
    elif template == "catalogue.html":
        topic = context.get("topic")
        name = f"{CATALOGUE}：{topic}" if topic else CATALOGUE
        tags += _column(name, f"{node.name}主动公开的政府信息", CATALOGUE, topic)
    elif template == "directory.html":
        tags += _column(DIRECTORY, f"{node.name}及下级机关的网站", DIRECTORY, None)
    elif template == "search.html":
        tags += _column("搜索", f"在{node.name}及下级站点中搜索", "搜索", context.get("q"))
    return tags


def _column(name: str, description: str, kind: str, keywords: str | None) -> Meta:
    return [
        ("ColumnName", name),
        ("ColumnDescription", description),
        ("ColumnKeywords", keywords or name),
        ("ColumnType", kind),
    ]


def crumbs(
    template: str,
    node: Node,
    portal_node: Node,
    context: Mapping[str, Any],
    url: Callable[..., str],
) -> Crumbs:
    """The 当前位置 steps of a list or record page; none on other pages."""
    home: Crumbs = [("首页", url(f"/nodes/{portal_node.id}/"))]
    if node.id != portal_node.id:
        home.append((node.name, url(f"/nodes/{node.id}/")))
    path = f"/nodes/{node.id}/catalogue"
    catalogue = url(path)
    if template == "record.html":
        record: Record = context["record"]
        steps = [*home, (CATALOGUE, catalogue)]
        if record.topic:
            steps.append((record.topic.top, url(path, topic=record.topic.top)))
        return [*steps, (record.title, None)]
    if template == "catalogue.html":
        topic = context.get("topic")
        if topic:
            return [*home, (CATALOGUE, catalogue), (topic, None)]
        return [*home, (CATALOGUE, None)]
    if template == "directory.html":
        return [home[0], (DIRECTORY, None)]
    return []
