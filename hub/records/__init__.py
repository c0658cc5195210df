"""Disclosure records: the model, safe parsing, validation and XML output.

The one flow every record takes on its way in::

    bytes ─ parse_untrusted ─ XSD (lxml) ─ body check ─ decode ─ rules ─► Record

``parse`` raises ``RecordInvalid`` listing every problem it can find at the
first stage that fails; ``problems`` returns that list instead of raising.
"""

from __future__ import annotations

from hub.errors import Problem, RecordInvalid
from hub.records.body import body_problems
from hub.records.decode import record_from_tree
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
from hub.records.rules import rule_problems
from hub.records.safe_xml import DEFAULT_LIMITS, Limits, parse_untrusted
from hub.records.schema import record_schema

_BODY = f"{{{NS}}}body"


def parse(data: bytes, where: str = "record.xml", *, limits: Limits = DEFAULT_LIMITS) -> Record:
    """Parse and fully validate one record; raise ``RecordInvalid`` with every problem."""
    tree = parse_untrusted(data, where, limits)
    problems = record_schema().problems(tree, where)
    if problems:
        raise RecordInvalid(problems)
    body = tree.getroot().find(_BODY)
    if body is not None:
        problems = body_problems(body, where, limits.max_depth)
        if problems:
            raise RecordInvalid(problems)
    record = record_from_tree(tree, where)
    problems = rule_problems(record, where)
    if problems:
        raise RecordInvalid(problems)
    return record


def problems(
    data: bytes, where: str = "record.xml", *, limits: Limits = DEFAULT_LIMITS
) -> list[Problem]:
    """Everything wrong with ``data`` as a record (empty when it is valid)."""
    try:
        parse(data, where, limits=limits)
    except RecordInvalid as exc:
        return exc.problems
    return []


__all__ = [
    "DEFAULT_LANGUAGE",
    "DEFAULT_LIMITS",
    "KINDS",
    "LANGUAGES",
    "NS",
    "XHTML_NS",
    "Attachment",
    "Disclosure",
    "Form",
    "Interaction",
    "Limits",
    "Origin",
    "Problem",
    "Record",
    "RecordInvalid",
    "Relation",
    "Service",
    "Status",
    "Topic",
    "parse",
    "problems",
]
