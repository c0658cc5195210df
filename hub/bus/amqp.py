"""The bus on RabbitMQ (aio-pika): confirmed publishes, manual acks, robust reconnection.

One channel publishes, with publisher confirms; each consumer gets its own
channel with ``basic.qos(prefetch)``. The connection reconnects by itself; a
publish waits for it at most ``publish_timeout`` seconds, then raises
``PublishError`` rather than hang. A delivery received before a reconnect can
no longer be acked (``DeliveryLost``): the broker has put it back already.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aiormq.abc import AbstractChannel
from pamqp.commands import Basic

from hub.bus.contract import (
    BROKER_REASONS,
    ORIGINAL_EXCHANGE,
    ORIGINAL_ROUTING_KEY,
    REASON,
    Consumer,
    Delivery,
    HeaderValue,
    Message,
    dead_letter_headers,
    ready_to_publish,
)
from hub.bus.errors import (
    BusConnectError,
    BusError,
    ConsumeError,
    PublishError,
    PublishRefused,
)
from hub.bus.routing import DIRECTIONS, Binding
from hub.bus.topology import (
    DEAD,
    EXCHANGES,
    QueueLimits,
    check_queue_name,
    dead_queue,
    dead_queue_arguments,
    queue_arguments,
)

BATCH = 500
"""``publish_many`` sends this many messages, then awaits their confirms, then the next."""

_CHANNEL_LOST = (aiormq.exceptions.AMQPError, aiormq.ChannelInvalidStateError, ConnectionError)
_REPLY_CODES: dict[type[BaseException], int] = {
    aiormq.exceptions.ChannelAccessRefused: 403,
    aiormq.exceptions.ChannelNotFoundEntity: 404,
    aiormq.exceptions.ChannelLockedResource: 405,
    aiormq.exceptions.ChannelPreconditionFailed: 406,
}
_BROKER_HEADERS = frozenset(
    f"x-{which}-death-{what}"
    for which in ("first", "last")
    for what in ("exchange", "queue", "reason")
) | {"x-death", "x-delivery-count"}


class AmqpBus:
    """A ``Bus`` on RabbitMQ. Build it with ``await AmqpBus.connect(url)``."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        publisher: AbstractRobustChannel,
        user: str,
        *,
        publish_timeout: float,
        drain_timeout: float,
        limits: QueueLimits,
    ) -> None:
        self.user = user
        self.publish_timeout = publish_timeout
        self.drain_timeout = drain_timeout
        self.limits = limits
        self._connection = connection
        self._publisher = publisher
        self._consumers: set[AmqpConsumer] = set()
        self._closed = False

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        publish_timeout: float = 10.0,
        drain_timeout: float = 10.0,
        reconnect_interval: float = 5.0,
        limits: QueueLimits | None = None,
    ) -> AmqpBus:
        """Connect to ``url`` (``amqp://user:password@host:port/vhost``).

        ``publish_timeout`` bounds how long a publish waits for the broker (a
        reconnect included); ``drain_timeout`` how long a closing consumer waits
        for deliveries to be settled; ``limits`` are what ``declare_queue`` uses.
        """
        parts = urlsplit(url)
        where = f"{parts.hostname}:{parts.port or 5672}{parts.path or '/'}"
        try:
            connection = await aio_pika.connect_robust(
                url, timeout=publish_timeout, reconnect_interval=reconnect_interval
            )
            publisher = await connection.channel(publisher_confirms=True, on_return_raises=True)
        except (aiormq.exceptions.AMQPError, OSError, TimeoutError) as exc:
            raise BusConnectError(
                where=where,
                reason=str(exc) or type(exc).__name__,
                fix="is RabbitMQ running there, and are the user, password and vhost right?",
            ) from exc
        assert isinstance(publisher, AbstractRobustChannel)  # noqa: S101
        return cls(
            connection,
            publisher,
            unquote(parts.username or "guest"),
            publish_timeout=publish_timeout,
            drain_timeout=drain_timeout,
            limits=limits or QueueLimits(),
        )

    async def publish(self, message: Message) -> None:
        await self.publish_many([message])

    async def publish_many(self, messages: Sequence[Message]) -> None:
        stamped = [self._stamp(message) for message in messages]
        for start in range(0, len(stamped), BATCH):
            batch = stamped[start : start + BATCH]
            await self._send([(m.exchange, m.routing_key, m) for m in batch])

    async def declare_queue(self, name: str, bindings: Sequence[Binding]) -> None:
        """Declare the exchanges, the queue, its dead-letter queue and the bindings.

        Needs configure rights in the vhost (node users have none: ``setup_broker``
        declares their queues).
        """
        check_queue_name(name)
        for exchange, _ in bindings:
            if exchange not in DIRECTIONS:
                raise ValueError(f"cannot bind to {exchange!r}: not one of {', '.join(DIRECTIONS)}")
        channel = await self._connection.channel(publisher_confirms=False)
        try:
            raw = await channel.get_underlay_channel()
            for exchange in EXCHANGES:
                await raw.exchange_declare(exchange=exchange, exchange_type="topic", durable=True)
            arguments = queue_arguments(name, self.limits)
            await raw.queue_declare(name, durable=True, arguments=dict(arguments))
            dead_arguments = dead_queue_arguments(self.limits)
            await raw.queue_declare(dead_queue(name), durable=True, arguments=dict(dead_arguments))
            await raw.queue_bind(dead_queue(name), DEAD, routing_key=name)
            for exchange, key in bindings:
                await raw.queue_bind(name, exchange, routing_key=key)
        except aiormq.exceptions.ChannelClosed as exc:
            raise BusError(detail=f"cannot declare queue {name}: {exc}") from exc
        finally:
            with contextlib.suppress(*_CHANNEL_LOST):
                await channel.close()

    def consume(self, queue: str, *, prefetch: int) -> AmqpConsumer:
        return AmqpConsumer(self, queue, prefetch)

    async def close(self) -> None:
        self._closed = True
        for consumer in list(self._consumers):
            await consumer.close(drain=False)
        await self._connection.close()

    def _stamp(self, message: Message) -> Message:
        return ready_to_publish(message, self.user, closed=self._closed)

    async def _send(self, items: Sequence[tuple[str, str, Message]]) -> None:
        """Publish (exchange, key, message) triples and wait for every confirm."""
        exchange, key = items[0][0], items[0][1]
        try:
            async with asyncio.timeout(self.publish_timeout):
                channel = await self._ready_channel()
                results = await asyncio.gather(
                    *(self._publish_one(channel, *item) for item in items),
                    return_exceptions=True,
                )
        except TimeoutError:
            raise PublishError(
                exchange=exchange,
                routing_key=key,
                reason=f"no confirm from the broker within {self.publish_timeout:g} s",
                fix="is RabbitMQ reachable? publish again later; consumers drop duplicates",
            ) from None
        failures = [(item, r) for item, r in zip(items, results, strict=True) if r is not None]
        if failures:
            refused = [f for f in failures if type(f[1]) in _REPLY_CODES]
            (exchange, key, _), exc = (refused or failures)[0]
            raise _publish_error(exchange, key, exc, len(failures)) from exc

    async def _publish_one(
        self, channel: AbstractChannel, exchange: str, key: str, message: Message
    ) -> BaseException | None:
        properties = Basic.Properties(
            delivery_mode=2,
            message_id=message.message_id,
            user_id=message.user_id,
            headers=dict(message.headers),
        )
        try:
            await channel.basic_publish(
                message.body,
                exchange=exchange,
                routing_key=key,
                properties=properties,
                mandatory=True,
            )
        except (*_CHANNEL_LOST, OSError) as exc:
            return exc
        return None

    async def _ready_channel(self) -> AbstractChannel:
        """The publishing channel, once the connection and the channel are (re)open."""
        while True:
            await self._publisher.ready()
            with contextlib.suppress(aiormq.ChannelInvalidStateError):
                channel = await self._publisher.get_underlay_channel()
                if not channel.is_closed:
                    return channel
            await asyncio.sleep(0.05)  # the broker closed it; aio-pika is reopening it


