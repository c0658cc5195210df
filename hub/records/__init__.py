"""Disclosure records: the model, safe parsing, validation and XML output.

The one flow every record takes on its way in::

    bytes ─ parse_untrusted ─ XSD (lxml) ─ body check ─ decode ─ rules ─► Record

``parse`` raises ``RecordInvalid`` listing every problem it can find at the
first stage that fails; ``parse_batch`` reads ``<records>`` batches the same
way; ``problems`` returns the list instead of raising.
"""

from __future__ import annotations

from lxml import etree

from hub.errors import Problem, RecordInvalid
from hub.records.body import body_problems
from hub.records.decode import record_from_element
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
from hub.records.safe_xml import DEFAULT_LIMITS, Limits, nests_deeper_than, parse_untrusted
from hub.records.schema import field_path, record_schema

_RECORD = f"{{{NS}}}record"
_BODY = f"{{{NS}}}body"
_OWN = f"{{{NS}}}"


def parse(data: bytes, where: str = "record.xml", *, limits: Limits = DEFAULT_LIMITS) -> Record:
    """Parse and fully validate one record; raise ``RecordInvalid`` with every problem."""
    root = _valid_tree(data, where, limits).getroot()
    if root.tag != _RECORD:
        message = "a batch of records (<records>) where one <record> was expected"
        raise RecordInvalid([Problem(where, root.sourceline, "records", message, "parse_batch()")])
    return _record(root, where, limits)


def parse_batch(
    data: bytes, where: str = "records.xml", *, limits: Limits = DEFAULT_LIMITS
) -> list[Record]:
    """The records of a ``<records>`` batch, or of a single ``<record>`` document.

    All or nothing: when any record is invalid, ``RecordInvalid`` lists the
    problems of every invalid record (paths such as ``record[3]/indexNumber``).
    """
    root = _valid_tree(data, where, limits).getroot()
    elements = [root] if root.tag == _RECORD else list(root.iterchildren(_RECORD))
    found, problems = [], []
    for element in elements:
        try:
            found.append(_record(element, where, limits))
        except RecordInvalid as exc:
            problems.extend(exc.problems)
    if problems:
        raise RecordInvalid(problems)
    return found


def problems(
    data: bytes, where: str = "record.xml", *, limits: Limits = DEFAULT_LIMITS
) -> list[Problem]:
    """Everything wrong with ``data`` as a record or batch (empty when it is valid)."""
    try:
        parse_batch(data, where, limits=limits)
    except RecordInvalid as exc:
        return exc.problems
    return []


def _valid_tree(data: bytes, where: str, limits: Limits) -> etree._ElementTree:
    tree = parse_untrusted(data, where, limits)
    problems = record_schema().problems(tree, where)
    if problems:
        raise RecordInvalid(problems)
    return tree


def _record(element: etree._Element, where: str, limits: Limits) -> Record:
    problems = _open_content_problems(element, where, limits.max_depth)
    if problems:
        raise RecordInvalid(problems)
    record = record_from_element(element, where)
    problems = rule_problems(record, where)
    if problems:
        raise RecordInvalid(problems)
    return record


def _open_content_problems(record: etree._Element, where: str, max_depth: int) -> list[Problem]:
    """Checks on what XSD lets through unexamined: the body and extension elements."""
    problems = []
    for child in record:
        if child.tag == _BODY:
            problems.extend(body_problems(child, where, max_depth))
        elif not child.tag.startswith(_OWN) and nests_deeper_than(child, max_depth):
            message = f"extension nests more than {max_depth} levels deep"
            problems.append(
                Problem(where, child.sourceline, field_path(child), message, "a flatter extension")
            )
    return problems


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
    "parse_batch",
    "problems",
]
