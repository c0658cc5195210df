"""The bus contract: ``Message``, ``Delivery``, ``Consumer`` and the ``Bus`` protocol.

A transport is a few methods: ``publish`` (returns once the broker confirmed),
``declare_queue``, ``consume`` (a context manager that yields deliveries, at
most ``prefetch`` unsettled at a time) and ``close``. A consumer settles each
delivery exactly once, at the point where its work is committed: ``ack``;
``requeue`` for a transient failure; ``reject(reason)`` to the dead letters.
``AmqpBus`` and ``MemoryBus`` implement it and pass one test suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType, TracebackType
from typing import Protocol

from hub.bus.errors import DeliveryLost, PublishError
from hub.bus.routing import DIRECTIONS, Binding, parse_key

log = logging.getLogger(__name__)

HeaderValue = str | int

REASON = "x-govhub-reason"
ORIGINAL_EXCHANGE = "x-govhub-original-exchange"
ORIGINAL_ROUTING_KEY = "x-govhub-original-routing-key"
ORIGINAL_QUEUE = "x-govhub-original-queue"
ORIGINAL_USER_ID = "x-govhub-original-user-id"
DEAD_AT = "x-govhub-dead-at"
PART = "x-govhub-part"
"""On the dead letter of one record of a ``<records>`` batch: ``"2 of 50"``."""

BROKER_REASONS = {
    "delivery_limit": "delivery limit exceeded: returned to its queue too often (poison?)",
    "rejected": "rejected without a reason",
    "expired": "expired in its queue",
    "maxlen": "dropped from a full queue",
}
"""Reasons for messages the broker dead-lettered itself (the ``x-death`` reason → text)."""

_INT64 = range(-(2**63), 2**63)


@dataclass(frozen=True, slots=True)
class Message:
    """One message on the bus.

    ``exchange`` is ``up`` or ``down`` and ``routing_key`` follows
    docs/routing.md (``up.cn.gd.gz._.document``). Header values are strings or
    integers only; times go as ISO 8601 strings or integer milliseconds.
    ``user_id`` is the broker user that published the message: the bus fills
    it in and RabbitMQ refuses a publish whose ``user_id`` is not the
    connection's user, so a consumer can trust it.
    """

    exchange: str
    routing_key: str
    body: bytes
    headers: Mapping[str, HeaderValue] = field(default_factory=dict, hash=False)
    message_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    user_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.body, bytes):
            raise TypeError(f"message body must be bytes, not {type(self.body).__name__}")
        checked = {name: check_header(name, value) for name, value in self.headers.items()}
        object.__setattr__(self, "headers", MappingProxyType(checked))


def check_header(name: str, value: object) -> HeaderValue:
    """``value`` if it survives AMQP unchanged; ``TypeError`` (or ``ValueError``) otherwise."""
    if not isinstance(name, str) or not 0 < len(name.encode()) <= 128:
        raise ValueError(f"header name {name!r} must be a string of 1 to 128 bytes")
    if isinstance(value, float):
        raise TypeError(
            f"header {name!r} is a float ({value!r}): AMQP clients send Python floats as "
            "32-bit floats, so a time.time() stamp arrives minutes off; send times as ISO "
            "8601 strings or integer milliseconds"
        )
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(
            f"header {name!r} is a {type(value).__name__}: header values must be str or int "
            "(booleans arrive as a different type: send 0/1 or a string)"
        )
    if isinstance(value, int) and value not in _INT64:
        raise ValueError(f"header {name!r} = {value} does not fit in a signed 64-bit integer")
    return value


def check_route(message: Message) -> None:
    """``ValueError`` unless the message's exchange and key follow docs/routing.md."""
    if message.exchange not in DIRECTIONS:
        raise ValueError(f"exchange {message.exchange!r} is not one of {', '.join(DIRECTIONS)}")
    if parse_key(message.routing_key).direction != message.exchange:
        raise ValueError(
            f"routing key {message.routing_key!r} does not belong on exchange "
            f"{message.exchange!r} (a key starts with its exchange's name)"
        )


def ready_to_publish(message: Message, user: str, *, closed: bool) -> Message:
    """The message as a bus sends it: route checked, ``user_id`` filled in with ``user``.

    ``PublishError`` when the bus is closed, ``ValueError`` for a key that breaks
    docs/routing.md. A ``user_id`` other than ``user`` is left for the broker to refuse.
    """
    if closed:
        raise PublishError(
            exchange=message.exchange,
            routing_key=message.routing_key,
            reason="the bus is closed",
            fix="publish before close()",
        )
    check_route(message)
    if message.user_id is None:
        return dataclasses.replace(message, user_id=user)
    return message


