"""setup_broker on the real RabbitMQ: what it creates, and that the broker enforces the rights.

One setup of the sample federation (nodes.toml) in a vhost that setup itself
creates, with users under a prefix unique to this run; the vhost and the users
are deleted at the end.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aiormq.exceptions import ChannelAccessRefused
from support.rabbitmq import HOST, PORT, delete_users, rabbitmqctl, url_for
from support.services import require_service

from hub.bus import (
    ORIGINAL_USER_ID,
    REASON,
    AmqpBus,
    BrokerAdminError,
    BrokerSetupError,
    ConsumeError,
    Delivery,
    Message,
    PublishRefused,
    RabbitmqctlAdmin,
    SetupReport,
    dead_queue,
    down_key,
    setup_broker,
    up_key,
)
from hub.errors import ConfigInvalid
from hub.federation import Federation, load_federation, parse_federation

FEDERATION = load_federation(Path(__file__).parent.parent / "nodes.toml")


@dataclass
class Installed:
    vhost: str
    prefix: str
    environ: dict[str, str]
    report: SetupReport

    def user(self, node_id: str) -> str:
        return f"{self.prefix}{node_id}"

    def password(self, node_id: str) -> str:
        return self.environ[FEDERATION.node(node_id).credentials["broker_password"]]

    async def bus(self, node_id: str) -> AmqpBus:
        url = url_for(self.vhost, self.user(node_id), self.password(node_id))
        return await AmqpBus.connect(url, publish_timeout=5)


def passwords_for(federation: Federation) -> dict[str, str]:
    return {
        variable: f"pw-{uuid.uuid4().hex}"
        for node in federation.nodes.values()
        for variable in node.credentials.values()
    }


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    require_service("RabbitMQ", HOST, PORT)
    rabbitmqctl("ping")  # skips (or fails in CI) without rabbitmqctl
    run = uuid.uuid4().hex[:8]
    vhost, prefix = f"govhub-setup-{run}", f"t{run}-"
    environ = passwords_for(FEDERATION)
    try:
        report = setup_broker(FEDERATION, vhost, RabbitmqctlAdmin(), environ, user_prefix=prefix)
        yield Installed(vhost, prefix, environ, report)
    finally:
        if vhost in rabbitmqctl("list_vhosts", "--no-table-headers").split():
            rabbitmqctl("delete_vhost", vhost)
        delete_users(prefix)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        async with asyncio.timeout(60):
            await scenario()

    asyncio.run(main())


def msg(key: str, **fields: Any) -> Message:
    return Message(key.split(".")[0], key, b"<record/>", **fields)


async def find(
    bus: AmqpBus,
    queue: str,
    message_id: str,
    settle: Callable[[Delivery], Awaitable[None]] = Delivery.ack,
) -> Delivery:
    """Consume ``queue`` (acking whatever else is there) until ``message_id`` comes; settle it."""
    async with bus.consume(queue, prefetch=20) as deliveries, asyncio.timeout(10):
        async for delivery in deliveries:
            if delivery.message.message_id == message_id:
                await settle(delivery)
                return delivery
            await delivery.ack()
    raise AssertionError(f"{message_id} never came to {queue}")


async def refused(bus: AmqpBus, message: Message) -> PublishRefused:
    with pytest.raises(PublishRefused) as caught:
        await bus.publish(message)
    return caught.value


def test_setup_creates_everything_and_a_second_run_changes_nothing(installed: Installed) -> None:
    first = installed.report
    assert first.count("created") == len(first.changes)  # a new vhost: nothing was there
    created = {(c.kind, c.name) for c in first.changes}
    assert ("vhost", installed.vhost) in created
    assert ("user", installed.user("gz")) in created
    assert ("queue", "gz.up") in created and ("queue", "gz.down.dead") in created
    assert ("binding", "up → yx.down by up.cn.gd.gz._.notice") in created  # a subscription
    assert ("topic permissions", f"{installed.user('gd')} on down") in created
    again = setup_broker(
        FEDERATION,
        installed.vhost,
        RabbitmqctlAdmin(),
        installed.environ,
        user_prefix=installed.prefix,
    )
    assert not again.changed
    assert again.count("found") == len(first.changes)
    assert again.summary().endswith(f"0 created, 0 updated, {len(first.changes)} found, 0 extra")


def test_a_node_publishes_upward_under_its_own_path_only(installed: Installed) -> None:
    async def scenario() -> None:
        gz = await installed.bus("gz")
        try:
            await gz.publish(msg(up_key("cn.gd.gz", "document")))
            for path in ("cn.gd.sz", "cn", "cn.gd", "cn.gd.gz.yx"):  # a sibling, ancestors, a child
                error = await refused(gz, msg(up_key(path, "document")))
                assert error.reply_code == 403
                assert "ACCESS_REFUSED - access to topic" in error.reply_text
            await gz.publish(msg(up_key("cn.gd.gz", "notice")))  # the channel came back
        finally:
            await gz.close()

    run(scenario)


def test_a_name_with_a_trailing_newline_is_refused(installed: Installed) -> None:
    """Every regex sent to the broker ends in \\z: ``$`` would also match before a final "\\n".

    Straight through aio_pika: the bus itself refuses such keys before they leave
    (``hub.bus.routing``), but another client would not.
    """
    url = url_for(installed.vhost, installed.user("gz"), installed.password("gz"))

    async def publish(exchange: str, key: str) -> None:
        connection = await aio_pika.connect(url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            target = await channel.get_exchange(exchange, ensure=False)
            await target.publish(aio_pika.Message(b"<record/>"), key, timeout=5)
        finally:
            await connection.close()

    async def ack(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await message.ack()

    async def consume(queue_name: str) -> None:
        connection = await aio_pika.connect(url)
        try:
            channel = await connection.channel()
            queue = await channel.get_queue(queue_name, ensure=False)
            tag = await queue.consume(ack)
            await queue.cancel(tag)
        finally:
            await connection.close()

    async def scenario() -> None:
        up, down = up_key("cn.gd.gz", "notice"), down_key("cn.gd.gz", "notice")
        refusals: list[Callable[[], Awaitable[None]]] = [
            lambda: publish("up", up + "\n"),  # topic permission on up
            lambda: publish("down", down + "\n"),  # topic permission on down
            lambda: publish("dead", "gz.down\n"),  # topic permission on dead
        ]
        # Exchange and queue names (the write and read permissions) end in \z too
        # (tests/test_bus.py), but pamqp will not send a name with "\n" to try them.
        for attempt in refusals:
            with pytest.raises(ChannelAccessRefused, match="ACCESS_REFUSED"):
                await attempt()
        for exchange, key in (("up", up), ("down", down), ("dead", "gz.down")):
            await publish(exchange, key)  # the normal keys still work
        await consume("gz.down")

    run(scenario)


def test_a_county_cannot_push_down(installed: Installed) -> None:
    async def scenario() -> None:
        yx = await installed.bus("yx")
        try:
            error = await refused(yx, msg(down_key("cn.gd.gz.yx", "notice")))
            assert error.reply_code == 403
            assert "access to exchange 'down'" in error.reply_text
        finally:
            await yx.close()

    run(scenario)


def test_a_province_pushes_to_its_own_subtree_only(installed: Installed) -> None:
    async def scenario() -> None:
        gd, ft = await installed.bus("gd"), await installed.bus("ft")
        try:
            push = msg(down_key("cn.gd", "notice"))
            await gd.publish(push)
            error = await refused(gd, msg(down_key("cn.he", "notice")))
            assert error.reply_code == 403 and "ACCESS_REFUSED" in error.reply_text
            delivery = await find(ft, "ft.down", push.message_id)  # a county two levels down
            assert delivery.message.user_id == installed.user("gd")
        finally:
            await gd.close()
            await ft.close()

    run(scenario)


def test_a_forged_user_id_is_refused(installed: Installed) -> None:
    async def scenario() -> None:
        gz = await installed.bus("gz")
        try:
            forged = msg(up_key("cn.gd.gz", "news"), user_id=installed.user("gd"))
            error = await refused(gz, forged)
            assert error.reply_code == 406
            assert "user_id property set to" in error.reply_text
        finally:
            await gz.close()

    run(scenario)


def test_messages_carry_the_validated_user_and_reach_subscribers(installed: Installed) -> None:
    async def scenario() -> None:
        gz, gd, yx = [await installed.bus(n) for n in ("gz", "gd", "yx")]
        try:
            notice = msg(up_key("cn.gd.gz", "notice"), headers={"x-govhub-topic": "综合政务"})
            await gz.publish(notice)
            for bus, queue in ((gd, "gd.up"), (yx, "yx.down")):  # the portal; a subscriber
                delivery = await find(bus, queue, notice.message_id)
                assert delivery.message.user_id == installed.user("gz")
                assert delivery.message.headers == notice.headers
        finally:
            for bus in (gz, gd, yx):
                await bus.close()

    run(scenario)


def test_a_node_reads_only_its_own_queues(installed: Installed) -> None:
    async def scenario() -> None:
        gz = await installed.bus("gz")
        try:
            with pytest.raises(ConsumeError, match="ACCESS_REFUSED"):
                async with gz.consume("gd.up", prefetch=1):
                    pass
            async with gz.consume("gz.down", prefetch=1):
                pass
        finally:
            await gz.close()

    run(scenario)


def test_a_node_dead_letters_into_its_own_dead_letter_queue(installed: Installed) -> None:
    async def scenario() -> None:
        sz, gd = await installed.bus("sz"), await installed.bus("gd")
        try:
            sent = msg(up_key("cn.gd.sz", "document"))
            await sz.publish(sent)
            reason = "record.xml:1: id: is not a govhub id"
            await find(gd, "gd.up", sent.message_id, lambda d: d.reject(reason))
            dead = await find(gd, dead_queue("gd.up"), sent.message_id)
            assert dead.message.headers[REASON] == "record.xml:1: id: is not a govhub id"
            assert dead.message.headers[ORIGINAL_USER_ID] == installed.user("sz")
            assert dead.message.user_id == installed.user("gd")  # who rejected it, validated
        finally:
            await sz.close()
            await gd.close()

    run(scenario)


def test_a_changed_password_is_updated(installed: Installed) -> None:
    variable = FEDERATION.node("fs").credentials["broker_password"]
    installed.environ[variable] = f"pw-{uuid.uuid4().hex}"
    report = setup_broker(
        FEDERATION,
        installed.vhost,
        RabbitmqctlAdmin(),
        installed.environ,
        user_prefix=installed.prefix,
    )
    assert [str(c) for c in report.changes if c.action != "found"] == [
        f"updated  user {installed.user('fs')}"
    ]

    async def scenario() -> None:
        fs = await installed.bus("fs")  # the new password works
        await fs.close()

    run(scenario)


def test_a_missing_password_variable_is_named_before_the_broker_is_touched() -> None:
    class Untouchable:
        def export_definitions(self) -> dict[str, Any]:
            raise AssertionError("the broker was touched")

        def import_definitions(self, definitions: Mapping[str, Any]) -> None:
            raise AssertionError("the broker was touched")

    environ = passwords_for(FEDERATION)
    del environ["GOVHUB_NODE_GZ_PASSWORD"], environ["GOVHUB_NODE_SJZ_PASSWORD"]
    with pytest.raises(ConfigInvalid) as caught:
        setup_broker(FEDERATION, "unused", Untouchable(), environ)
    message = str(caught.value)
    assert "node[gz].credentials.broker_password: GOVHUB_NODE_GZ_PASSWORD is not set" in message
    assert "node[sjz].credentials.broker_password: GOVHUB_NODE_SJZ_PASSWORD is not set" in message


def test_a_conflicting_queue_stops_setup_before_anything_changes(installed: Installed) -> None:
    federation = parse_federation(
        """
