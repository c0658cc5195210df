"""Node → bus → hub → PostgreSQL: relay and ingest on the in-process bus and a real
database (the AMQP bus runs the same contract in tests/test_bus.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from pathlib import Path

import pytest

from hub import records
from hub.bus import MemoryBus, Message, up_key
from hub.bus.topology import node_queues, up_queue
from hub.federation import load_federation
from hub.ingest.consume import Checker, Tally, consume_forever
from hub.nodedb import open_state
from hub.outbox import entries as outbox
from hub.outbox.pipeline import Outcome, Pipeline
from hub.outbox.relay import relay_once
from hub.review import Reviewer, ReviewPolicy
from hub.store import connect, list_dead_letters, list_records, record_xml
from hub.store.connection import Connection

ROOT = Path(__file__).parent.parent
FEDERATION = load_federation(ROOT / "nodes.toml")
EXAMPLES = {p.stem: p.read_bytes() for p in (ROOT / "examples" / "records").glob("*.xml")}


async def hub_round(bus: MemoryBus, pg_url: str, publish: list[tuple[str, Message]]) -> Tally:
    """Declare the root hub's queue, publish as the given users, consume until idle."""
    for spec in node_queues(FEDERATION, "cn"):
        await bus.declare_queue(spec.name, spec.bindings)
    for user, message in publish:
        await bus.as_user(user).publish(message)
    stop = asyncio.Event()
    checker = Checker(FEDERATION, "cn")
    async with bus.as_user("cn").consume(up_queue("cn"), prefetch=50) as consumer:
        task = asyncio.create_task(
            consume_forever(consumer, checker, lambda: connect(pg_url), stop, batch=20)
        )
        await asyncio.sleep(0.8)
        stop.set()
        return await task


def message(node_id: str, data: bytes, kind: str | None = None) -> Message:
    record_kind = kind or records.parse(data).kind
    return Message("up", up_key(FEDERATION.node(node_id).path, record_kind), data)


def test_good_records_are_stored_once_and_redeliveries_change_nothing(
    pg_conn: Connection, pg_url: str
) -> None:
    mine = [(records.parse(data).node, data) for data in EXAMPLES.values()]
    publish = [(node, message(node, data)) for node, data in mine]
    tally = asyncio.run(hub_round(MemoryBus(), pg_url, publish + publish[:3]))
    assert tally.dead == 0
    assert tally.outcomes == {"inserted": len(mine), "unchanged": 3}
    stored = list_records(pg_conn, limit=1000)
    assert sorted(r.id for r in stored) == sorted(records.parse(d).id for _, d in mine)
    sample = records.parse(EXAMPLES["service"])
    assert records.parse((record_xml(pg_conn, sample.id) or "").encode()) == sample


def test_every_kind_of_bad_message_is_dead_lettered_with_its_reason(
    pg_conn: Connection, pg_url: str
) -> None:
    notice = EXAMPLES["notice"]  # node shexian
    spoofed_user = ("hd", message("shexian", notice))  # hd publishes under shexian's key
    wrong_origin = ("sz", message("sz", notice))  # shexian's record under sz's key
    broken = (
        "shexian",
        message("shexian", notice.replace(b"<revision>", b"<revision>x"), "notice"),
    )
    not_xml = ("shexian", message("shexian", b"\x89PNG", "notice"))
    wrong_kind = ("shexian", message("shexian", notice, "news"))
    tally = asyncio.run(
        hub_round(MemoryBus(), pg_url, [spoofed_user, wrong_origin, broken, not_xml, wrong_kind])
    )
    assert tally.dead == 5 and tally.outcomes == {}
    assert list_records(pg_conn) == []
    reasons = [d.reason for d in list_dead_letters(pg_conn)]
    assert reasons[0] == "published by broker user 'hd', not by 'shexian' of node 'shexian'"
    assert reasons[1:] == [
        "spoofed or wrong origin",
        "invalid record",
        "invalid record",
        "spoofed or wrong origin",
    ]
    dead = list_dead_letters(pg_conn)
    assert "record of node 'shexian' arrived under node 'sz'" in dead[1].problems[0]
    assert (
        dead[2].body.startswith(b"<?xml") and dead[2].routing_key == "up.cn.he.hd.shexian._.notice"
    )
    assert "record kind 'notice' arrived under kind 'news'" in dead[4].problems[0]


def test_node_pipeline_relays_its_outbox_to_the_hub(
    pg_conn: Connection, pg_url: str, tmp_path: Path
) -> None:
    bus = MemoryBus()
    state: sqlite3.Connection = open_state(tmp_path / "shexian.sqlite3")
    pipeline = Pipeline(FEDERATION.node("shexian"), state, Reviewer(ReviewPolicy()))
    notice = records.parse(EXAMPLES["notice"])
    assert pipeline.accept(EXAMPLES["notice"], "notice.xml").outcome is Outcome.QUEUED
    newer = dataclasses.replace(
        notice, revision=notice.revision + 1, title=notice.title + "（修订）"
    )
    assert pipeline.accept(newer.to_xml(), "notice-2.xml").outcome is Outcome.QUEUED

    async def scenario() -> Tally:
        for spec in node_queues(FEDERATION, "cn"):
            await bus.declare_queue(spec.name, spec.bindings)
        assert await relay_once(state, bus.as_user("shexian")) == 2
        return await hub_round(bus, pg_url, [])

    tally = asyncio.run(scenario())
    assert tally.outcomes == {"inserted": 1, "updated": 1}
    assert outbox.counts(state).pending == 0
    [row] = list_records(pg_conn, scope_path="cn.he")
    assert (row.id, row.revision, row.title) == (newer.id, newer.revision, newer.title)


