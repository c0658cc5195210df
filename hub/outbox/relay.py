"""Relay: move the outbox up to the broker, in order, confirmed, with backoff.

Consecutive entries with one routing key travel together, up to ``PER_MESSAGE``
records in one ``<records>`` message; the hub still accepts or refuses each
record on its own. An entry counts as sent only after the broker's publisher confirm; until then
it stays in the outbox, so a crash, a node restart or a broker outage loses
nothing (a confirm lost in a crash means the entry is sent again, and the hub's
revision rule makes the duplicate harmless).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from datetime import datetime

from hub.bus import BusError, Message
from hub.bus.contract import Bus
from hub.bus.routing import TOPIC_HEADER, down_key
from hub.lifecycle import first_of
from hub.nodedb import now
from hub.outbox import entries as outbox
from hub.records import NS, Record

log = logging.getLogger(__name__)

RECORD_HEADER = "x-govhub-record"
REVISION_HEADER = "x-govhub-revision"
HASH_HEADER = "x-govhub-hash"
COUNT_HEADER = "x-govhub-records"
"""On a ``<records>`` message: how many records it carries."""

PER_MESSAGE = 50
"""Records in one upward message at most: the hub takes a batch apart record by record,
and one message per record costs the broker and both clients most of their time."""
MESSAGE_BYTES = 512 * 1024
"""A batch message grows to about this size at most (the hub refuses documents over
``GOVHUB_MAX_RECORD_BYTES``, 4 MiB by default)."""

_BATCH_OPEN = f'<records xmlns="{NS}">'.encode()
_BATCH_CLOSE = b"</records>"


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


def batch_message(entries: Sequence[outbox.Entry]) -> Message:
    """One ``<records>`` message for entries that share a routing key.

    The hub judges each record of it on its own (``hub.records.parse_parts``):
    one bad record is dead-lettered alone. The topic header is set when every
    record has the same topic; subscribers filter each record anyway.
    """
    first = entries[0]
    body = b"".join([_BATCH_OPEN, *(_without_declaration(e.body) for e in entries), _BATCH_CLOSE])
    headers: dict[str, str | int] = {COUNT_HEADER: len(entries)}
    topics = {entry.topic for entry in entries}
    if len(topics) == 1 and first.topic:
        headers[TOPIC_HEADER] = first.topic
    return Message(
        "up",
        first.routing_key,
        body,
        headers=headers,
        message_id=f"{first.record_id}@{first.revision}+{len(entries) - 1}",
    )


def messages_for(
    entries: Sequence[outbox.Entry],
    per_message: int = PER_MESSAGE,
    max_bytes: int = MESSAGE_BYTES,
) -> list[Message]:
    """The messages for due entries, in outbox order: runs of entries with one routing
    key share a message, up to ``per_message`` records and about ``max_bytes``."""
    groups: list[list[outbox.Entry]] = []
    size = 0
    for entry in entries:
        last = groups[-1] if groups else None
        if (
            last is not None
            and last[0].routing_key == entry.routing_key
            and len(last) < per_message
            and size + len(entry.body) <= max_bytes
        ):
            last.append(entry)
            size += len(entry.body)
        else:
            groups.append([entry])
            size = len(entry.body)
    return [message_for(g[0]) if len(g) == 1 else batch_message(g) for g in groups]


def _without_declaration(body: bytes) -> bytes:
    """A record document of our own encoder without its ``<?xml …?>`` line."""
    if body.startswith(b"<?xml"):
        return body[body.index(b"?>") + 2 :].lstrip()
    return body


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


async def relay_once(
    state: sqlite3.Connection, bus: Bus, *, batch: int = 200, per_message: int = PER_MESSAGE
) -> int:
    """Send the due entries (at most ``batch``, up to ``per_message`` records in one message);
    return how many the broker confirmed."""
    entries = await asyncio.to_thread(outbox.due, state, batch)
    if not entries:
        return 0
    seqs = [entry.seq for entry in entries]
    try:
        await bus.publish_many(messages_for(entries, per_message))
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
    per_message: int = PER_MESSAGE,
    idle: float = 1.0,
) -> None:
    """Relay until ``stop`` is set; ``wake`` is set by whoever adds to the outbox."""
    while not stop.is_set():
        sent = await relay_once(state, bus, batch=batch, per_message=per_message)
        if sent:
            continue
        wake.clear()
        wait = idle if outbox.counts(state).failing == 0 else _until_next_due(state, idle)
        await first_of(stop, wake, timeout=wait)


def _until_next_due(state: sqlite3.Connection, cap: float) -> float:
    row = state.execute("SELECT MIN(next_attempt_at) FROM outbox WHERE sent_at IS NULL").fetchone()
    if not row or row[0] is None:
        return cap
    delay = (datetime.fromisoformat(row[0]) - now()).total_seconds()
    return max(0.05, min(delay, 300.0))
