"""Full-text search for Chinese (and other) records: the index follower and the query.

The index lives in ``search_docs`` (see ``hub.store.schema_search``) and is
written by a *follower* (``hub.store.followers``), so the hub's write path
(``upsert_records``) pays nothing for it::

    records ─ changes ─► index_records: text from the stored XML ─ terms ─► search_docs

Index terms are what CJK search engines use: every character and every pair of
adjacent characters of a run of CJK characters (Chinese has no spaces between
words), each Latin word and each digit run whole, and the document number
(发文字号, normal form) and index number (索引号) as whole tokens. Each term is
stored as a 32-bit hash (CRC-32) in an ``integer[]`` under GIN.

A query is split on white space into *parts*, each of which must occur in the
record as written (after the same normalisation as the text: NFKC, lower case,
any brackets around a year turned into 〔〕, so 国办发[2006]104号 finds
国办发〔2006〕104号). A part's terms (its bigrams; a single CJK character is its
own term) find the candidate rows through GIN, and ``strpos`` confirms the
exact substring, which also removes hash collisions.

Ranking: first the records whose *heading* holds every part (a document or
index number as the record's own number, the whole token finds those; other
words in the title), then the others; within each group, the most recently
published first, then by id. The order is total, so the cursor
``group|published|id`` pages without gaps or duplicates.

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

import asyncio
import functools
import logging
import math
import re
import time
import unicodedata
import weakref
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lxml import etree
from psycopg import AsyncConnection, sql

from hub.codes import normalise_doc_number
from hub.errors import RecordInvalid
from hub.records.model import NS
from hub.records.safe_xml import parse_untrusted
from hub.store.connection import Connection
from hub.store.followers import follow_forever
from hub.store.queries import CHINA, filter_conditions
from hub.store.records import PATH

log = logging.getLogger(__name__)

FOLLOWER = "search"
MAX_CONTENT = 100_000  # characters of summary and body indexed per record; the rest is not
MAX_QUERY = 200  # characters
MAX_PARTS = 8
MAX_LIMIT = 100
MAX_WINDOW = 20_000  # newest rows checked one by one, at most, before GIN is used
STATS_TTL = 300.0  # seconds the term frequencies read from pg_stats are kept

_CJK = (
    "\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3040-\u30ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
)
_TOKENS = re.compile(rf"(?P<cjk>[{_CJK}]+)|(?P<num>\d+)|(?P<word>(?:(?![{_CJK}])[^\W\d_])+)")
_YEAR_IN_BRACKETS = re.compile(r"[\[(【〔〖]([0-9]{4})[\])】〕〗]")  # as hub.codes
_SERIAL_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9]+号)")
_SPACES = re.compile(r"\s+")
_DOC_NUMBER = re.compile(r"\S+〔[0-9]{4}〕[0-9]+号")
_INDEX_NUMBER = re.compile(r"[0-9a-z]+/[0-9]{4}-[0-9]+")
_WHOLE = "\x01"  # prefix of whole-number tokens: never part of normalised text
_BLOCKS = frozenset(
    ("p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "td", "th", "br", "table")
) | {"ul", "ol", "blockquote", "pre"}


# -- text and terms ---------------------------------------------------------------


def normalise(text: str) -> str:
    """Searchable form of text: NFKC, lower case, 〔year〕 brackets, one space between runs."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _SERIAL_LEADING_ZEROS.sub("", _YEAR_IN_BRACKETS.sub(r"〔\1〕", text))
    return _SPACES.sub(" ", text).strip()


@functools.lru_cache(maxsize=1 << 16)  # common characters and bigrams recur in every record
def term_id(term: str) -> int:
    """The 32-bit signed hash a term is stored as (CRC-32: stable across processes)."""
    value = zlib.crc32(term.encode("utf-8"))
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


def text_terms(text: str) -> set[str]:
    """Index terms of normalised text: CJK characters and bigrams, words, digit runs."""
    terms: set[str] = set()
    for match in _TOKENS.finditer(text):
        run = match.group()
        if match.lastgroup == "cjk":
            terms.update(run)
            terms.update([run[i : i + 2] for i in range(len(run) - 1)])
        else:
            terms.add(run)
    return terms


