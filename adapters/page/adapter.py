"""The ``page`` adapter: government web pages (a list page and its detail pages) as records.

Most government sites have no feed and no export: their records are the detail
pages of a column (``/zfwj/`` → ``t20200802_1352104.html``). The adapter reads
them as a person would::

    fetch:   GET the list page ─► detail links (selector, or article-shaped links
             of the page's main list) ─► next list page … up to max_pages
             ─► GET each detail page ─► Item(key=detail URL), oldest first
    convert: parse (hardened) ─► recognise the metadata (www.gov.cn table,
             label:value pairs, meta tags) ─► configured selectors win
             ─► Record (adapters.page.record), or None

The cursor stays ``None``: a list page has no stable position (items are
inserted, re-ordered, dropped), so every run re-reads the first ``max_pages``
list pages and the harvester recognises an unchanged page by its record's
content hash. Detail pages are requested conditionally (ETag, Last-Modified):
a page that answers 304 is unchanged and yields nothing. List pages are
always requested in full, since their links are needed every run.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar
from urllib.parse import urlsplit

from adapters.contract import Context, Failure, Item
from adapters.kit.http import FetchError, HttpClient, Response, RetryLater
from adapters.page.fields import recognise, without_label
from adapters.page.html import MAX_PAGE_BYTES, Selector, compile_selector, read_html
from adapters.page.links import ARTICLE_PATH, detail_links, next_page
from adapters.page.record import page_record
from hub.errors import ConfigInvalid, InputError, Problem
from hub.records import Record
from hub.records.model import KINDS

log = logging.getLogger(__name__)

SELECTOR_HELP = "a CSS selector, or XPath after 'xpath:' (e.g. 'div.top-l p' or 'xpath://h1')"
_FIELD_SELECTORS = (
    "title",
    "published",
    "created",
    "issuers",
    "doc_number",
    "index_number",
    "topic",
    "keywords",
)
_LIST_LINKS = 3  # article links on a page that shows only a heading and a date: a list
_HTML_TYPES = ("", "text/html", "application/xhtml+xml", "text/plain")
_KINDS = tuple(k for k in KINDS if k not in ("service", "interaction"))  # those need sections


def _selector(help_text: str) -> Any:
    return field(default=None, metadata={"help": f"{help_text}: {SELECTOR_HELP}"})


@dataclass(frozen=True, slots=True)
class PageSettings:
    """A source's keys in nodes.toml (docs/adapters/page.md)."""

    url: str = field(
        metadata={"help": "the list page of a column, or one detail page (http or https URL)"}
    )
    links: str | None = _selector("the detail-page links on the list page")
    next: str | None = _selector("the link to the next list page (default: the 下一页 link)")
    max_pages: int = field(
        default=1, metadata={"help": "how many list pages to read per run (1 or more)"}
    )
    kind: str = field(
        default="news",
        metadata={
            "help": "the record kind of pages without 索引号 or 发文字号 (those are "
            "'document'): " + ", ".join(_KINDS)
        },
    )
    title: str | None = _selector("the title (标题)")
    published: str | None = _selector("the publication date (发布日期)")
    created: str | None = _selector("the date the document was made (成文日期)")
    issuers: str | None = _selector("the issuing organs (发文机关)")
    doc_number: str | None = _selector("the document number (发文字号)")
    index_number: str | None = _selector("the index number (索引号)")
    topic: str | None = _selector("the subject class (主题分类)")
    keywords: str | None = _selector("the keywords (主题词)")
    body: str | None = _selector("the content area (正文)")
    max_bytes: int = field(
        default=MAX_PAGE_BYTES,
        metadata={"help": "the largest page read, in bytes (larger pages are refused)"},
    )


@dataclass(frozen=True, slots=True)
class Page:
    """A downloaded page: ``Item.data`` of this adapter."""

    url: str  # after redirects
    body: bytes
    charset: str | None = None  # what the HTTP Content-Type declared


