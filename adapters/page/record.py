"""Building the record of a government web page from the fields it shows.

``adapters.page.fields`` finds what a page says about itself, as written;
``page_record`` reads those values (``adapters.kit.chinese_values``) and makes the
standard record. A page that shows no title or no readable publication date, or
whose values break the standard (published before created, a 20,000-character
title), is unusable: ``InputError``, never an invalid record. An index number or
topic the site got wrong is dropped with a warning instead, since the rest of
the page is sound. The body is sanitized with the page URL; the link is the
page's ``Url`` meta tag when it is on the page's host.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from adapters.contract import Context, Item
from adapters.kit.chinese_values import (
    as_published,
    parse_date,
    parse_doc_number,
    parse_topic,
    parse_when,
    split_issuers,
    split_keywords,
)
from adapters.kit.sanitize import sanitize_html
from adapters.page.fields import PageFields, inner_html
from hub import records
from hub.codes import INDEX_NUMBER_EXPECTED, index_number_problem
from hub.errors import InputError, Problem
from hub.records import Record
from hub.records.model import Topic

# warn(where, field, message): how a value dropped from the record is reported.
Warn: TypeAlias = Callable[[str, str, str], None]


def page_record(
    context: Context,
    item: Item,
    page_url: str,
    labels: Mapping[str, str],
    labelled: set[str],
    found: PageFields,
    *,
    kind: str,
    warn: Warn,
) -> Record:
    """The record of a page that holds one; ``InputError`` when the page is unusable.

    ``labels`` and ``labelled`` are what the page shows (configured selectors
    already applied); ``kind`` is the kind of pages without 索引号 or 发文字号.
    """
    where, meta = item.where, found.meta
    problems: list[Problem] = []

    def problem(field: str, message: str, expected: str = "") -> None:
        problems.append(Problem(where, None, field, message, expected))

    title = labels.get("title") or meta.get("ArticleTitle")
    if not title:
        problem(
            "title",
            "the page shows no title",
            "a 标题/名称 label, an ArticleTitle meta tag, or a title selector",
        )
    published = _published(labels, meta, problem)
    created: date | None = None
    if labels.get("created"):
        try:
            created = parse_date(labels["created"])
        except ValueError as exc:
            problem("created", str(exc))
    if problems or title is None or published is None:
        raise InputError(problems)
    issuers = (
        split_issuers(labels.get("issuers", ""))
        or split_issuers(labels.get("source", ""))
        or split_issuers(meta.get("ContentSource", ""))
    )
    fields_: dict[str, Any] = {
        "kind": "document" if {"index_number", "doc_number"} & labelled else kind,
        "index_number": _index_number(where, labels.get("index_number"), created, published, warn),
        "doc_number": parse_doc_number(labels.get("doc_number", "")),
        "topic": _topic(where, labels.get("topic"), warn),
        "keywords": split_keywords(labels.get("keywords", "")),
        "created": created,
        "body": sanitize_html(inner_html(found.body), base_url=page_url, where=where)
        if found.body is not None
        else None,
        "link": _link(item.key, meta.get("Url")),
    }
    if issuers:
        fields_["issuers"] = issuers
    record = context.record(item.key, title=title, published=published, **fields_)
    # What the page says can still break the standard (published before created,
    # a 20,000-character title): such a page is unusable, never an invalid record.
    invalid = records.problems(record.to_xml(pretty=False), where)
    if invalid:
        raise InputError([replace(p, line=None) for p in invalid])
    return record


def _index_number(
    where: str, value: str | None, created: date | None, published: datetime, warn: Warn
) -> str | None:
    """The page's 索引号 when it is valid; otherwise dropped with a warning.

    An index number a site got wrong (a failing check character, a year
    that is neither the created nor the published year) says nothing
    reliable, while the rest of the page is sound: the record goes on
    without it rather than being lost.
    """
    if not value:
        return None
    number = value.strip()
    problem = index_number_problem(number)
    if problem is None:
        years = {published.year} | ({created.year} if created else set())
        if int(number[-10:-6]) not in years:
            problem = f"year {number[-10:-6]} matches neither created nor published"
    if problem is None:
        return number
    warn(where, "indexNumber", f"索引号 dropped: {problem} (expected {INDEX_NUMBER_EXPECTED})")
    return None


def _topic(where: str, value: str | None, warn: Warn) -> Topic | None:
    """The record topic of 主题分类, or None (with a warning) when it is not a gov.cn class."""
    if not value:
        return None
    try:
        return parse_topic(value)
    except ValueError as exc:
        warn(where, "topic", f"主题分类 dropped: {exc}")
        return None


def _published(
    labels: Mapping[str, str], meta: Mapping[str, str], problem: Callable[..., None]
) -> datetime | None:
    """发布日期, else the PubDate (or TRS, gov.cn) meta tags; a bare date made exact if a
    meta tag gives the time of that same day."""
    sources = [
        ("published", labels.get("published")),
        *(
            (f"meta {name}", meta.get(name))
            for name in ("PubDate", "firstpublishedtime", "publishdate")
        ),
    ]
    read: list[date | datetime] = []
    for name, text in sources:
        if not text:
            continue
        try:
            read.append(parse_when(text))
        except ValueError as exc:
            if not read:  # only the value actually used must be readable
                problem("published", f"{name}: {exc}")
                return None
    if not read:
        problem(
            "published",
            "the page shows no publication date",
            "a 发布日期 label, a PubDate meta tag, or a published selector",
        )
        return None
    best = read[0]
    if not isinstance(best, datetime):
        same_day = [r for r in read if isinstance(r, datetime) and r.date() == best]
        if same_day:
            return same_day[0]
    return as_published(best)


def _link(page_url: str, meta_url: str | None) -> str | None:
    """The page's own ``Url`` meta tag when it is on the page's host, else the page URL."""
    for url in (meta_url, page_url):
        if not url or len(url) > 2048 or re.search(r"\s", url):
            continue
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.hostname == urlsplit(page_url).hostname:
            return url
    return None
