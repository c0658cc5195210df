"""What a node does with a record before it leaves: the publication pipeline.

    bytes ─ validate ─ origin check ─ dedup ─ confidentiality review ─┬─ outbox (then relay)
                                                                     └─ held for review

``accept`` reads top to bottom in that order and returns what happened. A
record that fails any check is kept in the ``refused`` table with its reasons;
nothing is dropped silently.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from enum import StrEnum

from hub import records
from hub.bus.routing import up_key
from hub.errors import Problem
from hub.federation import Node
from hub.node import held, outbox
from hub.node.state import transaction
from hub.records import Record, RecordInvalid
from hub.records.safe_xml import Limits
from hub.review import Finding, Reviewer


class Outcome(StrEnum):
    QUEUED = "queued"  # in the outbox, on its way up
    HELD = "held"  # waiting for a person's review
    UNCHANGED = "unchanged"  # this revision, or the same content, was accepted before
    STALE = "stale"  # an older revision than one already accepted
    REFUSED = "refused"  # invalid, or not this node's record: kept with the reasons


@dataclass(frozen=True, slots=True)
class Accepted:
    outcome: Outcome
    record: Record | None
    problems: tuple[Problem, ...] = ()
    findings: tuple[Finding, ...] = ()

    def __str__(self) -> str:
        what = self.record.id if self.record else "record"
        if self.outcome is Outcome.REFUSED:
            return f"{what}: refused\n" + "\n".join(f"  {p}" for p in self.problems)
        if self.outcome is Outcome.HELD:
            reasons = "; ".join(f.reason for f in self.findings if f.holds)
            return f"{what}: held for review ({reasons})"
        return f"{what}: {self.outcome.value}"


@dataclass(frozen=True)
class Pipeline:
    """One node's publication pipeline over its state database."""

    node: Node
    state: sqlite3.Connection
    reviewer: Reviewer
    limits: Limits = records.DEFAULT_LIMITS

    def accept(self, data: bytes, source: str) -> Accepted:
        """Take one record document from ``source`` through the pipeline."""
        try:
            record = records.parse(data, source, limits=self.limits)
        except RecordInvalid as exc:
            return self._refuse(data, source, None, exc.problems)
        problems = self._origin_problems(record, source)
        if problems:
            return self._refuse(data, source, record, problems)
        known = outbox.latest(self.state, record.id)
        if known is not None:
            if record.revision < known.revision:
                return Accepted(Outcome.STALE, record)
            if record.revision == known.revision or record.content_hash() == known.content_hash:
                return Accepted(Outcome.UNCHANGED, record)
        findings = self.reviewer.review(record)
        body = record.to_xml(pretty=False)
        if any(f.holds for f in findings):
            with transaction(self.state):
                held.hold(self.state, record.id, record.revision, body, findings)
            return Accepted(Outcome.HELD, record, findings=findings)
        with transaction(self.state):
            self._enqueue(record, body)
        return Accepted(Outcome.QUEUED, record, findings=findings)

    def approve(self, record_id: str, revision: int, *, actor: str, reason: str) -> held.Held:
        """Release a held record to the outbox, with the decision in the audit trail."""
        with transaction(self.state):
            decision = held.decide(
                self.state, record_id, revision, approve=True, actor=actor, reason=reason
            )
            record = records.parse(decision.body, f"held:{record_id}", limits=self.limits)
            self._enqueue(record, decision.body)
        return decision

    def reject(self, record_id: str, revision: int, *, actor: str, reason: str) -> held.Held:
        with transaction(self.state):
            return held.decide(
                self.state, record_id, revision, approve=False, actor=actor, reason=reason
            )

    def _enqueue(self, record: Record, body: bytes) -> None:
        outbox.enqueue(
            self.state,
            record_id=record.id,
            revision=record.revision,
            content_hash=record.content_hash(),
            kind=record.kind,
            topic=record.topic.top if record.topic else None,
            routing_key=up_key(self.node.path, record.kind),
            body=body,
        )

    def _origin_problems(self, record: Record, source: str) -> list[Problem]:
        node = self.node
        if record.origin.node != node.id:
            message = f"record of node {record.origin.node!r} given to node {node.id!r}"
            return [Problem(source, None, "origin/@node", message, f"origin node {node.id!r}")]
        if record.origin.site != node.site_code:
            message = f"{record.origin.site!r} is not the site code of node {node.id!r}"
            return [Problem(source, None, "origin/@site", message, node.site_code)]
        return []

    def _refuse(
        self, data: bytes, source: str, record: Record | None, problems: list[Problem]
    ) -> Accepted:
        with transaction(self.state):
            self.state.execute(
                "INSERT INTO refused (at, source, problems, body) VALUES (?, ?, ?, ?)",
                (
                    outbox.now().isoformat(),
                    source,
                    json.dumps([str(p) for p in problems], ensure_ascii=False),
                    data,
                ),
            )
        return Accepted(Outcome.REFUSED, record, tuple(problems))
