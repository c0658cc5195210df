"""A running node: the inbox, the downward consumer, the local feeds, the webhook, the runner.

Most tests run on the in-process bus (the same contract as RabbitMQ, see
tests/test_bus.py); the last ones run a node, and ``govhub node run`` itself,
on the real broker with per-node users made by ``setup_broker``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from support.rabbitmq import HOST, PORT, delete_users, rabbitmqctl, url_for
from support.services import require_service

from hub import records
from hub.bus import (
    PART,
    REASON,
    AmqpBus,
    Bus,
    MemoryBus,
    Message,
    PublishError,
    PublishRefused,
    RabbitmqctlAdmin,
    dead_queue,
    down_key,
    setup_broker,
    up_key,
)
from hub.bus.routing import TOPIC_HEADER
from hub.bus.topology import down_queue, node_queues, up_queue
from hub.cli import node as node_command
from hub.cli.common import UsageError
from hub.errors import ConfigInvalid
from hub.federation import Federation, load_federation, parse_federation
from hub.http.listen import ServeError
from hub.inbox import entries as inbox
from hub.inbox.consumer import DownChecker, Kept, Tally, receive_forever
from hub.inbox.entries import Received
from hub.inbox.webhook import Webhook
from hub.node.port import View, make_app
from hub.node.runner import run_node, state_path, stop_on_signals
from hub.nodedb import open_state, transaction
from hub.outbox import entries as outbox
from hub.outbox.pipeline import Outcome, Pipeline
from hub.records import Origin, Record, Status, Topic
from hub.review import Reviewer, ReviewPolicy
from hub.settings import Settings

ROOT = Path(__file__).parent.parent
NODES_TOML = (ROOT / "nodes.toml").read_text(encoding="utf-8")
FEDERATION = load_federation(ROOT / "nodes.toml")
EXAMPLES = {p.stem: p.read_bytes() for p in (ROOT / "examples" / "records").glob("*.xml")}


# -- Records of the nodes above shexian (cn.he.hd.shexian) ------------------------------------


def he_notice(number: int = 1, **changes: Any) -> Record:
    """A notice that 河北 (he) pushes down."""
    record = dataclasses.replace(
        records.parse(EXAMPLES["notice"]),
        id=f"urn:govhub:he:11130000000000000X-2024-{number:05d}",
        origin=Origin("he", "1300000001"),
        title=f"河北省人民政府办公厅关于做好森林防火工作的通知（第{number}号）",
        issuers=("河北省人民政府办公厅",),
    )
    return dataclasses.replace(record, **changes)


def cn_document(**changes: Any) -> Record:
    return dataclasses.replace(records.parse(EXAMPLES["document"]), **changes)


def cn_news() -> Record:
    return dataclasses.replace(
        records.parse(EXAMPLES["news"]),
        id="urn:govhub:cn:news-20220417",
        origin=Origin("cn", "bm01000001"),
    )


def push(record: Record, path: str = "cn.he", **fields: Any) -> Message:
    return Message("down", down_key(path, record.kind), record.to_xml(pretty=False), **fields)


def publish_up(record: Record, path: str = "cn") -> Message:
    headers = {TOPIC_HEADER: record.topic.top} if record.topic else {}
    return Message("up", up_key(path, record.kind), record.to_xml(pretty=False), headers=headers)


# -- Helpers ----------------------------------------------------------------------------------


def run(scenario: Callable[[], Awaitable[Any]], timeout: float = 60) -> Any:
    async def main() -> Any:
        async with asyncio.timeout(timeout):
            return await scenario()

    return asyncio.run(main())


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def declare_all(bus: Bus, federation: Federation = FEDERATION) -> None:
    for node_id in federation.nodes:
        for spec in node_queues(federation, node_id):
            await bus.declare_queue(spec.name, spec.bindings)


async def receive_all(
    bus: MemoryBus,
    node_id: str,
    state: sqlite3.Connection,
    federation: Federation = FEDERATION,
) -> Tally:
    """Run node ``node_id``'s consumer until its queue is empty and everything is settled."""
    stop = asyncio.Event()
    checker = DownChecker(federation, node_id)
    queue = bus.broker.queues[down_queue(node_id)]
    async with bus.as_user(node_id).consume(down_queue(node_id), prefetch=5) as consumer:
        task = asyncio.create_task(receive_forever(consumer, checker, state, stop, poll=0.05))
        await until(lambda: len(queue) == 0 and consumer.unsettled == 0)
        stop.set()
        return await task


def ids(state: sqlite3.Connection, kind: str | None = None) -> list[str]:
    return sorted(item.record_id for item in inbox.latest(state, 100, kind))


