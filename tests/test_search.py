"""Search: index terms, the follower that keeps ``search_docs``, and the ranked query.

Real PostgreSQL (a schema per module); records built from examples/records and
stored through ``upsert_records``; the index is brought up to date by the real
follower (``follow_pending`` with ``index_records``), never written by hand.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
import support.postgres as postgres_fixtures
from support.waits import catch_up

from hub.federation import load_federation
from hub.records import Record, Status, Topic, parse
from hub.records.model import XHTML_NS, Origin
from hub.store import StoredRecord, upsert_records
from hub.store.connection import Connection
from hub.store.migrations import MIGRATIONS
from hub.store.search import query as search_module
from hub.store.search.index import FOLLOWER, index_records
from hub.store.search.query import (
    SearchQuery,
    SearchQueryError,
    SearchResult,
    forget_term_statistics,
    search,
)
from hub.store.search.schema import REINDEX, REINDEX_STEPS
from hub.store.search.snippets import marks, segments, snippet
from hub.store.search.terms import INDEX_VERSION, fold_script, normalise, query_terms, text_terms

pg_url = postgres_fixtures.own_pg_url  # reads the change feed: a server of its own
pg_conn = postgres_fixtures.pg_conn

ROOT = Path(__file__).resolve().parents[1]
FEDERATION = load_federation(ROOT / "nodes.toml")
EXAMPLE = parse((ROOT / "examples" / "records" / "document.xml").read_bytes())
CST = timezone(timedelta(hours=8))
DAY0 = datetime(2024, 1, 1, 9, 0, tzinfo=CST)


def make_record(
    local: str,
    title: str,
    body: str = "正文。",
    *,
    node: str = "gz",
    day: int = 0,
    summary: str | None = None,
    doc_number: str | None = None,
    kind: str = "document",
    topic: str = "综合政务",
    lang: str = "zh-Hans",
    revision: int = 1,
    validity: str | None = "in-force",
    index_number: str | None = None,
) -> Record:
    """A valid record of ``node`` published ``day`` days after 2024-01-01."""
    site = FEDERATION.node(node).site_code
    record = dataclasses.replace(
        EXAMPLE,
        kind=kind,
        id=f"urn:govhub:{node}:{local}",
        revision=revision,
        origin=Origin(node, site),
        title=title,
        issuers=("测试机关",),
        published=DAY0 + timedelta(days=day),
        lang=lang,
        index_number=index_number,
        doc_number=doc_number,
        topic=Topic(topic),
        created=None,
        summary=summary,
        body=f'<p xmlns="{XHTML_NS}">{body}</p>',
        validity=validity if kind == "document" else None,
    )
    return parse(record.to_xml(), local)  # valid, as the hub would have stored it


def store(conn: Connection, records: Sequence[Record]) -> None:
    rows = [StoredRecord.from_record(r, FEDERATION.node(r.origin.node).path) for r in records]
    upsert_records(conn, rows)


def follow(conn: Connection) -> None:
    """Run the search follower until it has indexed every change (in batches of 7)."""
    catch_up(conn, FOLLOWER, index_records, batch=7)


def run_search(url: str, text: str, **filters: Any) -> SearchResult:
    async def go() -> SearchResult:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            return await search(conn, SearchQuery(text, **filters))

    return asyncio.run(go())


def ids(result: SearchResult) -> list[str]:
    return [hit.id.rsplit(":", 1)[1] for hit in result.hits]


def all_pages(url: str, text: str, limit: int, **filters: Any) -> list[str]:
    found: list[str] = []
    cursor = None
    for _ in range(100):
        result = run_search(url, text, limit=limit, cursor=cursor, **filters)
        found += ids(result)
        cursor = result.next_cursor
        if cursor is None:
            return found
    raise AssertionError("pagination did not end")


CORPUS = [
    make_record("t1", "关于开展碳汇交易试点的通知", "各区：现将有关事项通知如下。", day=10),
    make_record("t2", "生态环境保护工作要点", "积极推进碳汇交易市场建设。", day=30),
    make_record("t3", "林业碳汇项目管理办法", "第一条 为规范管理。", node="gd", day=5),
    make_record(
        "t4", "碳排放权交易管理", "碳汇交流。汇交资料。交易市场。易市场。", node="cn", day=40
    ),
    make_record("t5", "国务院办公厅通知", "依据国办发[2006]104号文件精神。", node="sz", day=20),
    make_record(
        "t6",
        "关于加强政务公开的意见",
        "现提出如下意见。",
        node="cn",
        day=1,
        doc_number="国办发〔2006〕104号",
    ),
    make_record(
        "t7",
        "Annual Report on Open Government",
        "The GOVERNMENT releases data.",
        node="he",
        day=15,
        lang="en",
        kind="news",
        topic="综合政务",
    ),
    make_record(
        "t8",
        "城乡建设统计",
        "碳汇。",
        node="hd",
        day=50,
        kind="statistics",
        topic="城乡建设、环境保护",
    ),
    make_record(
        "t9", "索引号检索", "内容。", node="cn", day=2, index_number="000014349/2024-00226"
    ),
]


@pytest.fixture
def indexed(pg_conn: Connection, pg_url: str) -> str:
    store(pg_conn, CORPUS)
    follow(pg_conn)
    return pg_url


# -- terms (no database) --------------------------------------------------------------


def test_terms_are_cjk_unigrams_and_bigrams_words_and_digit_runs() -> None:
    assert text_terms(normalise("碳汇ABC 2021年")) == {"碳", "汇", "碳汇", "abc", "2021", "年"}
    assert query_terms("碳汇交易") == ["碳汇", "汇交", "交易"]
    assert query_terms("碳") == ["碳"]


def test_doc_number_brackets_normalise_alike() -> None:
    forms = [
        "国办发〔2006〕104号",
        "国办发[2006]104号",
        "国办发（2006）104号",
        "国办发(2006)0104号",
    ]
    assert {normalise(f) for f in forms} == {"国办发〔2006〕104号"}
    assert SearchQuery("国办发 [2006] 104号").parts == ["国办发〔2006〕104号"]


@pytest.mark.parametrize(
    ("fields", "parameter"),
    [
        ({"text": "  "}, "q"),
        ({"text": "x" * 201}, "q"),
        ({"text": "。，"}, "q"),
        ({"text": "碳汇", "limit": 0}, "limit"),
        ({"text": "碳汇", "scope": "CN/GD"}, "scope"),
        ({"text": "碳汇", "cursor": "nonsense"}, "cursor"),
        ({"text": "碳汇", "since": datetime(2024, 1, 1)}, "since"),
    ],
)
def test_bad_queries_name_their_parameter(fields: dict[str, Any], parameter: str) -> None:
    with pytest.raises(SearchQueryError) as caught:
        SearchQuery(**fields)
    assert caught.value.parameter == parameter


# -- the index and the query ------------------------------------------------------------


def test_two_character_term_ranked_heading_first_then_newest(indexed: str) -> None:
    result = run_search(indexed, "碳汇")
    # t1, t3 hold it in the title (newest first), then t8, t4, t2 in the text (newest first)
    assert ids(result) == ["t1", "t3", "t8", "t4", "t2"]
    assert [h.in_heading for h in result.hits] == [True, True, False, False, False]
    assert result.next_cursor is None
    assert "碳汇" in result.hits[2].snippet


def test_one_character_term(indexed: str) -> None:
    assert set(ids(run_search(indexed, "汇"))) == {"t1", "t2", "t3", "t4", "t8"}


def test_longer_term_must_occur_as_written(indexed: str) -> None:
    # t4 holds every bigram of 碳汇交易市场 but not the phrase itself
    assert ids(run_search(indexed, "碳汇交易市场")) == ["t2"]
    assert ids(run_search(indexed, "碳汇交易")) == ["t1", "t2"]


def test_words_are_all_required(indexed: str) -> None:
    assert ids(run_search(indexed, "碳汇 通知")) == ["t1"]
    both = run_search(indexed, "碳汇 管理")  # t4: 管理 in the title, 碳汇 in the text
    assert ids(both) == ["t3", "t4"]
    assert [h.in_heading for h in both.hits] == [True, False]


def test_doc_number_in_any_bracket_form(indexed: str, pg_conn: Connection) -> None:
    titled = make_record("t10", "关于转发国办发〔2006〕104号文件的通知", node="ft", day=60)
    store(pg_conn, [titled])
    follow(pg_conn)
    for form in (
        "国办发〔2006〕104号",
        "国办发[2006]104号",
        "国办发（2006）104号",
        "国办发(2006)104号",
    ):
        result = run_search(indexed, form)
        # its own number first, then the records citing it (title or text), newest first
        assert ids(result) == ["t6", "t10", "t5"], form
        assert [h.in_heading for h in result.hits] == [True, False, False]


def test_index_number_and_latin_words(indexed: str) -> None:
    assert ids(run_search(indexed, "000014349/2024-00226")) == ["t9"]
    assert ids(run_search(indexed, "government")) == ["t7"]
    assert ids(run_search(indexed, "OPEN Government")) == ["t7"]
    assert ids(run_search(indexed, "gov")) == []  # Latin words match whole


def test_filters(indexed: str) -> None:
    assert ids(run_search(indexed, "碳汇", scope="cn.gd")) == ["t1", "t3", "t2"]
    assert ids(run_search(indexed, "碳汇", scope="cn.he")) == ["t8"]
    assert ids(run_search(indexed, "碳汇", node="gz")) == ["t1", "t2"]
    assert ids(run_search(indexed, "碳汇", kind="statistics")) == ["t8"]
    assert ids(run_search(indexed, "碳汇", topic="城乡建设、环境保护")) == ["t8"]
    assert ids(run_search(indexed, "report", lang="en")) == ["t7"]
    assert ids(run_search(indexed, "report", lang="zh-Hans")) == []
    since, until = DAY0 + timedelta(days=10), DAY0 + timedelta(days=40)
    assert ids(run_search(indexed, "碳汇", since=since, until=until)) == ["t1", "t2"]


def test_pages_have_no_gap_and_no_duplicate(indexed: str) -> None:
    whole = ids(run_search(indexed, "汇", limit=100))
    for limit in (1, 2, 3):
        assert all_pages(indexed, "汇", limit) == whole


def test_plans_from_statistics_give_the_same_answers(
    indexed: str, pg_conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After ANALYZE, a common term is looked for among the newest rows first: same hits."""
    notices = [
        make_record(f"n{n:03}", f"第{n}号公告", f"公告内容{n}。", day=n % 90) for n in range(150)
    ]
    store(pg_conn, notices)
    follow(pg_conn)
    queries = ["公告", "公告 内容", "号", "碳汇", "汇", "通知", "碳汇交易", "国办发[2006]104号"]
    before = {q: ids(run_search(indexed, q)) for q in queries}
    pages = all_pages(indexed, "公告", 7)
    pg_conn.execute("ANALYZE search_docs")
    forget_term_statistics()
    windows = []
    original = search_module._windowed

    def counted(*args: Any) -> Any:
        windows.append(args)
        return original(*args)

    monkeypatch.setattr(search_module, "_windowed", counted)
    assert {q: ids(run_search(indexed, q)) for q in queries} == before
    assert windows  # the newest-rows-first plan did run
    assert all_pages(indexed, "公告", 7) == pages
    assert len(pages) == len(set(pages)) == 150


