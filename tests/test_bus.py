"""The bus: routing grammar (pure), and one contract suite run on MemoryBus and on RabbitMQ.

Each contract test gets a ``buses`` opener for one broker (a fresh in-process
broker, or the session's RabbitMQ vhost) and unique queue names. Coroutines
run under ``asyncio.run``; no pytest plugin is needed.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from pamqp import decode, encode
from support.proxies import TcpProxy

from hub.bus import (
    REASON,
    AmqpBus,
    Bus,
    ConsumeError,
    Consumer,
    Delivery,
    DeliveryLost,
    MemoryBroker,
    MemoryBus,
    Message,
    PublishError,
    PublishRefused,
    QueueLimits,
    ancestor_bindings,
    dead_queue,
    down_key,
    node_queues,
    parse_key,
    push_binding,
    subtree_binding,
    topic_matches,
    up_key,
    wanted_by,
)
from hub.bus.contract import (
    ORIGINAL_EXCHANGE,
    ORIGINAL_QUEUE,
    ORIGINAL_ROUTING_KEY,
    PART,
    RefusedPart,
)
from hub.bus.contract import ORIGINAL_USER_ID as ORIGINAL_USER
from hub.bus.routing import Binding
from hub.bus.topology import node_permissions, node_topic_permissions
from hub.federation import load_federation, parse_federation

ROOT = Path(__file__).parent.parent
FEDERATION = load_federation(ROOT / "nodes.toml")


# -- the key grammar (pure) ----------------------------------------------------------


def test_keys_put_the_path_between_the_direction_and_a_marker() -> None:
    assert up_key("cn.gd.gz", "document") == "up.cn.gd.gz._.document"
    assert down_key("cn.gd", "notice") == "down.cn.gd._.notice"
    assert subtree_binding("cn.gd") == "up.cn.gd.#"
    assert push_binding("cn.gd") == "down.cn.gd._.*"
    route = parse_key("up.cn.gd.gz._.document")
    assert (route.direction, route.path, route.kind) == ("up", "cn.gd.gz", "document")


@pytest.mark.parametrize(
    ("path", "kind"),
    [("cn.gd", "memo"), ("cn..gd", "news"), ("cn.GD", "news"), ("cn._", "news"), ("cn.*", "news")],
)
def test_keys_refuse_bad_paths_and_kinds(path: str, kind: str) -> None:
    with pytest.raises(ValueError, match="is not a"):
        up_key(path, kind)


@pytest.mark.parametrize(
    "key", ["up.cn.gd.document", "sideways.cn._.news", "up.cn._.memo", "up._.news"]
)
def test_parse_key_refuses_what_the_grammar_does_not_make(key: str) -> None:
    with pytest.raises(ValueError):
        parse_key(key)


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("up.cn.gd.#", "up.cn.gd._.notice", True),  # the portal itself
        ("up.cn.gd.#", "up.cn.gd.gz.yx._.news", True),  # any depth below
        ("up.cn.gd.#", "up.cn.gdx._.notice", False),  # word by word, not a string prefix
        ("up.cn.gd.#", "up.cn._.notice", False),  # not the parent
        ("up.cn.#", "up.cn.he.hd._.news", True),  # the root takes everything
        ("down.cn._.*", "down.cn._.notice", True),
        ("down.cn._.*", "down.cn.gd._.notice", False),  # only cn's own pushes
        ("up.cn._.document", "up.cn._.news", False),
        ("a.#.b", "a.b", True),
        ("a.*.b", "a.b", False),
        ("#", "anything.at.all", True),
    ],
)
def test_topic_matching_is_amqp_topic_matching(pattern: str, key: str, matches: bool) -> None:
    assert topic_matches(pattern, key) is matches


def test_a_node_named_like_a_kind_is_not_ambiguous() -> None:
    # A node `news` under cn: the marker says where the path stops.
    key = up_key("cn.news", "news")
    assert key == "up.cn.news._.news"
    assert parse_key(key).path == "cn.news"
    assert not topic_matches("up.cn._.*", key)  # not one of cn's own records
    assert topic_matches(subtree_binding("cn"), key)


def test_a_county_binds_its_ancestors_pushes_and_its_subscriptions() -> None:
    shexian = FEDERATION.node("shexian")  # subscribes to cn's documents and he's notices
    assert ancestor_bindings(FEDERATION, "shexian", shexian.subscriptions) == (
        ("down", "down.cn.he.hd._.*"),
        ("down", "down.cn.he._.*"),
        ("down", "down.cn._.*"),
        ("up", "up.cn._.document"),
        ("up", "up.cn.he._.notice"),
    )


def test_subscriptions_must_name_an_ancestor() -> None:
    gz_subscription = FEDERATION.node("yx").subscriptions[1]
    with pytest.raises(ValueError, match="not an ancestor"):
        ancestor_bindings(FEDERATION, "ft", [gz_subscription])


def test_node_queues_of_the_sample_map() -> None:
    def names(node_id: str) -> list[str]:
        return [q.name for q in node_queues(FEDERATION, node_id)]

    assert names("cn") == ["cn.up"]  # the root: everything, nothing from above
    assert names("gd") == ["gd.up", "gd.down"]  # a portal
    assert names("yx") == ["yx.down"]  # a county
    assert node_queues(FEDERATION, "cn")[0].bindings == (("up", "up.cn.#"),)


def test_topic_classes_are_filtered_by_the_consumer() -> None:
    federation = parse_federation(
        """