def dead_reasons(bus: MemoryBus, queue: str) -> list[str]:
    dead = bus.broker.queues[dead_queue(queue)]
    return [str(entry.message.headers[REASON]) for entry in dead.ready]


@pytest.fixture
def states(tmp_path: Path) -> Iterator[Callable[[str], sqlite3.Connection]]:
    opened: dict[str, sqlite3.Connection] = {}

    def state_of(node_id: str) -> sqlite3.Connection:
        if node_id not in opened:
            opened[node_id] = open_state(tmp_path / node_id / "state.sqlite3")
        return opened[node_id]

    yield state_of
    for conn in opened.values():
        conn.close()


# -- The inbox table --------------------------------------------------------------------------


def keep(state: sqlite3.Connection, record: Record, via: str = "push") -> Received:
    with transaction(state):
        return inbox.receive(
            state, record, routing_key=down_key("cn.he", record.kind), via=via, from_path="cn.he"
        )


def test_inbox_keeps_each_revision_once_and_shows_the_newest(tmp_path: Path) -> None:
    state = open_state(tmp_path / "state.sqlite3")
    first = he_notice()
    second = dataclasses.replace(first, revision=2, title=first.title + "（修订）")
    withdrawn = dataclasses.replace(
        first, revision=3, status=Status("withdrawn", "日期有误", first.published + timedelta(1))
    )
    assert keep(state, first) is Received.NEW
    assert keep(state, first) is Received.UNCHANGED  # a redelivery
    assert keep(state, second) is Received.REVISED
    assert keep(state, first) is Received.UNCHANGED  # an older revision the inbox has
    assert keep(state, withdrawn) is Received.REVISED
    assert keep(state, second) is Received.UNCHANGED
    assert keep(state, dataclasses.replace(first, revision=0)) is Received.STALE
    [shown] = inbox.latest(state, 10)
    assert (shown.revision, shown.withdrawn, shown.withdrawn_reason) == (3, True, "日期有误")
    assert shown.via == "push" and shown.from_path == "cn.he" and shown.origin == "he"
    assert records.parse(shown.body) == withdrawn
    counts = inbox.counts(state)
    assert (counts.records, counts.withdrawn, counts.revisions) == (1, 1, 3)
    assert counts.by_kind == {"notice": 1}
    keep(state, cn_document(), via="subscription")
    assert inbox.latest(state, 10, "document")[0].record_id == cn_document().id
    assert [i.kind for i in inbox.latest(state, 10)] == ["document", "notice"]  # newest first
    assert len(inbox.latest(state, 1)) == 1
    state.close()
    again = open_state(tmp_path / "state.sqlite3")  # the inbox survives a restart
    assert inbox.counts(again).records == 2


# -- The downward consumer --------------------------------------------------------------------


def test_a_push_reaches_every_node_below_the_portal_and_no_other(
    states: Callable[[str], sqlite3.Connection],
) -> None:
    notice = he_notice()

    async def scenario() -> dict[str, Tally]:
        bus = MemoryBus()
        await declare_all(bus)
        await bus.as_user("he").publish(push(notice))
        return {n: await receive_all(bus, n, states(n)) for n in ("hd", "hanshan", "shexian", "gz")}

    tallies = run(scenario)
    for node_id in ("hd", "hanshan", "shexian"):
        [item] = inbox.latest(states(node_id), 10)
        assert (item.record_id, item.via, item.from_path) == (notice.id, "push", "cn.he")
        assert tallies[node_id].outcomes["new"] == 1
    assert inbox.latest(states("gz"), 10) == []
    assert tallies["gz"].outcomes["new"] == 0


def test_a_county_gets_the_kinds_it_subscribed_to_and_nothing_else(
    states: Callable[[str], sqlite3.Connection],
) -> None:
    document, news = cn_document(), cn_news()

    async def scenario() -> MemoryBus:
        bus = MemoryBus()
        await declare_all(bus)
        cn = bus.as_user("cn")
        await cn.publish(publish_up(document))
        await cn.publish(publish_up(news))  # only cn.up binds cn's news
        for node_id in ("shexian", "hanshan"):
            await receive_all(bus, node_id, states(node_id))
        return bus

    bus = run(scenario)
    [item] = inbox.latest(states("shexian"), 10)
    assert (item.record_id, item.via, item.routing_key) == (
        document.id,
        "subscription",
        "up.cn._.document",
    )
    assert inbox.latest(states("hanshan"), 10) == []  # no subscription, nothing
    assert len(bus.broker.queues[up_queue("cn")]) == 2  # both went up to the root as usual