def test_statements_are_never_prepared(indexed: str) -> None:
    async def go() -> int:
        async with await psycopg.AsyncConnection.connect(indexed) as conn:
            for _ in range(8):  # past psycopg's prepare_threshold (5)
                await search(conn, SearchQuery("碳汇", scope="cn.gd"))
            cursor = await conn.execute("SELECT count(*) FROM pg_prepared_statements")
            row = await cursor.fetchone()
            return int(row[0]) if row else -1

    assert asyncio.run(go()) == 0


def test_follower_follows_updates_and_withdrawals(indexed: str, pg_conn: Connection) -> None:
    t1 = CORPUS[0]
    renamed = dataclasses.replace(t1, revision=2, title="关于开展森林防火工作的通知")
    withdrawn = dataclasses.replace(
        CORPUS[1], revision=2, status=Status("withdrawn", "发布有误", DAY0 + timedelta(days=31))
    )
    store(pg_conn, [renamed, withdrawn])
    assert "t2" in ids(run_search(indexed, "碳汇"))  # not yet followed: the index lags
    follow(pg_conn)
    assert ids(run_search(indexed, "碳汇")) == ["t3", "t8", "t4"]
    assert ids(run_search(indexed, "森林防火")) == ["t1"]
    stats = pg_conn.execute(
        "SELECT records, withdrawn FROM search_node_stats WHERE node = 'gz'"
    ).fetchone()
    assert stats == (2, 1)
    restored = dataclasses.replace(CORPUS[1], revision=3)
    store(pg_conn, [restored])
    follow(pg_conn)
    assert "t2" in ids(run_search(indexed, "碳汇"))
    assert pg_conn.execute(
        "SELECT records, withdrawn FROM search_node_stats WHERE node = 'gz'"
    ).fetchone() == (2, 0)