[[node]]
id = "cn"
name = "中华人民共和国中央人民政府"
level = "central"
site_code = "bm01000001"
domain = "www.gov.cn"
credentials = { broker_password = { env = "PW_CN" } }

[[node]]
id = "zz"
name = "广东省人民政府"
level = "provincial"
parent = "cn"
site_code = "4400000001"
domain = "www.gd.gov.cn"
credentials = { broker_password = { env = "PW_ZZ" } }
""",
        "conflict.toml",
    )
    prefix = f"{installed.prefix}conflict-"
    rabbitmqctl("set_permissions", "-p", installed.vhost, "guest", ".*", ".*", ".*")

    async def declare_classic_queue() -> None:
        connection = await aio_pika.connect(url_for(installed.vhost, "guest", "guest"))
        async with connection:
            channel = await connection.channel()
            await channel.declare_queue("zz.down", durable=True)  # classic, no limits

    run(declare_classic_queue)
    admin = RabbitmqctlAdmin()
    with pytest.raises(BrokerSetupError, match=r"queue zz\.down exists with") as caught:
        setup_broker(
            federation, installed.vhost, admin, {"PW_CN": "a", "PW_ZZ": "b"}, user_prefix=prefix
        )
    assert "nothing was changed" in str(caught.value)
    users = {user["name"] for user in admin.export_definitions()["users"]}
    assert f"{prefix}zz" not in users


def test_rabbitmqctl_missing_or_failing_is_a_clear_error() -> None:
    with pytest.raises(BrokerAdminError, match="not installed or not on PATH"):
        RabbitmqctlAdmin("/nonexistent/rabbitmqctl").export_definitions()
    require_service("RabbitMQ", HOST, PORT)
    rabbitmqctl("ping")
    with pytest.raises(BrokerAdminError, match="Failed to deserialise input"):
        RabbitmqctlAdmin().run(["import_definitions", "--format", "json"], stdin="{not json")
    assert json.loads(json.dumps(RabbitmqctlAdmin().export_definitions()))["rabbit_version"]
