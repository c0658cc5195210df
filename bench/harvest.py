"""Harvesting feeds: govhub's harvester against newsboat, on the same 1,000 feeds.

A separate process serves 1,000 RSS 2.0 feeds of 50 items each (distinct
Chinese news items with HTML descriptions, about 1 KB an item) on a loopback
port. Measured in the same run:

1. govhub: one node with 1,000 ``feed`` sources, harvested by the running
   node's scheduler (``Harvester.run``: a few sources at a time, one shared
   HTTP client, 2 requests per host) from an empty state file into the node's
   outbox: fetch, parse, sanitize, convert, revision by content hash,
   validation (XML Schema and rules), confidentiality review, outbox, in
   batches of 200 records per transaction with full synchronous commits. The
   per-item work (convert to review) runs in one worker process per core
   (``hub.harvest.workers``); the CPU seconds of the main process and of
   the workers are reported, with the worker count;
2. newsboat (Debian's C++ feed reader), headless (``newsboat -x reload``) with
   a urls file of the same 1,000 feeds, a fresh cache and ``reload-threads``
   set to 4, in a temporary HOME; it parses each feed and stores its items in
   its SQLite cache;
3. both again on the same state: every feed answers ``304 Not Modified`` to the
   conditional GET (govhub) or is unchanged (newsboat).

Target (project issue): govhub faster than newsboat on the first harvest.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import shutil
import sqlite3
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from adapters.registry import registry
from bench.validate import _table, machine
from hub.federation import Source, load_federation
from hub.harvest.harvester import Harvester
from hub.harvest.http import HarvestHttp
from hub.harvest.plan import plan_sources
from hub.harvest.state import DurableValidators
from hub.harvest.workers import PoolStats
from hub.nodedb import open_state, transaction
from hub.outbox.pipeline import Pipeline
from hub.review import Reviewer, ReviewPolicy

ROOT = Path(__file__).resolve().parent.parent
FEDERATION = load_federation(ROOT / "nodes.toml")
NODE = FEDERATION.node("shexian")


@dataclasses.dataclass(frozen=True)
class Sizes:
    feeds: int
    items: int  # per feed


FULL = Sizes(1_000, 50)
QUICK = Sizes(200, 50)


def run(quick: bool = False) -> None:
    sizes = QUICK if quick else FULL
    total = sizes.feeds * sizes.items
    print(f"harvest: {sizes.feeds:,} RSS feeds × {sizes.items} items ({total:,} items) on loopback")
    print(f"machine: {machine()}")
    newsboat = shutil.which("newsboat")
    with tempfile.TemporaryDirectory(prefix="govhub-bench-harvest-") as work, served(sizes) as base:
        urls = [f"{base}/feeds/{n}.xml" for n in range(sizes.feeds)]
        size = sum(len(feed(n, sizes.items)) for n in range(3)) / 3
        print(f"feeds:   {size / 1024:,.0f} KiB each on average\n")
        first, again, made = asyncio.run(govhub(Path(work) / "govhub", urls))
        rows = [
            ("govhub, first harvest (into the outbox)", _rate(total, first), f"{made:,}"),
            ("govhub, again (304 Not Modified)", _rate(total, again), "0"),
        ]
        if newsboat:
            nb_first, stored = newsboat_reload(newsboat, Path(work) / "newsboat", urls)
            nb_again, _ = newsboat_reload(newsboat, Path(work) / "newsboat", urls)
            rows += [
                (
                    "newsboat -x reload, first (into its cache)",
                    _rate(total, nb_first),
                    f"{stored:,}",
                ),
                ("newsboat -x reload, again", _rate(total, nb_again), "0"),
            ]
        _table(("run", "items/s", "stored"), rows)
        print(f"\ngovhub, first harvest: {splits[0].line(total, first)}")
        print(f"govhub, again: {splits[1].line(total, again)}")
        if newsboat:
            print(
                f"\ngovhub / newsboat, first harvest: {nb_first / first:.2f}×"
                f"  (target: above 1); again: {nb_again / again:.2f}×"
            )
        else:
            print("\nnewsboat is not installed (apt-get install newsboat): no comparison")


# -- The feeds ----------------------------------------------------------------------------------

PARAGRAPH = (
    "为进一步加强安全生产工作，切实落实企业主体责任，县政府召开专题会议，"
    "部署开展隐患排查治理，要求各乡镇、各部门压实责任、强化监管、狠抓落实。"
)


def feed(n: int, items: int) -> bytes:
    """Feed ``n``: ``items`` distinct items, newest first, as sites publish them."""
    start = datetime(2024, 1, 1, 9, tzinfo=UTC) + timedelta(days=n % 300)
    entries = []
    for i in reversed(range(items)):
        when = format_datetime(start + timedelta(hours=i))
        description = escape(
            f"<p>{PARAGRAPH}</p><p>第{n}号栏目第{i}条：<strong>{PARAGRAPH[:20]}</strong>"
            f"<a href='https://www.shexian.gov.cn/a/{n}/{i}.html'>详情</a></p>"
        )
        entries.append(
            f"<item><title>涉县第{n}栏目第{i}条新闻：安全生产专题会议</title>"
            f"<link>https://www.shexian.gov.cn/a/{n}/{i}.html</link>"
            f"<guid>https://www.shexian.gov.cn/a/{n}/{i}.html</guid>"
            f"<pubDate>{when}</pubDate><description>{description}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>涉县人民政府 栏目{n}</title><link>https://www.shexian.gov.cn/</link>"
        f"<description>栏目{n}</description><language>zh-cn</language>{''.join(entries)}"
        "</channel></rss>"
    ).encode()


def _serve(sizes: Sizes, port: Any, ready: Any) -> None:
    """The feed server, in its own process (so it does not share a CPU core's time slices
    with the harvester under test any more than with newsboat)."""
    feeds = {f"/feeds/{n}.xml": feed(n, sizes.items) for n in range(sizes.feeds)}

    async def handle(request: web.Request) -> web.Response:
        body = feeds.get(request.path)
        if body is None:
            return web.Response(status=404)
        etag = f'"{request.path}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        headers = {"ETag": etag, "Content-Type": "application/rss+xml; charset=utf-8"}
        return web.Response(body=body, headers=headers)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/feeds/{name}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port.value = runner.addresses[0][1]
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


class served:
    """A context manager: the feed server process, and its base URL."""

    def __init__(self, sizes: Sizes) -> None:
        self.sizes = sizes
        context = multiprocessing.get_context("fork")
        self.port, self.ready = context.Value("i", 0), context.Event()
        self.process = context.Process(
            target=_serve, args=(sizes, self.port, self.ready), daemon=True
        )

    def __enter__(self) -> str:
        self.process.start()
        if not self.ready.wait(120):
            raise RuntimeError("the feed server did not start")
        return f"http://127.0.0.1:{self.port.value}"

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.join(10)


# -- govhub ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Split:
    """Where one harvest's CPU went: the main process, the worker processes."""

    main: float  # CPU seconds of the main process (all its threads)
    pool: PoolStats
    workers: int

    def line(self, items: int, seconds: float) -> str:
        per_item = 1e6 / items if items else 0.0
        total = self.main + self.pool.worker_cpu
        return (
            f"{self.workers} worker processes; CPU {total:.2f} s in {seconds:.2f} s"
            f" ({total / seconds:.2f} cores): main {self.main:.2f} s"
            f" ({self.main * per_item:,.0f} µs/item: HTTP, feed parsing, revisions, SQLite),"
            f" workers {self.pool.worker_cpu:.2f} s ({self.pool.worker_cpu * per_item:,.0f}"
            f" µs/item: convert, encode, validate, review) on {self.pool.batches:,} batches"
            + (
                f", {self.pool.in_process:,} batches in the main process"
                if self.pool.in_process
                else ""
            )
        )


