"""An in-process bus with RabbitMQ's semantics, for unit tests and the embedded demo.

Topic routing (``*``, ``#``), bounded queues with a delivery limit, dead
letters, prefetch, redelivery of what a closed consumer left unsettled, and
``user_id`` checking all behave as on the broker (tests/test_bus.py runs the
same suite on both). Permissions are not modelled: setup_broker's rights are
proved on RabbitMQ itself (tests/test_broker_setup.py).
"""

from __future__ import annotations

import dataclasses
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass

from hub.bus.contract import (
    BROKER_REASONS,
    Consumer,
    Delivery,
    Message,
    dead_letter_headers,
    ready_to_publish,
)
from hub.bus.errors import ConsumeError, PublishError, PublishRefused
from hub.bus.routing import DIRECTIONS, Binding, topic_matches
from hub.bus.topology import DEAD, QueueLimits, check_queue_name, dead_queue


@dataclass(slots=True)
class _Entry:
    message: Message
    returns: int = 0
    redelivered: bool = False


class _Queue:
    def __init__(self, broker: MemoryBroker, name: str, limits: QueueLimits, *, is_dead: bool):
        self.broker = broker
        self.name = name
        self.limits = limits
        self.is_dead = is_dead
        self.ready: deque[_Entry] = deque()
        self.returned: deque[_Entry] = deque()  # delivered before new ones, as quorum queues do
        self.consumers: list[MemoryConsumer] = []
        self._turn = 0

    def __len__(self) -> int:
        return len(self.ready) + len(self.returned)

    def put(self, entry: _Entry) -> None:
        self.ready.append(entry)
        self.dispatch()

    def give_back(self, entry: _Entry) -> None:
        """An unsettled delivery returns; past the delivery limit it is dead-lettered."""
        entry.returns += 1
        entry.redelivered = True
        if not self.is_dead and entry.returns > self.limits.delivery_limit:
            message = entry.message
            reason = BROKER_REASONS["delivery_limit"]
            headers = dead_letter_headers(message, self.name, reason)
            dead = dataclasses.replace(message, headers=headers)
            for queue in self.broker.route(DEAD, self.name):
                queue.put(_Entry(dead))
            return
        self.returned.append(entry)
        self.dispatch()

    def dispatch(self) -> None:
        """Hand ready messages to consumers with room under their prefetch, in turn."""
        while self.returned or self.ready:
            consumer = self._next_consumer()
            if consumer is None:
                return
            entry = self.returned.popleft() if self.returned else self.ready.popleft()
            consumer.receive(entry)

    def _next_consumer(self) -> MemoryConsumer | None:
        for step in range(len(self.consumers)):
            consumer = self.consumers[(self._turn + step) % len(self.consumers)]
            if consumer.has_room:
                self._turn = (self._turn + step + 1) % len(self.consumers)
                return consumer
        return None


class MemoryBroker:
    """Exchanges, queues and bindings shared by the ``MemoryBus`` instances of a process."""

    def __init__(self) -> None:
        self.queues: dict[str, _Queue] = {}
        self._bindings: dict[tuple[str, str, str], None] = {}  # (exchange, key, queue), ordered

    def declare(self, name: str, bindings: Sequence[Binding], limits: QueueLimits) -> None:
        check_queue_name(name)
        for exchange, _ in bindings:
            if exchange not in DIRECTIONS:
                raise ValueError(f"cannot bind to {exchange!r}: not one of {', '.join(DIRECTIONS)}")
        if name not in self.queues:
            self.queues[name] = _Queue(self, name, limits, is_dead=False)
            self.queues[dead_queue(name)] = _Queue(self, dead_queue(name), limits, is_dead=True)
            self._bindings[(DEAD, name, dead_queue(name))] = None
        for exchange, key in bindings:
            self._bindings[(exchange, key, name)] = None

    def route(self, exchange: str, key: str) -> list[_Queue]:
        names = dict.fromkeys(
            queue
            for bound, pattern, queue in self._bindings
            if bound == exchange and topic_matches(pattern, key)
        )
        return [self.queues[name] for name in names]

    def enqueue(self, exchange: str, keyed: Sequence[tuple[str, Message]]) -> None:
        """Route every (key, message), or none: ``PublishError`` if one is unroutable or a
        queue is full."""
        plan = []
        for key, message in keyed:
            targets = self.route(exchange, key)
            if not targets:
                raise PublishError(
                    exchange=exchange,
                    routing_key=key,
                    reason="no queue is bound to this key (NO_ROUTE)",
                    fix="run govhub broker setup, or check the key",
                )
            plan.append((targets, message))
        wanted = Counter(queue.name for targets, _ in plan for queue in targets)
        for name, count in wanted.items():
            queue = self.queues[name]
            # As quorum queues do: refuse a message once the queue holds more than the limit.
            if len(queue) + count - 1 > queue.limits.max_length:
                raise PublishError(
                    exchange=exchange,
                    routing_key=keyed[0][0],
                    reason=f"queue {name} is full ({queue.limits.max_length} messages ready)",
                    fix="start its consumer, or raise the queue's max length",
                )
        for targets, message in plan:
            for queue in targets:
                queue.put(_Entry(message))


