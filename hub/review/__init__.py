"""Confidentiality review (保密审查): may a record be published, or must a person look first?

A ``Reviewer`` is built once from a node's ``ReviewPolicy`` (the term matcher
is compiled then, not per record). ``review(record)`` reads the title, the
summary and the text of the body, and returns every ``Finding`` with its reason.
A record is publishable when no finding holds it; an empty tuple always means
publishable. Findings of severity ``"mention"`` (see below) are for the reviewer
and do not hold a record, so callers test ``any(f.holds for f in findings)``.

The rules, each explained in its module:

- ``classification`` (``markings``): a classification or handling marking
  (``秘密★1年``, ``★机密``, ``内部资料`` on a line of its own, ``【内部】``) holds the
  record. The same words in running text (``依法确定为国家秘密的…``) are mentions:
  government pages quote the secrecy rules every day, and holding every such
  page would bury the real markings. Law titles in 《…》, 商业秘密 and 机密性 are
  not even mentions.
- ``sensitive-term`` (``terms``): any term of the node's list, overlapping
  occurrences included. Matching costs about the same for 10,000 terms as for
  100 (``./dev bench review``).
- ``id-number`` and ``mobile`` (``personal``): resident ID numbers with a valid
  date and check character, and mainland mobile numbers; shown masked.

What is matched (``text``): the body's text content only, never a tag or an
attribute, one line per block element; every field NFKC-normalised character
by character and lower-cased, so full-width letters and digits match, with
zero-width and other format characters removed. Spaces between the characters
of a marking, and between CJK characters for terms (``法 轮 功``), do not hide
them. Offsets and texts in findings are those of the original field text.
Other fields (keywords, an interaction's question and answer, a service guide,
attachment names) are not reviewed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from lxml import etree

from hub.errors import Problem, RecordInvalid
from hub.records.model import Record
from hub.review.markings import HOW, find_markings
from hub.review.model import FIELDS, RULES, SEVERITIES, Finding, ReviewPolicy
from hub.review.personal import id_numbers, mask, mobile_numbers
from hub.review.terms import TermMatcher, read_terms
from hub.review.text import Folded, body_text, compact, fold


class Reviewer:
    """The review of one node's records, set up once from its policy."""

    def __init__(self, policy: ReviewPolicy) -> None:
        self.policy = policy
        fold("")  # builds the folding table now rather than on the first record
        self._configured: dict[str, str] = {}  # folded term -> the term as configured
        for term in policy.sensitive_terms:
            self._configured.setdefault(compact(fold(term)).strip(), term)
        self._configured.pop("", None)
        self._terms = TermMatcher(self._configured)

    def review(self, record: Record) -> tuple[Finding, ...]:
        """Every finding in the record's title, summary and body, field by field."""
        findings: list[Finding] = []
        today = date.today()
        for field, plain in _fields(record):
            text = Folded(plain)
            found: list[Finding] = []
            if self.policy.check_markings:
                found.extend(_classification(field, text))
            if self._configured:
                found.extend(self._sensitive_terms(field, text))
            if self.policy.check_personal_data:
                found.extend(_personal_data(field, text, today))
            findings.extend(sorted(found, key=lambda finding: finding.start))
        return tuple(findings)

    def _sensitive_terms(self, field: str, text: Folded) -> Iterator[Finding]:
        for start, term in self._terms.find(text.compact):
            begin, end = text.compact_span(start, start + len(term))
            written = text.original[begin:end]
            configured = self._configured[term]
            reason = f"{field} contains the sensitive term '{configured}'"
            if written != configured:
                reason += f", written '{written}'"
            yield Finding("sensitive-term", field, written, begin, reason)


def _fields(record: Record) -> Iterator[tuple[str, str]]:
    yield "title", record.title
    if record.summary:
        yield "summary", record.summary
    if record.body:
        try:
            yield "body", body_text(record.body)
        except etree.XMLSyntaxError as exc:
            message = f"is not well-formed XHTML: {exc}"
            problem = Problem(record.id, None, "body", message, "a body read by hub.records.parse")
            raise RecordInvalid([problem]) from None
    # Citizens' messages and the replies to them are where personal data turns up most.
    if record.interaction is not None:
        yield "interaction/question", record.interaction.question
        if record.interaction.answer:
            yield "interaction/answer", record.interaction.answer


def _classification(field: str, text: Folded) -> Iterator[Finding]:
    for start, end, how in find_markings(text.text):
        begin, stop = text.span(start, end)
        written = text.original[begin:stop]
        if how == "mention":
            reason = (
                f"{field} mentions '{written}' in running text: not a marking, so it does not"
                " hold the record; check the context"
            )
            yield Finding("classification", field, written, begin, reason, "mention")
        else:
            reason = f"{field} carries the classification marking '{written}'{HOW[how]}"
            yield Finding("classification", field, written, begin, reason)


def _personal_data(field: str, text: Folded, today: date) -> Iterator[Finding]:
    ids = list(id_numbers(text.text, today))
    for start, end in ids:
        begin, stop = text.span(start, end)
        shown = mask(text.original[begin:stop])
        yield Finding("id-number", field, shown, begin, f"{field} contains the ID number {shown}")
    for start, end in mobile_numbers(text.text):
        if any(start < id_end and id_start < end for id_start, id_end in ids):
            continue
        begin, stop = text.span(start, end)
        shown = mask(text.original[begin:stop])
        reason = f"{field} contains the mobile number {shown}"
        yield Finding("mobile", field, shown, begin, reason)


__all__ = [
    "FIELDS",
    "RULES",
    "SEVERITIES",
    "Finding",
    "ReviewPolicy",
    "Reviewer",
    "body_text",
    "read_terms",
]