[[node]]
id = "cn"
name = "中华人民共和国中央人民政府"
level = "central"
site_code = "bm01000001"
domain = "www.gov.cn"

[[node]]
id = "gd"
name = "广东省人民政府"
level = "provincial"
parent = "cn"
site_code = "4400000001"
domain = "www.gd.gov.cn"

[[node.subscribe]]
from = "cn"
kinds = ["document"]
topics = ["国防"]
""",
        "inline.toml",
    )
    assert wanted_by(federation, "gd", up_key("cn", "document"), "国防")
    assert not wanted_by(federation, "gd", up_key("cn", "document"), "综合政务")
    assert not wanted_by(federation, "gd", up_key("cn", "document"), None)
    assert wanted_by(federation, "gd", down_key("cn", "notice"), None)  # pushes: always
    assert wanted_by(federation, "cn", up_key("cn.gd", "news"), None)  # its subtree: always


def test_permission_regexes_allow_exactly_the_own_path() -> None:
    def allowed(node_id: str, exchange: str, key: str) -> bool:
        topic = {t.exchange: t for t in node_topic_permissions(FEDERATION, node_id)}[exchange]
        return re.search(python_re(topic.write), key) is not None

    assert allowed("gz", "up", "up.cn.gd.gz._.document")
    assert not allowed("gz", "up", "up.cn.gd.gz.yx._.document")  # not as its child
    assert not allowed("gz", "up", "up.cn.gd._.document")  # not as its parent
    assert not allowed("gz", "up", "up.cn.gd.sz._.document")
    assert allowed("gd", "down", "down.cn.gd._.notice")
    assert not allowed("gd", "down", "down.cn.he._.notice")
    assert not allowed("yx", "down", "down.cn.gd.gz.yx._.notice")  # a county pushes nothing
    assert allowed("gz", "dead", "gz.down") and not allowed("gz", "dead", "gd.up")
    rights = node_permissions(FEDERATION, "yx")
    assert (rights.configure, rights.write) == (r"^\z", r"^(up|dead)\z")
    read = python_re(rights.read)
    assert re.search(read, "yx.down.dead") and not re.search(read, "gz.down")


def python_re(erlang: str) -> str:
    """A permission regex for Python's re before 3.14, which spells PCRE's ``\\z`` as ``\\Z``."""
    return erlang.replace(r"\z", r"\Z")


def test_every_permission_regex_refuses_a_trailing_newline() -> None:
    for node_id in FEDERATION.nodes:
        rights = node_permissions(FEDERATION, node_id)
        regexes = [rights.configure, rights.write, rights.read]
        regexes += [
            r for t in node_topic_permissions(FEDERATION, node_id) for r in (t.write, t.read)
        ]
        for regex in regexes:
            assert "$" not in regex, regex  # Erlang's $ also matches before a final newline
            assert regex.endswith(r"\z"), regex
    assert not re.search(python_re(node_permissions(FEDERATION, "gz").write), "up\n")
    up = {t.exchange: t for t in node_topic_permissions(FEDERATION, "gz")}["up"]
    assert not re.search(python_re(up.write), "up.cn.gd.gz._.notice\n")


# -- headers -------------------------------------------------------------------------


def test_float_headers_are_refused_because_amqp_sends_them_as_32_bit() -> None:
    sent = 1717171717.123  # a time.time() stamp
    _, table = decode.field_table(encode.field_table({"sent": sent}))
    assert abs(table["sent"] - sent) > 5  # seconds lost in transit: why floats are refused
    with pytest.raises(TypeError, match="ISO 8601 strings or integer milliseconds"):
        Message("up", up_key("cn", "news"), b"", headers={"sent": sent})


@pytest.mark.parametrize("value", [True, None, b"bytes", [1], 2.5])
def test_only_str_and_int_headers(value: object) -> None:
    with pytest.raises(TypeError, match="header 'h'"):
        Message("up", up_key("cn", "news"), b"", headers={"h": value})  # type: ignore[dict-item]


def test_ints_must_fit_in_64_bits() -> None:
    with pytest.raises(ValueError, match="64-bit"):
        Message("up", up_key("cn", "news"), b"", headers={"h": 2**63})


# -- the contract, on both buses -----------------------------------------------------


class Buses:
    """Opens buses on one broker for one test and closes them afterwards."""

    def __init__(self, kind: str, url: str | None) -> None:
        self.kind = kind
        self.url = url
        self.limits = QueueLimits(delivery_limit=10, max_length=10_000)
        self.prefix = f"t{uuid.uuid4().hex[:8]}"
        self._broker = MemoryBroker()
        self._open: list[Bus] = []
        self._declared: list[str] = []

    def name(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"

    async def declare(self, bus: Bus, name: str, bindings: Sequence[Binding]) -> None:
        """Declare a queue that is deleted after the test, so tests never see each other's
        bindings in the shared vhost."""
        self._declared.append(name)
        await bus.declare_queue(name, bindings)

    async def open(self, **options: Any) -> Bus:
        bus: Bus
        if self.url is None:
            bus = MemoryBus(broker=self._broker, limits=self.limits, **options)
        else:
            bus = await AmqpBus.connect(self.url, limits=self.limits, **options)
        self._open.append(bus)
        return bus

    def run(self, scenario: Callable[[], Awaitable[None]]) -> None:
        async def main() -> None:
            try:
                async with asyncio.timeout(60):
                    await scenario()
            finally:
                for bus in self._open:
                    await bus.close()
                if self.url is not None:
                    await delete_queues(self.url, self._declared)

        asyncio.run(main())


@pytest.fixture(params=["memory", "amqp"])
def buses(request: pytest.FixtureRequest) -> Buses:
    url = request.getfixturevalue("amqp_url") if request.param == "amqp" else None
    return Buses(request.param, url)


async def delete_queues(url: str, names: Sequence[str]) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for name in names:
            await channel.queue_delete(name)
            await channel.queue_delete(dead_queue(name))


def msg(key: str, body: bytes = b"<record/>", **fields: Any) -> Message:
    return Message(parse_key(key).direction, key, body, **fields)


async def take(consumer: Consumer, count: int, timeout: float = 10.0) -> list[Delivery]:
    deliveries = []
    async with asyncio.timeout(timeout):
        while len(deliveries) < count:
            deliveries.append(await anext(consumer))
    return deliveries


async def nothing_more(consumer: Consumer, wait: float = 0.3) -> None:
    try:
        delivery = await asyncio.wait_for(anext(consumer), wait)
    except TimeoutError:
        return
    pytest.fail(f"unexpected {delivery!r}")


async def keys_in(bus: Bus, queue: str, count: int) -> set[str]:
    """Ack exactly ``count`` deliveries from ``queue`` (and check there is no more)."""
    async with bus.consume(queue, prefetch=50) as consumer:
        deliveries = await take(consumer, count)
        await nothing_more(consumer)
        for delivery in deliveries:
            await delivery.ack()
    return {d.message.routing_key for d in deliveries}


def test_a_subtree_binding_receives_its_subtree_and_nothing_outside(buses: Buses) -> None:
    async def scenario() -> None:
        bus = await buses.open()
        gd, cn = buses.name("gd"), buses.name("cn")
        await buses.declare(bus, gd, [("up", subtree_binding("cn.gd"))])
        await buses.declare(bus, cn, [("up", subtree_binding("cn"))])
        paths = ["cn.gd.gz", "cn.gd", "cn.gdx", "cn.he", "cn.gd.gz.yx", "cn"]
        await bus.publish_many([msg(up_key(path, "news")) for path in paths])
        inside = {up_key(path, "news") for path in ("cn.gd.gz", "cn.gd", "cn.gd.gz.yx")}
        assert await keys_in(bus, gd, 3) == inside
        assert await keys_in(bus, cn, 6) == {up_key(path, "news") for path in paths}

    buses.run(scenario)


def test_pushes_reach_the_province_subtree_only_and_subscriptions_their_kinds(
    buses: Buses,
) -> None:
    async def scenario() -> None:
        bus = await buses.open()
        queues = {}  # node queue name -> this test's queue
        for node_id in FEDERATION.nodes:
            for spec in node_queues(FEDERATION, node_id):
                queues[spec.name] = buses.name(spec.name)
                await buses.declare(bus, queues[spec.name], spec.bindings)
        await bus.publish(msg(down_key("cn.gd", "notice")))  # gd pushes to its subtree
        await bus.publish(msg(up_key("cn.gd.gz", "notice")))  # yx subscribes to gz's notices
        await bus.publish(msg(up_key("cn", "document")))  # yx, shexian: cn's documents
        push, notice, document = (
            down_key("cn.gd", "notice"),
            up_key("cn.gd.gz", "notice"),
            up_key("cn", "document"),
        )
        below_gd = {n.id for n in FEDERATION.subtree("gd")} - {"gd"}
        expected: dict[str, set[str]] = {name: set() for name in queues}
        for node_id in below_gd:
            expected[f"{node_id}.down"].add(push)
        expected["yx.down"] |= {notice, document}
        expected["shexian.down"].add(document)
        expected["gz.up"].add(notice)  # gz is a portal too (yx is below it)
        expected["gd.up"].add(notice)
        expected["cn.up"] |= {notice, document}
        got = await asyncio.gather(
            *(keys_in(bus, queues[name], len(keys)) for name, keys in expected.items())
        )
        assert dict(zip(expected, got, strict=True)) == expected

    buses.run(scenario)


def test_publish_returns_once_confirmed_and_unroutable_messages_raise(buses: Buses) -> None:
    async def scenario() -> None:
        bus = await buses.open()
        queue = buses.name("gz")
        await buses.declare(bus, queue, [("up", up_key("cn.gd.gz", "news"))])
        await bus.publish(msg(up_key("cn.gd.gz", "news"), b"first"))
        # Confirmed means queued: a consumer opened only now still gets it.
        async with bus.consume(queue, prefetch=1) as consumer:
            [delivery] = await take(consumer, 1)
            assert delivery.message.body == b"first" and not delivery.redelivered
            await delivery.ack()
        with pytest.raises(PublishError, match="NO_ROUTE"):
            await bus.publish(msg(up_key("cn.gd.gz", "notice")))  # no queue binds this
        with pytest.raises(ValueError, match="does not belong on exchange"):
            await bus.publish(Message("down", up_key("cn.gd.gz", "news"), b""))

    buses.run(scenario)


def test_publish_many_delivers_all_in_order(buses: Buses) -> None:
    async def scenario() -> None:
        bus = await buses.open()
        queue = buses.name("gd")
        await buses.declare(bus, queue, [("up", subtree_binding("cn.gd"))])
        sent = [msg(up_key("cn.gd.gz", "news"), str(i).encode()) for i in range(1200)]
        await bus.publish_many(sent)
        async with bus.consume(queue, prefetch=100) as consumer:
            received = []
            for _ in sent:
                [delivery] = await take(consumer, 1)
                received.append(delivery.message)
                await delivery.ack()
        assert [m.body for m in received] == [m.body for m in sent]
        assert [m.message_id for m in received] == [m.message_id for m in sent]

    buses.run(scenario)


def test_an_unacked_delivery_goes_to_another_consumer_when_its_consumer_dies(
    buses: Buses,
) -> None:
    async def scenario() -> None:
        first, second = await buses.open(), await buses.open()
        queue = buses.name("gd")
        await buses.declare(first, queue, [("up", subtree_binding("cn.gd"))])
        sent = msg(up_key("cn.gd.sz", "notice"))
        await first.publish(sent)
        async with first.consume(queue, prefetch=5) as consumer:
            [delivery] = await take(consumer, 1)
            assert not delivery.redelivered
            await first.close()  # the process dies: connection gone, delivery never acked
        with pytest.raises(DeliveryLost, match="delivers it again"):
            await delivery.ack()
        async with second.consume(queue, prefetch=5) as consumer:
            [again] = await take(consumer, 1)
            assert again.redelivered
            assert again.message.message_id == sent.message_id
            await again.ack()
            await nothing_more(consumer)

    buses.run(scenario)


def test_requeue_puts_a_delivery_back_for_a_later_try(buses: Buses) -> None:
    async def scenario() -> None:
        bus = await buses.open()
        queue = buses.name("gd")
        await buses.declare(bus, queue, [("up", subtree_binding("cn.gd"))])
        await bus.publish(msg(up_key("cn.gd", "notice")))
        async with bus.consume(queue, prefetch=1) as consumer:
            [delivery] = await take(consumer, 1)
            await delivery.requeue()  # e.g. the database is down
            with pytest.raises(RuntimeError, match="already settled"):
                await delivery.ack()
            [again] = await take(consumer, 1)
            assert again.redelivered and again.message == delivery.message
            await again.ack()
            await nothing_more(consumer)

    buses.run(scenario)


def test_reject_dead_letters_with_the_reason_and_the_original_headers(buses: Buses) -> None:
    async def scenario() -> None:
        bus = await buses.open()
        queue = buses.name("gd")
        await buses.declare(bus, queue, [("up", subtree_binding("cn.gd"))])
        key = up_key("cn.gd.gz", "document")
        sent = msg(key, b"<bad/>", headers={"x-govhub-topic": "国防", "revision": 3})
        await bus.publish(sent)
        async with bus.consume(queue, prefetch=1) as consumer:
            [delivery] = await take(consumer, 1)
            await delivery.reject("record.xml:3: title: is missing")
            await nothing_more(consumer)
        async with bus.consume(dead_queue(queue), prefetch=1) as consumer:
            [dead] = await take(consumer, 1)
            await dead.ack()
        headers = dead.message.headers
        assert headers[REASON] == "record.xml:3: title: is missing"
        assert headers["x-govhub-topic"] == "国防" and headers["revision"] == 3
        assert headers[ORIGINAL_EXCHANGE] == "up" and headers[ORIGINAL_ROUTING_KEY] == key
        assert headers[ORIGINAL_QUEUE] == queue and headers[ORIGINAL_USER] == "guest"
        assert (dead.message.exchange, dead.message.routing_key) == ("up", key)
        assert dead.message.body == b"<bad/>" and dead.message.message_id == sent.message_id

    buses.run(scenario)


def test_ack_refusing_dead_letters_each_refused_part_alone_then_acks(buses: Buses) -> None:
    async def scenario() -> None:
        bus = await buses.open()
        queue = buses.name("gd")
        await buses.declare(bus, queue, [("up", subtree_binding("cn.gd"))])
        key = up_key("cn.gd.gz", "news")
        sent = msg(key, b"<records>...</records>", headers={"x-govhub-count": 5})
        await bus.publish(sent)
        parts = [RefusedPart(b"<r2/>", 2, 5, "bad title"), RefusedPart(b"<r5/>", 5, 5, "spoofed")]
        async with bus.consume(queue, prefetch=1) as consumer:
            [delivery] = await take(consumer, 1)
            await delivery.ack_refusing(parts)
            with pytest.raises(RuntimeError, match="already settled"):
                await delivery.ack()
            await nothing_more(consumer)  # the batch itself is gone: acked
        async with bus.consume(dead_queue(queue), prefetch=2) as consumer:
            dead = await take(consumer, 2)
            for each in dead:
                await each.ack()
            await nothing_more(consumer)
        found = sorted(
            (d.message.headers[PART], d.message.body, d.message.headers[REASON]) for d in dead
        )
        assert found == [("2 of 5", b"<r2/>", "bad title"), ("5 of 5", b"<r5/>", "spoofed")]
        for each in dead:
            headers = each.message.headers
            assert headers["x-govhub-count"] == 5 and headers[ORIGINAL_ROUTING_KEY] == key
            assert headers[ORIGINAL_QUEUE] == queue
            assert each.message.message_id == sent.message_id

    buses.run(scenario)


def test_a_poison_message_is_dead_lettered_after_the_delivery_limit(buses: Buses) -> None:
    buses.limits = QueueLimits(delivery_limit=2, max_length=100)

    async def scenario() -> None:
        bus = await buses.open()
        queue = buses.name("gd")
        await buses.declare(bus, queue, [("up", subtree_binding("cn.gd"))])
        await bus.publish(msg(up_key("cn.gd", "news"), headers={"n": 1}))
        async with bus.consume(queue, prefetch=1) as consumer:
            for _ in range(
                3
            ):  # delivered, returned twice: the limit; the third return is one too many
                [delivery] = await take(consumer, 1)
                await delivery.requeue()
            await nothing_more(consumer)
        async with bus.consume(dead_queue(queue), prefetch=1) as consumer:
            [dead] = await take(consumer, 1)
            await dead.ack()
        assert "delivery limit" in str(dead.message.headers[REASON])
        assert dead.message.headers["n"] == 1
        assert dead.message.headers[ORIGINAL_ROUTING_KEY] == up_key("cn.gd", "news")
        assert "x-delivery-count" not in dead.message.headers

    buses.run(scenario)


def test_prefetch_bounds_the_unsettled_deliveries(buses: Buses) -> None:
    async def scenario() -> None:
        bus = await buses.open()
        queue = buses.name("gd")
        await buses.declare(bus, queue, [("up", subtree_binding("cn.gd"))])
        await bus.publish_many([msg(up_key("cn.gd", "news"), bytes([i])) for i in range(10)])
        async with bus.consume(queue, prefetch=3) as consumer:
            held = await take(consumer, 3)
            await nothing_more(consumer)  # three unsettled: the broker sends no fourth
            assert consumer.unsettled == 3
            await held[0].ack()
            [fourth] = await take(consumer, 1)
            assert fourth.message.body == bytes([3])
            await nothing_more(consumer)
            for delivery in [*held[1:], fourth]:
                await delivery.ack()
            for _ in range(6):
                [delivery] = await take(consumer, 1)
                await delivery.ack()
            await nothing_more(consumer)

    buses.run(scenario)


def test_headers_ids_and_user_round_trip(buses: Buses) -> None:
    async def scenario() -> None:
        bus = await buses.open()
        queue = buses.name("cn")
        await buses.declare(bus, queue, [("up", subtree_binding("cn"))])
        headers = {
            "x-govhub-topic": "城乡建设、环境保护",
            "sent-at": "2024-05-31T09:00:00.123+08:00",
            "sent-ms": 1717117200123,
            "revision": 2,
            "negative": -(2**40),
        }
        sent = msg(up_key("cn.he.hd.shexian", "notice"), "正文".encode(), headers=headers)
        await bus.publish(sent)
        async with bus.consume(queue, prefetch=1) as consumer:
            [delivery] = await take(consumer, 1)
            await delivery.ack()
        got = delivery.message
        assert dict(got.headers) == headers
        assert all(type(got.headers[k]) is type(v) for k, v in headers.items())
        assert (got.message_id, got.body, got.user_id) == (sent.message_id, sent.body, "guest")
        assert got == Message(
            sent.exchange, sent.routing_key, sent.body, headers, sent.message_id, "guest"
        )

    buses.run(scenario)


def test_a_forged_user_id_is_refused(buses: Buses) -> None:
    async def scenario() -> None:
        bus = await buses.open()
        queue = buses.name("gz")
        await buses.declare(bus, queue, [("up", subtree_binding("cn.gd.gz"))])
        with pytest.raises(PublishRefused, match="user_id property set to 'gz'") as refused:
            await bus.publish(msg(up_key("cn.gd.gz", "news"), user_id="gz"))
        assert refused.value.reply_code == 406
        await bus.publish(msg(up_key("cn.gd.gz", "news"), user_id="guest"))  # the bus recovers
        assert await keys_in(bus, queue, 1) == {up_key("cn.gd.gz", "news")}

    buses.run(scenario)


def test_waiting_for_a_delivery_can_be_cancelled_without_losing_one(buses: Buses) -> None:
    async def scenario() -> None:
        bus = await buses.open()
        queue = buses.name("gd")
        await buses.declare(bus, queue, [("up", subtree_binding("cn.gd"))])
        async with bus.consume(queue, prefetch=2) as consumer:
            for _ in range(3):
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(anext(consumer), 0.05)
            await bus.publish(msg(up_key("cn.gd", "news")))
            [delivery] = await take(consumer, 1)
            await delivery.ack()

    buses.run(scenario)


def test_stop_returns_the_buffer_and_close_drains_what_is_handed_out(buses: Buses) -> None:
    async def scenario() -> None:
        bus = await buses.open()
        queue = buses.name("gd")
        await buses.declare(bus, queue, [("up", subtree_binding("cn.gd"))])
        await bus.publish_many([msg(up_key("cn.gd", "news"), bytes([i])) for i in range(5)])
        consumer = bus.consume(queue, prefetch=5)

        async def finish_work(delivery: Delivery) -> None:
            await asyncio.sleep(0.3)
            await delivery.ack()  # committed while the consumer drains

        async with asyncio.TaskGroup() as group:
            async with consumer:
                [working] = await take(consumer, 1)
                await asyncio.sleep(0.2)  # let the other four reach the consumer's buffer
                group.create_task(finish_work(working))
                await consumer.stop()
                assert [d async for d in consumer] == []  # iteration ends, buffer returned
            assert working.settled  # leaving the block waited for the ack (the drain)
        async with bus.consume(queue, prefetch=5) as again:
            rest = await take(again, 4)
            await nothing_more(again)
            for delivery in rest:
                await delivery.ack()
        bodies = sorted(d.message.body for d in rest)
        assert bodies == [bytes([i]) for i in range(1, 5)]

    buses.run(scenario)


def test_consuming_a_missing_queue_says_so(buses: Buses) -> None:
    async def scenario() -> None:
        bus = await buses.open()
        with pytest.raises(ConsumeError, match="NOT_FOUND"):
            async with bus.consume(buses.name("nowhere"), prefetch=1):
                pass

    buses.run(scenario)


def test_a_full_queue_refuses_publishes(buses: Buses) -> None:
    buses.limits = QueueLimits(delivery_limit=10, max_length=3)

    async def scenario() -> None:
        bus = await buses.open()
        queue = buses.name("gd")
        await buses.declare(bus, queue, [("up", subtree_binding("cn.gd"))])
        # Like RabbitMQ's quorum queues: one past the limit is taken, the next refused.
        await bus.publish_many([msg(up_key("cn.gd", "news")) for _ in range(4)])
        with pytest.raises(PublishError, match="full"):
            await bus.publish(msg(up_key("cn.gd", "news")))

    buses.run(scenario)


# -- RabbitMQ only: an outage --------------------------------------------------------


def test_publishing_during_an_outage_raises_then_recovers(amqp_url: str) -> None:
    async def scenario() -> None:
        proxy = TcpProxy("127.0.0.1", 5672)
        await proxy.start()
        url = amqp_url.replace(":5672/", f":{proxy.port}/")
        bus = await AmqpBus.connect(url, publish_timeout=1.5, reconnect_interval=0.2)
        queue = f"t{uuid.uuid4().hex[:8]}.gd"
        try:
            await bus.declare_queue(queue, [("up", subtree_binding("cn.gd"))])
            await bus.publish(msg(up_key("cn.gd", "news"), b"before"))
            await proxy.cut()
            # Either the connection is seen to drop under the publish, or the publish waits
            # for a reconnect that does not come; both raise, neither hangs.
            for expected in (r"connection was lost|no confirm", r"no confirm .* within 1\.5 s"):
                with pytest.raises(PublishError, match=expected):
                    await bus.publish(msg(up_key("cn.gd", "news"), b"during"))
            await proxy.start()  # the broker is back: the connection reconnects by itself
            await bus.publish(msg(up_key("cn.gd", "news"), b"after"))
            async with bus.consume(queue, prefetch=5) as consumer:
                deliveries = await take(consumer, 2)
                await nothing_more(consumer)
                for delivery in deliveries:
                    await delivery.ack()
            assert {d.message.body for d in deliveries} == {b"before", b"after"}
        finally:
            await bus.close()
            await proxy.cut()
            await delete_queues(amqp_url, [queue])

    asyncio.run(scenario())
