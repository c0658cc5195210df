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
    AUDIENCE_TERMS,
    DURATION_TERMS,
    MODE_TERMS,
    VALIDITY_TERMS,
    as_published,
    parse_date,
    parse_doc_number,
    parse_term,
    parse_topic,
    parse_when,
    split_issuers,
    split_keywords,
)
from adapters.kit.sanitize import sanitize_html
from adapters.page.fields import PageFields, inner_html
from adapters.page.html import collapse
from hub import records
from hub.codes import INDEX_NUMBER_EXPECTED, index_number_problem, standard_index_number
from hub.errors import InputError, Problem
from hub.records import Record
from hub.records.model import Disclosure, Topic

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

    title = labels.get("title") or meta.get("ArticleTitle") or found.heading
    if not title:
        problem(
            "title",
            "the page shows no title (looked for a 标题/名称 label, an ArticleTitle meta tag, "
            "one h1 and the <title> element)",
            "a title on the page, or a title selector",
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
        or _not_the_site(split_issuers(labels.get("source", "")))
        or _not_the_site(split_issuers(meta.get("ContentSource", "")))
    )
    index_number, local_index_number = _index_number(
        where, labels.get("index_number"), created, published, warn
    )
    fields_: dict[str, Any] = {
        "kind": "document" if {"index_number", "doc_number"} & labelled else kind,
        "index_number": index_number,
        "local_index_number": local_index_number,
        "validity": _term(where, labels, "validity", VALIDITY_TERMS, "有效性", warn),
        "disclosure": _disclosure(where, labels, warn),
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


_THE_SITE = frozenset(("本站", "本网", "本网站", "原创", "本站原创", "网站", "本平台"))


def _not_the_site(sources: tuple[str, ...]) -> tuple[str, ...]:
    """来源 names an organ, except 本站/本网/原创 (the site itself: the node's name serves)."""
    return tuple(source for source in sources if source not in _THE_SITE)


def _index_number(
    where: str, value: str | None, created: date | None, published: datetime, warn: Warn
) -> tuple[str | None, str | None]:
    """The page's 索引号: ``(standard, None)`` when it is a valid ``ORGCODE/YYYY-NNNNN``
    of the record's years, else ``(None, local)`` with a warning.

    A site's own form (``PZ00102-1700-2022-00034``, a credit code without the
    slash, a failing check character, a year that is neither created nor
    published) is still the identifier people search by: the record keeps it as
    ``localIndexNumber`` and the warning says why it is not the standard form.
    """
    if not value or not value.strip():
        return None, None
    written = collapse(value)
    number = standard_index_number(written)
    problem = None if number is not None else index_number_problem(written)
    if number is not None:
        years = {published.year} | ({created.year} if created else set())
        if int(number[-10:-6]) not in years:
            problem = f"year {number[-10:-6]} matches neither created nor published"
    if problem is None and number is not None:
        return number, None
    warn(
        where,
        "indexNumber",
        f"索引号 {written!r} kept as localIndexNumber, not in the standard form: {problem} "
        f"(expected {INDEX_NUMBER_EXPECTED})",
    )
    return None, written[:100]


def _term(
    where: str,
    labels: Mapping[str, str],
    name: str,
    terms: Mapping[str, tuple[str, ...]],
    what: str,
    warn: Warn,
) -> str | None:
    """The schema term of a labelled value (有效性 现行有效 → ``in-force``); an unknown
    value is left out with a warning."""
    try:
        return parse_term(labels.get(name, ""), terms, what)
    except ValueError as exc:
        warn(where, name, f"{what} dropped: {exc}")
        return None


def _disclosure(where: str, labels: Mapping[str, str], warn: Warn) -> Disclosure | None:
    """公开方式, 公开范围 and 公开时限 as the record's disclosure; none without a 公开方式
    (the schema requires the mode)."""
    mode = _term(where, labels, "mode", MODE_TERMS, "公开方式", warn)
    audience = _term(where, labels, "audience", AUDIENCE_TERMS, "公开范围", warn)
    duration = _term(where, labels, "duration", DURATION_TERMS, "公开时限", warn)
    if mode is None:
        if audience or duration:
            warn(where, "disclosure", "公开范围/公开时限 left out: the page shows no 公开方式")
        return None
    return Disclosure(mode, audience, duration)


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
            "the page shows no publication date (looked for a 发布日期/发布时间/公开日期/"
            "公布日期/日期/时间 label and the PubDate, firstpublishedtime and publishdate "
            "meta tags)",
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
