"""Harvest worker processes: the same results as converting in the main process, crashes."""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import os
import pickle
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from importlib.metadata import EntryPoint
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar
from xml.sax.saxutils import escape

from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.contract import Context, Failure, Item
from adapters.registry import GROUP, registry
from hub import records
from hub.errors import InputError, Problem
from hub.federation import Node, Source, load_federation
from hub.harvest.harvester import Harvester
from hub.harvest.http import HarvestHttp
from hub.harvest.plan import Planned, plan_sources
from hub.harvest.state import DurableValidators
from hub.harvest.tally import Tally
from hub.harvest.transfer import dumps
from hub.harvest.workers import POOL_FROM
from hub.nodedb import open_state, transaction
from hub.outbox import entries as outbox
from hub.outbox.pipeline import Outcome, Pipeline, check_document
from hub.records import Record
from hub.review import Reviewer, ReviewPolicy

ROOT = Path(__file__).parent.parent
FEDERATION = load_federation(ROOT / "nodes.toml")
CST = timezone(timedelta(hours=8))


# -- A source with every kind of item -----------------------------------------------------------


@dataclass(frozen=True)
class MixedSettings:
    count: int = field(default=60, metadata={"help": "how many items"})
    suffix: str = field(default="", metadata={"help": "appended to every title"})
    crash_marker: str = field(default="", metadata={"help": "file made by the first crash"})
    crash_at: int = field(default=0, metadata={"help": "the item whose convert kills a worker"})


