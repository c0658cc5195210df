"""Faults on the real RabbitMQ and PostgreSQL: nothing acknowledged is ever lost.

One broker set-up for the module (the sample federation plus a node the hub's map
does not know yet, per-node users under a prefix unique to this run, in a vhost of
its own), one database schema; each test empties the root's queue first.

- the broker restarted (``rabbitmqctl stop_app`` / ``start_app``) while a node's
  relay publishes 10,000 records from its outbox;
- the hub's process SIGKILLed mid-batch, then another started;
- PostgreSQL unreachable (a TCP proxy in front of it, cut and restored);
- a node restarted with records still in its outbox (some already published);
- bad messages from real node users: each dead-lettered with its reason;
- a province's push reaching its subtree and nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import aio_pika
import pytest
import support.postgres as postgres_fixtures
from psycopg.conninfo import conninfo_to_dict
from support.proxies import TcpProxy
from support.rabbitmq import HOST, PORT, delete_users, rabbitmqctl, url_for
from support.samples import news
from support.services import reachable, require_service

from hub import records
from hub.bus import AmqpBus, Message, PublishRefused, RabbitmqctlAdmin, down_key, setup_broker
from hub.bus.topology import down_queue, up_queue
from hub.cli.deadletters import retry_dead_letter
from hub.federation import Federation, load_federation, parse_federation
from hub.ingest.consume import Checker
from hub.ingest.runner import HubOptions, HubReport, run_hub
from hub.nodedb import open_state, transaction
from hub.outbox import entries as outbox
from hub.outbox.pipeline import Outcome, Pipeline
from hub.outbox.relay import message_for, relay_forever
from hub.review import Reviewer, ReviewPolicy
from hub.store import connect, count_records, list_dead_letters, list_records
from hub.store.connection import Connection

pg_url = postgres_fixtures.pg_url
pg_conn = postgres_fixtures.pg_conn

ROOT = Path(__file__).parent.parent
MAP_TEXT = (ROOT / "nodes.toml").read_text(encoding="utf-8")
FEDERATION = load_federation(ROOT / "nodes.toml")  # the hub's map
MOF = """
[[node]]
id = "mof"
name = "财政部"
level = "department"
parent = "cn"
site_code = "bm14000001"
domain = "www.mof.gov.cn"
credentials = { broker_password = { env = "GOVHUB_NODE_MOF_PASSWORD" } }
"""
BROKER_MAP = parse_federation(MAP_TEXT + MOF, "nodes.toml + mof")  # the broker's map: one more
EXAMPLES = ROOT / "examples" / "records"
ROOT_QUEUE = up_queue("cn")
T = TypeVar("T")


def news_message(index: int, revision: int = 1, node: str = "mee") -> Message:
    key = f"up.{BROKER_MAP.node(node).path}._.news"
    body = news(index, revision, node, BROKER_MAP.node(node).site_code)
    return Message("up", key, body, message_id=f"{node}-{index}@{revision}")


def news_ids(count: int) -> set[str]:
    return {f"urn:govhub:mee:n-{index}" for index in range(count)}


# -- the broker, set up once ---------------------------------------------------------------


@dataclass
class Broker:
    vhost: str
    prefix: str
    environ: dict[str, str]

    def url(self, node_id: str) -> str:
        variable = BROKER_MAP.node(node_id).credentials["broker_password"]
        return url_for(self.vhost, f"{self.prefix}{node_id}", self.environ[variable])

    async def bus(
        self,
        node_id: str,
        *,
        publish_timeout: float = 5.0,
        reconnect_interval: float = 5.0,
        drain_timeout: float = 10.0,
    ) -> AmqpBus:
        return await AmqpBus.connect(
            self.url(node_id),
            publish_timeout=publish_timeout,
            reconnect_interval=reconnect_interval,
            drain_timeout=drain_timeout,
        )

    async def ready(self, queue: str) -> int:
        """Messages ready in ``queue`` now (list_queues lags: quorum queues report every 5 s)."""
        connection = await aio_pika.connect(url_for(self.vhost, "guest", "guest"))
        async with connection:
            channel = await connection.channel()
            declared = await channel.declare_queue(queue, passive=True)
            return int(declared.declaration_result.message_count or 0)

    async def purge(self, queue: str) -> None:
        connection = await aio_pika.connect(url_for(self.vhost, "guest", "guest"))
        async with connection:
            channel = await connection.channel()
            declared = await channel.declare_queue(queue, passive=True)
            await declared.purge()


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    require_service("RabbitMQ", HOST, PORT)
    rabbitmqctl("ping")  # fails in CI (skips elsewhere) without rabbitmqctl
    run = uuid.uuid4().hex[:8]
    vhost, prefix = f"govhub-faults-{run}", f"f{run}-"
    environ = {
        variable: f"pw-{uuid.uuid4().hex}"
        for node in BROKER_MAP.nodes.values()
        for variable in node.credentials.values()
    }
    try:
        setup_broker(BROKER_MAP, vhost, RabbitmqctlAdmin(), environ, user_prefix=prefix)
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")  # to purge
        yield Broker(vhost, prefix, environ)
    finally:
        ensure_broker_running()
        if vhost in rabbitmqctl("list_vhosts", "--no-table-headers").split():
            rabbitmqctl("delete_vhost", vhost)
        delete_users_at_once(prefix)


@pytest.fixture
def fresh(broker: Broker, pg_conn: Connection) -> Broker:
    """The broker with the root's queue empty, and the store empty (pg_conn)."""
    asyncio.run(broker.purge(ROOT_QUEUE))
    return broker


