"""Disclosure records: the model, safe parsing, validation and XML output.

The one flow every record takes on its way in::

    bytes ─ parse_untrusted ─ XSD (lxml; bodies too) ─ decode ─ depth, rules ─► Record

``parse`` raises ``RecordInvalid`` listing every problem it can find at the
first stage that fails; ``parse_batch`` reads ``<records>`` batches the same
way; ``problems`` returns the list instead of raising.
"""

from __future__ import annotations

from hub.errors import Problem, RecordInvalid
from hub.records.model import (
    DEFAULT_LANGUAGE,
    KINDS,
    LANGUAGES,
    NS,
    XHTML_NS,
    Attachment,
    Disclosure,
    Form,
    Interaction,
    Origin,
    Record,
    Relation,
    Service,
    Status,
    Topic,
)
from hub.records.read import (
    DEFAULT_LIMITS,
    Encoded,
    Limits,
    Part,
    encode_checked,
    parse,
    parse_batch,
    parse_parts,
    problems,
)

__all__ = [
    "DEFAULT_LANGUAGE",
    "DEFAULT_LIMITS",
    "KINDS",
    "LANGUAGES",
    "NS",
    "XHTML_NS",
    "Attachment",
    "Disclosure",
    "Encoded",
    "Form",
    "Interaction",
    "Limits",
    "Origin",
    "Part",
    "Problem",
    "Record",
    "RecordInvalid",
    "Relation",
    "Service",
    "Status",
    "Topic",
    "encode_checked",
    "parse",
    "parse_batch",
    "parse_parts",
    "problems",
]