def _publish_error(exchange: str, key: str, exc: BaseException, count: int) -> PublishError:
    more = f" ({count - 1} more in the batch failed too)" if count > 1 else ""
    code = _REPLY_CODES.get(type(exc))
    if code is not None:
        return PublishRefused(
            exchange=exchange, routing_key=key, reply_code=code, reply_text=f"{exc}{more}"
        )
    if isinstance(exc, aiormq.exceptions.PublishError):
        reason, fix = "no queue is bound to this key (NO_ROUTE)", "run govhub broker setup"
    elif isinstance(exc, aiormq.exceptions.DeliveryError):
        reason = "the broker refused it (basic.nack): a queue it routes to is full"
        fix = "start that queue's consumer, or raise its max length"
    else:
        reason = f"the connection was lost before the confirm ({exc!r})"
        fix = "publish again; the broker may have it already, consumers drop duplicates"
    return PublishError(exchange=exchange, routing_key=key, reason=reason + more, fix=fix)


class AmqpConsumer(Consumer):
    def __init__(self, bus: AmqpBus, queue: str, prefetch: int) -> None:
        super().__init__(queue, prefetch, bus.drain_timeout)
        self.bus = bus
        self._channel: AbstractRobustChannel | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None

    async def _start(self) -> None:
        channel = await self.bus._connection.channel(publisher_confirms=False)
        assert isinstance(channel, AbstractRobustChannel)  # noqa: S101
        self._channel = channel
        try:
            await channel.set_qos(prefetch_count=self.prefetch)
            # Passive: needs no configure right, and aio-pika re-consumes it after a reconnect.
            self._queue = await channel.declare_queue(self.queue, passive=True)
            self._tag = await self._queue.consume(self._on_message, no_ack=False)
        except aiormq.exceptions.ChannelClosed as exc:
            await self._shutdown()
            fix = {
                aiormq.exceptions.ChannelNotFoundEntity: "declare it, or run govhub broker setup",
                aiormq.exceptions.ChannelAccessRefused: "a node may read only its own queues",
            }.get(type(exc), "see the broker's log")
            raise ConsumeError(queue=self.queue, reason=str(exc), fix=fix) from exc
        self.bus._consumers.add(self)

    async def _on_message(self, incoming: AbstractIncomingMessage) -> None:
        if not self._accept(AmqpDelivery(self, incoming)):
            with contextlib.suppress(*_CHANNEL_LOST):
                await incoming.nack(requeue=True)

    async def _cancel(self) -> None:
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(*_CHANNEL_LOST):
                await self._queue.cancel(self._tag)

    async def _shutdown(self) -> None:
        self.bus._consumers.discard(self)
        if self._channel is not None:
            with contextlib.suppress(*_CHANNEL_LOST):
                await self._channel.close()  # the broker returns what is still unacked
        for delivery in list(self._unsettled):
            self._forget(delivery)


