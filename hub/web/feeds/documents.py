"""Feed documents: each built once from the feed log, then served from a cache.

A ``FeedRequest`` (a feed address, checked, in canonical form) names a document.
Nothing is built per request when it can be helped: documents are cached by
(address, query, log head), and archive pages, which never change, by address
alone. The log head (the feed log's last position) is read at most once per
``head_ttl`` seconds, so a request for a cached feed costs no database round
trip. Documents are joined from fragments cached per (record, revision,
format, script) (``hub.web.feeds.render``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from hub.errors import RequestError
from hub.federation import Node
from hub.http.conditional import http_date
from hub.store.feed_log.log import (
    Filters,
    LogEntry,
    entry_xml,
    last_seq_before,
    log_head,
    newest_entries,
    range_entries,
    scope_head,
)
from hub.web.context import Portal
from hub.web.feeds.render import (
    EPOCH,
    FeedHead,
    atom_document,
    atom_fragment,
    rss_document,
    rss_fragment,
)
from hub.web.traditional import LANGUAGE_TAG, to_traditional

PAGE_SIZE = 100
"""Entries per page. Part of every archive address's meaning: never change it on a
running hub (archives already fetched would no longer match their addresses)."""
CURRENT_MAX_AGE = 60  # seconds: subscription documents and the page still filling
ARCHIVE_MAX_AGE = 365 * 24 * 3600  # complete archive pages never change
MEDIA_TYPES = {"atom": "application/atom+xml", "rss": "application/rss+xml"}


@dataclass(frozen=True, slots=True)
class FeedRequest:
    """A feed address, checked and in canonical form."""

    node: Node
    own: bool
    format: str  # atom | rss
    filters: Filters
    script: str  # Hans | Hant
    page: int | None

    @property
    def scope(self) -> str:
        return f"{'own' if self.own else 'tree'}:{self.node.path}"

    def path(self, format: str | None = None) -> str:
        name = "own" if self.own else "feed"
        return f"/nodes/{quote(self.node.id)}/{name}.{format or self.format}"

    def query(self, page: int | None) -> str:
        pairs = [
            (name, value)
            for name, value in (
                ("kind", self.filters.kind),
                ("topic", self.filters.topic),
                ("issuer", self.filters.issuer),
                ("lang", self.filters.lang),
                ("script", None if self.script == "Hans" else self.script),
                ("page", None if page is None else str(page)),
            )
            if value is not None
        ]
        return "?" + urlencode(pairs, quote_via=quote) if pairs else ""

    def url(self, base: str, page: int | None, format: str | None = None) -> str:
        return base + self.path(format) + self.query(page)

    def key(self) -> Hashable:
        return (self.node.id, self.own, self.format, self.filters, self.script, self.page)


@dataclass(frozen=True, slots=True)
class Document:
    body: bytes
    etag: str
    last_modified: datetime
    http_date: str
    cache_control: str
    media_type: str
    archive: bool


class Lru:
    """A bounded least-recently-used map; ``cost`` counts against ``budget``."""

    def __init__(self, budget: int) -> None:
        self.budget, self.used = budget, 0
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()

    def get(self, key: Hashable) -> Any:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: Hashable, value: Any, cost: int = 1) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.used -= old[1]
        self._items[key] = (value, cost)
        self.used += cost
        while self.used > self.budget and len(self._items) > 1:
            _, (_, dropped) = self._items.popitem(last=False)
            self.used -= dropped

    def __len__(self) -> int:
        return len(self._items)

    def values(self) -> list[Any]:
        """The cached values, least recently used first."""
        return [value for value, _ in self._items.values()]


@dataclass
class FeedState:
    """The feeds' caches and settings, kept in ``Portal.caches["feeds"]``."""

    page_size: int = PAGE_SIZE
    head_ttl: float = 1.0
    fragments: Lru = field(default_factory=lambda: Lru(64 * 1024 * 1024))  # bytes
    documents: Lru = field(default_factory=lambda: Lru(128 * 1024 * 1024))  # bytes
    head: int = -1
    head_read_at: float = float("-inf")
    head_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    building: dict[Hashable, asyncio.Future[Document]] = field(default_factory=dict)
    builds: int = 0  # documents built (not served from cache), for tests and the bench

    async def log_head(self, portal: Portal) -> int:
        """The feed log's last position, read at most once per ``head_ttl``."""
        if time.monotonic() - self.head_read_at < self.head_ttl:
            return self.head
        async with self.head_lock:
            if time.monotonic() - self.head_read_at >= self.head_ttl:
                async with portal.pool.connection() as conn:
                    self.head = await log_head(conn)
                self.head_read_at = time.monotonic()
        return self.head


async def cached_document(portal: Portal, state: FeedState, feed: FeedRequest) -> Document:
    """The document for ``feed``: from the cache, or built once however many ask at once."""
    key = feed.key()
    document = state.documents.get(("archive", key))
    if document is not None:
        return document
    head = await state.log_head(portal)
    versioned = (head, key)
    document = state.documents.get(versioned)
    if document is not None:
        return document
    pending = state.building.get(versioned)
    if pending is not None:
        try:
            return await asyncio.shield(pending)
        except asyncio.CancelledError:
            if not pending.cancelled():
                raise  # this request was cancelled
            return await cached_document(portal, state, feed)  # its builder was
    future: asyncio.Future[Document] = asyncio.get_running_loop().create_future()
    state.building[versioned] = future
    try:
        document = await build_document(portal, state, feed)
    except asyncio.CancelledError:
        future.cancel()
        raise
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: no "never retrieved" warning when nobody waits
        raise
    finally:
        del state.building[versioned]
    future.set_result(document)
    state.documents.put(
        ("archive", key) if document.archive else versioned, document, len(document.body)
    )
    return document