def dead_letter_headers(
    message: Message, queue: str, reason: str, at: datetime | None = None
) -> dict[str, HeaderValue]:
    """The original headers plus why, when, and from where the message went to dead letters."""
    headers = dict(message.headers)
    headers[REASON] = reason
    headers[ORIGINAL_EXCHANGE] = message.exchange
    headers[ORIGINAL_ROUTING_KEY] = message.routing_key
    headers[ORIGINAL_QUEUE] = queue
    if message.user_id is not None:
        headers[ORIGINAL_USER_ID] = message.user_id
    headers[DEAD_AT] = (at or datetime.now(UTC)).isoformat(timespec="milliseconds")
    return headers


class Delivery(ABC):
    """A message handed to a consumer, to be settled once: ``ack``, ``requeue`` or ``reject``.

    ``redelivered`` is true when the broker delivered the message before
    (to a consumer that closed, crashed or requeued it without an ack).
    """

    def __init__(self, consumer: Consumer, message: Message, redelivered: bool) -> None:
        self.message = message
        self.redelivered = redelivered
        self.queue = consumer.queue
        self._consumer = consumer
        self._settled = False

    def __repr__(self) -> str:
        return f"<Delivery {self.message.message_id} {self.message.routing_key} from {self.queue}>"

    @property
    def settled(self) -> bool:
        return self._settled

    async def ack(self) -> None:
        """The work is committed: the broker forgets the message."""
        await self._settle("acked", self._ack)

    async def requeue(self) -> None:
        """A transient failure (database down): the message goes back to its queue.

        Each return counts towards the queue's delivery limit.
        """
        await self._settle("requeued", self._requeue)

    async def reject(self, reason: str) -> None:
        """The message can never be processed: to the dead letters, with ``reason``.

        The dead letter is published (and confirmed) before the original is
        acked, so the reason is never lost. If that publish fails this raises
        ``PublishError`` and the delivery stays unsettled.
        """
        dead = dataclasses.replace(
            self.message, headers=dead_letter_headers(self.message, self.queue, reason)
        )
        await self._settle("rejected", lambda: self._dead_then_ack([dead]))

    async def ack_refusing(self, parts: Sequence[RefusedPart]) -> None:
        """The message's good records are committed; each of ``parts`` (records of a batch
        refused on their own) goes to the dead letters by itself, with its reason and
        the ``x-govhub-part`` header, so it can be looked at and retried alone.

        As with ``reject``, the dead letters are published (and confirmed) before
        the original is acked; if a publish fails this raises ``PublishError`` and
        the delivery stays unsettled (a redelivery finds the good records unchanged).
        """
        dead = [
            dataclasses.replace(
                self.message,
                body=part.body,
                headers=dead_letter_headers(self.message, self.queue, part.reason) | part.header,
            )
            for part in parts
        ]
        await self._settle("acked", lambda: self._dead_then_ack(dead))

    async def _settle(self, action: str, work: Callable[[], Awaitable[None]]) -> None:
        if self._settled:
            raise RuntimeError(f"{self!r} is already settled; cannot be {action}")
        self._settled = True
        try:
            await work()
        except PublishError:
            self._settled = False
            raise
        finally:
            if self._settled:
                self._consumer._forget(self)

    def _lost(self, action: str, reason: str) -> DeliveryLost:
        return DeliveryLost(
            message_id=self.message.message_id, queue=self.queue, action=action, reason=reason
        )

    @abstractmethod
    async def _ack(self) -> None: ...

    @abstractmethod
    async def _requeue(self) -> None: ...

    @abstractmethod
    async def _dead_then_ack(self, dead: list[Message]) -> None:
        """Publish ``dead`` to the dead letters of this queue (wait for the confirms), then ack."""


@dataclass(frozen=True, slots=True)
class RefusedPart:
    """A record of a ``<records>`` batch refused on its own, the others kept: at a node
    (``Delivery.ack_refusing``) or at the hub (a dead-letter row each)."""

    body: bytes  # the record as a standalone document
    index: int  # its 1-based position in the batch
    of: int  # how many records the batch holds
    reason: str
    problems: tuple[str, ...] = ()  # one line per problem, when the reason has them apart

    @property
    def header(self) -> dict[str, HeaderValue]:
        """The header its dead letter carries to say where it sat: ``2 of 50``."""
        return {PART: f"{self.index} of {self.of}"}