def query_terms(part: str) -> list[str]:
    """The fewest terms that a record holding ``part`` must have: bigrams of CJK runs
    (a lone CJK character stands for itself), words and digit runs whole."""
    terms: list[str] = []
    for match in _TOKENS.finditer(part):
        run = match.group()
        if match.lastgroup == "cjk" and len(run) > 1:
            terms.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            terms.append(run)
    return list(dict.fromkeys(terms))


def whole_number_token(value: str) -> str:
    """The whole token of a document or index number, already normalised."""
    return _WHOLE + value


# -- the follower ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndexedText:
    heading: str
    content: str
    validity: str | None
    heading_terms: list[int]
    terms: list[int]


def indexed_text(
    title: str, doc_number_norm: str | None, index_number: str | None, xml: str, where: str
) -> IndexedText:
    """What ``search_docs`` keeps of a record: normalised text and its term hashes."""
    numbers = [normalise(n) for n in (doc_number_norm, index_number) if n]
    heading = "\n".join([normalise(title), *numbers])
    summary, body, validity = _xml_text(xml, where)
    content = normalise(f"{summary}\n{body}")[:MAX_CONTENT]
    head = text_terms(heading) | {whole_number_token(n) for n in numbers}
    heading_terms = sorted({term_id(t) for t in head})
    terms = sorted(set(heading_terms) | {term_id(t) for t in text_terms(content)})
    return IndexedText(heading, content, validity, heading_terms, terms)


def _xml_text(xml: str, where: str) -> tuple[str, str, str | None]:
    """Summary, body text (blocks on lines of their own) and validity of a stored record."""
    root = parse_untrusted(xml.encode("utf-8"), where).getroot()
    summary = root.findtext(f"{{{NS}}}summary") or ""
    validity = root.findtext(f"{{{NS}}}validity")
    body = root.find(f"{{{NS}}}body")
    parts: list[str] = []
    if body is not None:
        for event, element in etree.iterwalk(body, events=("start", "end")):
            block = etree.QName(element).localname in _BLOCKS
            if event == "start":
                parts.append("\n" if block else "")
                parts.append(element.text or "")
            else:
                parts.append("\n" if block else "")
                if element is not body:
                    parts.append(element.tail or "")
    return summary, "".join(parts), validity


_READ = (
    "SELECT id, node, path, kind, topic_class, lang, published, withdrawn, title,"
    " doc_number_norm, index_number, stored_at, xml FROM records WHERE id = ANY(%s)"
)
_SEARCH_COLUMNS = [
    *["id", "node", "path", "kind", "topic_class", "lang", "validity", "published"],
    *["withdrawn", "heading", "content", "heading_terms", "terms"],
]
_STATS = """
INSERT INTO search_node_stats AS s (node, records, withdrawn, last_published, last_stored)
SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::timestamptz[],
                     %s::timestamptz[])
ON CONFLICT (node) DO UPDATE SET
    records = s.records + excluded.records,
    withdrawn = s.withdrawn + excluded.withdrawn,
    last_published = greatest(s.last_published, excluded.last_published),
    last_stored = greatest(s.last_stored, excluded.last_stored)
"""


