"""Relay: move the outbox up to the broker, in order, confirmed, with backoff.

An entry counts as sent only after the broker's publisher confirm; until then
it stays in the outbox, so a crash, a node restart or a broker outage loses
nothing (a confirm lost in a crash means the entry is sent again, and the hub's
revision rule makes the duplicate harmless).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import datetime

from hub.bus import BusError, Message
from hub.bus.message import Bus
from hub.bus.routing import TOPIC_HEADER, down_key
from hub.node import outbox
from hub.records import Record

log = logging.getLogger(__name__)

RECORD_HEADER = "x-govhub-record"
REVISION_HEADER = "x-govhub-revision"
HASH_HEADER = "x-govhub-hash"


def headers_for(
    record_id: str, revision: int, content_hash: str, topic: str | None
) -> dict[str, str | int]:
    """The headers every record message carries (consumers filter topics on them)."""
    headers: dict[str, str | int] = {
        RECORD_HEADER: record_id,
        REVISION_HEADER: revision,
        HASH_HEADER: content_hash,
    }
    if topic:
        headers[TOPIC_HEADER] = topic
    return headers


def message_for(entry: outbox.Entry) -> Message:
    """The bus message that carries one outbox entry upward."""
    return Message(
        "up",
        entry.routing_key,
        entry.body,
        headers=headers_for(entry.record_id, entry.revision, entry.content_hash, entry.topic),
        message_id=f"{entry.record_id}@{entry.revision}",
    )


def push_message(record: Record, sender_path: str) -> Message:
    """The bus message that pushes ``record`` from the portal at ``sender_path`` to its subtree."""
    topic = record.topic.top if record.topic else None
    return Message(
        "down",
        down_key(sender_path, record.kind),
        record.to_xml(pretty=False),
        headers=headers_for(record.id, record.revision, record.content_hash(), topic),
        message_id=f"{record.id}@{record.revision}",
    )


async def relay_once(state: sqlite3.Connection, bus: Bus, *, batch: int = 200) -> int:
    """Send the due entries (at most ``batch``); return how many the broker confirmed."""
    entries = await asyncio.to_thread(outbox.due, state, batch)
    if not entries:
        return 0
    seqs = [entry.seq for entry in entries]
    try:
        await bus.publish_many([message_for(entry) for entry in entries])
    except BusError as exc:
        retry_at = await asyncio.to_thread(outbox.mark_failed, state, seqs, str(exc))
        log.warning(
            "relay failed for %d records, next try at %s: %s",
            len(seqs),
            retry_at.isoformat(timespec="seconds"),
            exc,
            extra={"stage": "relay"},
        )
        return 0
    await asyncio.to_thread(outbox.mark_sent, state, seqs)  # the point where an entry is done
    return len(seqs)


async def relay_forever(
    state: sqlite3.Connection,
    bus: Bus,
    stop: asyncio.Event,
    wake: asyncio.Event,
    *,
    batch: int = 200,
    idle: float = 1.0,
) -> None:
    """Relay until ``stop`` is set; ``wake`` is set by whoever adds to the outbox."""
    while not stop.is_set():
        sent = await relay_once(state, bus, batch=batch)
        if sent:
            continue
        wake.clear()
        wait = idle if outbox.counts(state).failing == 0 else _until_next_due(state, idle)
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()


def _until_next_due(state: sqlite3.Connection, cap: float) -> float:
    row = state.execute("SELECT MIN(next_attempt_at) FROM outbox WHERE sent_at IS NULL").fetchone()
    if not row or row[0] is None:
        return cap
    delay = (datetime.fromisoformat(row[0]) - outbox.now()).total_seconds()
    return max(0.05, min(delay, 300.0))