async def govhub(work: Path, urls: list[str]) -> tuple[float, float, int]:
    """Seconds for the first harvest and the second, and the records queued."""
    sources = tuple(Source(f"feed-{n}", "feed", {"url": url}) for n, url in enumerate(urls))
    node = dataclasses.replace(NODE, sources=sources)
    planned = plan_sources(node, registry(), "bench")
    state = open_state(work / "state.sqlite3")
    watcher = open_state(work / "state.sqlite3")
    seconds: list[float] = []
    splits.clear()
    for _ in range(2):
        validators = DurableValidators.load(state)
        async with HarvestHttp(validators) as http:
            pipeline = Pipeline(node, state, Reviewer(ReviewPolicy()))
            harvester = Harvester(node, state, pipeline, http=http, validators=validators)
            harvester.open(planned)
            warming = time.perf_counter()
            for ready in harvester.pool.start():
                ready.result()
            if not seconds:
                print(
                    f"govhub: {harvester.pool.workers} worker processes ready in"
                    f" {time.perf_counter() - warming:.2f} s (node start-up, not timed)"
                )
            stop = asyncio.Event()
            with transaction(watcher):  # every source due now
                watcher.execute("UPDATE source_state SET next_check_at = NULL")
            mark = datetime.now(UTC).isoformat()
            started = time.perf_counter()
            cpu = time.process_time()
            running = asyncio.create_task(harvester.run(planned, stop))
            while _harvested(watcher, mark) < len(urls):
                await asyncio.sleep(0.05)
            seconds.append(time.perf_counter() - started)
            cpu = time.process_time() - cpu
            stop.set()
            await running
            splits.append(Split(cpu, harvester.pool.stats, harvester.pool.workers))
    made = state.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    state.close()
    watcher.close()
    return seconds[0], seconds[1], made


splits: list[Split] = []  # of the last ``govhub`` run: first harvest, again


def _harvested(conn: sqlite3.Connection, mark: str) -> int:
    """Sources whose harvest completed (or failed) since ``mark``."""
    row = conn.execute(
        "SELECT COUNT(*) FROM source_state WHERE last_success_at >= ? OR errors > 0", (mark,)
    ).fetchone()
    return int(row[0])


# -- newsboat -------------------------------------------------------------------------------------


def newsboat_reload(program: str, home: Path, urls: list[str]) -> tuple[float, int]:
    """Seconds for one ``newsboat -x reload`` of ``urls``, and the items in its cache."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "urls").write_text("\n".join(urls) + "\n", encoding="utf-8")
    (home / "config").write_text("reload-threads 4\nshow-read-feeds yes\n", encoding="utf-8")
    command = [
        program,
        "-u",
        str(home / "urls"),
        "-c",
        str(home / "cache.db"),
        "-C",
        str(home / "config"),
        "-x",
        "reload",
    ]
    environment = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    started = time.perf_counter()
    subprocess.run(command, env=environment, check=True, capture_output=True, timeout=3600)  # noqa: S603
    seconds = time.perf_counter() - started
    with sqlite3.connect(home / "cache.db") as cache:
        stored = cache.execute("SELECT COUNT(*) FROM rss_item").fetchone()[0]
    return seconds, int(stored)


def _rate(items: int, seconds: float) -> str:
    return f"{items / seconds:,.0f}"


if __name__ == "__main__":  # python -m bench.harvest [--quick]
    import sys

    run(quick="--quick" in sys.argv[1:])