class PageAdapter:
    """Government web pages: a list page's detail pages, or one detail page."""

    name: ClassVar[str] = "page"
    Settings: ClassVar[type] = PageSettings
    sample: ClassVar[str] = "url"

    def __init__(self, settings: PageSettings, context: Context) -> None:
        self.settings, self.context = settings, context
        self.selectors = _check(settings, context)

    async def fetch(self, cursor: str | None) -> AsyncIterator[Item | Failure]:
        """The detail pages of the list page (or the one detail page), oldest first."""
        http = self._http()
        start = self.settings.url
        try:
            first = await http.get(start, conditional=False)
        except RetryLater:
            raise  # the server asked the harvester to wait: not a per-item failure
        except FetchError as exc:
            yield Failure(start, str(exc))
            return
        if "links" not in self.selectors and ARTICLE_PATH.search(urlsplit(start).path):
            yield Item(start, start, _page(first))
            return
        links: list[str] = []
        async for failure in self._walk_list(http, first, links):
            yield failure
        if not links:
            if "links" in self.selectors:
                message = (
                    f"the links selector {self.selectors['links'].text!r} found no link "
                    "(expected links to detail pages: check the selector against the page)"
                )
                yield Failure(start, message)
            else:
                yield Item(start, start, _page(first))  # no list: the page may be a record
            return
        # Lists show the newest first; the harvester wants the oldest first.
        for link in reversed(list(dict.fromkeys(links))):
            async for found in self._detail(http, link):
                yield found

    async def _walk_list(
        self, http: HttpClient, response: Response, links: list[str]
    ) -> AsyncIterator[Failure]:
        """Collect the detail links of up to ``max_pages`` list pages into ``links``."""
        seen = {self.settings.url, response.url}
        for number in range(1, self.settings.max_pages + 1):
            try:
                root = read_html(response.body, response.charset, max_bytes=self.settings.max_bytes)
            except ValueError as exc:
                yield Failure(response.url, f"list page {number}: {exc}")
                return
            links.extend(detail_links(root, response.url, self.selectors.get("links")))
            following = next_page(root, response.url, self.selectors.get("next"))
            if number == self.settings.max_pages or following is None or following in seen:
                return
            seen.add(following)
            try:
                response = await http.get(following, conditional=False)
            except RetryLater:
                raise
            except FetchError as exc:
                yield Failure(following, f"list page {number + 1}: {exc}")
                return

    async def _detail(self, http: HttpClient, url: str) -> AsyncIterator[Item | Failure]:
        try:
            response = await http.get(url)
        except RetryLater:
            raise
        except FetchError as exc:
            yield Failure(url, str(exc))
            return
        if response.not_modified:
            return  # unchanged since the last run: its record is already there
        if response.content_type not in _HTML_TYPES:
            yield Failure(url, f"not a web page (Content-Type {response.content_type})")
            return
        yield Item(url, url, _page(response))

    def convert(self, item: Item) -> Record | None:
        """The record of one page, or None for a page that holds none (list, guide, index)."""
        page: Page = item.data
        where = item.where
        try:
            root = read_html(page.body, page.charset, max_bytes=self.settings.max_bytes)
        except ValueError as exc:
            expected = "a smaller page, or a larger max_bytes for this source"
            hint = expected if "limit" in str(exc) else ""
            raise InputError([Problem(where, None, "page", str(exc), hint)]) from None
        found = recognise(root, self.selectors.get("body"))
        if "title" in self.selectors:
            found = replace(found, heading=None)  # the configured title, or none
        labels = dict(found.labels)
        labelled = set(found.labelled)
        for name in _FIELD_SELECTORS:
            value = self._selected(root, name)
            if value is not None:
                labels[name] = value
                labelled.add(name)
        if not (found.holds_record or {"title", "index_number", "doc_number"} & set(labels)):
            return None  # a list, guide or index page
        says_what = found.describes_itself or {"title", "index_number", "doc_number"} & set(labels)
        if not says_what and len(detail_links(root, page.url)) >= _LIST_LINKS:
            return None  # a heading, a dated line and many article links: a list page
        return page_record(
            self.context,
            item,
            page.url,
            labels,
            labelled,
            found,
            kind=self.settings.kind,
            warn=self._warn,
        )

    def explain(self, item: Item) -> str:
        """Why ``convert`` made no record of ``item``: what the page lacks, where it looked."""
        page: Page = item.data
        try:
            root = read_html(page.body, page.charset, max_bytes=self.settings.max_bytes)
        except ValueError as exc:
            return f"the page is not readable: {exc}"
        found = recognise(root, self.selectors.get("body"))
        shown = ", ".join(sorted(found.labelled)) or "none"
        looked = (
            "a title (标题/名称 label, ArticleTitle meta tag"
            + (
                f", title selector {self.selectors['title'].text!r}"
                if "title" in self.selectors
                else ""
            )
            + "), a 索引号 or a 发文字号 label, or a heading (h1, <title>) with a labelled "
            "发布日期 and a body"
        )
        links = len(detail_links(root, page.url))
        hint = (
            f"; it links to {links} article pages, so it looks like a list page: give the "
            "list page's URL and the adapter reads its detail pages, or set `links`"
            if links
            else "; if it is a record, set the `title` and `published` selectors"
        )
        return f"required field title missing: looked for {looked}; labels found: {shown}{hint}"

    def _selected(self, root: Any, name: str) -> str | None:
        """The text a configured field selector finds, with a leading ``标签：`` taken off."""
        selector = self.selectors.get(name)
        if selector is None:
            return None
        if name in ("issuers", "keywords"):
            texts = [without_label(text) for text in selector.all_texts(root)]
            return "、".join(t for t in texts if t) or None
        text = selector.first_text(root)
        return without_label(text) if text else None

    def _warn(self, where: str, field_name: str, message: str) -> None:
        extra = {"node": self.context.node.id, "source": self.context.source, "stage": "convert"}
        log.warning("%s: %s: %s", where, field_name, message, extra=extra)

    def _http(self) -> HttpClient:
        if self.context.http is None:
            raise RuntimeError(
                "the page adapter reads the web: give it an HttpClient (context.http)"
            )
        return self.context.http