def test_topics_a_subscription_leaves_out_are_acked_and_not_kept(
    states: Callable[[str], sqlite3.Connection],
) -> None:
    text = NODES_TOML.replace(
        '[[node.subscribe]]\nfrom = "cn"\nkinds = ["document"]\n',
        '[[node.subscribe]]\nfrom = "cn"\nkinds = ["document"]\ntopics = ["综合政务"]\n',
    )
    federation = parse_federation(text)
    assert federation.node("shexian").subscriptions[0].topics == ("综合政务",)
    wanted = cn_document()  # 综合政务
    other = cn_document(
        id="urn:govhub:cn:000014349-2019-00007", topic=Topic("市场监管、安全生产监管")
    )

    async def scenario() -> tuple[MemoryBus, Tally]:
        bus = MemoryBus()
        await declare_all(bus, federation)
        await bus.as_user("cn").publish_many([publish_up(wanted), publish_up(other)])
        return bus, await receive_all(bus, "shexian", states("shexian"), federation)

    bus, tally = run(scenario)
    assert ids(states("shexian")) == [wanted.id]
    assert tally.skipped == 1 and tally.rejected == 0
    assert dead_reasons(bus, down_queue("shexian")) == []


def test_a_redelivery_changes_nothing(states: Callable[[str], sqlite3.Connection]) -> None:
    notice = he_notice()

    async def scenario() -> Tally:
        bus = MemoryBus(drain_timeout=0.1)
        await declare_all(bus)
        he = bus.as_user("he")
        await he.publish(push(notice, message_id="n1"))
        await he.publish(push(notice, message_id="n1"))  # published again after a lost confirm
        first = await receive_all(bus, "shexian", states("shexian"))
        # Delivered, then the consumer closes before acking: the broker delivers it again.
        await he.publish(push(notice, message_id="n1"))
        async with bus.as_user("shexian").consume(down_queue("shexian"), prefetch=1) as consumer:
            delivery = await anext(consumer)
            assert not delivery.redelivered
            await consumer.stop()
        second = await receive_all(bus, "shexian", states("shexian"))
        return Tally(outcomes={k: first.outcomes[k] + second.outcomes[k] for k in first.outcomes})

    tally = run(scenario)
    assert tally.outcomes == {"new": 1, "revised": 0, "unchanged": 2, "stale": 0, "conflict": 0}
    assert inbox.counts(states("shexian")).revisions == 1


def test_other_content_under_a_kept_revision_is_a_conflict_dead_lettered_not_lost(
    states: Callable[[str], sqlite3.Connection],
) -> None:
    notice = he_notice()
    other = dataclasses.replace(notice, title=notice.title + "（更正）")  # same revision

    async def scenario() -> tuple[MemoryBus, Tally]:
        bus = MemoryBus()
        await declare_all(bus)
        he = bus.as_user("he")
        await he.publish(push(notice, message_id="n1"))
        await he.publish(push(other, message_id="n2"))
        return bus, await receive_all(bus, "shexian", states("shexian"))

    bus, tally = run(scenario)
    assert tally.outcomes["new"] == 1 and tally.outcomes["conflict"] == 1
    assert tally.rejected == 1 and "conflict" in str(tally.last_rejection)
    [kept] = inbox.latest(states("shexian"), 10)
    assert kept.title == notice.title, "the revision kept first stays"
    [dead] = [entry.message for entry in bus.broker.queues[dead_queue(down_queue("shexian"))].ready]
    assert dead.message_id == "n2" and dead.headers[PART] == "1 of 1"
    assert "revision 1 is already in the inbox with other content" in str(dead.headers[REASON])
    assert records.parse(dead.body).title == other.title  # the other copy, kept to look at


def test_spoofed_broken_and_foreign_messages_are_dead_lettered_with_their_reason(
    states: Callable[[str], sqlite3.Connection],
) -> None:
    notice = he_notice()
    hd_record = he_notice(2, id="urn:govhub:hd:x-1", origin=Origin("hd", "1304000001"))
    gd_record = he_notice(3, id="urn:govhub:gd:x-1", origin=Origin("gd", "4400000001"))
    broken = notice.to_xml().replace(b"<revision>", b"<revision>x")

    async def scenario() -> tuple[MemoryBus, Tally]:
        bus = MemoryBus()
        await declare_all(bus)
        # A binding left over from an old map: gd's pushes reach shexian's queue.
        await bus.declare_queue(down_queue("shexian"), [("down", "down.cn.gd._.*")])
        await bus.as_user("hd").publish(push(notice))  # hd sends under he's key
        await bus.as_user("he").publish(push(hd_record))  # he sends hd's record as its own
        await bus.as_user("he").publish(Message("down", down_key("cn.he", "notice"), broken))
        await bus.as_user("he").publish(push(notice, headers={TOPIC_HEADER: "国防"}))
        await bus.as_user("gd").publish(push(gd_record, "cn.gd"))  # gd is not above shexian
        await bus.as_user("he").publish(push(notice))  # the one good message
        return bus, await receive_all(bus, "shexian", states("shexian"))

    bus, tally = run(scenario)
    assert ids(states("shexian")) == [notice.id]
    reasons = dead_reasons(bus, down_queue("shexian"))
    assert tally.rejected == len(reasons) == 5
    assert "spoofed sender" in reasons[0] and "'hd'" in reasons[0] and "'he'" in reasons[0]
    assert "wrong origin" in reasons[1] and "record of node 'hd' sent by node 'he'" in reasons[1]
    assert "invalid record" in reasons[2] and "revision" in reasons[2]
    assert TOPIC_HEADER in reasons[3] and "'国防'" in reasons[3]
    assert "node 'gd' is not above 'shexian'" in reasons[4]