def delete_users_at_once(prefix: str) -> None:
    """Delete the users named ``prefix…`` in one rabbitmqctl call (one Erlang VM, not one
    per user: ``delete_users`` takes ~15 s for the sample map on two cores)."""
    assert prefix.replace("-", "").isalnum()
    rabbitmqctl(
        "eval",
        f'Prefix = <<"{prefix}">>, '
        "Names = [proplists:get_value(user, U) || U <- rabbit_auth_backend_internal:list_users()], "
        "Mine = [N || N <- Names, binary:longest_common_prefix([N, Prefix]) =:= size(Prefix)], "
        '[rabbit_auth_backend_internal:delete_user(N, <<"govhub-tests">>) || N <- Mine], ok.',
    )
    left = [
        u for u in rabbitmqctl("list_users", "--no-table-headers").split() if u.startswith(prefix)
    ]
    if left:
        delete_users(prefix)


def ensure_broker_running() -> None:
    """Start the broker's app if a test left it stopped; wait until it takes connections."""
    if rabbitmqctl("eval", "rabbit:is_running().").strip() != "true":
        rabbitmqctl("start_app")
        wait_for_broker()


def wait_for_broker(timeout: float = 60.0) -> None:
    rabbitmqctl("await_startup")
    deadline = time.monotonic() + timeout
    while not reachable(HOST, PORT):
        assert time.monotonic() < deadline, "RabbitMQ did not take connections again"
        time.sleep(0.2)


@asynccontextmanager
async def broker_stopped() -> AsyncIterator[None]:
    """``rabbitmqctl stop_app`` for the duration; always started again, and waited for.

    rabbitmqctl runs in a thread: the clients in this event loop live through the outage.
    """
    await asyncio.to_thread(rabbitmqctl, "stop_app")
    try:
        yield
    finally:
        await asyncio.to_thread(rabbitmqctl, "start_app")
        await asyncio.to_thread(wait_for_broker)


# -- the hub, in this process ----------------------------------------------------------------


@dataclass
class RunningHub:
    task: asyncio.Task[HubReport]
    stop: asyncio.Event
    report: HubReport

    async def finish(self) -> HubReport:
        self.stop.set()
        return await asyncio.wait_for(self.task, 30)


def start_hub(
    broker: Broker,
    database: str,
    *,
    consumers: int = 2,
    prefetch: int = 200,
    batch: int = 100,
    federation: Federation = FEDERATION,
) -> RunningHub:
    """The root's hub as `govhub hub run` runs it, as the root's broker user."""

    async def connect_bus() -> AmqpBus:
        return await broker.bus("cn", reconnect_interval=0.3, drain_timeout=5)

    options = HubOptions(ROOT_QUEUE, consumers=consumers, prefetch=prefetch, batch=batch)
    checker = Checker(federation, "cn", broker.prefix)
    report = HubReport.empty(consumers)
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_hub(connect_bus, checker, lambda: connect(database, timeout=2), stop, options, report)
    )
    return RunningHub(task, stop, report)


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.1)


def run(scenario: Callable[[], Awaitable[T]], timeout: float = 90) -> T:
    async def main() -> T:
        async with asyncio.timeout(timeout):
            return await scenario()

    return asyncio.run(main())


# -- the faults ------------------------------------------------------------------------------