class Consumer(ABC):
    """Deliveries from one queue, at most ``prefetch`` unsettled at a time.

    Use it as ``async with bus.consume(queue, prefetch=n) as deliveries:`` and
    ``async for delivery in deliveries:``. Waiting for the next delivery can be
    cancelled (``asyncio.wait_for``) without losing one. ``stop()`` ends the
    iteration and returns deliveries not yet handed out; leaving the ``async
    with`` stops, then waits up to ``drain_timeout`` for the deliveries handed
    out to be settled (not when leaving on an exception), then closes: whatever
    is still unsettled goes back to the queue, marked redelivered.
    """

    def __init__(self, queue: str, prefetch: int, drain_timeout: float) -> None:
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, not {prefetch}")
        self.queue = queue
        self.prefetch = prefetch
        self._drain_timeout = drain_timeout
        # Bounded: the broker never has more than ``prefetch`` unsettled here (+1: the end mark).
        self._buffer: asyncio.Queue[Delivery | None] = asyncio.Queue(maxsize=prefetch + 1)
        self._unsettled: set[Delivery] = set()
        self._all_settled = asyncio.Event()
        self._all_settled.set()
        self._started = False
        self._stopped = False
        self._closed = False

    async def __aenter__(self) -> Consumer:
        await self._start()
        self._started = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close(drain=exc_type is None)

    def __aiter__(self) -> Consumer:
        return self

    async def __anext__(self) -> Delivery:
        if not self._started:
            raise RuntimeError("iterate inside `async with bus.consume(queue, prefetch=n)`")
        delivery = await self._buffer.get()
        if delivery is None:
            self._buffer.put_nowait(None)  # every later call ends too
            raise StopAsyncIteration
        return delivery

    @property
    def unsettled(self) -> int:
        """Deliveries received from the broker and not settled yet (buffered or handed out)."""
        return len(self._unsettled)

    async def stop(self) -> None:
        """Receive no more: end the iteration, return the deliveries not handed out yet."""
        if self._stopped:
            return
        self._stopped = True
        await self._cancel()
        while not self._buffer.empty():
            delivery = self._buffer.get_nowait()
            if delivery is not None:
                with contextlib.suppress(DeliveryLost):  # already back in the queue
                    await delivery.requeue()
        self._buffer.put_nowait(None)

    async def close(self, *, drain: bool = True) -> None:
        """Stop, drain (wait for handed-out deliveries to be settled), close."""
        if self._closed:
            return
        try:
            await self.stop()
            if drain and self._unsettled:
                try:
                    async with asyncio.timeout(self._drain_timeout):
                        await self._all_settled.wait()
                except TimeoutError:
                    log.warning(
                        "queue %s: %d deliveries still unsettled after %.1f s; returning them",
                        self.queue,
                        len(self._unsettled),
                        self._drain_timeout,
                        extra={"stage": "bus", "queue": self.queue},
                    )
        finally:
            self._closed = True
            await self._shutdown()

    def _accept(self, delivery: Delivery) -> bool:
        """Buffer a delivery from the broker; ``False`` if it must go back (stopped, full)."""
        if self._stopped or self._buffer.full():
            return False
        self._unsettled.add(delivery)
        self._all_settled.clear()
        self._buffer.put_nowait(delivery)
        return True

    def _forget(self, delivery: Delivery) -> None:
        self._unsettled.discard(delivery)
        if not self._unsettled:
            self._all_settled.set()
        self._settled_one()

    def _settled_one(self) -> None:  # noqa: B027 (an optional hook)
        """Hook: a delivery was settled (room for one more under ``prefetch``)."""

    @abstractmethod
    async def _start(self) -> None:
        """Start receiving; raise ``ConsumeError`` if the queue cannot be consumed."""

    @abstractmethod
    async def _cancel(self) -> None:
        """Stop receiving new deliveries."""

    @abstractmethod
    async def _shutdown(self) -> None:
        """Release everything; unsettled deliveries go back to the queue."""


class Bus(Protocol):
    """A message transport: ``AmqpBus`` (RabbitMQ) or ``MemoryBus`` (in process)."""

    async def publish(self, message: Message) -> None:
        """Publish; return once the broker confirmed. ``PublishError`` otherwise."""

    async def publish_many(self, messages: Sequence[Message]) -> None:
        """Publish all, confirms awaited together; ``PublishError`` if any failed."""

    async def declare_queue(self, name: str, bindings: Sequence[Binding]) -> None:
        """Declare a queue (and its dead-letter queue) bound by (exchange, key) pairs."""

    def consume(self, queue: str, *, prefetch: int) -> Consumer:
        """Deliveries from ``queue``: an async context manager and iterator."""
        ...

    async def close(self) -> None:
        """Close the bus; unsettled deliveries of its consumers go back to their queues."""