def test_one_bad_record_of_a_batch_costs_that_record_alone(
    states: Callable[[str], sqlite3.Connection],
) -> None:
    good, also_good = he_notice(1), he_notice(4)
    foreign = he_notice(2, id="urn:govhub:hd:x-1", origin=Origin("hd", "1304000001"))
    broken = he_notice(3).to_xml(pretty=False).replace(b"<revision>1", b"<revision>x")
    documents = [good.to_xml(pretty=False), foreign.to_xml(pretty=False), broken]
    documents.append(also_good.to_xml(pretty=False))
    elements = b"".join(d[d.index(b"?>") + 2 :] for d in documents)
    batch = f'<records xmlns="{records.NS}">'.encode() + elements + b"</records>"

    async def scenario() -> tuple[MemoryBus, Tally]:
        bus = MemoryBus()
        await declare_all(bus)
        await bus.as_user("he").publish(
            Message("down", down_key("cn.he", "notice"), batch, message_id="batch-1")
        )
        return bus, await receive_all(bus, "shexian", states("shexian"))

    bus, tally = run(scenario)
    assert ids(states("shexian")) == sorted([good.id, also_good.id])
    assert tally.outcomes["new"] == 2 and tally.rejected == 2
    dead = [entry.message for entry in bus.broker.queues[dead_queue(down_queue("shexian"))].ready]
    assert [(m.headers[PART], m.message_id) for m in dead] == [
        ("2 of 4", "batch-1"),
        ("3 of 4", "batch-1"),
    ]
    assert "wrong origin" in str(dead[0].headers[REASON])
    assert "invalid record" in str(dead[1].headers[REASON])
    assert records.parse(dead[0].body) == foreign  # each kept as a document of its own,
    assert b"<revision>x" in dead[1].body  # so that it can be looked at and retried alone
    assert len(bus.broker.queues[down_queue("shexian")]) == 0  # the batch itself was acked


# -- The local HTTP port ----------------------------------------------------------------------


async def serving(
    state: sqlite3.Connection,
    scenario: Callable[[TestClient[web.Request, web.Application]], Awaitable[Any]],
    **view: Any,
) -> Any:
    app = make_app(View(FEDERATION.node("shexian"), state, **view))
    async with TestClient(TestServer(app)) as client:
        return await scenario(client)


def filled(tmp_path: Path) -> sqlite3.Connection:
    state = open_state(tmp_path / "state.sqlite3")
    keep(state, he_notice(1))
    keep(state, he_notice(2))
    keep(state, he_notice(3, revision=2, status=Status("withdrawn", "已废止", None)))
    keep(state, cn_document(), via="subscription")
    return state


def test_atom_and_rss_feeds_are_valid_and_carry_every_entry(tmp_path: Path) -> None:
    state = filled(tmp_path)
    expected = ids(state)

    async def scenario(client: TestClient[web.Request, web.Application]) -> dict[str, Any]:
        found = {}
        for name in ("atom", "rss"):
            response = await client.get(f"/inbox.{name}")
            assert response.status == 200
            assert response.content_type == f"application/{name}+xml"
            found[name] = feedparser.parse(await response.read())
        notices = await client.get("/inbox.atom?kind=notice")
        found["notices"] = feedparser.parse(await notices.read())
        return found

    feeds = run(lambda: serving(state, scenario))
    for name in ("atom", "rss"):
        feed = feeds[name]
        assert feed.bozo == 0, feed.get("bozo_exception")
        assert feed.version == ("atom10" if name == "atom" else "rss20")
        assert sorted(entry.id for entry in feed.entries) == expected
        document = next(e for e in feed.entries if e.id == cn_document().id)
        assert document.title == cn_document().title
        assert document.link == cn_document().link
        assert document.summary == cn_document().summary
        assert document.author == "国务院办公厅"
        assert document.get("updated_parsed" if name == "atom" else "published_parsed")
        withdrawn = next(e for e in feed.entries if e.id == he_notice(3).id)
        assert withdrawn.title.startswith("【已撤回】") and "已废止" in withdrawn.summary
    assert feeds["atom"].entries[0].id == cn_document().id  # newest first
    assert sorted(e.id for e in feeds["notices"].entries) == ids(state, "notice")


