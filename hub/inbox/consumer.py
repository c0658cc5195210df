"""The consumer of ``<id>.down``: what arrives from the node's ancestors, checked, into
the inbox (``hub.inbox.entries``).

    <id>.down ─ route ─ sender is an ancestor ─ publisher ─ each record: re-validate,
              origin, topic
              ─┬─ inbox (one SQLite transaction) ─ ack ─ webhook
               ├─ not wanted (a topic the subscription leaves out): ack, keep nothing
               ├─ the message wrong: dead letter with the reason (<id>.down.dead)
               └─ one record of a batch wrong: that record alone is a dead letter

The ack point is after the inbox transaction has committed, so a crash loses
nothing: the broker delivers again and the duplicate is ``unchanged``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from hub import records
from hub.bus import BusError, Delivery, Message, RefusedPart, parse_key, wanted_by
from hub.bus.contract import Consumer
from hub.bus.routing import DOWN, TOPIC_HEADER
from hub.bus.topology import broker_user
from hub.errors import Problem
from hub.federation import Federation, Node, UnknownNode
from hub.federation.origins import origin_problems
from hub.inbox.entries import PUSH, SUBSCRIPTION, Received, receive
from hub.lifecycle import first_of
from hub.nodedb import transaction
from hub.records import Record, RecordInvalid
from hub.records.safe_xml import Limits

log = logging.getLogger(__name__)

MAX_REASON = 1000
"""Longest dead-letter reason, in characters (the header travels with every dead letter)."""


@dataclass(frozen=True, slots=True)
class Checked:
    """One message after the checks: the records to keep, or why it is dead."""

    records: tuple[Record, ...] = ()
    positions: tuple[int, ...] = ()  # each record's 1-based place in the message
    of: int = 1  # how many records the message holds
    skipped: int = 0  # records the node's subscriptions do not want (a topic left out)
    reason: str = ""  # set: dead-letter the message with this reason
    refused: tuple[RefusedPart, ...] = ()  # records of a batch dead-lettered on their own


@dataclass(frozen=True)
class DownChecker:
    """The checks a node applies to everything that arrives from above.

    Nothing from the bus is trusted: the routing key must name an ancestor of
    the node, the broker user that published must be that ancestor's, every
    record is validated again and must be the ancestor's own (origin, site
    code, kind), and the ``x-govhub-topic`` header must tell the truth.
    """

    federation: Federation
    node_id: str
    user_prefix: str = ""
    limits: Limits = records.DEFAULT_LIMITS

    def check(self, message: Message) -> Checked:
        key = message.routing_key
        where = f"{key} ({message.message_id})"
        try:
            route = parse_key(key)
            sender = self.federation.by_path(route.path)
        except (ValueError, UnknownNode) as exc:
            return Checked(reason=f"unknown route: {exc}")
        if sender.id == self.node_id or not self.federation.is_in_subtree(self.node_id, sender.id):
            return Checked(reason=f"{key}: node {sender.id!r} is not above {self.node_id!r}")
        expected = broker_user(sender.id, self.user_prefix)
        if message.user_id != expected:
            return Checked(
                reason=f"spoofed sender: {key} published by broker user {message.user_id!r}, "
                f"not by {expected!r} of node {sender.id!r}"
            )
        try:
            parts = records.parse_parts(message.body, where, limits=self.limits)
        except RecordInvalid as exc:  # not a usable document at all
            return Checked(reason=_reason("invalid record", exc.problems))
        header = message.headers.get(TOPIC_HEADER)
        found, refused = [], []
        for part in parts:  # in a batch, each record is kept or refused on its own
            reason = _refusal(part, sender, where, route.kind, header)
            if part.record is not None and not reason:
                found.append((part.index, part.record))
            else:
                refused.append(RefusedPart(part.data, part.index, len(parts), reason))
        if len(parts) == 1 and refused:  # a lone record: the message is the dead letter
            return Checked(reason=refused[0].reason)
        wanted = [
            (index, record)
            for index, record in found
            if wanted_by(self.federation, self.node_id, key, _topic(record))
        ]
        return Checked(
            records=tuple(record for _, record in wanted),
            positions=tuple(index for index, _ in wanted),
            of=len(parts),
            skipped=len(found) - len(wanted),
            refused=tuple(refused),
        )


def _refusal(part: records.Part, sender: Node, where: str, kind: str, header: object) -> str:
    """Why one record of a message from ``sender`` is refused ("" when it is not)."""
    if part.record is None:
        return _reason("invalid record", part.problems)
    came = f"sent by node {sender.id!r}"
    problems = origin_problems(
        part.record, sender, where, came=came, kind=kind, kind_came="sent under"
    )
    if problems:
        return _reason("wrong origin", problems)
    if header is not None and _topic(part.record) != header:
        return f"{TOPIC_HEADER} {header!r} is not the record's topic ({_topic(part.record)!r})"
    return ""


@dataclass(frozen=True, slots=True)
class Kept:
    """A record revision offered to the inbox, what it changed, and its XML."""

    outcome: Received
    record: Record
    body: bytes


@dataclass
class Tally:
    """What the consumer has done since it started (``/status`` shows it)."""

    outcomes: dict[str, int] = field(default_factory=lambda: {r.value: 0 for r in Received})
    skipped: int = 0
    rejected: int = 0
    last_rejection: str | None = None
    requeued: int = 0


def keep(conn: sqlite3.Connection, found: Sequence[Record], message: Message) -> list[Kept]:
    """Keep the records of one message in one transaction; say what each changed."""
    route = parse_key(message.routing_key)
    via = PUSH if route.direction == DOWN else SUBSCRIPTION
    done = []
    with transaction(conn):
        for record in found:
            body = record.to_xml(pretty=False)
            outcome = receive(
                conn,
                record,
                routing_key=message.routing_key,
                via=via,
                from_path=route.path,
                body=body,
            )
            done.append(Kept(outcome, record, body))
    return done


async def receive_forever(
    consumer: Consumer,
    checker: DownChecker,
    state: sqlite3.Connection,
    stop: asyncio.Event,
    *,
    on_kept: Callable[[Kept], None] | None = None,
    tally: Tally | None = None,
    poll: float = 0.5,
) -> Tally:
    """Take deliveries one at a time until ``stop`` is set (or the consumer stops).

    ``consumer`` bounds what is in flight (its prefetch); ``on_kept`` is called
    for each new or revised record after the ack, and must not block.
    """
    tally = tally or Tally()
    while not stop.is_set():
        try:
            delivery = await asyncio.wait_for(consumer.__anext__(), poll)
        except TimeoutError:
            continue
        except StopAsyncIteration:
            break
        kept = await _handle(delivery, checker, state, tally, stop)
        for item in kept:
            if on_kept is not None:
                on_kept(item)
    return tally


async def _handle(
    delivery: Delivery,
    checker: DownChecker,
    state: sqlite3.Connection,
    tally: Tally,
    stop: asyncio.Event,
) -> list[Kept]:
    message = delivery.message
    checked = checker.check(message)
    if checked.reason:
        if await _settle(delivery.reject(checked.reason), checker.node_id):  # to <id>.down.dead
            _count_rejected(tally, message, [checked.reason], checker.node_id)
        return []
    try:
        done = await asyncio.to_thread(keep, state, checked.records, message)
    except sqlite3.Error as exc:  # disk full, locked too long: the broker keeps the message
        log.error(
            "inbox write failed, message returned to the queue: %s",
            exc,
            extra={"node": checker.node_id, "stage": "inbox"},
        )
        tally.requeued += 1
        await _settle(delivery.requeue(), checker.node_id)
        await first_of(stop, timeout=1.0)
        return []
    # The ack point: after the commit. If the ack is lost, the redelivery is ``unchanged``.
    # Records refused on their own (by the checks, or found in conflict with the revision
    # kept) go to the dead letters first, one by one.
    refused = [*checked.refused, *_conflicts(done, checked)]
    if not refused:
        await _settle(delivery.ack(), checker.node_id)
    elif await _settle(delivery.ack_refusing(refused), checker.node_id):
        _count_rejected(tally, message, [part.reason for part in refused], checker.node_id)
    tally.skipped += checked.skipped
    for kept in done:
        tally.outcomes[kept.outcome.value] += 1
    return [kept for kept in done if kept.outcome in (Received.NEW, Received.REVISED)]


def _conflicts(done: Sequence[Kept], checked: Checked) -> list[RefusedPart]:
    """The records found kept under their revision with other content: each a dead letter
    of its own, since a changed record needs a higher revision."""
    return [
        RefusedPart(
            kept.body,
            position,
            checked.of,
            f"conflict: {kept.record.id} revision {kept.record.revision} is already in the "
            "inbox with other content (a changed record needs a higher revision)",
        )
        for kept, position in zip(done, checked.positions, strict=True)
        if kept.outcome is Received.CONFLICT
    ]


def _count_rejected(tally: Tally, message: Message, reasons: list[str], node_id: str) -> None:
    tally.rejected += len(reasons)
    tally.last_rejection = reasons[-1]
    for reason in reasons:
        log.warning(
            "dead-lettered %s: %s",
            message.message_id,
            reason,
            extra={"node": node_id, "stage": "inbox", "record": message.message_id},
        )


async def _settle(settling: Awaitable[None], node_id: str) -> bool:
    """Await ack/requeue/reject; a lost delivery or a failed dead-letter publish is logged:
    the broker delivers the message again."""
    try:
        await settling
    except BusError as exc:
        log.warning(
            "could not settle a delivery: %s", exc, extra={"node": node_id, "stage": "inbox"}
        )
        return False
    return True


def _topic(record: Record) -> str | None:
    return record.topic.top if record.topic else None


def _reason(what: str, problems: Sequence[Problem]) -> str:
    return f"{what}: {'; '.join(str(p) for p in problems)}"[:MAX_REASON]