def test_relay_keeps_entries_when_the_bus_refuses(tmp_path: Path) -> None:
    bus = MemoryBus()
    state = open_state(tmp_path / "shexian.sqlite3")
    pipeline = Pipeline(FEDERATION.node("shexian"), state, Reviewer(ReviewPolicy()))
    pipeline.accept(EXAMPLES["notice"], "notice.xml")

    async def scenario() -> int:
        closed = bus.as_user("shexian")
        await closed.close()
        return await relay_once(state, closed)

    assert asyncio.run(scenario()) == 0
    counts = outbox.counts(state)
    assert (counts.pending, counts.failing) == (1, 1)
    assert counts.last_error is not None and "closed" in counts.last_error


@pytest.mark.parametrize("scope", ["gd", "he"])
def test_a_provincial_hub_takes_only_its_subtree(
    pg_conn: Connection, pg_url: str, scope: str
) -> None:
    async def scenario() -> Tally:
        bus = MemoryBus()
        for spec in (*node_queues(FEDERATION, "cn"), *node_queues(FEDERATION, scope)):
            await bus.declare_queue(spec.name, spec.bindings)  # every record has a route
        for data in EXAMPLES.values():
            record = records.parse(data)
            await bus.as_user(record.node).publish(message(record.node, data))
        stop = asyncio.Event()
        async with bus.as_user(scope).consume(up_queue(scope), prefetch=20) as consumer:
            task = asyncio.create_task(
                consume_forever(consumer, Checker(FEDERATION, scope), lambda: connect(pg_url), stop)
            )
            await asyncio.sleep(0.8)
            stop.set()
            return await task

    tally = asyncio.run(scenario())
    expected = {
        records.parse(d).id
        for d in EXAMPLES.values()
        if FEDERATION.is_in_subtree(records.parse(d).node, scope)
    }
    assert tally.dead == 0 and sum(tally.outcomes.values()) == len(expected)
    assert {r.id for r in list_records(pg_conn, limit=100)} == expected


def batch_of(*documents: bytes) -> bytes:
    """A ``<records>`` message body, as the relay writes it."""
    inner = b"".join(d[d.index(b"?>") + 2 :] if d.startswith(b"<?xml") else d for d in documents)
    return b'<records xmlns="urn:govhub:record:1">' + inner + b"</records>"


def test_a_batch_message_accepts_and_refuses_each_record_on_its_own(
    pg_conn: Connection, pg_url: str
) -> None:
    notice = records.parse(EXAMPLES["notice"])  # node shexian
    good = [
        dataclasses.replace(notice, id=f"{notice.id}-{n}", title=f"{notice.title} {n}").to_xml()
        for n in range(3)
    ]
    broken = good[1].replace(b"<revision>", b"<revision>x")
    foreign = next(d for d in EXAMPLES.values() if records.parse(d).node != "shexian")
    body = batch_of(good[0], broken, good[2], foreign)
    key = up_key(FEDERATION.node("shexian").path, "notice")
    tally = asyncio.run(hub_round(MemoryBus(), pg_url, [("shexian", Message("up", key, body))]))
    assert tally.outcomes == {"inserted": 2} and tally.dead == 2
    stored = sorted(r.id for r in list_records(pg_conn))
    assert stored == sorted([f"{notice.id}-0", f"{notice.id}-2"])
    dead = list_dead_letters(pg_conn)
    assert [(d.reason, d.headers["x-govhub-part"]) for d in dead] == [
        ("invalid record", "2 of 4"),
        ("spoofed or wrong origin", "4 of 4"),
    ]
    assert "record[2]" in dead[0].problems[0] and "revision" in dead[0].problems[0]
    # each dead letter holds its record alone: a standalone document, retried by itself
    assert records.problems(dead[0].body) and records.parse(dead[1].body).node != "shexian"


def test_relay_sends_runs_of_one_routing_key_as_batches(tmp_path: Path) -> None:
    bus = MemoryBus()
    state = open_state(tmp_path / "shexian.sqlite3")
    pipeline = Pipeline(FEDERATION.node("shexian"), state, Reviewer(ReviewPolicy()))
    notice = records.parse(EXAMPLES["notice"])
    for n in range(7):
        copy = dataclasses.replace(notice, id=f"{notice.id}-{n}", title=f"{notice.title} {n}")
        assert pipeline.accept(copy.to_xml(), f"n{n}.xml").outcome is Outcome.QUEUED

    async def scenario() -> list[Message]:
        for spec in node_queues(FEDERATION, "cn"):
            await bus.declare_queue(spec.name, spec.bindings)
        assert await relay_once(state, bus.as_user("shexian"), per_message=3) == 7
        got = []
        async with bus.as_user("cn").consume(up_queue("cn"), prefetch=10) as consumer:
            async for delivery in consumer:
                got.append(delivery.message)
                await delivery.ack()
                if len(got) == 3:
                    break
        return got

    sent = asyncio.run(scenario())
    assert [m.headers.get("x-govhub-records") for m in sent] == [3, 3, None]
    ids = [r.id for m in sent for r in records.parse_batch(m.body)]
    assert ids == [f"{notice.id}-{n}" for n in range(7)]
    assert outbox.counts(state).pending == 0