def test_a_broker_restart_mid_stream_loses_nothing(
    fresh: Broker, pg_conn: Connection, pg_url: str, tmp_path: Path
) -> None:
    total = 10_000
    state = open_state(tmp_path / "mee.sqlite3")
    node = FEDERATION.node("mee")
    with transaction(state):  # as Pipeline.accept leaves them (without the review's cost)
        for index in range(total):
            body = news(index)
            outbox.enqueue(
                state,
                record_id=f"urn:govhub:mee:n-{index}",
                revision=1,
                content_hash=hashlib.sha256(body).hexdigest(),
                kind="news",
                topic=None,
                routing_key=f"up.{node.path}._.news",
                body=body,
            )
    sent_before_the_outage = 0

    async def scenario() -> None:
        nonlocal sent_before_the_outage
        relay_bus = await fresh.bus("mee", reconnect_interval=0.3, publish_timeout=10)
        relay_stop, wake = asyncio.Event(), asyncio.Event()
        relay = asyncio.create_task(
            relay_forever(state, relay_bus, relay_stop, wake, batch=500, idle=0.2)
        )
        hub = start_hub(fresh, pg_url)
        try:
            await until(lambda: outbox.counts(state).sent >= 2_000, 30, "the relay to start")
            sent_before_the_outage = outbox.counts(state).sent
            async with broker_stopped():
                await asyncio.sleep(1.0)  # publishing and consuming fail meanwhile
            await until(lambda: outbox.counts(state).pending == 0, 90, "the outbox to empty")
            await until(lambda: count_records(pg_conn) == total, 90, "every record stored")
        finally:
            relay_stop.set()
            await relay
            await relay_bus.close()
            report = await hub.finish()
        assert report.dead == 0
        assert report.count("inserted") == total, "each record inserted once, redeliveries aside"

    run(scenario, timeout=240)
    assert sent_before_the_outage < total, "the broker went down mid-stream"
    assert count_records(pg_conn) == total
    assert {row.id for row in list_records(pg_conn, limit=total + 1)} == news_ids(total)
    assert outbox.counts(state).pending == 0


HUB_COMMAND = """
import argparse, sys
from hub.cli import hub
from hub.settings import Settings
parser = argparse.ArgumentParser(prog="govhub")
hub.add_parser(parser.add_subparsers())
args = parser.parse_args()
sys.exit(args.handler(args, Settings.from_env(config=args.config)))
"""