def test_json_lists_the_records_with_their_xml(tmp_path: Path) -> None:
    state = filled(tmp_path)

    async def scenario(client: TestClient[web.Request, web.Application]) -> list[dict[str, Any]]:
        everything = await (await client.get("/inbox.json")).json()
        documents = await (await client.get("/inbox.json?kind=document&limit=1")).json()
        return [everything, documents]

    everything, documents = run(lambda: serving(state, scenario))
    assert everything["node"] == "shexian" and everything["count"] == 4
    assert sorted(r["id"] for r in everything["records"]) == ids(state)
    [document] = documents["records"]
    assert document["via"] == "subscription" and document["kind"] == "document"
    assert document["issuers"] == ["国务院办公厅"] and document["withdrawn"] is False
    assert records.parse(document["xml"].encode()) == cn_document()
    withdrawn = next(r for r in everything["records"] if r["id"] == he_notice(3).id)
    assert withdrawn["withdrawn"] is True and withdrawn["withdrawn_reason"] == "已废止"


def test_conditional_requests_get_304_until_the_inbox_changes(tmp_path: Path) -> None:
    state = filled(tmp_path)

    async def scenario(client: TestClient[web.Request, web.Application]) -> None:
        for path in ("/inbox.atom", "/inbox.rss", "/inbox.json?kind=notice"):
            first = await client.get(path)
            etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
            again = await client.get(path, headers={"If-None-Match": etag})
            assert again.status == 304 and await again.read() == b""
            assert again.headers["ETag"] == etag
            since = await client.get(path, headers={"If-Modified-Since": modified})
            assert since.status == 304
            weak = await client.get(path, headers={"If-None-Match": f'W/{etag}, "other"'})
            assert weak.status == 304
        atom = await client.get("/inbox.atom")
        rss = await client.get("/inbox.rss")
        assert atom.headers["ETag"] != rss.headers["ETag"]
        keep(state, he_notice(9))
        changed = await client.get("/inbox.atom", headers={"If-None-Match": atom.headers["ETag"]})
        assert changed.status == 200 and changed.headers["ETag"] != atom.headers["ETag"]
        assert len(feedparser.parse(await changed.read()).entries) == 5

    run(lambda: serving(state, scenario))


def test_errors_share_one_json_shape(tmp_path: Path) -> None:
    state = filled(tmp_path)

    async def scenario(client: TestClient[web.Request, web.Application]) -> list[tuple[int, Any]]:
        answers = []
        for method, path in [
            ("GET", "/inbox.atom?kind=memo"),
            ("GET", "/inbox.json?limit=0"),
            ("GET", "/inbox.rss?limit=many"),
            ("GET", "/nowhere"),
            ("POST", "/inbox.json"),
        ]:
            response = await client.request(method, path)
            assert response.content_type == "application/json"
            answers.append((response.status, await response.json()))
        return answers

    answers = run(lambda: serving(state, scenario))
    assert [status for status, _ in answers] == [400, 400, 400, 404, 405]
    for status, body in answers:
        assert set(body) == {"status", "error", "parameter"} and body["status"] == status
    assert [body["parameter"] for _, body in answers] == ["kind", "limit", "limit", None, None]
    assert "'memo' is not a record kind" in answers[0][1]["error"]


def test_status_shows_the_outbox_review_queue_and_inbox(tmp_path: Path) -> None:
    state = filled(tmp_path)
    pipeline = Pipeline(FEDERATION.node("shexian"), state, Reviewer(ReviewPolicy(("防火隔离带",))))
    own = records.parse(EXAMPLES["notice"])
    assert pipeline.accept(EXAMPLES["notice"], "notice.xml").outcome is Outcome.QUEUED
    held = dataclasses.replace(own, id=own.id + "-2", summary="防火隔离带位置")
    assert pipeline.accept(held.to_xml(), "held.xml").outcome is Outcome.HELD
    tally = Tally(rejected=1, last_rejection="spoofed sender: …")

    async def scenario(client: TestClient[web.Request, web.Application]) -> Any:
        response = await client.get("/status")
        assert response.headers["Cache-Control"] == "no-store"
        return await response.json()

    status = run(lambda: serving(state, scenario, tally=tally))
    assert (status["node"], status["path"]) == ("shexian", "cn.he.hd.shexian")
    assert status["outbox"] == {"pending": 1, "sent": 0, "failing": 0, "last_error": None}
    assert status["held"] == 1
    assert status["inbox"]["records"] == 4 and status["inbox"]["withdrawn"] == 1
    assert status["inbox"]["by_kind"] == {"document": 1, "notice": 3}
    assert status["consumer"]["rejected"] == 1 and status["webhook"] is None