class AmqpDelivery(Delivery):
    def __init__(self, consumer: AmqpConsumer, incoming: AbstractIncomingMessage) -> None:
        super().__init__(consumer, _received(incoming), bool(incoming.redelivered))
        self._bus = consumer.bus
        self._incoming = incoming

    async def _ack(self) -> None:
        await self._on_channel("acked", self._incoming.ack)

    async def _requeue(self) -> None:
        await self._on_channel("requeued", lambda: self._incoming.nack(requeue=True))

    async def _dead_then_ack(self, dead: list[Message]) -> None:
        await self._on_channel("rejected", _no_op)  # fail early if the channel is gone
        user = self._bus.user
        await self._bus._send(
            [(DEAD, self.queue, dataclasses.replace(m, user_id=user)) for m in dead]
        )
        await self._on_channel("rejected", self._incoming.ack)

    async def _on_channel(self, action: str, settle: Callable[[], Awaitable[None]]) -> None:
        try:
            if self._incoming.channel.is_closed:  # raises too if aio-pika knows it closed
                raise aiormq.ChannelInvalidStateError("closed")
            await settle()
        except _CHANNEL_LOST as exc:
            raise self._lost(action, f"its channel closed ({exc!r})") from exc


async def _no_op() -> None:
    return None


def _received(incoming: AbstractIncomingMessage) -> Message:
    """The ``Message`` as published: broker headers dropped, dead-letter facts as x-govhub-*."""
    raw = dict(incoming.headers or {})
    death = raw.get("x-death")
    headers = {name: _plain(value) for name, value in raw.items() if name not in _BROKER_HEADERS}
    exchange, key = incoming.exchange or "", incoming.routing_key or ""
    if isinstance(death, list) and death and REASON not in headers:
        # Dead-lettered by the broker itself (delivery limit): say so the way reject() does.
        first: dict[str, Any] = dict(death[0]) if isinstance(death[0], dict) else {}
        cause = str(first.get("reason", ""))
        keys = first.get("routing-keys") or [key]
        original = Message(
            exchange=str(first.get("exchange", "")),
            routing_key=str(keys[0]),
            body=b"",
            headers=headers,
            user_id=incoming.user_id,
        )
        at = first.get("time")
        headers = dead_letter_headers(
            original,
            str(first.get("queue", "")),
            BROKER_REASONS.get(cause, cause),
            at if isinstance(at, datetime) else None,
        )
    if exchange == DEAD:
        exchange = str(headers.get(ORIGINAL_EXCHANGE, exchange))
        key = str(headers.get(ORIGINAL_ROUTING_KEY, key))
    return Message(
        exchange=exchange,
        routing_key=key,
        body=incoming.body,
        headers=headers,
        message_id=incoming.message_id or "",
        user_id=incoming.user_id,
    )


def _plain(value: object) -> HeaderValue:
    """A header value from another publisher, as a str or int (our publishers send no other)."""
    if isinstance(value, str | int) and not isinstance(value, bool):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