def test_indexer_runs_until_stopped(pg_conn: Connection, pg_url: str) -> None:
    from hub.store import connect
    from hub.store.search.index import run_search_indexer

    store(pg_conn, CORPUS[:3])

    async def go() -> list[str]:
        stop = asyncio.Event()
        task = asyncio.create_task(run_search_indexer(lambda: connect(pg_url), stop, idle=0.05))
        try:
            deadline = time.monotonic() + 300  # see follow(): other transactions delay it
            while time.monotonic() < deadline:
                result = await asyncio.to_thread(run_search, pg_url, "碳汇")
                if len(result.hits) == 3:
                    return ids(result)
                await asyncio.sleep(0.05)
            return []
        finally:
            stop.set()
            await task

    assert asyncio.run(go()) == ["t1", "t3", "t2"]


# -- one script: Traditional and Simplified find each other -----------------------------


def test_traditional_folds_to_simplified_character_by_character() -> None:
    pairs = {
        "國務院": "国务院",
        "防風": "防风",
        "綫路": "线路",  # Hong Kong form
        "裏面": "里面",  # Taiwan and Hong Kong form
        "著作": "着作",  # Taiwan form, folded with the Simplified 著 alike
        "國辦發〔2006〕104號": "国办发〔2006〕104号",
    }
    for traditional, simplified in pairs.items():
        assert normalise(traditional) == normalise(simplified), traditional
    text = "國務院關於防風的通知：（一）……"
    assert fold_script(text) == fold_script(fold_script(text)), "folding twice changes nothing"
    assert len(fold_script(text)) == len(text), "one character for one"
    # A substring folds as it folds inside the text (no phrase conversion).
    assert fold_script(text)[2:6] == fold_script(text[2:6])


