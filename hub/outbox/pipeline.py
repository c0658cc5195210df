"""What a node does with a record before it leaves: the publication pipeline.

    bytes ─ validate ─ origin check ─ dedup ─ confidentiality review ─┬─ outbox (then relay)
                                                                     └─ held for review

``accept`` (one document) and ``accept_many`` (a batch, in one transaction)
follow that order and return what happened to each record. A
record that fails any check is kept in the ``refused`` table with its reasons;
nothing is dropped silently.

The stages before dedup need no state, so they can run anywhere:
``check_document`` does validation, the origin check and the review of one
document (the harvester runs it in worker processes, ``hub.harvest.workers``),
and ``accept_checked`` takes such ``Checked`` documents through the rest in one
transaction, with the outcomes ``accept_many`` would have given.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from hub import records
from hub.bus.routing import up_key
from hub.errors import Problem
from hub.federation import Node
from hub.federation.origins import origin_problems
from hub.nodedb import transaction
from hub.outbox import entries as outbox
from hub.outbox import held
from hub.records import Record, RecordInvalid
from hub.records.safe_xml import Limits
from hub.review import Finding, Reviewer


class Outcome(StrEnum):
    QUEUED = "queued"  # in the outbox, on its way up
    HELD = "held"  # waiting for a person's review
    UNCHANGED = "unchanged"  # this revision, or the same content, was accepted before
    STALE = "stale"  # an older revision than one already accepted
    REFUSED = "refused"  # invalid, or not this node's record: kept with the reasons
    CONFLICT = "conflict"  # this revision was accepted with other content: kept as refused


@dataclass(frozen=True, slots=True)
class Accepted:
    outcome: Outcome
    record: Record | None
    problems: tuple[Problem, ...] = ()
    findings: tuple[Finding, ...] = ()

    def __str__(self) -> str:
        what = self.record.id if self.record else "record"
        if self.outcome in (Outcome.REFUSED, Outcome.CONFLICT):
            lines = "\n".join(f"  {p}" for p in self.problems)
            return f"{what}: {self.outcome.value}\n{lines}"
        if self.outcome is Outcome.HELD:
            reasons = "; ".join(f.reason for f in self.findings if f.holds)
            return f"{what}: held for review ({reasons})"
        return f"{what}: {self.outcome.value}"


@dataclass(frozen=True, slots=True)
class Checked:
    """One record document through the stages that need no state (``check_document``).

    ``data`` is the record encoder's compact output (``Record.xml_and_hash``)
    and ``content_hash`` its content hash; ``record`` the record it holds, or
    ``None`` when it did not parse. ``problems``: why it is refused (validation,
    origin); none means valid and this node's. ``findings``: the node's review
    of a valid record.
    """

    data: bytes
    source: str
    record: Record | None
    content_hash: str
    problems: tuple[Problem, ...] = ()
    findings: tuple[Finding, ...] = ()


def check_document(
    data: bytes,
    source: str,
    content_hash: str,
    *,
    node: Node,
    reviewer: Reviewer,
    limits: Limits = records.DEFAULT_LIMITS,
    record: Record | None = None,
) -> Checked:
    """Validate, check the origin and review one encoded record, as ``accept_many`` would.

    ``record``: the record ``data`` was encoded from, carried in the result
    instead of the parsed one (equal to it: encoding then parsing a valid record
    gives it back), so a caller that has it need not ship the parsed copy too.
    """
    try:
        parsed = records.parse(data, source, limits=limits)
    except RecordInvalid as exc:
        return Checked(data, source, None, content_hash, tuple(exc.problems))
    return _origin_and_review(
        data, source, content_hash, parsed, record or parsed, node=node, reviewer=reviewer
    )


def check_record(
    record: Record,
    source: str,
    *,
    node: Node,
    reviewer: Reviewer,
    limits: Limits = records.DEFAULT_LIMITS,
) -> Checked:
    """``check_document`` for a record built in code: encoded and checked from one tree
    (``hub.records.encode_checked``), with the same verdict, without parsing it again."""
    encoded = records.encode_checked(record, source, limits=limits)
    if encoded.problems:
        return Checked(encoded.data, source, None, encoded.content_hash, encoded.problems)
    return _origin_and_review(
        encoded.data, source, encoded.content_hash, record, record, node=node, reviewer=reviewer
    )


def _origin_and_review(
    data: bytes,
    source: str,
    content_hash: str,
    valid: Record,
    kept: Record,
    *,
    node: Node,
    reviewer: Reviewer,
) -> Checked:
    problems = given_to(node, valid, source)
    if problems:
        return Checked(data, source, kept, content_hash, tuple(problems))
    try:
        findings = reviewer.review(valid)
    except RecordInvalid as exc:  # the body was valid: not expected, but never lost
        return Checked(data, source, kept, content_hash, tuple(exc.problems))
    return Checked(data, source, kept, content_hash, (), findings)


def given_to(node: Node, record: Record, source: str) -> list[Problem]:
    """Why ``record`` is not ``node``'s own to publish (none: it is)."""
    return origin_problems(record, node, source, came=f"given to node {node.id!r}")