def index_records(conn: Connection, ids: Sequence[str]) -> None:
    """Bring ``search_docs`` and ``search_node_stats`` up to date for ``ids`` (a
    follower's handler: runs inside the follower's transaction)."""
    rows = conn.execute(_READ, [list(ids)]).fetchall()
    before = dict(
        conn.execute(
            "SELECT id, withdrawn FROM search_docs WHERE id = ANY(%s)", [list(ids)]
        ).fetchall()
    )
    stats: dict[str, list[Any]] = {}
    docs = []
    for id_, node, path, kind, topic, lang, published, withdrawn, *rest in rows:
        title, doc_number, index_number, stored_at, xml = rest
        text = IndexedText("", "", None, [], [])
        if not withdrawn:
            try:
                text = indexed_text(title, doc_number, index_number, xml, id_)
            except (RecordInvalid, ValueError) as exc:  # stored XML is valid: a bug if seen
                log.error("search index skips the text of %s: %s", id_, exc, extra={"record": id_})
        fields = (id_, node, path, kind, topic, lang, text.validity, published, withdrawn)
        docs.append((*fields, text.heading, text.content, text.heading_terms, text.terms))
        count = stats.setdefault(node, [0, 0, published, stored_at])
        count[0] += id_ not in before
        count[1] += int(withdrawn) - int(before.get(id_, False))
        count[2], count[3] = max(count[2], published), max(count[3], stored_at)
    conn.execute("DELETE FROM search_docs WHERE id = ANY(%s)", [list(ids)])
    columns = sql.SQL(", ").join(map(sql.Identifier, _SEARCH_COLUMNS))
    with conn.cursor().copy(sql.SQL("COPY search_docs ({}) FROM STDIN").format(columns)) as copy:
        for doc in docs:  # arrays as literals: psycopg's list dumper costs a third of the work
            copy.write_row([*doc[:-2], _array_literal(doc[-2]), _array_literal(doc[-1])])
    if stats:
        conn.execute(_STATS, [list(stats), *map(list, zip(*stats.values(), strict=True))])


