"""The rules of the record standard that XML Schema 1.0 cannot express.

Each rule looks at the model and reports ``Problem``s in the same shape as
schema errors (file, line, field, what is wrong, what would be right).
"""

from __future__ import annotations

from collections.abc import Callable

from hub.codes import (
    INDEX_NUMBER_EXPECTED,
    SITE_CODE_EXPECTED,
    index_number_problem,
    site_code_problem,
)
from hub.errors import Problem
from hub.records.model import LANGUAGES, Record

Rule = Callable[[Record, str], list[Problem]]


def rule_problems(record: Record, where: str) -> list[Problem]:
    """Every rule's problems with ``record``, in field order."""
    found = []
    for rule in RULES:
        found += rule(record, where)
    return found


def _at(record: Record, where: str, field: str, message: str, expected: str = "") -> Problem:
    line = record.lines.get(field.split("/", 1)[0])
    return Problem(where, line, field, message, expected)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


# Each rule returns its problems; most records have none, and an empty list is all
# a rule with nothing to say costs.


def language_supported(record: Record, where: str) -> list[Problem]:
    if record.lang is None or record.lang in LANGUAGES:
        return []
    message = f"language {record.lang!r} is not one govhub serves"
    return [_at(record, where, "record/@xml:lang", message, f"one of {' '.join(LANGUAGES)}")]


def id_names_origin(record: Record, where: str) -> list[Problem]:
    if record.node == record.origin.node:
        return []
    return [
        _at(
            record,
            where,
            "id",
            f"id names node {record.node!r} but origin/@node is {record.origin.node!r}",
            f"urn:govhub:{record.origin.node}:{record.local_id}, or the right origin",
        )
    ]


def site_code_valid(record: Record, where: str) -> list[Problem]:
    problem = site_code_problem(record.origin.site)
    if problem is None:
        return []
    return [_at(record, where, "origin/@site", problem, SITE_CODE_EXPECTED)]


def index_number_valid(record: Record, where: str) -> list[Problem]:
    if record.index_number is None:
        return []
    problem = index_number_problem(record.index_number)
    if problem:
        return [_at(record, where, "indexNumber", problem, INDEX_NUMBER_EXPECTED)]
    year = int(record.index_number[-10:-6])  # valid: ...'/YYYY-NNNNN
    years = {record.published.year} | ({record.created.year} if record.created else set())
    if year in years:
        return []
    shown = " or ".join(str(y) for y in sorted(years))
    return [
        _at(
            record,
            where,
            "indexNumber",
            f"year {year} matches neither created nor published ({shown})",
            f"the year of created or published: {record.index_number[:-11]}/{max(years)}-NNNNN",
        )
    ]


def dates_in_order(record: Record, where: str) -> list[Problem]:
    problems = []
    published_day = record.published.date()
    if record.created and published_day < record.created:
        problems.append(
            _at(
                record,
                where,
                "published",
                f"published {published_day} is before created {record.created}",
                "a publication date on or after the date the document was made",
            )
        )
    if record.updated and record.updated < record.published:
        problems.append(
            _at(
                record,
                where,
                "updated",
                f"updated {record.updated.isoformat()} is before published "
                f"{record.published.isoformat()}",
                "a time on or after published",
            )
        )
    return problems


def kind_sections(record: Record, where: str) -> list[Problem]:
    problems = []
    for section in ("service", "interaction"):
        present = getattr(record, section) is not None
        if present == (record.kind == section):
            continue
        a = _article(section)
        if present:
            problems.append(
                _at(
                    record,
                    where,
                    section,
                    f"<{section}> belongs only to records of kind {section!r}, "
                    f"this one is {record.kind!r}",
                    f'kind="{section}", or no <{section}>',
                )
            )
        else:
            problems.append(
                _at(
                    record,
                    where,
                    "record/@kind",
                    f"{a} {section} record needs {a} <{section}> section",
                    f"<{section}> after <status> (see docs/records.md)",
                )
            )
    return problems


def withdrawal_explained(record: Record, where: str) -> list[Problem]:
    status = record.status
    if status is None:
        return []
    problems = []
    if status.value == "withdrawn":
        if not status.reason or not status.reason.strip():
            problems.append(
                _at(
                    record,
                    where,
                    "status/@reason",
                    "a withdrawn record must say why",
                    'reason="…" on <status>',
                )
            )
        if status.at is None:
            problems.append(
                _at(
                    record,
                    where,
                    "status/@at",
                    "a withdrawn record must say when",
                    'at="2020-01-01T00:00:00+08:00" on <status>',
                )
            )
    elif status.reason is not None or status.at is not None:
        problems.append(
            _at(
                record,
                where,
                "status",
                "reason and at belong only to a withdrawn status",
                "<status>active</status>",
            )
        )
    return problems


def disclosure_consistent(record: Record, where: str) -> list[Problem]:
    d = record.disclosure
    if d is None or d.until is None or d.duration == "limited":
        return []
    return [
        _at(
            record,
            where,
            "disclosure/@until",
            "until is given but the duration is not limited",
            'duration="limited", or no until',
        )
    ]


def relations_point_somewhere(record: Record, where: str) -> list[Problem]:
    problems = []
    for index, relation in enumerate(record.relations, start=1):
        field = (
            f"relations/relation[{index}]" if len(record.relations) > 1 else "relations/relation"
        )
        if relation.ref is None and relation.doc_number is None:
            problems.append(
                _at(
                    record,
                    where,
                    field,
                    "a relation needs a target",
                    "ref (a record id) and/or docNumber",
                )
            )
        elif relation.ref == record.id:
            problems.append(
                _at(
                    record,
                    where,
                    f"{field}/@ref",
                    "a record cannot relate to itself",
                    "the id of another record",
                )
            )
    return problems


def answer_after_question(record: Record, where: str) -> list[Problem]:
    i = record.interaction
    if i is None:
        return []
    problems = []
    if i.asked and i.answered and i.answered < i.asked:
        problems.append(
            _at(
                record,
                where,
                "interaction/answered",
                f"answered {i.answered.isoformat()} is before asked {i.asked.isoformat()}",
                "a time on or after asked",
            )
        )
    if i.answered and i.answer is None:
        problems.append(
            _at(
                record,
                where,
                "interaction/answer",
                "an answered time is given but no answer",
                "<answer> before <answered>",
            )
        )
    return problems


RULES: tuple[Rule, ...] = (
    language_supported,
    id_names_origin,
    site_code_valid,
    index_number_valid,
    dates_in_order,
    kind_sections,
    withdrawal_explained,
    disclosure_consistent,
    relations_point_somewhere,
    answer_after_question,
)