# -- The webhook ------------------------------------------------------------------------------


def test_the_webhook_posts_each_new_record_and_retries(tmp_path: Path) -> None:
    calls: list[tuple[int, dict[str, str], bytes]] = []
    answers = iter([503, 200, 200, 400])

    async def cms(request: web.Request) -> web.Response:
        status = next(answers)
        calls.append((status, dict(request.headers), await request.read()))
        return web.Response(status=status)

    async def scenario() -> Webhook:
        app = web.Application()
        app.router.add_post("/hook", cms)
        async with TestServer(app) as server:
            hook = Webhook(str(server.make_url("/hook")), "shexian", backoff=0.01, queue_size=4)
            stop = asyncio.Event()
            async with asyncio.TaskGroup() as group:
                group.create_task(hook.run(stop))
                for record in (he_notice(1), he_notice(2), he_notice(3)):
                    body = record.to_xml(pretty=False)
                    hook.offer(Kept(Received.NEW, record, body))
                await until(lambda: hook.stats.sent + hook.stats.failed == 3)
                stop.set()
        return hook

    hook = run(scenario)
    assert [status for status, _, _ in calls] == [503, 200, 200, 400]
    assert (hook.stats.sent, hook.stats.failed, hook.stats.retries) == (2, 1, 1)
    assert hook.stats.last_error == f"{he_notice(3).id}: HTTP 400"  # a 4xx is not retried
    _, headers, body = calls[1]
    assert headers["X-Govhub-Record"] == he_notice(1).id and headers["X-Govhub-Event"] == "new"
    assert headers["Content-Type"].startswith("application/xml")
    assert records.parse(body) == he_notice(1)


def test_a_full_webhook_queue_drops_and_counts_without_waiting() -> None:
    async def scenario() -> Webhook:
        hook = Webhook("http://127.0.0.1:9/unreachable", "shexian", queue_size=2)
        for number in range(5):
            record = he_notice(number)
            hook.offer(Kept(Received.NEW, record, b"<record/>"))  # no worker: fills up
        return hook

    hook = run(scenario)
    assert (hook.queued, hook.stats.dropped) == (2, 3)
    assert hook.stats.last_error is not None and "queue full" in hook.stats.last_error


# -- The runner -------------------------------------------------------------------------------


def settings_for(data_dir: Path) -> Settings:
    return Settings.from_env({}, data_dir=data_dir)


def test_run_node_relays_receives_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    node = FEDERATION.node("shexian")
    settings = settings_for(tmp_path)
    notice = he_notice()
    own = EXAMPLES["notice"]  # shexian's own notice, for the outbox
    hooked: list[bytes] = []

    async def cms(request: web.Request) -> web.Response:
        hooked.append(await request.read())
        return web.Response(status=204)

    async def scenario() -> tuple[Tally, dict[str, Any], MemoryBus]:
        bus = MemoryBus()
        await declare_all(bus)
        publishing = open_state(state_path(tmp_path, node.id))  # as `govhub publish` does
        pipeline = Pipeline(node, publishing, Reviewer(ReviewPolicy()))
        assert pipeline.accept(own, "notice.xml").outcome is Outcome.QUEUED
        publishing.close()
        many = [push(he_notice(100 + n)) for n in range(300)]
        hook_app = web.Application()
        hook_app.router.add_post("/hook", cms)
        async with TestServer(hook_app) as cms_server:
            hook = Webhook(str(cms_server.make_url("/hook")), node.id, backoff=0.01)
            urls: list[str] = []
            stop, wake = asyncio.Event(), asyncio.Event()
            tally_now = Tally()
            with stop_on_signals(stop):
                running = asyncio.create_task(
                    run_node(
                        node,
                        FEDERATION,
                        settings,
                        bus.as_user("shexian"),
                        port=0,
                        stop=stop,
                        wake=wake,
                        webhook=hook,
                        on_ready=urls.append,
                        tally=tally_now,
                    )
                )
                await until(lambda: bool(urls))
                await bus.as_user("he").publish(push(notice))
                await bus.as_user("cn").publish(publish_up(cn_document()))
                await until(lambda: len(hooked) == 2)
                status = await _get_json(urls[0] + "/status")
                await until(lambda: len(bus.broker.queues[up_queue("hd")]) == 1)  # relayed up
                await bus.as_user("he").publish_many(many)
                # the 2 records above and at least 20 of the stream
                await until(lambda: tally_now.outcomes["new"] >= 22)
                os.kill(os.getpid(), signal.SIGTERM)  # in the middle of the stream
                tally = await running
        return tally, status, bus

    tally, status, bus = run(scenario)
    assert status["inbox"]["records"] == 2 and status["consumer"]["outcomes"]["new"] == 2
    assert status["webhook"]["sent"] == 2
    assert [records.parse(body).id for body in hooked[:2]] == [notice.id, cn_document().id]
    again = open_state(state_path(tmp_path, node.id))
    assert {notice.id, cn_document().id} <= {i.record_id for i in inbox.latest(again, 500)}
    assert outbox.counts(again).sent == 1
    # Stopped mid-stream: every push is either in the inbox (and acked) or back in the queue.
    kept = inbox.counts(again).records - 2
    left = len(bus.broker.queues[down_queue("shexian")])
    assert 20 <= kept < 300 and kept + left == 300
    assert tally.outcomes["new"] == kept + 2 and tally.outcomes["unchanged"] == 0
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handlers are gone