def test_a_query_in_one_script_finds_records_in_the_other(
    indexed: str, pg_conn: Connection
) -> None:
    store(
        pg_conn,
        [
            make_record("f1", "關於做好防風工作的通知", "各區：請做好防風準備。", day=70),
            make_record("f2", "国务院关于防风的意见", "防风工作。", node="cn", day=71),
            make_record(
                "f3", "轉發文件", "內容。", node="cn", day=72, doc_number="國辦發〔2019〕7號"
            ),
        ],
    )
    follow(pg_conn)
    assert ids(run_search(indexed, "防风")) == ["f2", "f1"]
    assert ids(run_search(indexed, "防風")) == ["f2", "f1"]
    assert "t5" in ids(run_search(indexed, "國務院"))  # 国务院办公厅通知
    assert ids(run_search(indexed, "國務院 防風")) == ["f2"]
    for form in ("国办发[2019]7号", "國辦發（2019）7號", "国办发〔2019〕7号"):
        assert ids(run_search(indexed, form)) == ["f3"], form
    # Shown as written: the Traditional record's title and snippet stay Traditional.
    hit = run_search(indexed, "防风").hits[1]
    assert hit.title == "關於做好防風工作的通知"
    assert [hit.title[s:e] for s, e in hit.title_marks] == ["防風"]
    assert "請做好防風準備。" in hit.snippet
    assert [hit.snippet[s:e] for s, e in hit.snippet_marks] == ["防風"]


