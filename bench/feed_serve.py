"""Feed serving: requests/s for 200 and 304 answers of a 100-entry feed, against aiohttp
serving the same bytes as a static file, in the same run, in the same server.

The store holds 1,000,000 logged records (``--quick``: 100,000), spread over the
nodes of nodes.toml. They are written straight into ``feed_log`` and
``feed_scope`` with ``COPY`` (what the feed logger would have written for them;
the ``records`` table plays no part in serving a feed), in a schema of the
benchmark's own that is dropped afterwards. Each row is a compact news record
(about 900 bytes of XML).

One aiohttp application serves both addresses on 127.0.0.1:

- ``/nodes/cn/feed.atom`` (the nation: the newest 100 of every record) and
  ``/nodes/gd/feed.rss`` (a province's subtree), through ``hub.web.feeds.routes``;
- ``/static/feed.atom``: the bytes of the first, written to a file and served by
  ``web.FileResponse`` (aiohttp's static file path, with its own ETag and 304).

The load generator is ``wrk`` (Debian's package; installed with apt-get when
missing and possible), 2 threads and 64 connections, on loopback; it shares the
machine's cores with the server, equally for every address. Without ``wrk`` the
benchmark falls back to an aiohttp client with 64 concurrent connections, and
says so. Target (project issue): feed rate at least 50% of the static rate.
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from aiohttp import ClientSession, TCPConnector, web
from feedgen.feed import FeedGenerator
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from hub.federation import load_federation
from hub.store import connect, migrate, with_schema
from hub.store.feed_log.log import scopes_of
from hub.web.context import PORTAL, Portal
from hub.web.feeds import routes as feeds
from hub.web.feeds.documents import FeedState, Lru
from hub.web.feeds.render import FeedHead, atom_document

DATABASE = os.environ.get("GOVHUB_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).parents[1]
FULL, QUICK = 1_000_000, 100_000
CONNECTIONS, THREADS = 64, 2
TOPICS = ("城乡建设、环境保护", "综合政务", "财政、金融、审计", "科技、教育")
KINDS = ("news", "notice", "document")

RECORD = (
    '<record xmlns="urn:govhub:record:1" kind="{kind}" xml:lang="zh-Hans">'
    "<id>{id}</id><revision>1</revision>"
    '<origin node="{node}" site="{site}"/>'
    "<title>{name}关于做好第{number}号环境监测工作的通知</title>"
    "<issuers><issuer>{name}</issuer></issuers>"
    '<topic class="{topic}"/>'
    "<published>{published}</published>"
    '<disclosure mode="proactive" audience="public" duration="permanent"/>'
    "<summary>为进一步做好环境监测工作，现将第{number}号有关事项通知如下。</summary>"
    '<body><p xmlns="http://www.w3.org/1999/xhtml">各有关单位：为进一步做好环境监测工作，'
    "加强组织领导，压实工作责任，做好宣传引导，现将有关事项通知如下。</p></body>"
    "<status>active</status></record>"
)


def run(quick: bool = False) -> None:
    count = QUICK if quick else FULL
    seconds = 3 if quick else 6
    print(f"feed_serve: feed 200/304 vs a static file of the same bytes, {count:,} records")
    python = f"{platform.python_implementation()} {sys.version.split()[0]}"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {python}")
    schema = f"govhub_bench_feeds_{secrets.token_hex(4)}"
    with psycopg.connect(DATABASE, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        url = with_schema(DATABASE, schema)
        started = time.perf_counter()
        rows = fill(url, count)
        print(
            f"filled feed_log: {count:,} rows, feed_scope: {rows:,} rows with COPY in"
            f" {time.perf_counter() - started:.1f} s"
        )
        asyncio.run(measure(url, seconds))
    finally:
        with psycopg.connect(DATABASE, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )


def fill(url: str, count: int) -> int:
    """``count`` logged records, COPY'd into feed_log and feed_scope; the feed_scope rows.

    Two passes over the same generated rows: one connection runs one COPY at a time.
    """
    federation = load_federation(REPO / "nodes.toml")
    nodes = list(federation.nodes.values())
    start = datetime(2020, 1, 1, tzinfo=UTC)
    columns = (
        "position, id, revision, path, kind, topic_class, issuers, lang, withdrawn,"
        " published, updated, logged_at, xml"
    )
    heads: dict[str, int] = {}
    scope_rows = 0
    conn = connect(url)
    try:
        migrate(conn)
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy(f"COPY feed_log ({columns}) FROM STDIN") as log:
                for position in range(1, count + 1):
                    node = nodes[position % len(nodes)]
                    kind, topic = KINDS[position % 3], TOPICS[position % 4]
                    when = start + timedelta(seconds=30 * position)
                    record_id = f"urn:govhub:{node.id}:b{position:08d}"
                    xml = RECORD.format(
                        kind=kind,
                        id=record_id,
                        node=node.id,
                        site=node.site_code,
                        name=node.name,
                        number=position,
                        topic=topic,
                        published=when.isoformat(),
                    )
                    row = (position, record_id, 1, node.path, kind, topic, [node.name])
                    log.write_row((*row, "zh-Hans", False, when, when, when, xml))
            with cur.copy("COPY feed_scope (scope, seq, position) FROM STDIN") as scope:
                for position in range(1, count + 1):
                    for key in scopes_of(nodes[position % len(nodes)].path):
                        seq = heads.get(key, -1) + 1
                        heads[key] = seq
                        scope.write_row((key, seq, position))
                        scope_rows += 1
        conn.execute("ANALYZE feed_log")
        conn.execute("ANALYZE feed_scope")
    finally:
        conn.close()
    return scope_rows


async def measure(url: str, seconds: int) -> None:
    federation = load_federation(REPO / "nodes.toml")
    async with AsyncConnectionPool(
        url, min_size=2, max_size=4, open=False, kwargs={"autocommit": True}
    ) as pool:
        app = web.Application()
        app[PORTAL] = Portal(federation, pool, "http://127.0.0.1", "cn")
        feeds.setup(app)
        folder = Path(tempfile.mkdtemp(prefix="govhub-feed-bench-"))
        static_file = folder / "feed.atom"

        async def static(request: web.Request) -> web.FileResponse:
            return web.FileResponse(static_file)

        app.router.add_get("/static/feed.atom", static)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        base = f"http://127.0.0.1:{port}"
        try:
            await _report(base, app, static_file, seconds)
        finally:
            await runner.cleanup()
            shutil.rmtree(folder, ignore_errors=True)


async def _report(base: str, app: web.Application, static_file: Path, seconds: int) -> None:
    state: FeedState = app[PORTAL].caches["feeds"]
    async with ClientSession() as session:
        started = time.perf_counter()
        async with session.get(base + "/nodes/cn/feed.atom") as response:
            body = await response.read()
            feed_etag = response.headers["ETag"]
        cold = time.perf_counter() - started
        static_file.write_bytes(body)
        async with session.get(base + "/static/feed.atom") as response:
            static_etag = response.headers["ETag"]
            assert await response.read() == body
        state.documents = Lru(state.documents.budget)  # fragments cached, document not
        started = time.perf_counter()
        async with session.get(base + "/nodes/cn/feed.atom") as response:
            assert await response.read() == body
        warm = time.perf_counter() - started
        async with session.get(base + "/nodes/gd/feed.rss") as response:
            province_etag = response.headers["ETag"]
            province_size = len(await response.read())
    join, generate = _in_process(state)
    entries = body.count(b"<entry>")
    print(f"feed: {entries} entries, {len(body):,} bytes; province RSS {province_size:,} bytes")
    print(
        f"first build (log read + 100 fragments rendered): {cold * 1000:.1f} ms;"
        f" rebuilt from cached fragments: {warm * 1000:.1f} ms (over HTTP)"
    )
    print(
        f"in process, 100 entries: joining cached fragments {join * 1000:.3f} ms;"
        f" feedgen building the feed {generate * 1000:.1f} ms"
    )
    tool = await _load_tool()
    print(f"load: {tool}, {CONNECTIONS} connections, {seconds} s per address, loopback")
    print(f"{'address':<32} {'answer':>6} {'requests/s':>11} {'vs static':>10}")
    rates: dict[str, float] = {}
    for label, path, etag in (
        ("static file", "/static/feed.atom", static_etag),
        ("feed /nodes/cn/feed.atom", "/nodes/cn/feed.atom", feed_etag),
        ("feed /nodes/gd/feed.rss", "/nodes/gd/feed.rss", province_etag),
    ):
        for answer, header in (("200", None), ("304", etag)):
            rate = await _load(tool, base + path, header, seconds)
            static_rate = rates.get(f"static file {answer}")
            ratio = f"{rate / static_rate:>9.0%}" if static_rate else f"{'—':>9}"
            rates[f"{label} {answer}"] = rate
            print(f"{label:<32} {answer:>6} {rate:>11,.0f} {ratio:>10}")
    worst = min(
        rates[f"{feed} {answer}"] / rates[f"static file {answer}"]
        for feed in ("feed /nodes/cn/feed.atom", "feed /nodes/gd/feed.rss")
        for answer in ("200", "304")
    )
    verdict = "meets" if worst >= 0.5 else "misses"
    print(f"verdict: the slowest feed answer is {worst:.0%} of the static rate ({verdict} 50%)")
    print(f"documents built during the run: {state.builds} (the rest came from the cache)")


def _in_process(state: FeedState) -> tuple[float, float]:
    """Best-of-20 seconds to join 100 cached Atom fragments into a document, and for
    feedgen to build a 100-entry Atom feed with the same plain fields."""
    fragments = [f for f in state.fragments.values() if f.startswith(b"<entry")][:100]
    now = datetime.now(UTC)
    head = FeedHead(
        "http://x/f", "t", "s", "http://x/f", "http://x/", "http://x/r", "zh-Hans", now, "a"
    )

    def build() -> bytes:
        generator = FeedGenerator()
        generator.id("http://x/f")
        generator.title("t")
        generator.link(href="http://x/", rel="alternate")
        generator.language("zh-Hans")
        for number in range(100):
            entry = generator.add_entry()
            entry.id(f"urn:govhub:gz:b{number}")
            entry.title(f"广州市人民政府关于做好第{number}号环境监测工作的通知")
            entry.link(href=f"http://x/records/urn:govhub:gz:b{number}", rel="alternate")
            entry.published(now)
            entry.updated(now)
            entry.author(name="广州市人民政府")
            entry.summary("为进一步做好环境监测工作，现将有关事项通知如下。")
            entry.category(term="综合政务", scheme="urn:govhub:topic")
            entry.content("<p>各有关单位：为进一步做好环境监测工作。</p>", type="html")
        return bytes(generator.atom_str())

    def best(work: Callable[[], object]) -> float:
        times = []
        for _ in range(20):
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
        return min(times)

    return best(lambda: atom_document(head, fragments)), best(build)


async def _load_tool() -> str:
    if shutil.which("wrk") is None and shutil.which("apt-get") and os.geteuid() == 0:
        await asyncio.to_thread(
            subprocess.run, ["apt-get", "install", "-y", "-q", "wrk"], capture_output=True
        )
    return "wrk" if shutil.which("wrk") else "aiohttp client"


async def _load(tool: str, url: str, etag: str | None, seconds: int) -> float:
    """Requests per second that ``tool`` gets from ``url`` (with If-None-Match: ``etag``)."""
    if tool == "wrk":
        command = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", url]
        if etag:
            command[1:1] = ["-H", f"If-None-Match: {etag}"]
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await process.communicate()
        text = out.decode()
        if "Non-2xx or 3xx" in text:
            raise SystemExit(f"wrk got errors from {url}:\n{text}")
        match = re.search(r"Requests/sec:\s+([\d.]+)", text)
        if not match:
            raise SystemExit(f"wrk said:\n{text}\n{err.decode()}")
        return float(match.group(1))
    return await _client_load(url, etag, seconds)


async def _client_load(url: str, etag: str | None, seconds: int) -> float:
    headers = {"If-None-Match": etag} if etag else {}
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(session: ClientSession) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            async with session.get(url, headers=headers) as response:
                await response.read()
                done += 1

    started = time.perf_counter()
    async with ClientSession(connector=TCPConnector(limit=CONNECTIONS)) as session:
        await asyncio.gather(*(worker(session) for _ in range(CONNECTIONS)))
    return done / (time.perf_counter() - started)