class MemoryBus:
    """A ``Bus`` in this process. ``as_user`` gives another connection to the same broker."""

    def __init__(
        self,
        *,
        user: str = "guest",
        broker: MemoryBroker | None = None,
        drain_timeout: float = 5.0,
        limits: QueueLimits | None = None,
    ) -> None:
        self.user = user
        self.broker = broker or MemoryBroker()
        self.drain_timeout = drain_timeout
        self.limits = limits or QueueLimits()
        self._consumers: set[MemoryConsumer] = set()
        self._closed = False

    def as_user(self, user: str) -> MemoryBus:
        """A bus for another user on the same in-process broker."""
        return MemoryBus(
            user=user, broker=self.broker, drain_timeout=self.drain_timeout, limits=self.limits
        )

    async def publish(self, message: Message) -> None:
        await self.publish_many([message])

    async def publish_many(self, messages: Sequence[Message]) -> None:
        stamped = [self._stamp(message) for message in messages]
        for exchange in DIRECTIONS:
            batch = [message for message in stamped if message.exchange == exchange]
            if batch:
                self.broker.enqueue(exchange, [(m.routing_key, m) for m in batch])

    async def declare_queue(self, name: str, bindings: Sequence[Binding]) -> None:
        self.broker.declare(name, bindings, self.limits)

    def consume(self, queue: str, *, prefetch: int) -> MemoryConsumer:
        return MemoryConsumer(self, queue, prefetch)

    async def close(self) -> None:
        self._closed = True
        for consumer in list(self._consumers):
            await consumer.close(drain=False)

    def _stamp(self, message: Message) -> Message:
        message = ready_to_publish(message, self.user, closed=self._closed)
        if message.user_id != self.user:  # what RabbitMQ does with a forged user_id
            raise PublishRefused(
                exchange=message.exchange,
                routing_key=message.routing_key,
                reply_code=406,
                reply_text=(
                    f"PRECONDITION_FAILED - user_id property set to '{message.user_id}' "
                    f"but authenticated user was '{self.user}'"
                ),
            )
        return message


class MemoryConsumer(Consumer):
    def __init__(self, bus: MemoryBus, queue: str, prefetch: int) -> None:
        super().__init__(queue, prefetch, bus.drain_timeout)
        self._bus = bus
        self._source: _Queue | None = None

    @property
    def has_room(self) -> bool:
        return not self._stopped and self.unsettled < self.prefetch

    def receive(self, entry: _Entry) -> None:
        accepted = self._accept(MemoryDelivery(self, entry))
        assert accepted, "dispatch gave a delivery to a consumer without room"  # noqa: S101

    async def _start(self) -> None:
        source = self._bus.broker.queues.get(self.queue)
        if source is None:
            raise ConsumeError(
                queue=self.queue,
                reason="NOT_FOUND - no such queue",
                fix="declare it, or run govhub broker setup",
            )
        self._source = source
        self._bus._consumers.add(self)
        source.consumers.append(self)
        source.dispatch()

    def _settled_one(self) -> None:
        if self._source is not None:
            self._source.dispatch()

    async def _cancel(self) -> None:
        if self._source is not None and self in self._source.consumers:
            self._source.consumers.remove(self)

    async def _shutdown(self) -> None:
        self._bus._consumers.discard(self)
        for delivery in list(self._unsettled):
            assert isinstance(delivery, MemoryDelivery)  # noqa: S101
            delivery.give_back()
            self._forget(delivery)

    def give_back(self, entry: _Entry) -> None:
        assert self._source is not None  # noqa: S101
        self._source.give_back(entry)


class MemoryDelivery(Delivery):
    def __init__(self, consumer: MemoryConsumer, entry: _Entry) -> None:
        super().__init__(consumer, entry.message, entry.redelivered)
        self._memory_consumer = consumer
        self._entry = entry
        self._gone = False

    def give_back(self) -> None:
        """The consumer closed with this delivery unsettled: back to the queue."""
        self._gone = True
        self._memory_consumer.give_back(self._entry)

    def _check(self, action: str) -> None:
        if self._gone:
            raise self._lost(action, "its consumer was closed")

    async def _ack(self) -> None:
        self._check("acked")

    async def _requeue(self) -> None:
        self._check("requeued")
        self._gone = True
        self._memory_consumer.give_back(self._entry)

    async def _dead_then_ack(self, dead: list[Message]) -> None:
        self._check("rejected")
        bus = self._memory_consumer._bus
        letters = [(self.queue, dataclasses.replace(m, user_id=bus.user)) for m in dead]
        bus.broker.enqueue(DEAD, letters)
        self._gone = True