def test_a_busy_port_stops_the_node_at_once_with_a_clear_error(tmp_path: Path) -> None:
    async def scenario() -> MemoryBus:
        bus = MemoryBus()
        await declare_all(bus)
        blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = blocker.sockets[0].getsockname()[1]
        node_bus = bus.as_user("cn")  # the root: no down queue, no consumer
        try:
            with pytest.raises(ServeError, match=f"cannot listen on 127.0.0.1:{port}"):
                await run_node(
                    FEDERATION.node("cn"),
                    FEDERATION,
                    settings_for(tmp_path),
                    node_bus,
                    port=port,
                    stop=asyncio.Event(),
                )
        finally:
            blocker.close()
        return node_bus

    node_bus = run(scenario)
    with pytest.raises(PublishError, match="the bus is closed"):  # run_node closed it
        run(lambda: node_bus.publish(publish_up(cn_document())))


async def _get_json(url: str) -> Any:
    return await asyncio.to_thread(lambda: json.load(urllib.request.urlopen(url, timeout=5)))


# -- The command ------------------------------------------------------------------------------


def run_command(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(prog="govhub")
    node_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.handler(args, settings))


def test_govhub_node_run_says_what_it_needs(tmp_path: Path) -> None:
    settings = Settings.from_env({}, config=ROOT / "nodes.toml", data_dir=tmp_path)
    with pytest.raises(UsageError, match="needs a broker: set GOVHUB_BROKER_URL"):
        run_command(["node", "run", "--node", "shexian"], settings)
    with pytest.raises(UsageError, match="--port must be from 0 to 65535"):
        run_command(["node", "run", "--node", "shexian", "--port", "70000"], settings)
    with pytest.raises(UsageError, match="--webhook must be an http"):
        run_command(["node", "run", "--node", "shexian", "--webhook", "ftp://cms/"], settings)
    with pytest.raises(ConfigInvalid, match="did you mean shexian"):
        run_command(["node", "run", "--node", "shexia"], settings)
    with_broker = dataclasses.replace(settings, broker_url="amqp://127.0.0.1:5672/govhub")
    with pytest.raises(ConfigInvalid, match="GOVHUB_NODE_SHEXIAN_PASSWORD is not set"):
        run_command(["node", "run", "--node", "shexian"], with_broker)


# -- On RabbitMQ, with the users and rights that setup_broker makes ---------------------------


@dataclasses.dataclass
class Broker:
    vhost: str
    prefix: str
    environ: dict[str, str]

    def url(self, node_id: str) -> str:
        variable = FEDERATION.node(node_id).credentials["broker_password"]
        return url_for(self.vhost, self.prefix + node_id, self.environ[variable])

    async def bus(self, node_id: str) -> AmqpBus:
        return await AmqpBus.connect(self.url(node_id), publish_timeout=5, drain_timeout=2)


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    require_service("RabbitMQ", HOST, PORT)
    rabbitmqctl("ping")  # skips (or fails in CI) without rabbitmqctl
    run_id = uuid.uuid4().hex[:8]
    vhost, prefix = f"govhub-node-{run_id}", f"n{run_id}-"
    environ = {
        variable: f"pw-{uuid.uuid4().hex}"
        for node in FEDERATION.nodes.values()
        for variable in node.credentials.values()
    }
    try:
        setup_broker(FEDERATION, vhost, RabbitmqctlAdmin(), environ, user_prefix=prefix)
        yield Broker(vhost, prefix, environ)
    finally:
        if vhost in rabbitmqctl("list_vhosts", "--no-table-headers").split():
            rabbitmqctl("delete_vhost", vhost)
        delete_users(prefix)


