"""What a review says (``Finding``) and what it checks (``ReviewPolicy``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hub.review.terms import read_terms

RULES = ("classification", "sensitive-term", "id-number", "mobile")
FIELDS = ("title", "summary", "body", "interaction/question", "interaction/answer")
SEVERITIES = ("hold", "mention")


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason to look at a record before it is published.

    ``rule`` is one of ``RULES``; ``field`` one of ``FIELDS``; ``text`` the
    matched original text (personal data masked); ``start`` its offset in the
    field's plain text (for the body: in ``body_text(record.body)``);
    ``reason`` one sentence for the person reviewing. ``severity`` is
    ``"hold"`` (the record must not be published before a person has looked)
    or ``"mention"`` (classified matter named in running text: shown to the
    reviewer, does not hold the record by itself).
    """

    rule: str
    field: str
    text: str
    start: int
    reason: str
    severity: str = "hold"

    @property
    def holds(self) -> bool:
        return self.severity == "hold"


@dataclass(frozen=True)
class ReviewPolicy:
    """A node's review settings: its sensitive terms and which checks run."""

    sensitive_terms: tuple[str, ...] = ()
    check_personal_data: bool = True
    check_markings: bool = True

    @classmethod
    def from_terms_file(
        cls, path: str | Path, *, check_personal_data: bool = True, check_markings: bool = True
    ) -> ReviewPolicy:
        """A policy with the terms of ``path`` (see ``hub.review.terms.read_terms``).

        Raises ``ConfigInvalid`` naming the file and each bad line.
        """
        return cls(read_terms(path), check_personal_data, check_markings)
