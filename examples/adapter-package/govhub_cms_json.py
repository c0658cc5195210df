"""A govhub adapter for a CMS that exports its articles as JSON: ``adapter = "cms-json"``.

The export looks like this (see sample.json)::

    {"articles": [{"id": 1024, "title": "…", "channel": "通知公告", "department": "…",
                   "publish_time": "2024-03-01 09:00:00", "modify_time": "…",
                   "url": "https://…", "summary": "…", "content": "<p>…</p>"}]}

An adapter is four things: a ``name``, a ``Settings`` dataclass (its fields are
the source's keys in nodes.toml), ``fetch`` (items since a cursor, oldest
first) and ``convert`` (one item → one record). govhub does the rest: it checks
the settings, keeps the cursor, validates every record, assigns revisions and
publishes. See govhub's docs/adapters.md.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

from adapters.contract import Context, Failure, Item
from adapters.kit.sanitize import sanitize_html
from hub.errors import InputError, Problem
from hub.records import Record

BEIJING = timezone(timedelta(hours=8))

# Which CMS channel (栏目) holds which kind of record; other channels are news.
KINDS = {"通知公告": "notice", "政策文件": "document", "政策解读": "interpretation"}


@dataclass(frozen=True, slots=True)
class Settings:
    path: str = field(metadata={"help": "the JSON export file"})
    max_bytes: int = field(
        default=20 * 1024 * 1024, metadata={"help": "largest export read, in bytes"}
    )


class CmsJsonAdapter:
    """One record per article of the CMS's JSON export."""

    name: ClassVar[str] = "cms-json"
    Settings: ClassVar[type] = Settings
    sample: ClassVar[str] = "path"  # `govhub adapter check cms-json FILE` sets path = FILE

    def __init__(self, settings: Settings, context: Context) -> None:
        self.settings, self.context = settings, context
        path = Path(settings.path)
        self.file = path if path.is_absolute() else Path(context.root) / path

    async def fetch(self, cursor: str | None) -> AsyncIterator[Item | Failure]:
        """Articles changed after ``cursor`` (``modify_time id``), oldest change first."""
        try:
            articles = await asyncio.to_thread(self._articles)
        except (OSError, ValueError) as exc:
            # One failure for the whole export; the next run tries again.
            yield Failure(self.settings.path, str(exc))
            return
        for index, article in articles:
            if not isinstance(article, dict) or "id" not in article:
                where = f"{self.settings.path}#articles[{index}]"
                yield Failure(where, "an article needs an object with an id")
                continue
            position = f"{article.get('modify_time', '')} {article['id']:>12}"
            if cursor is None or position > cursor:
                where = f"{self.settings.path}#articles[{index}] (id {article['id']})"
                yield Item(str(article["id"]), where, article, position)

    def convert(self, item: Item) -> Record | None:
        article: dict[str, Any] = item.data
        title = (article.get("title") or "").strip()
        if not title:
            raise InputError([Problem(item.where, None, "title", "empty", "the article's title")])
        link = article.get("url") or None
        fields: dict[str, Any] = {
            "kind": KINDS.get(article.get("channel", ""), "news"),
            "link": link,
            "summary": (article.get("summary") or "").strip() or None,
            # Hostile HTML in, the record body's safe XHTML out: always sanitize.
            "body": sanitize_html(article.get("content") or "", link),
        }
        if article.get("department"):
            fields["issuers"] = (article["department"],)
        published = _when(article.get("publish_time"), item.where)
        return self.context.record(item.key, title=title, published=published, **fields)

    def _articles(self) -> list[tuple[int, Any]]:
        size = self.file.stat().st_size
        if size > self.settings.max_bytes:
            raise ValueError(f"the export is {size:,} bytes, over max_bytes")
        export = json.loads(self.file.read_bytes())
        articles = export.get("articles") if isinstance(export, dict) else None
        if not isinstance(articles, list):
            raise ValueError('not a CMS export: no "articles" list')
        ordered = sorted(
            enumerate(articles),
            key=lambda pair: (
                str(pair[1].get("modify_time", "")) if isinstance(pair[1], dict) else ""
            ),
        )
        return ordered


def _when(value: Any, where: str) -> datetime:
    """A CMS time (Beijing time unless it says otherwise) as an aware datetime."""
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        expected = "a time such as 2024-03-01 09:00:00"
        raise InputError(
            [Problem(where, None, "publish_time", f"{value!r} is not a time", expected)]
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=BEIJING)