def _check(settings: PageSettings, context: Context) -> dict[str, Selector]:
    """The compiled selectors; ``ConfigInvalid`` naming every wrong key at once."""
    problems: list[Problem] = []
    label = f"node[{context.node.id}].sources[{context.source}]"

    def problem(key: str, message: str, expected: str) -> None:
        problems.append(Problem("nodes.toml", None, f"{label}.{key}", message, expected))

    parts = urlsplit(settings.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        problem("url", f"{settings.url!r} is not an http(s) URL", "http://www.example.gov.cn/zfwj/")
    if settings.kind not in _KINDS:
        problem("kind", f"{settings.kind!r} is not a kind this adapter makes", ", ".join(_KINDS))
    if settings.max_pages < 1:
        problem("max_pages", f"{settings.max_pages} list pages", "1 or more")
    if settings.max_bytes < 1:
        problem(
            "max_bytes", f"{settings.max_bytes} bytes", f"a positive size, e.g. {MAX_PAGE_BYTES}"
        )
    selectors: dict[str, Selector] = {}
    for spec in fields(settings):
        value = getattr(settings, spec.name)
        if spec.name in ("links", "next", "body", *_FIELD_SELECTORS) and value is not None:
            try:
                selectors[spec.name] = compile_selector(value)
            except ValueError as exc:
                problem(spec.name, str(exc), SELECTOR_HELP)
    if problems:
        raise ConfigInvalid(problems)
    return selectors


def _page(response: Response) -> Page:
    return Page(response.url, response.body, response.charset)