def test_snippets_keep_what_was_written_and_mark_every_match(
    indexed: str, pg_conn: Connection
) -> None:
    body = "前言。" * 20 + "根据《碳汇管理办法》（试行）：一、碳汇……二、ＡＢＣ。"
    store(pg_conn, [make_record("s1", "年度要点", body, day=80)])
    follow(pg_conn)
    hit = run_search(indexed, "碳汇 ABC").hits[0]
    assert hit.snippet.startswith("…"), "text before the window is left out, and says so"
    assert "根据《碳汇管理办法》（试行）：一、碳汇……二、ＡＢＣ。" in hit.snippet
    assert [hit.snippet[s:e] for s, e in hit.snippet_marks] == ["碳汇", "碳汇", "ＡＢＣ"]
    assert hit.title_marks == []


def test_marks_and_snippets_without_a_database() -> None:
    assert marks("国办发[2006]104号", [normalise("国办发〔2006〕104号")]) == [(0, 13)]
    assert marks("碳汇碳汇", ["碳汇"]) == [(0, 4)], "adjacent matches make one mark"
    assert marks("", ["碳汇"]) == []
    text, spans = snippet("甲" * 300, ["乙"], found=False)
    assert text == "甲" * 120 + "…" and spans == []
    assert segments("ab<c>d", [(2, 5)]) == [("ab", False), ("<c>", True), ("d", False)]


def test_sort_by_date_year_and_count(indexed: str) -> None:
    by_date = run_search(indexed, "碳汇", sort="date")
    assert ids(by_date) == ["t8", "t4", "t2", "t1", "t3"], "newest first, title or not"
    assert by_date.total == 5 and not by_date.total_more
    assert all_pages(indexed, "碳汇", 2, sort="date") == ids(by_date)
    paged = run_search(indexed, "碳汇", limit=2)
    assert paged.total == 5 and paged.next_cursor is not None
    # a cursor goes on in the order it was made in
    rest = run_search(indexed, "碳汇", limit=10, cursor=paged.next_cursor, sort="date")
    assert ids(paged) + ids(rest) == ["t1", "t3", "t8", "t4", "t2"]
    assert ids(run_search(indexed, "碳汇", year=2024)) == ["t1", "t3", "t8", "t4", "t2"]
    assert run_search(indexed, "碳汇", year=2023).hits == []
    with pytest.raises(SearchQueryError) as caught:
        SearchQuery("碳汇", year=12)
    assert caught.value.parameter == "year"
    with pytest.raises(SearchQueryError) as caught:
        SearchQuery("碳汇", sort="best")
    assert caught.value.parameter == "sort"


def test_a_new_index_version_rebuilds_the_index(indexed: str, pg_conn: Connection) -> None:
    """The REINDEX step (an index made before Traditional was folded) rebuilds every row
    through the follower; the node counts stay right."""
    counts = pg_conn.execute("SELECT node, records FROM search_node_stats ORDER BY node")
    before = counts.fetchall()
    pg_conn.execute("UPDATE search_docs SET heading = 'stale', heading_terms = '{}'")
    with pg_conn.transaction():
        pg_conn.execute(REINDEX)
    follow(pg_conn)
    assert ids(run_search(indexed, "碳汇"))[:2] == ["t1", "t3"]
    stale = pg_conn.execute("SELECT count(*) FROM search_docs WHERE heading = 'stale'")
    assert stale.fetchone() == (0,)
    after = pg_conn.execute("SELECT node, records FROM search_node_stats ORDER BY node")
    assert after.fetchall() == before
    assert max(REINDEX_STEPS) == INDEX_VERSION, "a new index version comes with its step"
    assert all(step in MIGRATIONS for step in REINDEX_STEPS.values())
