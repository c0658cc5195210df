"""The node's inbox as its local port serves it: Atom 1.0, RSS 2.0 (feedgen) and JSON.

Newest first, times in China time (+08:00) to the second, as the portal's feeds write
them; a withdrawn record keeps its entry, titled 【已撤回】 with its reason
as the summary; a new revision shows as a change of the entry's ``updated``.
The JSON form carries each record's main fields and its whole XML.
"""

from __future__ import annotations

import json
from datetime import datetime

from feedgen.feed import FeedGenerator

from hub.federation import Node
from hub.inbox.entries import Item
from hub.records.model import CHINA


def atom_bytes(node: Node, items: list[Item], url: str, updated: datetime) -> bytes:
    return bytes(_feed(node, items, url, updated).atom_str(pretty=True))


def rss_bytes(node: Node, items: list[Item], url: str, updated: datetime) -> bytes:
    return bytes(_feed(node, items, url, updated).rss_str(pretty=True))


def _feed(node: Node, items: list[Item], url: str, updated: datetime) -> FeedGenerator:
    feed = FeedGenerator()
    feed.load_extension("dc")
    feed.id(f"urn:govhub:inbox:{node.id}")
    feed.title(f"{node.name}：上级推送与订阅")
    feed.subtitle(f"{node.name}收到的上级推送与订阅信息（节点 {node.id}，{node.path}），最新在前")
    feed.author({"name": node.name})
    feed.link(href=url, rel="self")
    feed.link(href=f"https://{node.domain}/", rel="alternate")  # the last link is RSS's <link>
    feed.generator("govhub")
    feed.updated(china(updated))
    feed.lastBuildDate(china(updated))
    for item in reversed(items):  # feedgen puts each new entry first: newest ends on top
        entry = feed.add_entry()
        entry.id(item.record_id)
        entry.guid(item.record_id, permalink=False)
        entry.title(f"【已撤回】{item.title}" if item.withdrawn else item.title)
        entry.link(href=item.link or item.record_id)
        entry.published(china(item.published))
        # a new revision shows as a change
        entry.updated(china(max(item.changed, item.received_at)))
        entry.summary(_summary(item))
        entry.author([{"name": issuer} for issuer in item.issuers])
        entry.dc.dc_creator(list(item.issuers))
        entry.category({"term": item.kind})
        if item.topic:
            entry.category({"term": item.topic})
    return feed


def china(when: datetime) -> datetime:
    """A time as the portal's feeds write it: China time (+08:00), to the second."""
    return when.astimezone(CHINA).replace(microsecond=0)


def _summary(item: Item) -> str:
    if item.withdrawn:
        return f"已撤回：{item.withdrawn_reason}" if item.withdrawn_reason else "已撤回"
    return item.summary or item.title


def json_bytes(node: Node, items: list[Item], url: str, updated: datetime) -> bytes:
    body = {
        "node": node.id,
        "path": node.path,
        "updated": china(updated).isoformat(),
        "count": len(items),
        "records": [_record_json(item) for item in items],
    }
    return json.dumps(body, ensure_ascii=False, indent=2).encode()


def _record_json(item: Item) -> dict[str, object]:
    return {
        "id": item.record_id,
        "revision": item.revision,
        "kind": item.kind,
        "topic": item.topic,
        "title": item.title,
        "link": item.link,
        "issuers": list(item.issuers),
        "published": china(item.published).isoformat(),
        "updated": china(item.updated).isoformat() if item.updated else None,
        "summary": item.summary,
        "withdrawn": item.withdrawn,
        "withdrawn_reason": item.withdrawn_reason,
        "origin": item.origin,
        "from_path": item.from_path,
        "via": item.via,
        "routing_key": item.routing_key,
        "received_at": china(item.received_at).isoformat(),
        "xml": item.body.decode(),
    }
