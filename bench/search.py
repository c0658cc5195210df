"""Search latency on a million records, the indexer's throughput, and its cost to the write path.

How the store is filled (``--quick``: 100,000 records instead of 1,000,000): rows
are generated in Python and COPYed into ``records`` (compact record XML made
from a real record's serialisation, about 1.3 KB each) and into
``search_docs`` *as the indexer would produce them*: the same ``normalise``,
``text_terms`` and ``term_id``, applied once per generated sentence (sentences
end in 。, so a record's terms are the union of its sentences' terms), with
the GIN indexes built after the load, as a restore would. Before any timing,
``indexed_text`` (the indexer's own function, from the stored XML) is checked
to give the same row for a sample of the generated records.

Text: titles, summaries and bodies built from a few hundred government words
(Zipf-weighted), so common bigrams are as common as in real portals; marker
words are put into a known share of records: *rare* (0.01%), *medium* (1%);
*common* terms are frequent vocabulary words. Then, through the real
``hub.store.search.query.search`` on a warm ``AsyncConnectionPool`` (one query at a
time): p50/p99 per class of term, with the number of matching records.

Then, in a table of the same fill: the indexer (``index_records`` through
``follow_once``) on new records, in records/s; and ``upsert_records``
(batches of 500 new records) without and with ``run_search_indexer`` running
in the same process, as ``govhub hub run`` runs it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import os
import random
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from statistics import quantiles

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from bench.validate import _table, machine
from hub.federation import load_federation
from hub.records import parse
from hub.records.model import XHTML_NS, Origin, Topic
from hub.store import StoredRecord, connect, migrate, upsert_records, with_schema
from hub.store.follow import follow_pending
from hub.store.records import COLUMNS
from hub.store.search.index import _SEARCH_COLUMNS, FOLLOWER, index_records, run_search_indexer
from hub.store.search.query import SearchQuery, search
from hub.store.search.terms import indexed_text, normalise, term_id, text_terms, whole_number_token

ROOT = Path(__file__).resolve().parent.parent
FEDERATION = load_federation(ROOT / "nodes.toml")
EXAMPLE = parse((ROOT / "examples" / "records" / "document.xml").read_bytes())
DATABASE = os.environ.get("GOVHUB_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
CST = timezone(timedelta(hours=8))
START = datetime(2015, 1, 1, tzinfo=CST)
SPAN = 11 * 365 * 86400  # seconds: 2015 to 2025

_WORDS = (
    "工作 管理 建设 发展 推进 加强 实施 服务 政府 人民 企业 项目 社会 经济 改革 制度 安全 规划"
    " 政策 保障 监督 组织 单位 部门 市场 农村 城市 环境 生态 保护 资金 公共 创新 质量 标准 信息"
    " 公开 办理 群众 教育 卫生 医疗 文化 旅游 交通 住房 就业 养老 扶贫 乡村 振兴 产业 科技 人才"
    " 财政 税收 审计 统计 应急 消防 防汛 疫情 防控 食品 药品 水利 农业 林业 能源 电力 通信 数据"
    " 平台 系统 街道 社区 乡镇 区县 省级 市级 国家 中央 地方 有关 各级 相关 进一步 全面 深入 切实"
    " 做好 落实 提高 完善 健全 规范 优化 促进 支持 鼓励 开展 组织 召开 会议 文件 精神 要求 意见"
    " 方案 措施 办法 规定 条例 细则 通知 公告 决定 报告 批复 函 目标 任务 责任 考核 检查 整改"
    " 成效 经验 典型 宣传 培训 调研 试点 示范 营商 优化 审批 许可 备案 登记 执法 行政 法治 依法"
    " 合同 采购 招标 投标 工程 道路 桥梁 供水 排水 燃气 垃圾 污水 大气 土壤 噪声 绿化 公园 体育"
    " 图书馆 博物馆 学校 医院 幼儿园 补贴 补助 救助 低保 残疾人 老年人 儿童 妇女 青年 退役军人"
)
WORDS = _WORDS.split()
ORGS = (
    "市人民政府办公室",
    "区人民政府",
    "市生态环境局",
    "市发展和改革委员会",
    "县人民政府",
    "省财政厅",
)
GENRES = ("通知", "意见", "办法", "公告", "决定", "报告", "批复", "实施方案")
RARE = ("碳汇", "冰壶", "茶马", "鲲鹏")  # each in 0.01% of records
MEDIUM = ("湿地", "秸秆", "口岸", "非遗")  # each in 1% of records
PHRASES = {"碳汇": "碳汇交易", "湿地": "湿地公园", "秸秆": "秸秆综合利用"}
NODES = [n for n in FEDERATION.nodes.values()]


@dataclasses.dataclass(frozen=True)
class Sizes:
    records: int
    queries: int  # per class of term
    indexer: int  # new records for the indexer and write-path runs


FULL = Sizes(1_000_000, 200, 20_000)
QUICK = Sizes(100_000, 60, 5_000)


def run(quick: bool = False) -> None:
    sizes = QUICK if quick else FULL
    print(f"search: {sizes.records:,} records, search latency, indexer and write path")
    print(f"machine: {machine()}")
    schema = f"govhub_bench_{secrets.token_hex(4)}"
    url = with_schema(DATABASE, schema)
    try:
        with connect(url) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            print(f"PostgreSQL {version[0] if version else '?'}")
            migrate(conn)
            fill(conn, sizes.records)
        asyncio.run(latency(url, sizes.queries))
        indexer_and_write_path(url, sizes.indexer)
    finally:
        with psycopg.connect(DATABASE, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )


# -- generated records ------------------------------------------------------------------


class Generator:
    """Sentences with their term hashes computed once; records drawn from them."""

    def __init__(self, seed: int = 7) -> None:
        self.random = random.Random(seed)
        weights = [1 / (rank + 1) ** 0.9 for rank in range(len(WORDS))]
        sentences = [
            "".join(self.random.choices(WORDS, weights, k=self.random.randint(4, 9))) + "。"
            for _ in range(6000)
        ]
        self.sentences = [
            (s, frozenset(term_id(t) for t in text_terms(normalise(s)))) for s in sentences
        ]
        self.templates = {n.id: _xml_template(n.id) for n in NODES}

    def record(self, number: int, prefix: str = "b") -> Generated:
        """A record, and what the indexer would make of it."""
        rnd = self.random
        node = NODES[number % len(NODES)]
        picked = rnd.sample(self.sentences, rnd.randint(4, 9))
        markers = [w for w in RARE if rnd.random() < 0.0001] + [
            w for w in MEDIUM if rnd.random() < 0.01
        ]
        extra = [PHRASES.get(w, w) + "工作。" for w in markers]
        words = rnd.choices(WORDS, k=3)
        title = f"{node.name[:6]}{rnd.choice(ORGS)}关于{''.join(words)}的{rnd.choice(GENRES)}"
        summary = picked[0][0]
        body = "".join([s for s, _ in picked[1:]] + extra)
        doc_number = (
            f"粤府办〔{2015 + number % 11}〕{number % 997 + 1}号" if number % 3 == 0 else None
        )
        published = START + timedelta(seconds=rnd.randrange(SPAN))
        id_ = f"urn:govhub:{node.id}:{prefix}{number:07d}"
        xml = (
            self.templates[node.id]
            .replace("@ID@", id_)
            .replace("@TITLE@", title)
            .replace("@SUMMARY@", summary)
            .replace("@BODY@", body)
            .replace("2019-01-03T17:30:00+08:00", published.isoformat())
        )
        if doc_number:
            xml = xml.replace("@DOC@", doc_number)
        else:
            xml = xml.replace("<docNumber>@DOC@</docNumber>", "")
        numbers = [doc_number] if doc_number else []
        head = (
            {term_id(t) for t in text_terms(title)}
            | {term_id(t) for n in numbers for t in text_terms(n)}
            | {term_id(whole_number_token(n)) for n in numbers}
        )
        terms = head.union(*(t for _, t in picked))
        for sentence in extra:
            terms |= {term_id(t) for t in text_terms(sentence)}
        return Generated(
            id_,
            node.id,
            node.path,
            title,
            published,
            doc_number,
            xml,
            "\n".join([title, *numbers]),
            f"{summary} {body}",
            head,
            terms,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Generated:
    id: str
    node: str
    path: str
    title: str
    published: datetime
    doc_number: str | None
    xml: str
    heading: str
    content: str
    heading_terms: set[int]
    terms: set[int]

    def records_line(self) -> str:
        """The ``records`` row as a line of COPY text (columns: ``COLUMNS``)."""
        doc = _copy_text(self.doc_number)
        return (
            "\t".join(
                [
                    *[self.id, self.node, self.path, "document", "1", secrets.token_hex(8)],
                    *[_copy_text(self.title), self.published.isoformat(), "\\N", "f", "\\N"],
                    *["\\N", doc, doc, "\\N", "综合政务", "{测试机关}", "zh-Hans"],
                    _copy_text(self.xml),
                ]
            )
            + "\n"
        )

    def search_line(self) -> str:
        """The ``search_docs`` row (columns: ``_SEARCH_COLUMNS``)."""
        return (
            "\t".join(
                [
                    *[self.id, self.node, self.path, "document", "综合政务", "zh-Hans"],
                    *["in-force", self.published.isoformat(), "f", _copy_text(self.heading)],
                    *[_copy_text(self.content), _array(self.heading_terms), _array(self.terms)],
                ]
            )
            + "\n"
        )

    def stored(self) -> StoredRecord:
        return StoredRecord(
            self.id,
            self.node,
            self.path,
            "document",
            1,
            secrets.token_hex(8),
            self.title,
            self.published,
            None,
            False,
            None,
            None,
            self.doc_number,
            self.doc_number,
            None,
            "综合政务",
            ("测试机关",),
            "zh-Hans",
            self.xml,
        )


def _copy_text(value: str | None) -> str:
    if value is None:
        return "\\N"
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


_GENERATOR: list[Generator] = []


def _chunk_lines(task: tuple[int, int]) -> tuple[bytes, bytes]:
    """COPY text for records ``start`` to ``stop`` (run in a worker process)."""
    start, stop = task
    if not _GENERATOR:
        _GENERATOR.append(Generator())
    generator = _GENERATOR[0]
    generator.random.seed(start)
    made = [generator.record(n) for n in range(start, stop)]
    return (
        "".join(g.records_line() for g in made).encode(),
        "".join(g.search_line() for g in made).encode(),
    )


def _array(values: set[int] | frozenset[int]) -> str:
    return "{" + ",".join(map(str, sorted(values))) + "}"


def _xml_template(node_id: str) -> str:
    node = FEDERATION.node(node_id)
    record = dataclasses.replace(
        EXAMPLE,
        id=f"urn:govhub:{node_id}:template",
        origin=Origin(node_id, node.site_code),
        title="@TITLE@",
        issuers=("测试机关",),
        index_number=None,
        doc_number="@DOC@",
        topic=Topic("综合政务"),
        created=None,
        summary="@SUMMARY@",
        body=f'<p xmlns="{XHTML_NS}">@BODY@</p>',
    )
    return record.to_xml(pretty=False).decode().replace(f"urn:govhub:{node_id}:template", "@ID@")


SEARCH_INDEXES = ("search_docs_terms", "search_docs_heading_terms")


CHUNK = 5_000  # records per worker task and per COPY


def fill(conn: psycopg.Connection, count: int) -> None:
    definitions = [
        row[0]
        for row in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            " AND indexname = ANY(%s)",
            [list(SEARCH_INDEXES)],
        )
    ]
    for name in SEARCH_INDEXES:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    start = time.perf_counter()
    tasks = [(n, min(n + CHUNK, count)) for n in range(0, count, CHUNK)]
    records_copy = sql.SQL("COPY records ({}) FROM STDIN").format(
        sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    )
    search_copy = sql.SQL("COPY search_docs ({}) FROM STDIN").format(
        sql.SQL(", ").join(map(sql.Identifier, _SEARCH_COLUMNS))
    )
    with multiprocessing.get_context("spawn").Pool(2) as workers, conn.cursor() as cursor:
        for records_text, search_text in workers.imap(_chunk_lines, tasks):
            with cursor.copy(records_copy) as copy:
                copy.write(records_text)
            with cursor.copy(search_copy) as copy:
                copy.write(search_text)
    loaded = time.perf_counter()
    conn.execute("SET maintenance_work_mem = '512MB'")
    for definition in definitions:
        conn.execute(definition)
    indexed = time.perf_counter()
    conn.execute(
        "INSERT INTO search_node_stats (node, records, withdrawn, last_published, last_stored)"
        " SELECT node, count(*), 0, max(published), now() FROM records GROUP BY node"
    )
    conn.execute("VACUUM ANALYZE records")
    conn.execute("VACUUM ANALYZE search_docs")
    done = time.perf_counter()
    sizes = conn.execute(
        "SELECT pg_size_pretty(pg_total_relation_size('records')),"
        " pg_size_pretty(pg_table_size('search_docs')),"
        " pg_size_pretty(pg_relation_size('search_docs_terms')),"
        " pg_size_pretty(pg_relation_size('search_docs_heading_terms')),"
        " avg(cardinality(terms))::int FROM search_docs"
    ).fetchone()
    print(
        f"fill: generate + COPY {count:,} records and index rows {loaded - start:.0f} s,"
        f" GIN build {indexed - loaded:.0f} s, VACUUM ANALYZE {done - indexed:.0f} s"
    )
    if sizes:
        print(
            f"sizes: records {sizes[0]}, search_docs {sizes[1]}, GIN terms {sizes[2]},"
            f" GIN heading_terms {sizes[3]}; {sizes[4]} terms per record on average"
        )
    same_as_indexer(conn)


def same_as_indexer(conn: psycopg.Connection, sample: int = 500) -> None:
    """The COPYed rows are what ``indexed_text`` makes of the stored XML."""
    rows = conn.execute(
        "SELECT r.title, r.doc_number_norm, r.index_number, r.xml, r.id, s.heading, s.content,"
        " s.heading_terms, s.terms FROM records r JOIN search_docs s USING (id)"
        " ORDER BY r.id LIMIT %s",
        [sample],
    ).fetchall()
    for title, doc_number, index_number, xml, id_, heading, content, head, terms in rows:
        text = indexed_text(title, doc_number, index_number, xml, id_)
        got = (text.heading, text.content, text.heading_terms, text.terms)
        if got != (heading, content, head, terms):
            raise SystemExit(f"{id_}: the generated index row differs from the indexer's")
    print(f"check: {len(rows)} generated index rows equal the indexer's own (indexed_text)")


# -- latency -------------------------------------------------------------------------------


CLASSES = {
    "2 chars, rare (0.01%)": list(RARE),
    "2 chars, medium (1%)": list(MEDIUM),
    "2 chars, common": ["工作", "管理", "通知", "建设"],
    "1 char": ["汇", "湿", "区", "管"],
    "3+ chars": ["碳汇交易", "湿地公园", "秸秆综合利用", "人民政府", "进一步加强"],
    "2 words": ["湿地 保护", "通知 工作"],
    "doc number, any brackets": ["粤府办[2020]5号", "粤府办（2018）77号"],
    "2 chars, scope cn.gd": ["湿地", "工作"],
}


async def latency(url: str, repeats: int) -> None:
    async with AsyncConnectionPool(url, min_size=2, max_size=2, open=False) as pool:
        await pool.wait()
        rows = []
        for label, terms in CLASSES.items():
            scope = "cn.gd" if "scope" in label else None
            times: list[float] = []
            matches = []
            for term in terms:
                async with pool.connection() as conn:
                    matches.append(await _count(conn, term))
                    await search(conn, SearchQuery(term, scope=scope))  # warm
            for index in range(repeats):
                term = terms[index % len(terms)]
                async with pool.connection() as conn:
                    start = time.perf_counter()
                    await search(conn, SearchQuery(term, scope=scope))
                    times.append(time.perf_counter() - start)
            cuts = quantiles(times, n=100)
            rows.append(
                (
                    label,
                    f"{min(matches):,}-{max(matches):,}",
                    f"{cuts[49] * 1000:.1f}",
                    f"{cuts[98] * 1000:.1f}",
                )
            )
    print(f"latency: search(), first page of 20, {repeats} queries per class, one at a time")
    _table(("terms", "matching records", "p50 ms", "p99 ms"), rows)


async def _count(conn: psycopg.AsyncConnection, term: str) -> int:
    query = SearchQuery(term)
    where = " AND ".join(
        ["(strpos(heading, %s) > 0 OR strpos(content, %s) > 0)"] * len(query.parts)
    )
    params = [p for part in query.parts for p in (part, part)]
    cursor = await conn.execute(
        f"SELECT count(*) FROM search_docs WHERE NOT withdrawn AND {where}",  # noqa: S608
        params,
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


# -- the indexer and the write path ----------------------------------------------------------


def indexer_and_write_path(url: str, count: int) -> None:
    generator = Generator(seed=11)
    with connect(url) as conn:
        conn.execute(
            "INSERT INTO followers (name, cursor) SELECT %s, max(change_xid)::text || ':~'"
            " FROM records ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor",
            [FOLLOWER],
        )
        batches = [
            _stored(generator, range(start, start + 500), "i") for start in range(0, count, 500)
        ]
        for batch in batches:
            upsert_records(conn, batch)
        _wait_for_xmin(conn)
        start = time.perf_counter()
        done = follow_pending(conn, FOLLOWER, index_records, 500)
        elapsed = time.perf_counter() - start
    if done < count:
        raise SystemExit(f"the indexer saw {done} of {count} records; see _wait_for_xmin")
    print(
        f"indexer: {done:,} records in {elapsed:.1f} s = {done / elapsed:,.0f} records/s"
        " (index_records via follow_pending, batches of 500)"
    )
    alone = _write(url, generator, count, "w", follower=False)
    together = _write(url, generator, count, "x", follower=True)
    print("write path: upsert_records, batches of 500 new records")
    _table(
        ("run", "records/s"),
        [
            ("follower not running", f"{alone:,.0f}"),
            ("follower running (same process)", f"{together:,.0f}"),
        ],
    )


def _wait_for_xmin(conn: psycopg.Connection, timeout: float = 600.0) -> None:
    """Wait until no transaction older than ours runs on the server: followers only take
    changes older than every running transaction (hub.store.changes), in any database."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
            " > max(change_xid::text::bigint) FROM records"
        ).fetchone()
        if row and row[0]:
            return
        time.sleep(1)
    print("(a long transaction elsewhere on the server holds the follower back)")


def _stored(generator: Generator, numbers: range, prefix: str) -> list[StoredRecord]:
    return [generator.record(number, prefix).stored() for number in numbers]


def _write(url: str, generator: Generator, count: int, prefix: str, *, follower: bool) -> float:
    batches = [
        _stored(generator, range(start, start + 500), prefix) for start in range(0, count, 500)
    ]
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    thread = None
    if follower:

        def follow() -> None:
            loop.run_until_complete(run_search_indexer(lambda: connect(url), stop, idle=0.2))

        thread = threading.Thread(target=follow)
        thread.start()
    with connect(url) as conn:
        start = time.perf_counter()
        for batch in batches:
            upsert_records(conn, batch)
        elapsed = time.perf_counter() - start
    if thread is not None:
        loop.call_soon_threadsafe(stop.set)
        thread.join()
    loop.close()
    return count / elapsed