class MixedAdapter:
    """Items 1..count after the cursor (the last item's number), of every kind:

    every 13th is a ``Failure``; every 7th holds no record; 23 and 46 raise
    ``InputError``, 29 and 58 ``ValueError``, 31 returns no ``Record``; every 8th
    has an invalid index number (refused); every 5th carries 秘密★1年 (held);
    items 9, 19, … repeat the key of the item before them, with the same content
    when the number ends in 9 and is odd in its tens (9, 29, …) and new content
    otherwise (a second revision in the same batch).
    """

    name: ClassVar[str] = "mixed"
    Settings: ClassVar[type] = MixedSettings
    sample: ClassVar[str] = "count"

    def __init__(self, settings: MixedSettings, context: Context) -> None:
        self.settings, self.context = settings, context

    async def fetch(self, cursor: str | None) -> AsyncIterator[Item | Failure]:
        for n in range(int(cursor or 0) + 1, self.settings.count + 1):
            if n % 13 == 0:
                yield Failure(f"mixed#{n}", "cannot read this one", str(n))
                continue
            key = f"item-{n - 1}" if n % 10 == 9 else f"item-{n}"
            yield Item(key, f"mixed#{n}", n, str(n))

    def convert(self, item: Item) -> Record | None:
        n: int = item.data
        if n == self.settings.crash_at and multiprocessing.parent_process() is not None:
            marker = Path(self.settings.crash_marker)
            if not marker.exists():
                marker.write_text("crashed once")
                os._exit(3)  # a worker dying in the middle of a batch
        if n in (23, 46):
            raise InputError([Problem(item.where, None, "date", "no date in the item")])
        if n in (29, 58):
            raise ValueError(f"item {n} has a broken date")
        if n == 31:
            return "not a record"  # type: ignore[return-value]
        same = n % 10 == 9 and (n // 10) % 2 == 0
        number = n - 1 if same else n
        if number % 7 == 0 and not same:
            return None
        title = f"第{number}号通知{self.settings.suffix}"
        if number % 5 == 0:
            title = "秘密★1年 " + title
        record = self.context.record(
            item.key,
            title=title,
            published=datetime(2024, 1, 1, 9, tzinfo=CST) + timedelta(days=number),
            summary=f"关于第{number}号事项的通知。",
        )
        if number % 8 == 0:
            record = dataclasses.replace(record, index_number="not-an-index-number")
        return record


ADAPTERS = registry(
    [EntryPoint(name="mixed", value="test_harvest_workers:MixedAdapter", group=GROUP)]
)


def node_with(*sources: Source) -> Node:
    return dataclasses.replace(FEDERATION.node("shexian"), sources=sources)


@dataclass
class Run:
    """One node's state file and harvester."""

    state: sqlite3.Connection
    harvester: Harvester
    planned: list[Planned]

    def harvest(self) -> Tally:
        return asyncio.run(self.harvester.harvest(self.planned[0]))

    def forget_cursor(self) -> None:
        with transaction(self.state):
            self.state.execute("UPDATE source_state SET cursor = NULL")


def start(path: Path, workers: int, batch: int = 25, **settings: Any) -> Run:
    node = node_with(Source("mixed", "mixed", settings, 10))
    planned = plan_sources(node, ADAPTERS, "nodes.toml")
    state = open_state(path)
    pipeline = Pipeline(node, state, Reviewer(ReviewPolicy()))
    harvester = Harvester(node, state, pipeline, batch=batch, workers=workers)
    return Run(state, harvester, planned)


def snapshot(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Everything a harvest writes, without the times."""
    return {
        "outbox": conn.execute(
            "SELECT record_id, revision, content_hash, kind, topic, routing_key, body"
            " FROM outbox ORDER BY seq"
        ).fetchall(),
        "held": conn.execute(
            "SELECT record_id, revision, body, findings, state FROM held ORDER BY rowid"
        ).fetchall(),
        "refused": conn.execute(
            "SELECT source, problems, body FROM refused ORDER BY seq"
        ).fetchall(),
        "problems": conn.execute(
            "SELECT source, item, stage, message FROM source_problems ORDER BY seq"
        ).fetchall(),
        "sources": conn.execute(
            "SELECT source, cursor, errors, items_seen, records_made, item_problems, parked"
            " FROM source_state ORDER BY source"
        ).fetchall(),
    }


def counts(tally: Tally) -> tuple[Any, ...]:
    return dataclasses.astuple(dataclasses.replace(tally, next_check_at=None))


def scenario(path: Path, workers: int) -> tuple[list[tuple[Any, ...]], dict[str, Any], Any]:
    """A first harvest, the same items again, then every title changed."""
    run = start(path, workers)
    try:
        tallies = [counts(run.harvest())]
        run.forget_cursor()
        tallies.append(counts(run.harvest()))
        run.forget_cursor()
        changed = start(path, workers, suffix="（修订）")
        try:
            tallies.append(counts(changed.harvest()))
        finally:
            changed.harvester.close()
        stats = dataclasses.replace(run.harvester.pool.stats)
        return tallies, snapshot(run.state), stats
    finally:
        run.harvester.close()
        run.state.close()


# -- With and without workers -------------------------------------------------------------------


def test_workers_give_exactly_the_results_of_the_main_process(tmp_path: Path) -> None:
    alone, alone_rows, alone_stats = scenario(tmp_path / "alone.sqlite3", workers=0)
    pooled, pooled_rows, pooled_stats = scenario(tmp_path / "pooled.sqlite3", workers=2)
    assert alone_stats.batches == 0  # the pool turned off starts no process
    assert pooled_stats.batches >= 2 and pooled_stats.broken == 0  # 25-item batches went
    assert pooled == alone
    for table, rows in alone_rows.items():
        assert pooled_rows[table] == rows, table
    # Every kind of item happened, so the comparison above covers them all.
    first, again, changed = (Tally(*t) for t in alone)
    assert first.failures == 4 and first.convert_errors == 5  # 13 26 39 52; 23 29 31 46 58
    assert first.held >= 5 and first.refused >= 5 and first.empty >= 5
    assert first.unchanged >= 1 and first.queued >= 10  # item 9 repeats item 8 in its batch
    # Again: only item 18 and item 19, which rewrites it, take turns (revisions 3 and 4).
    assert (again.queued, again.held) == (2, 0)
    assert again.unchanged == again.records - again.refused - 2
    assert changed.queued >= 10 and changed.unchanged == first.unchanged  # the in-batch repeats
    revisions = {(row[0], row[1]) for row in alone_rows["outbox"]}
    assert ("urn:govhub:shexian:item-18", 2) in revisions  # 19 changed 18 in the first batch
    assert ("urn:govhub:shexian:item-1", 2) in revisions  # the changed titles
    assert alone_rows["sources"] == [("mixed", "60", 0, 3 * 56, *alone_rows["sources"][0][4:6], 0)]
    [refused] = {row[0] for row in alone_rows["refused"][:1]}
    assert refused.startswith("[mixed] mixed#")
    assert all("indexNumber" in row[1] for row in alone_rows["refused"])
    assert any("秘密★1年" in row[3] for row in alone_rows["held"])


def test_a_worker_dying_mid_batch_loses_and_repeats_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "crashed"
    run = start(tmp_path / "state.sqlite3", workers=2, crash_marker=str(marker), crash_at=37)
    try:
        tally = run.harvest()
        stats = run.harvester.pool.stats
        assert marker.exists() and stats.broken == 1  # the worker died, the pool came back
        rows = snapshot(run.state)
    finally:
        run.harvester.close()
        run.state.close()
    alone = start(tmp_path / "alone.sqlite3", workers=0)
    try:
        assert counts(tally) == counts(alone.harvest())
        expected = snapshot(alone.state)
    finally:
        alone.state.close()
    assert rows == expected
    ids = [row[:2] for row in rows["outbox"]]
    assert len(ids) == len(set(ids))  # nothing written twice
    assert rows["sources"][0][1] == "60"  # the cursor is at the last item


def test_the_feed_adapter_over_loopback_http_in_workers(tmp_path: Path) -> None:
    """A real feed, served on loopback: the feed's items (which share the parsed feed) go
    to the workers and come back as the main process would have made them."""
    feeds = {f"/feeds/{n}.xml": rss(n, 40) for n in range(2)}

    async def handle(request: web.Request) -> web.Response:
        headers = {"Content-Type": "application/rss+xml; charset=utf-8"}
        return web.Response(body=feeds[request.path], headers=headers)

    async def harvest(url: str, path: Path, workers: int) -> tuple[list[Tally], Any]:
        sources = tuple(
            Source(f"feed-{n}", "feed", MappingProxyType({"url": f"{url}/feeds/{n}.xml"}), 5)
            for n in range(2)
        )
        node = node_with(*sources)
        planned = plan_sources(node, registry(), "nodes.toml")
        state = open_state(path)
        validators = DurableValidators.load(state)
        async with HarvestHttp(validators) as http:
            pipeline = Pipeline(node, state, Reviewer(ReviewPolicy(("安全生产",))))
            harvester = Harvester(
                node, state, pipeline, http=http, validators=validators, workers=workers
            )
            try:
                tallies = [await harvester.harvest(each) for each in planned]
            finally:
                harvester.close()
        rows = snapshot(state)
        state.close()
        return tallies, (rows, harvester.pool.stats.batches)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/feeds/{name}", handle)
        async with TestServer(app, host="127.0.0.1", port=0) as server:
            url = str(server.make_url("")).rstrip("/")
            pooled, (pooled_rows, sent) = await harvest(url, tmp_path / "p.sqlite3", 2)
            alone, (alone_rows, _) = await harvest(url, tmp_path / "a.sqlite3", 0)
        assert sent == 2  # each feed's 40 items went to a worker in one batch
        assert [counts(t) for t in pooled] == [counts(t) for t in alone]
        assert pooled_rows == alone_rows
        # The node's own sensitive terms were used in the workers: every item holds it.
        assert [t.held for t in pooled] == [40, 40] and not pooled_rows["outbox"]
        assert "安全生产" in pooled_rows["held"][0][3]

    asyncio.run(main())


def rss(n: int, items: int) -> bytes:
    """Feed ``n``: ``items`` entries with HTML descriptions, newest first."""
    entries = []
    for i in reversed(range(items)):
        link = f"https://www.shexian.gov.cn/a/{n}/{i}.html"
        when = format_datetime(datetime(2024, 1, 1, 9, tzinfo=CST) + timedelta(hours=i))
        description = escape(
            f"<p>县政府召开安全生产专题会议，部署第{n}栏目第{i}项工作。</p>"
            f"<p><strong>要求</strong>压实责任。<a href='{link}'>详情</a></p>"
        )
        entries.append(
            f"<item><title>第{n}栏目第{i}条新闻</title><link>{link}</link><guid>{link}</guid>"
            f"<pubDate>{when}</pubDate><description>{description}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>涉县 栏目{n}</title><link>https://www.shexian.gov.cn/</link>"
        f"<description>栏目{n}</description><language>zh-cn</language>{''.join(entries)}"
        "</channel></rss>"
    ).encode()


# -- The parts -------------------------------------------------------------------------------------


def test_accept_checked_decides_as_accept_many(tmp_path: Path) -> None:
    node = FEDERATION.node("shexian")
    reviewer = Reviewer(ReviewPolicy())
    made = Context(node, "s").record(
        "a", title="第1号通知", published=datetime(2024, 1, 1, tzinfo=CST)
    )
    held_one = dataclasses.replace(made, id="urn:govhub:shexian:b", title="秘密★1年 第2号")
    foreign = dataclasses.replace(made, id="urn:govhub:hd:c", origin=records.Origin("hd", "1"))
    newer = dataclasses.replace(made, revision=2, title="第1号通知（修订）")
    documents = [
        *(record.xml_and_hash() for record in (made, held_one, foreign, made, newer)),
        (b"<record>", "0" * 64),
    ]
    many = Pipeline(node, open_state(tmp_path / "many.sqlite3"), reviewer)
    checked = Pipeline(node, open_state(tmp_path / "checked.sqlite3"), reviewer)
    expected = many.accept_many(
        [(data, f"doc{i}") for i, (data, _) in enumerate(documents)],
        encoded=True,
        hashes=[digest for _, digest in documents],
    )
    got = checked.accept_checked(
        [
            check_document(data, f"doc{i}", digest, node=node, reviewer=reviewer)
            for i, (data, digest) in enumerate(documents)
        ]
    )
    assert [r.outcome for r in got] == [r.outcome for r in expected]
    assert [r.outcome for r in got] == [
        Outcome.QUEUED, Outcome.HELD, Outcome.REFUSED, Outcome.UNCHANGED, Outcome.QUEUED,
        Outcome.REFUSED,
    ]  # fmt: skip
    assert [(r.problems, r.findings) for r in got] == [(r.problems, r.findings) for r in expected]
    assert snapshot(checked.state) == snapshot(many.state)
    assert len(outbox.due(checked.state, 10)) == 2


def test_items_records_and_node_settings_cross_to_workers_intact() -> None:
    node = node_with(Source("s", "feed", MappingProxyType({"url": "https://a.cn/"}), 3))
    record = Context(node, "s").record(
        "a", title="通知", published=datetime(2024, 1, 1, tzinfo=CST), keywords=("甲", "乙")
    )
    shared = {"feed": list(range(1000))}
    items = [Item(f"k{n}", f"w{n}", (n, shared), str(n)) for n in range(50)]
    back_node, back_record, back_items = pickle.loads(dumps((node, record, items)))  # noqa: S301
    assert back_node == node and back_record == record and back_items == items
    assert isinstance(back_node.sources[0].settings, MappingProxyType)
    assert back_items[0].data[1] is back_items[49].data[1]  # a shared object is written once
    assert len(dumps(items)) < 2 * len(dumps(shared))
    assert POOL_FROM <= 25  # the scenarios above send their 25-item batches to workers