def test_on_rabbitmq_a_county_takes_pushes_and_subscriptions_and_dead_letters_the_rest(
    broker: Broker, tmp_path: Path
) -> None:
    node = FEDERATION.node("shexian")
    notice, document, news = he_notice(11), cn_document(), cn_news()
    wrong = he_notice(12)  # he's record, pushed by hd

    async def scenario() -> tuple[dict[str, Any], list[str], list[int]]:
        he, cn, hd = [await broker.bus(n) for n in ("he", "cn", "hd")]
        refused = []
        as_he = push(notice, "cn.he")  # hd pushes under he's key
        forged = push(notice, "cn.he.hd", user_id=broker.prefix + "he")  # or as he's user
        for message in (as_he, forged):
            with pytest.raises(PublishRefused) as caught:
                await hd.publish(message)
            refused.append(caught.value.reply_code)
        stop, urls = asyncio.Event(), []
        running = asyncio.create_task(
            run_node(
                node,
                FEDERATION,
                settings_for(tmp_path),
                await broker.bus("shexian"),
                port=0,
                stop=stop,
                user_prefix=broker.prefix,
                on_ready=urls.append,
            )
        )
        await he.publish(push(notice))
        await cn.publish(publish_up(document))
        await cn.publish(publish_up(news))
        await hd.publish(push(wrong, "cn.he.hd"))
        await until(lambda: bool(urls))
        status: dict[str, Any] = {}

        async def settled() -> bool:
            status.update(await _get_json(urls[0] + "/status"))
            consumer = status["consumer"]
            return bool(consumer["outcomes"]["new"] == 2 and consumer["rejected"] == 1)

        async with asyncio.timeout(20):
            while not await settled():
                await asyncio.sleep(0.1)
        stop.set()
        await running
        reasons = []
        reader = await broker.bus("shexian")
        async with reader.consume(dead_queue(down_queue("shexian")), prefetch=10) as dead:
            delivery = await asyncio.wait_for(anext(dead), 10)
            reasons.append(str(delivery.message.headers[REASON]))
            await delivery.ack()
        for bus in (he, cn, hd, reader):
            await bus.close()
        return status, reasons, refused

    status, reasons, refused = run(scenario)
    assert refused == [403, 406]  # hd may not push as he, nor forge he's user
    assert status["inbox"]["by_kind"] == {"document": 1, "notice": 1}
    state = open_state(state_path(tmp_path, "shexian"))
    assert ids(state) == sorted([notice.id, document.id])
    assert news.id not in ids(state)
    assert reasons == [f"wrong origin: {reasons[0].split(': ', 1)[1]}"]
    assert "record of node 'he' sent by node 'hd'" in reasons[0]


CLI = (
    "import argparse, sys\n"
    "from hub.cli import node\n"
    "from hub.settings import Settings\n"
    "parser = argparse.ArgumentParser(prog='govhub')\n"
    "node.add_parser(parser.add_subparsers())\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.handler(args, Settings.from_env()))\n"
)


def test_govhub_node_run_serves_the_inbox_and_stops_cleanly_on_sigterm(
    broker: Broker, tmp_path: Path
) -> None:
    notice = he_notice(21)
    environ = {
        **os.environ,
        **broker.environ,
        "GOVHUB_BROKER_URL": url_for(broker.vhost, "guest", "not-used"),
        "GOVHUB_CONFIG": str(ROOT / "nodes.toml"),
        "GOVHUB_DATA_DIR": str(tmp_path),
    }
    command = [sys.executable, "-c", CLI, "node", "run", "--node", "hanshan", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--user-prefix", broker.prefix],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        while not lines or not lines[-1].startswith("stop with"):
            line = process.stdout.readline()  # type: ignore[union-attr]
            assert line, f"govhub node run ended early: {process.communicate(timeout=10)}"
            lines.append(line.strip())
        feeds = next(line for line in lines if line.startswith("feeds"))
        base = feeds.split()[1].removesuffix("/inbox.atom")
        assert str(state_path(tmp_path, "hanshan")) in "\n".join(lines)

        async def push_and_read() -> Any:
            he = await broker.bus("he")
            await he.publish(push(notice))
            await he.close()
            async with asyncio.timeout(20):
                while True:
                    listed = await _get_json(base + "/inbox.json")
                    if notice.id in [r["id"] for r in listed["records"]]:
                        return listed
                    await asyncio.sleep(0.1)

        listed = run(push_and_read)
        assert listed["node"] == "hanshan"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "node hanshan stopped" in out
