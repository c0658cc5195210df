"""Reading records: bytes in, a checked ``Record`` (or every problem) out.

    bytes ─ parse_untrusted ─ XSD (lxml; bodies too) ─ decode ─ depth, rules ─► Record

``parse`` raises ``RecordInvalid`` listing every problem it can find at the
first stage that fails; ``parse_batch`` reads ``<records>`` batches the same
way; ``parse_parts`` judges each record of a batch on its own; ``problems``
returns the list instead of raising; ``encode_checked`` writes a record built
in code and checks it as ``parse`` would.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from lxml import etree

from hub.errors import Problem, RecordInvalid
from hub.records.decode import record_from_element
from hub.records.encode import content_hash_of, record_to_element
from hub.records.model import (
    NS,
    Record,
)
from hub.records.rules import rule_problems
from hub.records.safe_xml import DEFAULT_LIMITS, Limits, nests_deeper_than, parse_untrusted
from hub.records.schema import field_path, record_schema

_RECORD = f"{{{NS}}}record"
_RECORDS = f"{{{NS}}}records"
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


@dataclass(frozen=True, slots=True)
class Part:
    """One record of a batch, judged on its own: its record, or its problems.

    ``data`` is the record as a standalone document, so that a part refused
    on its own can be kept (dead-lettered) and retried without the others. It is
    written out only when asked for: the parts of a good batch never need it.
    """

    index: int  # 1-based position in the batch
    source: bytes | etree._Element  # the document, or the element of the batch
    record: Record | None
    problems: tuple[Problem, ...] = ()

    @property
    def data(self) -> bytes:
        if isinstance(self.source, bytes):
            return self.source
        return etree.tostring(self.source)


def parse_parts(
    data: bytes, where: str = "records.xml", *, limits: Limits = DEFAULT_LIMITS
) -> list[Part]:
    """Each record of a batch (or of a single record document) accepted or refused on its own.

    Raises ``RecordInvalid`` only when the document as a whole is unusable
    (unsafe, malformed, or neither ``<record>`` nor ``<records>``); one bad record
    in a batch costs that record alone. A batch that is valid as a whole takes
    the fast path (one schema validation); otherwise each record element is
    validated by itself.
    """
    tree = parse_untrusted(data, where, limits)
    root = tree.getroot()
    if root.tag == _RECORD:
        return [_part(1, data, tree, where, limits)]
    if root.tag != _RECORDS:
        message = f"root element {root.tag!r} is neither record nor records"
        raise RecordInvalid([Problem(where, root.sourceline, "records", message, "<records>")])
    schema = record_schema()
    whole = schema.validator.validate(tree)
    parts = []
    for index, element in enumerate(root, start=1):
        label = f"{where} record[{index}]"
        if element.tag != _RECORD:
            message = f"{element.tag!r} where a record was expected"
            problem = Problem(label, element.sourceline, "records", message, "<record>")
            parts.append(Part(index, element, None, (problem,)))
        elif whole:
            parts.append(_judged(index, element, element, label, limits))
        else:
            single = etree.ElementTree(copy.deepcopy(element))
            parts.append(_part(index, element, single, label, limits))
    return parts


def _part(
    index: int, data: bytes | etree._Element, tree: etree._ElementTree, where: str, limits: Limits
) -> Part:
    problems = record_schema().problems(tree, where)
    if problems:
        return Part(index, data, None, tuple(problems))
    return _judged(index, data, tree.getroot(), where, limits)


def _judged(
    index: int, data: bytes | etree._Element, element: etree._Element, where: str, limits: Limits
) -> Part:
    try:
        return Part(index, data, _record(element, where, limits))
    except RecordInvalid as exc:
        return Part(index, data, None, tuple(exc.problems))


@dataclass(frozen=True, slots=True)
class Encoded:
    """A record written out, its content hash, and what ``parse`` would find wrong with it."""

    data: bytes
    content_hash: str
    problems: tuple[Problem, ...] = ()


def encode_checked(
    record: Record, where: str = "record.xml", *, limits: Limits = DEFAULT_LIMITS
) -> Encoded:
    """``record`` as ``to_xml(pretty=False)`` and ``content_hash()``, checked as ``parse``
    would check those bytes, from one element tree.

    For records built in code (an adapter's): the schema and the rules run on
    the tree the encoder built instead of on a parse of its output. The round
    trip is exact (``parse(record.to_xml()) == record``, a property test), so
    the verdict is the one ``parse(data)`` gives, without parsing and decoding
    again. Problems carry no line numbers: the tree was never text.
    """
    root = record_to_element(record)
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    if len(data) > limits.max_bytes:
        message = f"document is {len(data):,} bytes, over the limit of {limits.max_bytes:,}"
        expected = "a smaller document: link large content as attachments"
        problems = [Problem(where, None, "record", message, expected)]
    else:
        problems = record_schema().problems(etree.ElementTree(root), where)
        if not problems:
            depth = _depth_problems(record, root, where, limits.max_depth)
            problems = depth + rule_problems(record, where)
    return Encoded(data, content_hash_of(root), tuple(problems))


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
    record = record_from_element(element, where)
    problems = _depth_problems(record, element, where, limits.max_depth) + rule_problems(
        record, where
    )
    if problems:
        raise RecordInvalid(problems)
    return record


def _depth_problems(
    record: Record, element: etree._Element, where: str, limit: int
) -> list[Problem]:
    """Open content (body, extensions) nesting deeper than ``limit``.

    Nesting deeper than the limit needs more elements than the limit, so content
    whose serialised form has fewer '<' than that is never walked.
    """
    problems = []
    if record.body is not None and record.body.count("<") > limit:
        body = element.find(_BODY)
        if body is not None and nests_deeper_than(body, limit):
            message = f"markup nests more than {limit} levels deep"
            problems.append(Problem(where, body.sourceline, "body", message, "a flatter body"))
    if record.extensions and any(extension.count("<") > limit for extension in record.extensions):
        for child in element:
            if not child.tag.startswith(_OWN) and nests_deeper_than(child, limit):
                message = f"extension nests more than {limit} levels deep"
                path = field_path(child)
                problems.append(
                    Problem(where, child.sourceline, path, message, "a flatter extension")
                )
    return problems
