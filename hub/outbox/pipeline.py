"""What a node does with a record before it leaves: the publication pipeline.

    bytes ─ validate ─ origin check ─ review ─┬─ dedup ─┬─ outbox (then relay)
                                             │         └─ held for review
                                             └─ refused (kept with the reasons)

Two steps. ``check_document`` (or ``check_record`` for a record built in code)
does what needs no state: validation, the origin check and the review of one
document, giving a ``Checked``; it runs anywhere (the harvester runs it in
worker processes, ``hub.harvest.workers``). ``Pipeline.accept_checked`` is the
one way in for a batch: it takes ``Checked`` documents through dedup, then to the
outbox, the review queue or the ``refused`` table (``hub.outbox.refused``), in one
transaction, and says what happened to each. ``accept_many`` (documents as bytes)
and ``accept`` (one document) check, then go through it. A record that fails any
check is kept with its reasons; nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
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
from hub.outbox.refused import keep_refused
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

    ``data`` is the document as given; ``encoded``: it is the record encoder's
    compact output (``Record.xml_and_hash``), kept as it is, else the record is
    written again. ``content_hash`` is the record's content hash when the caller
    knows it (``None``: computed when needed). ``record`` is the record it holds,
    or ``None`` when it did not parse. ``problems``: why it is refused (validation,
    origin); none means valid and this node's. ``findings``: the node's review
    of a valid record.
    """

    data: bytes
    source: str
    record: Record | None
    content_hash: str | None
    problems: tuple[Problem, ...] = ()
    findings: tuple[Finding, ...] = ()
    encoded: bool = True


def check_document(
    data: bytes,
    source: str,
    content_hash: str | None = None,
    *,
    node: Node,
    reviewer: Reviewer,
    limits: Limits = records.DEFAULT_LIMITS,
    record: Record | None = None,
    encoded: bool = True,
) -> Checked:
    """Validate, check the origin and review one record document.

    ``record``: the record ``data`` was encoded from, carried in the result
    instead of the parsed one (equal to it: encoding then parsing a valid record
    gives it back), so a caller that has it need not ship the parsed copy too.
    ``content_hash`` and ``encoded``: see ``Checked``.
    """
    try:
        parsed = records.parse(data, source, limits=limits)
    except RecordInvalid as exc:
        return Checked(data, source, None, content_hash, tuple(exc.problems), encoded=encoded)
    return _origin_and_review(
        Checked(data, source, record or parsed, content_hash, encoded=encoded),
        parsed,
        node=node,
        reviewer=reviewer,
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
        Checked(encoded.data, source, record, encoded.content_hash),
        record,
        node=node,
        reviewer=reviewer,
    )


def _origin_and_review(
    checked: Checked, valid: Record, *, node: Node, reviewer: Reviewer
) -> Checked:
    """``checked`` (a valid document) with the origin check's problems, or the review's
    findings."""
    problems = given_to(node, valid, checked.source)
    if problems:
        return dataclasses.replace(checked, problems=tuple(problems))
    try:
        findings = reviewer.review(valid)
    except RecordInvalid as exc:  # the body was valid: not expected, but never lost
        return dataclasses.replace(checked, problems=tuple(exc.problems))
    return dataclasses.replace(checked, findings=findings)


def given_to(node: Node, record: Record, source: str) -> list[Problem]:
    """Why ``record`` is not ``node``'s own to publish (none: it is)."""
    return origin_problems(record, node, source, came=f"given to node {node.id!r}")


Also = Callable[[sqlite3.Connection, list[Accepted]], None]
"""A last step inside a batch's transaction, given the outcomes (the harvester's cursor)."""


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
        also: Also | None = None,
        encoded: bool = False,
        hashes: Sequence[str] | None = None,
    ) -> list[Accepted]:
        """Check several ``(document, source)`` pairs, then ``accept_checked`` them: one
        transaction, each outcome exactly what ``accept`` would have said, in order.

        ``encoded``: the documents are the record encoder's own compact output
        (``Record.to_xml(pretty=False)``), kept as they are instead of written
        again. ``hashes``: with ``encoded``, each document's content hash, computed
        by the caller along with the document (``Record.xml_and_hash()``).
        """
        given = hashes if encoded and hashes is not None else [None] * len(documents)
        checked = [
            self.check(data, source, digest, encoded=encoded)
            for (data, source), digest in zip(documents, given, strict=True)
        ]
        return self.accept_checked(checked, also=also)

    def check(
        self, data: bytes, source: str, content_hash: str | None = None, *, encoded: bool = False
    ) -> Checked:
        """``check_document`` with this pipeline's node, reviewer and limits."""
        return check_document(
            data,
            source,
            content_hash,
            node=self.node,
            reviewer=self.reviewer,
            limits=self.limits,
            encoded=encoded,
        )

    def accept_checked(
        self, documents: Sequence[Checked], *, also: Also | None = None
    ) -> list[Accepted]:
        """The one way in for a batch: documents through ``check_document`` (or
        ``check_record``) deduplicated, then to the outbox, held or refused, in one
        transaction; what happened to each, in order (a second copy of a record in
        the same batch is ``unchanged``).

        A commit with full synchronous writes costs a disk flush, so a harvest of
        thousands of items commits them in batches. ``also`` runs inside the same
        transaction, given the outcomes: the harvester moves its cursor there, so
        the cursor never gets ahead of the records it stands for. The review ran
        before, with the checks: a record found unchanged here was reviewed for
        nothing, which costs less than coming back for the review inside the
        transaction.
        """
        with transaction(self.state):
            results = [self._place(each) for each in documents]
            if also is not None:
                also(self.state, results)
        return results

    def _place(self, checked: Checked) -> Accepted:
        """Refused, or dedup then outbox or held: inside the caller's transaction."""
        record = checked.record
        if record is None or checked.problems:
            keep_refused(self.state, checked.source, checked.problems, checked.data)
            return Accepted(Outcome.REFUSED, record, checked.problems)
        content_hash = checked.content_hash
        known = outbox.latest(self.state, record.id)
        if known is not None:
            if record.revision < known.revision:
                return Accepted(Outcome.STALE, record)
            content_hash = content_hash or record.content_hash()
            if content_hash == known.content_hash:
                return Accepted(Outcome.UNCHANGED, record)
            if record.revision == known.revision:
                return self._conflict(checked, record, known, content_hash)
        body = checked.data if checked.encoded else record.to_xml(pretty=False)
        if any(f.holds for f in checked.findings):
            held.hold(self.state, record.id, record.revision, body, checked.findings)
            return Accepted(Outcome.HELD, record, findings=checked.findings)
        self._enqueue(record, body, content_hash)
        return Accepted(Outcome.QUEUED, record, findings=checked.findings)

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
        self, checked: Checked, record: Record, known: outbox.Latest, content_hash: str
    ) -> Accepted:
        """Other content under a revision already accepted: kept in ``refused``, never lost."""
        problem = Problem(
            checked.source,
            None,
            "revision",
            f"{record.id} revision {record.revision} was accepted with content "
            f"{known.content_hash}; this copy has content {content_hash}",
            f"revision {known.revision + 1} or higher for changed content",
        )
        keep_refused(self.state, checked.source, [problem], checked.data)
        return Accepted(Outcome.CONFLICT, record, (problem,))
