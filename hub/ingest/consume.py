"""The hub's consumer: records from the subtree's nodes into the store.

One batch at a time, top to bottom::

    take up to ``batch`` deliveries ─ check each (route, node, publisher, record,
    origin) ─ store the good ones and the dead letters in ONE transaction ─ ack

A node is never trusted: the record is validated again, and its origin must
match the routing key and the broker user that published it. Whatever fails a
check goes to the ``dead_letters`` table with its reason, in the same
transaction as the records, and is acked only after that commit. While the
database is down nothing is acked: the batch waits, retries with backoff and
resumes by itself; the broker keeps (or redelivers) everything unacked.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub import records
from hub.bus import Delivery, DeliveryLost, Message, RefusedPart, parse_key
from hub.bus.contract import Consumer
from hub.bus.topology import broker_user
from hub.errors import Problem
from hub.federation import Federation, UnknownNode
from hub.federation.origins import origin_problems
from hub.records import RecordInvalid
from hub.records.safe_xml import Limits
from hub.store import Outcome, StoredRecord, StoreError, add_dead_letter, upsert_records
from hub.store.connection import Connection, Reconnecting, translate_errors

log = logging.getLogger(__name__)


@dataclass
class Verdict:
    """What the checks found in one message: its records and the records refused one by
    one, or (``reason``) why the whole message is dead."""

    records: list[StoredRecord] = field(default_factory=list)
    reason: str = ""
    problems: list[str] = field(default_factory=list)
    refused: list[RefusedPart] = field(default_factory=list)

    @property
    def dead(self) -> int:
        """Dead letters this verdict makes: one for the message, or one per refused record."""
        return 1 if self.reason else len(self.refused)


@dataclass
class Checked:
    """One delivery after the checks."""

    delivery: Delivery
    verdict: Verdict


@dataclass
class Tally:
    """What the consumer has done since it started (for logs and tests)."""

    outcomes: dict[str, int] = field(default_factory=dict)
    dead: int = 0
    batches: int = 0
    waits_for_database: int = 0

    def add(self, outcomes: Sequence[Outcome], dead: int) -> None:
        for outcome in outcomes:
            self.outcomes[outcome.value] = self.outcomes.get(outcome.value, 0) + 1
        self.dead += dead
        self.batches += 1


@dataclass(frozen=True)
class Checker:
    """The checks a hub applies to every delivery, for the subtree it serves."""

    federation: Federation
    scope: str  # the id of the node whose subtree this hub aggregates
    user_prefix: str = ""
    limits: Limits = records.DEFAULT_LIMITS

    def check(self, delivery: Delivery) -> Checked:
        return Checked(delivery, self.check_message(delivery.message))

    def check_message(self, message: Message) -> Verdict:
        """The checks on one message (a delivery, or a dead letter being retried)."""
        where = f"{message.routing_key} ({message.message_id})"
        try:
            route = parse_key(message.routing_key)
            node = self.federation.by_path(route.path)
        except (ValueError, UnknownNode) as exc:
            return Verdict(reason=f"unknown route: {exc}")
        if route.direction != "up" or not self.federation.is_in_subtree(node.id, self.scope):
            return Verdict(reason=f"{message.routing_key} is outside {self.scope}'s subtree")
        expected_user = broker_user(node.id, self.user_prefix)
        if message.user_id != expected_user:
            reason = (
                f"published by broker user {message.user_id!r}, "
                f"not by {expected_user!r} of node {node.id!r}"
            )
            return Verdict(reason=reason)
        try:
            parts = records.parse_parts(message.body, where, limits=self.limits)
        except RecordInvalid as exc:
            return Verdict(reason="invalid record", problems=_lines(exc.problems))
        verdict = Verdict()
        for part in parts:  # in a batch, each record is accepted or refused on its own
            if part.record is None:
                reason, problems = "invalid record", list(part.problems)
            else:
                reason = "spoofed or wrong origin"
                came = f"arrived under node {node.id!r}'s key"
                problems = origin_problems(part.record, node, where, came=came, kind=route.kind)
            if part.record is not None and not problems:
                verdict.records.append(StoredRecord.from_record(part.record, node.path))
            else:
                lines = tuple(_lines(problems))
                refused = RefusedPart(part.data, part.index, len(parts), reason, lines)
                verdict.refused.append(refused)
        if len(parts) == 1 and verdict.refused:  # a lone record: the message is the dead letter
            lone = verdict.refused[0]
            return Verdict(reason=lone.reason, problems=list(lone.problems))
        return verdict


CONFLICT_REASON = "conflict: same id and revision, other content"


@translate_errors("store a batch")
def store_batch(conn: Connection, checked: Sequence[Checked], source: str) -> list[Outcome]:
    """Store the batch's records and dead letters in one transaction.

    A record whose id and revision are stored with other content (``conflict``)
    is not stored, and is kept as a dead letter too: its content is never lost.
    """
    with conn.transaction():
        pairs = [(c.delivery.message, r) for c in checked for r in c.verdict.records]
        outcomes = upsert_records(conn, [record for _, record in pairs])
        for item in checked:
            add_dead_letters(conn, item.delivery.message, item.verdict, source)
        outcome_of = zip(pairs, outcomes, strict=True)
        conflicts = [pair for pair, outcome in outcome_of if outcome is Outcome.CONFLICT]
        if conflicts:
            add_conflicts(conn, conflicts, source)
    return outcomes


def add_conflicts(
    conn: Connection, conflicts: Sequence[tuple[Message, StoredRecord]], source: str
) -> None:
    """Keep each record that conflicts with the stored one as a dead letter, with both hashes."""
    ids = [record.id for _, record in conflicts]
    rows = conn.execute("SELECT id, content_hash FROM records WHERE id = ANY(%s)", [ids])
    stored = dict(rows.fetchall())
    for message, record in conflicts:
        where = f"{message.routing_key} ({message.message_id})"
        problem = Problem(
            where,
            None,
            "revision",
            f"{record.id} revision {record.revision} is stored with content "
            f"{stored.get(record.id)}; this copy has content {record.content_hash}",
            "a higher revision for changed content; the stored copy was kept",
        )
        headers: dict[str, Any] = dict(message.headers)
        headers |= {"message_id": message.message_id, "user_id": message.user_id}
        dead_id = add_dead_letter(
            conn,
            reason=CONFLICT_REASON,
            problems=[str(problem)],
            routing_key=message.routing_key,
            headers=headers,
            body=record.xml.encode("utf-8"),  # this record alone, whatever batch it came in
            source=source,
        )
        log.warning(
            "record %s revision %d arrived with other content: kept as dead letter #%d",
            record.id,
            record.revision,
            dead_id,
            extra={"stage": "ingest"},
        )


def add_dead_letters(conn: Connection, message: Message, verdict: Verdict, source: str) -> None:
    """Keep what ``verdict`` refused: the whole message, or each refused record of a batch."""
    # message_id and user_id (the publisher, checked again on a retry) travel as
    # properties, not headers: keep them with the headers.
    headers: dict[str, Any] = dict(message.headers)
    headers |= {"message_id": message.message_id, "user_id": message.user_id}
    dead = [(verdict.reason, verdict.problems, message.body, headers)] if verdict.reason else []
    for part in verdict.refused:
        dead.append((part.reason, list(part.problems), part.body, headers | part.header))
    for reason, problems, body, kept in dead:
        add_dead_letter(
            conn,
            reason=reason,
            problems=problems,
            routing_key=message.routing_key,
            headers=kept,
            body=body,
            source=source,
        )


async def consume_forever(
    consumer: Consumer,
    checker: Checker,
    connect: Callable[[], Connection],
    stop: asyncio.Event,
    *,
    batch: int = 200,
    linger: float = 0.05,
    source: str = "hub",
    tally: Tally | None = None,
) -> Tally:
    """Consume until ``stop`` is set; return what was done.

    ``connect`` opens a store connection; it is called again after the database
    went away, until it succeeds.
    """
    tally = tally or Tally()

    def waited(_: StoreError) -> None:
        tally.waits_for_database += 1

    store = Reconnecting(connect, "hub consumer", extra={"stage": "ingest"}, on_wait=waited)
    try:
        while not stop.is_set():
            taken, ended = await _take(consumer, batch, linger, stop)
            if not taken:
                if ended:  # the consumer was stopped or closed under us: nothing more will come
                    break
                continue
            checked = [checker.check(delivery) for delivery in taken]
            storing = functools.partial(store_batch, checked=checked, source=source)
            outcomes = await store.run(storing, stop)
            if outcomes is None:  # stopping while the database is down: leave them unacked
                break
            lost = 0
            for item in checked:  # the ack point: after the transaction has committed
                try:
                    await item.delivery.ack()
                except DeliveryLost:  # the channel dropped: the broker delivers it again,
                    lost += 1  # and storing it again changes nothing
            if lost:
                log.warning(
                    "%d deliveries stored but not acked (channel lost): they come again",
                    lost,
                    extra={"stage": "ingest"},
                )
            dead = sum(item.verdict.dead for item in checked)
            tally.add(outcomes, dead)
            if dead:
                log.warning("%d dead letters kept", dead, extra={"stage": "ingest"})
    finally:
        store.close()
    return tally


async def _take(
    consumer: Consumer, batch: int, linger: float, stop: asyncio.Event
) -> tuple[list[Delivery], bool]:
    """Up to ``batch`` deliveries: wait a little for the first, then at most ``linger``
    seconds more for the rest (a steady trickle must not hold the first one back).

    Also whether the consumer has ended (stopped or closed: no more will come).
    """
    loop = asyncio.get_running_loop()
    taken: list[Delivery] = []
    timeout, deadline = 0.5, 0.0
    while len(taken) < batch and not stop.is_set():
        try:
            taken.append(await asyncio.wait_for(consumer.__anext__(), timeout))
        except TimeoutError:
            break
        except StopAsyncIteration:
            return taken, True
        deadline = deadline or loop.time() + linger
        # (at least 1 ms: enough to take what is buffered already, never a busy loop)
        timeout = max(deadline - loop.time(), 0.001)
    return taken, False


def _lines(problems: Sequence[Problem]) -> list[str]:
    return [str(p) for p in problems]
