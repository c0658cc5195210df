"""Full-text search for Chinese (and other) records: the query, its ranking and its plans.

The index is ``search_docs``, kept up to date by the follower in
``hub.store.search.index``; the terms it holds (CJK characters and bigrams,
words, digit runs, whole document and index numbers, as CRC-32 hashes under
GIN) are made by ``hub.store.search.terms``.

A query is split on white space into *parts*, each of which must occur in the
record as written (after the same normalisation as the text: NFKC, lower case,
any brackets around a year turned into 〔〕, so 国办发[2006]104号 finds
国办发〔2006〕104号). A part's terms (its bigrams; a single CJK character is its
own term) find the candidate rows through GIN, and ``strpos`` confirms the
exact substring, which also removes hash collisions.

Ranking (``sort="relevance"``): first the records whose *heading* holds every
part (a document or index number as the record's own number, the whole token
finds those; other words in the title), then the others; within each group, the
most recently published first, then by id. ``sort="date"``: one group (``d``),
newest first. The order is total, so the cursor ``group|published|id`` pages
without gaps or duplicates.

Results come as written: the title and a snippet of the record's own text (its
script, its full-width punctuation), with the places of the parts in them
(``hub.store.search.snippets``). ``total`` counts the matching records up to
``COUNT_CAP``; past it, ``total_more`` says there are more.

Plans: a common term matches so many rows that reading the GIN posting list
and sorting every match costs more than walking the newest rows and checking
each. The query reads the term frequencies that ``ANALYZE`` keeps in
``pg_stats`` (kept ``STATS_TTL`` seconds) and, for a term common enough that
a few thousand of the newest rows should hold a page of hits, checks those
rows first; otherwise, and whenever that window holds too few hits, it lets the
planner use GIN. Statements are never prepared (``prepare=False``): a generic
plan cannot see which term it is given.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql

from hub.codes import normalise_doc_number
from hub.errors import RecordInvalid, RequestError
from hub.store.queries import CHINA, PATH, filter_conditions
from hub.store.search.plans import forget_term_statistics, frequencies
from hub.store.search.snippets import Span, marks, snippet
from hub.store.search.terms import (
    normalise,
    query_terms,
    term_id,
    whole_number_token,
    written_content,
)

MAX_QUERY = 200  # characters
MAX_PARTS = 8
MAX_LIMIT = 100
MAX_WINDOW = 20_000  # newest rows checked one by one, at most, before GIN is used
COUNT_CAP = 200  # matching records counted, at most: each one counted is read and checked
SORTS = ("relevance", "date")
_FIRST = {"relevance": "h", "date": "d"}  # the first ranking group of each sort
FIRST_YEAR, LAST_YEAR = 1949, 2999  # years a ``year`` filter may name

_DOC_NUMBER = re.compile(r"\S+〔[0-9]{4}〕[0-9]+号")
_INDEX_NUMBER = re.compile(r"[0-9a-z]+/[0-9]{4}-[0-9]+")


__all__ = ["SearchHit", "SearchQuery", "SearchQueryError", "SearchResult", "search"]
__all__ += ["forget_term_statistics"]


class SearchQueryError(RequestError, ValueError):
    """A query that cannot run (HTTP 400); ``parameter`` names what to fix (``q``, ``limit``…)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(400, message, parameter)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What to search for: ``text`` (parts separated by white space, all required) and
            filters. ``scope`` is a node *path* (``cn.gd``: that node and every node below);
            ``since`` ≤ published < ``until``, and within ``year`` (China time) if given; ``sort``
        is ``relevance`` or ``date``; ``cursor`` is a previous result's ``next_cursor`` (it goes
    on in the order it was made in, whatever ``sort`` says)."""

    text: str
    scope: str | None = None
    node: str | None = None
    kind: str | None = None
    topic: str | None = None
    lang: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 20
    cursor: str | None = None
    year: int | None = None
    sort: str = "relevance"

    def __post_init__(self) -> None:
        _check_storable(self)
        if not self.text.strip():
            raise SearchQueryError("q", "the query is empty; give at least one character")
        if len(self.text) > MAX_QUERY:
            raise SearchQueryError("q", f"the query is longer than {MAX_QUERY} characters")
        # A word without a letter, digit or character (``%``, ``-``, ``'``) has no index
        # term to look for (and no meaning as a word): the query says so, naming it.
        for part in self.parts:
            if not query_terms(part):
                raise SearchQueryError(
                    "q", f"the word {part[:20]!r} has no letter or digit; leave it out"
                )
        if len(normalise(self.text).split()) > MAX_PARTS:
            raise SearchQueryError("q", f"the query has more than {MAX_PARTS} words")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise SearchQueryError("limit", f"limit must be 1 to {MAX_LIMIT}, not {self.limit}")
        if self.scope is not None and not PATH.fullmatch(self.scope):
            raise SearchQueryError("scope", f"{self.scope!r} is not a node path such as cn.gd")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise SearchQueryError(name, f"{name} needs a time zone")
        self._check_choices()

    def _check_choices(self) -> None:
        if self.sort not in SORTS:
            raise SearchQueryError("sort", f"sort must be relevance or date, not {self.sort!r}")
        if self.year is not None and not FIRST_YEAR <= self.year <= LAST_YEAR:
            raise SearchQueryError(
                "year", f"year must be {FIRST_YEAR} to {LAST_YEAR}, not {self.year}"
            )
        if self.cursor is not None:
            _parse_cursor(self.cursor)

    @property
    def parts(self) -> list[str]:
        """The normalised parts that every hit holds (a document number counts as one)."""
        whole = normalise(normalise_doc_number(self.text))
        if _DOC_NUMBER.fullmatch(whole):
            return [whole]
        return list(dict.fromkeys(normalise(self.text).split()))


@dataclass(frozen=True, slots=True)
class SearchHit:
    id: str
    node: str
    kind: str
    title: str
    published: datetime
    doc_number: str | None
    index_number: str | None
    in_heading: bool  # every part is in the title, document number or index number
    snippet: str  # the record's text as written around the first part found
    title_marks: list[Span]  # (start, end) of each match in ``title``
    snippet_marks: list[Span]  # and in ``snippet``
    group: str  # the ranking group: h (heading), b (body) or d (sorted by date)

    @property
    def cursor(self) -> str:
        return f"{self.group}|{self.published.isoformat()}|{self.id}"


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: list[SearchHit]
    next_cursor: str | None  # pass as SearchQuery.cursor for the next page; None: last page
    parts: list[str]  # what was looked for, normalised
    total: int  # records that match (all pages), at most COUNT_CAP
    total_more: bool  # more than ``total`` records match


async def search(pool_conn: AsyncConnection[Any], query: SearchQuery) -> SearchResult:
    """Run ``query`` on ``pool_conn`` (an async connection, e.g. from the portal's pool);
    raise ``SearchQueryError`` for a bad query. Read-only; no statement is prepared."""
    parts = query.parts
    # A cursor goes on in the order it was made in (its group says which), whatever sort.
    group, after = _parse_cursor(query.cursor) if query.cursor else (_FIRST[query.sort], None)
    phases = ("d",) if group == "d" else ("h", "b")
    frequency = await frequencies(pool_conn, parts)
    want = query.limit + 1
    rows: list[tuple[Any, ...]] = []
    for phase in phases[phases.index(group) :]:
        start = after if phase == group else None
        found = await _phase(pool_conn, query, parts, phase, start, want - len(rows), frequency)
        rows += [(*row, phase) for row in found]
        if len(rows) >= want:
            break
    hits = [_hit(row, parts) for row in rows[: query.limit]]
    more = len(rows) > query.limit
    if query.cursor is None and not more:
        total, total_more = len(hits), False
    else:
        total, total_more = await _count(pool_conn, query, parts)
    return SearchResult(hits, hits[-1].cursor if more and hits else None, parts, total, total_more)


async def _count(
    conn: AsyncConnection[Any], query: SearchQuery, parts: list[str]
) -> tuple[int, bool]:
    """How many records match (every page, any group), counted up to ``COUNT_CAP``."""
    params: dict[str, Any] = {"cap": COUNT_CAP + 1}
    match = _match(parts, "d", params)
    where = sql.SQL(" AND ").join(_filters(query, None, params) + match)
    count = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM search_docs WHERE {} LIMIT %(cap)s) c")
    row = await (await conn.execute(count.format(where), params, prepare=False)).fetchone()
    found = int(row[0]) if row else 0
    return min(found, COUNT_CAP), found > COUNT_CAP


async def _phase(
    conn: AsyncConnection[Any],
    query: SearchQuery,
    parts: list[str],
    phase: str,
    after: tuple[datetime, str] | None,
    want: int,
    frequency: dict[str, float],
) -> list[tuple[Any, ...]]:
    column = "heading_terms" if phase == "h" else "terms"
    params: dict[str, Any] = {"want": want}
    match = _match(parts, phase, params)
    filters = _filters(query, after, params)
    rows: list[tuple[Any, ...]] = []
    # The newest `window` rows are expected to hold 3 × want hits; checking them one by
    # one costs less than reading and sorting every match GIN finds when they are fewer.
    share = frequency[column]
    window = 3 * want / share if share else math.inf
    if window <= MAX_WINDOW and window < share * frequency["rows"]:
        params["window"] = int(window) + 1
        rows = await _fetch(conn, _windowed(filters, match), params)
    if len(rows) < want:
        rows = await _fetch(conn, _direct(filters + match), params)
    return rows


def _match(parts: list[str], phase: str, params: dict[str, Any]) -> list[sql.Composable]:
    """The conditions of a row of group ``phase`` (h, b or d), their values in ``params``."""
    column = "heading_terms" if phase == "h" else "terms"
    terms: set[int] = set()
    found = []
    for number, part in enumerate(parts):
        params[f"p{number}"] = part
        placeholder = sql.Placeholder(f"p{number}")
        if _is_number(part):  # in the heading group only as the record's own number
            whole = term_id(whole_number_token(part))
            terms.update([whole] if phase == "h" else map(term_id, query_terms(part)))
            params[f"w{number}"] = [whole]
            own = sql.SQL("(heading_terms @> {}::integer[] AND strpos(heading, {}) > 0)")
            found.append(own.format(sql.Placeholder(f"w{number}"), placeholder))
        else:
            terms.update(map(term_id, query_terms(part)))
            found.append(sql.SQL("strpos(heading, {}) > 0").format(placeholder))
    params["terms"] = sorted(terms)
    in_heading = sql.SQL(" AND ").join(found)
    match: list[sql.Composable] = [
        sql.SQL("{} @> %(terms)s::integer[]").format(sql.Identifier(column))
    ]
    if phase == "h":
        match.append(in_heading)
    else:
        match += [
            sql.SQL("(strpos(heading, {0}) > 0 OR strpos(content, {0}) > 0)").format(
                sql.Placeholder(f"p{n}")
            )
            for n in range(len(parts))
        ]
        if phase == "b":
            match.append(sql.SQL("NOT ({})").format(in_heading))
    return match


def _filters(
    query: SearchQuery, after: tuple[datetime, str] | None, params: dict[str, Any]
) -> list[sql.Composable]:
    conditions: list[sql.Composable] = [sql.SQL("NOT withdrawn")]
    conditions += filter_conditions(
        params,
        node=query.node,
        kind=query.kind,
        topic=query.topic,
        lang=query.lang,
        scope=query.scope,
        since=_later(query.since, _year_start(query.year)),
        until=_earlier(query.until, _year_start(query.year and query.year + 1)),
    )
    if after is not None:
        params["after_published"], params["after_id"] = after
        conditions.append(sql.SQL("(published, id) < (%(after_published)s, %(after_id)s)"))
    return conditions


def _year_start(year: int | None) -> datetime | None:
    return datetime(year, 1, 1, tzinfo=CHINA) if year else None


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(a, b) if a and b else a or b


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(a, b) if a and b else a or b


_ORDER = sql.SQL(" ORDER BY published DESC, id DESC")
_OUTER = sql.SQL(
    "SELECT r.id, r.node, r.kind, r.title, r.published, r.doc_number, r.index_number,"
    " m.heading, m.content, r.xml FROM ({}) AS m JOIN records r ON r.id = m.id"
    " ORDER BY m.published DESC, m.id DESC"
)


def _direct(conditions: list[sql.Composable]) -> sql.Composed:
    inner = sql.SQL("SELECT id, published, heading, content FROM search_docs WHERE {}{}{}")
    where = sql.SQL(" AND ").join(conditions)
    return _OUTER.format(inner.format(where, _ORDER, sql.SQL(" LIMIT %(want)s")))


def _windowed(filters: list[sql.Composable], match: list[sql.Composable]) -> sql.Composed:
    window = sql.SQL(
        "SELECT id, published, heading, content, terms, heading_terms FROM search_docs"
        " WHERE {}{} LIMIT %(window)s"
    ).format(sql.SQL(" AND ").join(filters), _ORDER)
    inner = sql.SQL("SELECT id, published, heading, content FROM ({}) AS w WHERE {}{}{}").format(
        window, sql.SQL(" AND ").join(match), _ORDER, sql.SQL(" LIMIT %(want)s")
    )
    return _OUTER.format(inner)


async def _fetch(
    conn: AsyncConnection[Any], query: sql.Composed, params: dict[str, Any]
) -> list[tuple[Any, ...]]:
    cursor = await conn.execute(query, params, prepare=False)
    return await cursor.fetchall()


def _is_number(part: str) -> bool:
    """A document number or index number, which a heading matches only as its own number."""
    return bool(_DOC_NUMBER.fullmatch(part) or _INDEX_NUMBER.fullmatch(part))


def _hit(row: tuple[Any, ...], parts: list[str]) -> SearchHit:
    id_, node, kind, title, published, doc_number, index_number, heading, content, *rest = row
    xml, group = rest
    numbers = heading.split("\n")[1:]
    in_heading = all((p in numbers) if _is_number(p) else (p in heading) for p in parts)
    try:
        written = written_content(xml, id_)
    except (RecordInvalid, ValueError):  # stored XML is valid; the index's text will do
        written = content
    text, text_marks = snippet(written, parts, found=any(p in content for p in parts))
    return SearchHit(
        id_,
        node,
        kind,
        title,
        published.astimezone(CHINA),
        doc_number,
        index_number,
        in_heading,
        text,
        marks(title, parts),
        text_marks,
        group,
    )


def _check_storable(query: SearchQuery) -> None:
    """``SearchQueryError`` for a field PostgreSQL cannot take, naming it."""
    for name in ("text", "scope", "node", "kind", "topic", "lang", "cursor"):
        value = getattr(query, name)
        if value is not None and not _storable(value):
            parameter = "q" if name == "text" else name
            message = f"{parameter} holds a NUL or an unpaired surrogate; remove it"
            raise SearchQueryError(parameter, message)


def _storable(text: str) -> bool:
    """Whether PostgreSQL can take ``text``: no NUL, no lone surrogate (not UTF-8)."""
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


def _parse_cursor(cursor: str) -> tuple[str, tuple[datetime, str]]:
    group, _, rest = cursor.partition("|")
    published, _, id_ = rest.partition("|")
    try:
        when: datetime | None = datetime.fromisoformat(published)
    except ValueError:
        when = None
    if group not in ("h", "b", "d") or when is None or when.tzinfo is None or not id_:
        raise SearchQueryError("cursor", f"{cursor!r} is not a search cursor (next_cursor)")
    return group, (when, id_)