@dataclass(frozen=True)
class Pipeline:
    """One node's publication pipeline over its state database."""

    node: Node
    state: sqlite3.Connection
    reviewer: Reviewer
    limits: Limits = records.DEFAULT_LIMITS

    def accept(self, data: bytes, source: str) -> Accepted:
        """Take one record document from ``source`` through the pipeline."""
        return self.accept_many([(data, source)])[0]

    def accept_many(
        self,
        documents: Sequence[tuple[bytes, str]],
        *,
        also: Callable[[sqlite3.Connection, list[Accepted]], None] | None = None,
        encoded: bool = False,
        hashes: Sequence[str] | None = None,
    ) -> list[Accepted]:
        """Take several ``(document, source)`` pairs through the pipeline in one transaction.

        A commit with full synchronous writes costs a disk flush, so a harvest
        of thousands of items commits them in batches. Each outcome is exactly
        what ``accept`` would have said, in order (a second copy of a record in
        the same batch is ``unchanged``). ``also`` runs inside the same
        transaction, given the outcomes: the harvester moves its cursor there, so
        the cursor never gets ahead of the records it stands for. ``encoded``:
        the documents are the record encoder's own compact output
        (``Record.to_xml(pretty=False)``), kept as they are instead of written
        again. ``hashes``: with ``encoded``, each document's content hash, computed
        by the caller along with the document (``Record.xml_and_hash()``).
        """
        checked = [self._check(data, source) for data, source in documents]
        given = hashes if encoded and hashes is not None else [None] * len(checked)
        with transaction(self.state):
            results = [
                self._place(*each, encoded=encoded, content_hash=digest)
                for each, digest in zip(checked, given, strict=True)
            ]
            if also is not None:
                also(self.state, results)
        return results

    def accept_checked(
        self,
        documents: Sequence[Checked],
        *,
        also: Callable[[sqlite3.Connection, list[Accepted]], None] | None = None,
    ) -> list[Accepted]:
        """``accept_many`` for documents already through ``check_document``: dedup, then
        outbox, held or refused, in one transaction; ``also`` as for ``accept_many``.

        The outcomes are those ``accept_many`` gives for the same documents with
        ``encoded`` and their hashes. Only the review runs earlier: a record found
        unchanged here was reviewed for nothing, which costs less than coming back
        for the review inside the transaction.
        """
        with transaction(self.state):
            results = [
                self._place(
                    each.data,
                    each.source,
                    each.record,
                    list(each.problems),
                    encoded=True,
                    content_hash=each.content_hash,
                    findings=each.findings,
                )
                for each in documents
            ]
            if also is not None:
                also(self.state, results)
        return results

    def _check(self, data: bytes, source: str) -> tuple[bytes, str, Record | None, list[Problem]]:
        """Parse and check origin: the stages that need no state (run outside the lock)."""
        try:
            record = records.parse(data, source, limits=self.limits)
        except RecordInvalid as exc:
            return data, source, None, exc.problems
        return data, source, record, given_to(self.node, record, source)

    def _place(
        self,
        data: bytes,
        source: str,
        record: Record | None,
        problems: list[Problem],
        *,
        encoded: bool = False,
        content_hash: str | None = None,
        findings: tuple[Finding, ...] | None = None,
    ) -> Accepted:
        """Dedup, review (unless ``findings`` are given), then outbox or held (or refused):
        inside the caller's transaction."""
        if record is None or problems:
            return self._refuse(data, source, record, problems)
        known = outbox.latest(self.state, record.id)
        if known is not None:
            if record.revision < known.revision:
                return Accepted(Outcome.STALE, record)
            content_hash = content_hash or record.content_hash()
            if content_hash == known.content_hash:
                return Accepted(Outcome.UNCHANGED, record)
            if record.revision == known.revision:
                return self._conflict(data, source, record, known, content_hash)
        if findings is None:
            findings = self.reviewer.review(record)
        body = data if encoded else record.to_xml(pretty=False)
        if any(f.holds for f in findings):
            held.hold(self.state, record.id, record.revision, body, findings)
            return Accepted(Outcome.HELD, record, findings=findings)
        self._enqueue(record, body, content_hash)
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

    def _enqueue(self, record: Record, body: bytes, content_hash: str | None = None) -> None:
        outbox.enqueue(
            self.state,
            record_id=record.id,
            revision=record.revision,
            content_hash=content_hash or record.content_hash(),
            kind=record.kind,
            topic=record.topic.top if record.topic else None,
            routing_key=up_key(self.node.path, record.kind),
            body=body,
        )

    def _conflict(
        self, data: bytes, source: str, record: Record, known: outbox.Latest, content_hash: str
    ) -> Accepted:
        """Other content under a revision already accepted: kept in ``refused``, never lost."""
        problem = Problem(
            source,
            None,
            "revision",
            f"{record.id} revision {record.revision} was accepted with content "
            f"{known.content_hash}; this copy has content {content_hash}",
            f"revision {known.revision + 1} or higher for changed content",
        )
        kept = self._refuse(data, source, record, [problem])
        return Accepted(Outcome.CONFLICT, record, kept.problems)

    def _refuse(
        self, data: bytes, source: str, record: Record | None, problems: list[Problem]
    ) -> Accepted:
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