async def build_document(portal: Portal, state: FeedState, feed: FeedRequest) -> Document:
    """Read the page's log rows, take or render their fragments, join the document."""
    size, base = state.page_size, portal.base_url
    async with portal.pool.connection() as conn, conn.transaction():
        # One snapshot for every read: a page's links must agree with its entries.
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        last = await scope_head(conn, feed.scope)
        complete = (last + 1) // size  # pages 0 … complete-1 will never change
        if feed.page is None:
            entries = await newest_entries(conn, feed.scope, feed.filters, size)
            before, archive = complete * size, False
        elif feed.page > complete:
            raise RequestError(
                404, f"page {feed.page} does not exist yet (last: {complete})", "page"
            )
        else:
            first = feed.page * size
            entries = await range_entries(conn, feed.scope, feed.filters, first, first + size)
            before, archive = first, feed.page < complete
        previous = await last_seq_before(conn, feed.scope, feed.filters, before)
        entries = by_publication(newest_revisions(entries))
        missing = [e for e in entries if state.fragments.get(_fragment_key(e, feed)) is None]
        xml = await entry_xml(conn, [e.position for e in missing]) if missing else {}
    if missing:
        rendered = await asyncio.to_thread(_render, missing, xml, feed, base)
        for entry, fragment in zip(missing, rendered, strict=True):
            state.fragments.put(_fragment_key(entry, feed), fragment, len(fragment))
    fragments = [state.fragments.get(_fragment_key(e, feed)) for e in entries]
    if any(f is None for f in fragments):  # evicted meanwhile by a huge page: render again
        xml = await _xml_of(portal, entries)
        fragments = await asyncio.to_thread(_render, entries, xml, feed, base)
    changed = max((e.logged_at for e in entries), default=EPOCH)
    head = _head(feed, base, changed, previous // size if previous is not None else None, archive)
    body = (atom_document if feed.format == "atom" else rss_document)(head, fragments)
    state.builds += 1
    return Document(
        body=body,
        etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
        last_modified=changed,
        http_date=http_date(changed),
        cache_control=(
            f"public, max-age={ARCHIVE_MAX_AGE}, immutable"
            if archive
            else f"public, max-age={CURRENT_MAX_AGE}"
        ),
        media_type=MEDIA_TYPES[feed.format],
        archive=archive,
    )


def newest_revisions(entries: list[LogEntry]) -> list[LogEntry]:
    """Entries newest first, each record once: an older revision on the same page is
    superseded (it stays in older pages, where it was published)."""
    seen: set[str] = set()
    kept = []
    for entry in entries:
        if entry.id not in seen:
            seen.add(entry.id)
            kept.append(entry)
    return kept


def by_publication(entries: list[LogEntry]) -> list[LogEntry]:
    """A page's entries by publication time, newest first, as readers list them (a tie, or a
    record's later revision, by log order, newest first).

    Which entries a page holds is decided by the log (``seq``), so that pages never
    change; only their order within the page is by publication. A record published long
    ago but stored today is on today's page, listed under the newer ones there.
    """
    return sorted(entries, key=lambda e: (e.published, e.seq), reverse=True)


def _head(
    feed: FeedRequest, base: str, changed: datetime, previous: int | None, archive: bool
) -> FeedHead:
    node, hant = feed.node, feed.script == "Hant"
    title = (node.name if feed.own else f"{node.name}（含下级）") + " 政府信息公开"
    described = "、".join(
        f"{label}：{value}"
        for label, value in (
            ("类别", feed.filters.kind),
            ("主题分类", feed.filters.topic),
            ("发文机关", feed.filters.issuer),
            ("语言", feed.filters.lang),
        )
        if value is not None
    )
    subtitle = f"{node.name}发布的政府信息" + (f"（{described}）" if described else "")
    if hant:
        title, subtitle = to_traditional(title), to_traditional(subtitle)
    page = feed.page
    return FeedHead(
        feed_id=feed.url(base, None),
        title=title,
        subtitle=subtitle,
        self_url=feed.url(base, page),
        html_url=f"{base}/nodes/{quote(node.id)}/" + ("?lang=zh-Hant" if hant else ""),
        twin_url=feed.url(base, page, "rss" if feed.format == "atom" else "atom"),
        lang=LANGUAGE_TAG if hant else "zh-Hans",
        updated=changed,
        author=to_traditional(node.name) if hant else node.name,
        current_url=feed.url(base, None) if page is not None else None,
        prev_archive=feed.url(base, previous) if previous is not None else None,
        next_archive=feed.url(base, page + 1) if page is not None and archive else None,
        archive=archive,
    )


def _fragment_key(entry: LogEntry, feed: FeedRequest) -> Hashable:
    return (entry.id, entry.revision, feed.format, feed.script)


def _render(
    entries: list[LogEntry], xml: dict[int, str], feed: FeedRequest, base: str
) -> list[bytes]:
    render = atom_fragment if feed.format == "atom" else rss_fragment
    return [render(entry, xml[entry.position], base, feed.script) for entry in entries]


async def _xml_of(portal: Portal, entries: list[LogEntry]) -> dict[int, str]:
    async with portal.pool.connection() as conn:
        return await entry_xml(conn, [e.position for e in entries])