def _array_literal(values: list[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


async def run_search_indexer(
    connect: Callable[[], Connection], stop: asyncio.Event, *, batch: int = 500, idle: float = 1.0
) -> None:
    """Keep the search index up to date until ``stop`` is set (``govhub hub run`` runs
    this next to the consumers; two hubs may both run it, the follower lock serialises
    them). ``connect`` opens an autocommit connection in the hub's schema."""
    await follow_forever(connect, FOLLOWER, index_records, stop, batch=batch, idle=idle)


# -- the query ---------------------------------------------------------------------


class SearchQueryError(ValueError):
    """A query that cannot run; ``parameter`` names what to fix (``q``, ``limit``, …)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What to search for: ``text`` (parts separated by white space, all required) and
    filters. ``scope`` is a node *path* (``cn.gd``: that node and every node below);
    ``since`` ≤ published < ``until``; ``cursor`` is a previous result's ``next_cursor``."""

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

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise SearchQueryError("q", "the query is empty; give at least one character")
        if len(self.text) > MAX_QUERY:
            raise SearchQueryError("q", f"the query is longer than {MAX_QUERY} characters")
        if not query_terms(normalise(self.text)):
            raise SearchQueryError("q", "the query has no letters, digits or characters")
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
    snippet: str  # normalised text around the first part found in the content

    @property
    def cursor(self) -> str:
        return f"{'h' if self.in_heading else 'b'}|{self.published.isoformat()}|{self.id}"


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: list[SearchHit]
    next_cursor: str | None  # pass as SearchQuery.cursor for the next page; None: last page
    parts: list[str]  # what was looked for, normalised (for highlighting)


async def search(pool_conn: AsyncConnection[Any], query: SearchQuery) -> SearchResult:
    """Run ``query`` on ``pool_conn`` (an async connection, e.g. from the portal's pool);
    raise ``SearchQueryError`` for a bad query. Read-only; no statement is prepared."""
    parts = query.parts
    group, after = _parse_cursor(query.cursor) if query.cursor else ("h", None)
    frequency = await _frequencies(pool_conn, parts)
    want = query.limit + 1
    rows: list[tuple[Any, ...]] = []
    for phase in ("h", "b"):
        if phase == "h" and group == "b":
            continue
        start = after if phase == group else None
        rows += await _phase(pool_conn, query, parts, phase, start, want - len(rows), frequency)
        if len(rows) >= want:
            break
    hits = [_hit(row, parts) for row in rows[: query.limit]]
    more = len(rows) > query.limit
    return SearchResult(hits, hits[-1].cursor if more and hits else None, parts)


async def _frequencies(conn: AsyncConnection[Any], parts: list[str]) -> dict[str, float]:
    """Per column, the estimated share of rows holding every part, and (``rows``) the
    table's size. A part is taken as common as its rarest term (the bigrams of one word
    go together), parts as independent of each other; a term that is not among
    ANALYZE's common ones counts as 0."""
    rows, common = await _common_terms(conn)
    per_part = [[term_id(t) for t in query_terms(p)] for p in parts]
    estimate: dict[str, float] = {"rows": rows}
    for column in ("terms", "heading_terms"):
        known = common.get(column, {})
        estimate[column] = math.prod(min(known.get(t, 0.0) for t in ids) for ids in per_part)
    return estimate


_COMMON: weakref.WeakKeyDictionary[
    AsyncConnection[Any], tuple[float, float, dict[str, dict[int, float]]]
] = weakref.WeakKeyDictionary()
"""Per connection (pooled connections live long): when read, the table's estimated rows,
and the common terms with their frequencies per column, as ANALYZE left them in
pg_stats. Kept STATS_TTL seconds."""


def forget_term_statistics() -> None:
    """Read pg_stats again at the next query (after an ANALYZE that should count now)."""
    _COMMON.clear()


async def _common_terms(conn: AsyncConnection[Any]) -> tuple[float, dict[str, dict[int, float]]]:
    read_at, rows, common = _COMMON.get(conn, (-STATS_TTL, 0.0, {}))
    if time.monotonic() - read_at < STATS_TTL:
        return rows, common
    cursor = await conn.execute(
        "SELECT attname, most_common_elems::text::integer[], most_common_elem_freqs,"
        " (SELECT reltuples FROM pg_class WHERE oid = 'search_docs'::regclass)"
        " FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'search_docs'"
        " AND attname IN ('terms', 'heading_terms') AND most_common_elems IS NOT NULL",
        prepare=False,
    )
    found = await cursor.fetchall()
    rows = float(found[0][3]) if found else 0.0
    common = {column: dict(zip(elems, freqs, strict=False)) for column, elems, freqs, _ in found}
    _COMMON[conn] = (time.monotonic(), rows, common)
    return rows, common


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
        match.append(sql.SQL("NOT ({})").format(in_heading))
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
        since=query.since,
        until=query.until,
    )
    if after is not None:
        params["after_published"], params["after_id"] = after
        conditions.append(sql.SQL("(published, id) < (%(after_published)s, %(after_id)s)"))
    return conditions


_ORDER = sql.SQL(" ORDER BY published DESC, id DESC")
_OUTER = sql.SQL(
    "SELECT r.id, r.node, r.kind, r.title, r.published, r.doc_number, r.index_number,"
    " m.heading, m.content FROM ({}) AS m JOIN records r ON r.id = m.id"
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
    id_, node, kind, title, published, doc_number, index_number, heading, content = row
    numbers = heading.split("\n")[1:]
    in_heading = all((p in numbers) if _is_number(p) else (p in heading) for p in parts)
    return SearchHit(
        id_,
        node,
        kind,
        title,
        published.astimezone(CHINA),
        doc_number,
        index_number,
        in_heading,
        snippet(content, parts),
    )


def snippet(content: str, parts: list[str], before: int = 30, after: int = 90) -> str:
    """About ``before + after`` characters of ``content`` around the first part found."""
    found = [i for i in (content.find(p) for p in parts) if i >= 0]
    start = max(min(found, default=0) - before, 0)
    text = content[start : start + before + after].replace("\n", " ")
    return ("…" if start else "") + text + ("…" if start + before + after < len(content) else "")


def _parse_cursor(cursor: str) -> tuple[str, tuple[datetime, str]]:
    group, _, rest = cursor.partition("|")
    published, _, id_ = rest.partition("|")
    try:
        when: datetime | None = datetime.fromisoformat(published)
    except ValueError:
        when = None
    if group not in ("h", "b") or when is None or when.tzinfo is None or not id_:
        raise SearchQueryError("cursor", f"{cursor!r} is not a search cursor (next_cursor)")
    return group, (when, id_)