def hub_process(broker: Broker, database: str) -> subprocess.Popen[str]:
    """`govhub hub run` for the root, in a process of its own."""
    env = os.environ | {
        "GOVHUB_DATABASE_URL": database,
        "GOVHUB_BROKER_URL": f"amqp://{HOST}:{PORT}/{quote(broker.vhost, safe='')}",
        "GOVHUB_CONFIG": str(ROOT / "nodes.toml"),
        "GOVHUB_NODE_CN_PASSWORD": broker.environ["GOVHUB_NODE_CN_PASSWORD"],
    }
    flags = [
        "--port",
        "0",
        "--consumers",
        "2",
        "--prefetch",
        "100",
        "--batch",
        "50",
        "--drain-timeout",
        "5",
    ]
    return subprocess.Popen(
        [sys.executable, "-c", HUB_COMMAND, "hub", "run", "--user-prefix", broker.prefix, *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_hub_killed_mid_batch_leaves_no_duplicates(
    fresh: Broker, pg_conn: Connection, pg_url: str
) -> None:
    count = 1_500  # records, each sent as revisions 2, 3 and 1 (in that order): 4,500 messages

    async def publish() -> None:
        bus = await fresh.bus("mee")
        try:
            await bus.publish_many(
                [news_message(i, revision) for revision in (2, 3, 1) for i in range(count)]
            )
        finally:
            await bus.close()

    asyncio.run(publish())
    first = hub_process(fresh, pg_url)
    try:
        deadline = time.monotonic() + 60
        while count_records(pg_conn) < 400:
            assert first.poll() is None, first.communicate()[0]
            assert time.monotonic() < deadline, "the first hub stored nothing"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)  # in the middle of its work: batches in hand
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    left = asyncio.run(fresh.ready(ROOT_QUEUE))
    assert left > 0, "killed with work left: its unacked deliveries went back to the queue"

    second = hub_process(fresh, pg_url)
    try:
        deadline = time.monotonic() + 60
        while _highest(pg_conn) < count or asyncio.run(fresh.ready(ROOT_QUEUE)) > 0:
            assert second.poll() is None, second.communicate()[0]
            assert time.monotonic() < deadline, "the second hub did not finish"
            time.sleep(0.2)
        second.send_signal(signal.SIGTERM)
        output = second.communicate(timeout=20)[0]
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 0, output
    assert "hub cn: " in output and "stopped" in output  # the final counts, logged and printed

    assert count_records(pg_conn) == count
    rows = list_records(pg_conn, limit=count + 1)
    assert {row.id for row in rows} == news_ids(count)
    assert {row.revision for row in rows} == {3}
    assert all("第3版" in row.title for row in rows)
    assert list_dead_letters(pg_conn) == []


def _highest(conn: Connection) -> int:
    row = conn.execute("SELECT count(*) FROM records WHERE revision = 3").fetchone()
    return int(row[0]) if row else 0


def test_the_hub_stops_acking_while_the_database_is_away_and_resumes(
    fresh: Broker, pg_conn: Connection, pg_url: str
) -> None:
    params = conninfo_to_dict(pg_url)
    host, port = str(params.get("host") or "127.0.0.1"), int(str(params.get("port") or 5432))
    held: list[tuple[int, int]] = []

    async def scenario() -> None:
        proxy = TcpProxy(host, port)
        await proxy.start()
        through_proxy = pg_url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")
        assert through_proxy != pg_url
        node = await fresh.bus("mee")
        hub = start_hub(fresh, through_proxy, prefetch=100, batch=50)
        try:
            await node.publish_many([news_message(i) for i in range(500)])
            await until(lambda: count_records(pg_conn) == 500, 30, "the first 500 stored")
            await proxy.cut()
            await node.publish_many([news_message(i) for i in range(500, 1000)])
            await until(lambda: hub.report.waits_for_database >= 2, 20, "the hub to notice")
            async with await aio_pika.connect(url_for(fresh.vhost, "guest", "guest")) as guest:
                channel = await guest.channel()
                for _ in range(150):  # until the deliveries on their way to the hub arrived
                    queue = await channel.declare_queue(ROOT_QUEUE, passive=True)
                    ready = queue.declaration_result.message_count or 0
                    held.append((ready, hub.report.unacked))
                    if sum(held[-1]) == 500:
                        break
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            assert count_records(pg_conn) == 500  # (pg_conn does not go through the proxy)
            await proxy.start()  # the database is back: the hub resumes by itself
            await until(lambda: count_records(pg_conn) == 1000, 30, "the rest stored")
        finally:
            await node.close()
            report = await hub.finish()
        assert report.count("inserted") == 1000 and report.dead == 0, report.summary()

    run(scenario, timeout=150)
    ready, unacked = held[-1]
    assert ready + unacked == 500, f"nothing acked while the database was away: {held}"
    assert unacked > 0, "the hub held deliveries, unacked"
    assert {row.id for row in list_records(pg_conn, limit=2000)} == news_ids(1000)
    assert asyncio.run(fresh.ready(ROOT_QUEUE)) == 0


def test_a_restarted_node_sends_what_its_outbox_still_holds(
    fresh: Broker, pg_conn: Connection, pg_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "mee.sqlite3"
    state = open_state(path)
    pipeline = Pipeline(FEDERATION.node("mee"), state, Reviewer(ReviewPolicy()))
    for index in range(30):
        assert pipeline.accept(news(index), f"n-{index}.xml").outcome is Outcome.QUEUED

    async def crash_after_publishing_ten() -> None:
        bus = await fresh.bus("mee")
        try:  # published and confirmed, but the node dies before marking them sent
            await bus.publish_many([message_for(e) for e in outbox.due(state, 10)])
        finally:
            await bus.close()

    asyncio.run(crash_after_publishing_ten())
    state.close()

    state = open_state(path)  # the node starts again
    assert outbox.counts(state).pending == 30

    async def scenario() -> None:
        bus = await fresh.bus("mee")
        stop, wake = asyncio.Event(), asyncio.Event()
        relay = asyncio.create_task(relay_forever(state, bus, stop, wake, idle=0.2))
        hub = start_hub(fresh, pg_url)
        try:
            await until(lambda: outbox.counts(state).pending == 0, 30, "the outbox to empty")
            await until(lambda: hub.report.stored == 40, 30, "30 records and 10 duplicates")
        finally:
            stop.set()
            await relay
            await bus.close()
            report = await hub.finish()
        assert (report.count("inserted"), report.count("unchanged")) == (30, 10)

    run(scenario)
    assert {row.id for row in list_records(pg_conn)} == news_ids(30)


def test_bad_messages_from_real_node_users_are_dead_lettered_with_reasons(
    fresh: Broker, pg_conn: Connection, pg_url: str
) -> None:
    notice = (EXAMPLES / "notice.xml").read_bytes()  # a record of shexian

    async def scenario() -> None:
        buses = {n: await fresh.bus(n) for n in ("shexian", "mee", "gz", "mof")}
        try:
            await buses["shexian"].publish(
                Message("up", "up.cn.he.hd.shexian._.notice", b"<record><id>oops", message_id="x")
            )
            broken = news(1).replace(b"<revision>1", b"<revision>x")
            await buses["mee"].publish(Message("up", "up.cn.mee._.news", broken, message_id="s"))
            await buses["gz"].publish(Message("up", "up.cn.gd.gz._.notice", notice, message_id="o"))
            await buses["mof"].publish(news_message(7, node="mof"))  # not in the hub's map
            # The broker itself refuses a forged publisher or another node's key.
            with pytest.raises(PublishRefused) as forged:
                await buses["mee"].publish(_as(news_message(2), "ndrc"))
            assert forged.value.reply_code == 406
            with pytest.raises(PublishRefused) as foreign:
                await buses["mee"].publish(Message("up", "up.cn.ndrc._.news", news(3)))
            assert foreign.value.reply_code == 403
        finally:
            for bus in buses.values():
                await bus.close()
        hub = start_hub(fresh, pg_url)
        try:
            await until(lambda: len(list_dead_letters(pg_conn)) == 4, 30, "four dead letters")
        finally:
            await hub.finish()

    run(scenario)
    assert count_records(pg_conn) == 0
    dead = {d.headers["message_id"]: d for d in list_dead_letters(pg_conn)}
    assert dead["x"].reason == "invalid record" and dead["x"].body == b"<record><id>oops"
    assert dead["s"].reason == "invalid record" and "revision" in " ".join(dead["s"].problems)
    assert dead["o"].reason == "spoofed or wrong origin"
    assert "record of node 'shexian' arrived under node 'gz'" in dead["o"].problems[0]
    unknown = dead["mof-7@1"]
    assert unknown.reason.startswith("unknown route") and unknown.headers["user_id"] == (
        f"{fresh.prefix}mof"
    )
    assert {d.source for d in dead.values()} == {"hub:cn"}

    # The map is fixed (mof added): the same message now passes the same checks.
    fixed = Checker(BROKER_MAP, "cn", fresh.prefix)
    retried = retry_dead_letter(pg_conn, fixed, unknown)
    assert retried.resolved, str(retried)
    assert [row.id for row in list_records(pg_conn)] == ["urn:govhub:mof:n-7"]
    assert retry_dead_letter(pg_conn, fixed, dead["o"]).verdict.reason == "spoofed or wrong origin"


def _as(message: Message, node_id: str) -> Message:
    return Message(
        message.exchange,
        message.routing_key,
        message.body,
        message_id=message.message_id,
        user_id=node_id,
    )


def test_a_province_push_reaches_its_subtree_and_nothing_else(fresh: Broker) -> None:
    notice = records.parse((EXAMPLES / "notice.xml").read_bytes())
    pushed = f"push-{uuid.uuid4().hex[:8]}"

    async def received(node_id: str) -> set[str]:
        """Every message id in the node's down queue, read as the node's own user."""
        bus = await fresh.bus(node_id)
        ids: set[str] = set()
        try:
            async with bus.consume(down_queue(node_id), prefetch=50) as deliveries:
                while True:
                    try:
                        delivery = await asyncio.wait_for(deliveries.__anext__(), 0.5)
                    except TimeoutError:
                        return ids
                    ids.add(delivery.message.message_id)
                    await delivery.ack()
        finally:
            await bus.close()

    async def scenario() -> dict[str, bool]:
        gd = await fresh.bus("gd")
        try:
            body = notice.to_xml()
            await gd.publish(Message("down", down_key("cn.gd", "notice"), body, message_id=pushed))
        finally:
            await gd.close()
        below_root = [n.id for n in BROKER_MAP.nodes.values() if n.parent is not None]
        found = await asyncio.gather(*(received(n) for n in below_root))
        return {node: pushed in ids for node, ids in zip(below_root, found, strict=True)}

    reached = run(scenario, 60)
    province = {n.id for n in BROKER_MAP.subtree("gd")} - {"gd"}
    assert {node for node, got in reached.items() if got} == province
    assert len(reached) == len(BROKER_MAP.nodes) - 1  # every node below the root was asked
