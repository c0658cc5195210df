"""The column mapping the csv, excel and sql adapters share: a row (column → value) → a record.

Many CMSs and office workflows can export their disclosure catalogue as a
spreadsheet, or keep it in a database table: one row per document, one column
per field (标题, 发布日期, 文号, 索引号, …). The source's ``columns`` table says
which column fills which record field; ``Columns`` checks that table at
start-up and turns one row (a mapping of column → value, whatever produced it)
into a record, or into problems that name the file, the row, the column and the
fix. The csv, excel and sql adapters all go through it, so a date or a topic is
read the same way everywhere. The value readers (``text``, ``moment``, ``day``,
…) and the source-settings helpers (``config_error``, ``source_path``) live here
for the same reason.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from adapters.contract import Context, Failure
from adapters.kit.chinese_values import (
    as_published,
    parse_doc_number,
    parse_topic,
    parse_when,
    split_issuers,
    split_keywords,
)
from hub import records
from hub.errors import ConfigInvalid, InputError, Problem
from hub.records import KINDS, Record, Topic
from hub.records.model import CHINA

MAX_VALUE = 200  # characters of a date, topic: longer is not one (and regexes stay cheap)

# What each record field a column may fill holds, as errors say it.
FIELDS: Mapping[str, str] = {
    "title": "text (required)",
    "published": "a date or time (required): 2019-02-15, 2019-02-15 09:30, 2019年2月15日",
    "kind": f"one of {', '.join(KINDS)}",
    "index_number": "an index number such as 000014349/2019-00042",
    "doc_number": "a document number such as 国办发〔2019〕5号",
    "issuers": "one or more organ names separated by ; ， 、 or new lines",
    "summary": "text",
    "link": "an http(s) URL",
    "topic": "a topic class, with a sub-class after \\ or /: 综合政务\\政务公开",
    "keywords": "keywords separated by ; ， 、 or spaces",
    "genre": "a genre such as 通知 or 意见",
    "created": "a date: 2019-02-15 or 2019年2月15日",
    "updated": "a date or time",
    "validity": "a validity such as in-force",
    "body": "HTML (sanitized: only the record body's elements are kept)",
}
REQUIRED = ("title", "published")
_XML_FIELDS = {"indexNumber": "index_number", "docNumber": "doc_number", "record": "kind"}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def config_error(context: Context, key: str, message: str, expected: str = "") -> ConfigInvalid:
    """A problem with one of this source's settings, located as ``read_settings`` does."""
    line = next((s.line for s in context.node.sources if s.name == context.source), None)
    where = str(context.extra.get("config", "nodes.toml"))
    label = f"node[{context.node.id}].sources[{context.source}].{key}"
    return ConfigInvalid(
        [Problem(where, line or context.node.line or None, label, message, expected)]
    )


def source_path(context: Context, path: str) -> Path:
    """A path from the settings; relative ones are taken from the project root."""
    found = Path(path).expanduser()
    return found if found.is_absolute() else Path(context.root) / found


class BadValue(ValueError):
    """A value a column holds that its record field cannot take."""

    def __init__(self, message: str, expected: str) -> None:
        super().__init__(message)
        self.message, self.expected = message, expected


@dataclass(frozen=True, slots=True)
class Columns:
    """Which column fills which record field, and which column identifies a row."""

    fields: Mapping[str, str]  # record field → column
    key: str  # the column whose value identifies the row for life
    kind: str

    @classmethod
    def from_settings(
        cls, columns: Mapping[str, str], key: str, kind: str, context: Context
    ) -> Columns:
        """Check the ``columns``, ``key`` and ``kind`` settings; ``ConfigInvalid`` names each fault.

        Without ``key``, the column mapped to ``link`` identifies a row, or else
        the one mapped to ``index_number`` (索引号 never change).
        """
        for name in columns:
            if name not in FIELDS:
                close = difflib.get_close_matches(name, FIELDS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise config_error(
                    context,
                    f"columns.{name}",
                    f"{name!r} is not a record field a column can fill{hint}",
                    "one of " + ", ".join(FIELDS),
                )
        for name in REQUIRED:
            if not columns.get(name):
                raise config_error(
                    context,
                    "columns",
                    f"no column for {name}",
                    f'{name} = "<column header>" in columns ({FIELDS[name]})',
                )
        if kind not in KINDS:
            raise config_error(context, "kind", f"{kind!r} is not a record kind", ", ".join(KINDS))
        key = key or columns.get("link") or columns.get("index_number") or ""
        if not key:
            raise config_error(
                context,
                "key",
                "no column identifies a row",
                'key = "<column>" naming a column whose value never changes '
                "(an id, the URL or 索引号), or a link or index_number column",
            )
        return cls(dict(columns), key, kind)

    def needed(self) -> list[str]:
        """Every column the mapping reads, key first."""
        return list(dict.fromkeys([self.key, *self.fields.values()]))

    def absent(self, headers: list[str], where: str) -> Failure | None:
        """A failure naming the mapped columns that ``headers`` lack, if any."""
        missing = [name for name in self.needed() if name not in headers]
        if not missing:
            return None
        hints = []
        for name in missing:
            close = difflib.get_close_matches(name, headers, n=1, cutoff=0.5)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return Failure(
            where,
            f"no column {', '.join(hints)}; the columns are {', '.join(map(repr, headers))}; "
            "fix the columns (or key) setting",
        )

    def key_of(self, row: Mapping[str, Any], where: str) -> str:
        key = text(row.get(self.key))
        if key is None:
            raise InputError(
                [
                    Problem(
                        where,
                        None,
                        self.key,
                        "empty, but this column identifies the row",
                        "a value",
                    )
                ]
            )
        return key

    def record(self, context: Context, row: Mapping[str, Any], where: str) -> Record:
        """The record one row describes; ``InputError`` with every problem, naming columns."""
        key = self.key_of(row, where)
        values: dict[str, Any] = {"kind": self.kind}
        problems = []
        for name, column in self.fields.items():
            try:
                value = _READ.get(name, text)(row.get(column))
            except BadValue as exc:
                problems.append(
                    Problem(where, None, column, f"{name}: {exc.message}", exc.expected)
                )
                continue
            if value is None or value == ():
                if name in REQUIRED:
                    message = f"empty, but {name} is required"
                    problems.append(Problem(where, None, column, message, FIELDS[name]))
                continue
            values[name] = value
        if problems:
            raise InputError(problems)
        if "body" in values:
            from adapters.kit.sanitize import sanitize_html

            body = sanitize_html(values.pop("body"), values.get("link"))
            if body is not None:
                values["body"] = body
        record = context.record(key, **values)
        self.check(record, where)
        return record

    def check(self, record: Record, where: str) -> None:
        """The record standard's verdict on a built record, each problem naming its column."""
        found = records.problems(record.to_xml(), where)
        if found:
            raise InputError([self._located(problem, where) for problem in found])

    def _located(self, problem: Problem, where: str) -> Problem:
        head = problem.field.split("/", 1)[0].split("[", 1)[0]
        name = _XML_FIELDS.get(head, head)
        column = self.fields.get(name)
        if column is None:
            return Problem(where, None, problem.field, problem.message, problem.expected)
        return Problem(where, None, column, f"{problem.field}: {problem.message}", problem.expected)


# -- Values -----------------------------------------------------------------------------------


def text(value: Any) -> str | None:
    """A cell as text; ``None`` when empty. Whole numbers lose the ``.0`` a spreadsheet adds."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, datetime | date):
        value = value.isoformat()
    cleaned = _NOT_XML.sub("", str(value)).strip()
    return cleaned or None


def moment(value: Any) -> datetime | None:
    """A date or time; one without an offset is Beijing time (+08:00).

    Text is read by ``adapters.kit.chinese_values`` (the page adapter's reader too),
    so ``2019年02月15日``, ``２０１９-２-１５``, ``2019-02-15 09:30`` mean the same
    everywhere; spreadsheet and database values that are already dates are
    taken as they are.
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=CHINA) if value.tzinfo is None else value.astimezone(CHINA)
    if isinstance(value, date):
        return datetime.combine(value, time(), CHINA)
    raw = text(value)
    if raw is None:
        return None
    return as_published(_read(parse_when, raw))


def day(value: Any) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    when = moment(value)
    return when.date() if when is not None else None


def names(value: Any) -> tuple[str, ...]:
    raw = text(value)
    return split_issuers(raw) if raw else ()


def keywords(value: Any) -> tuple[str, ...]:
    raw = text(value)
    return split_keywords(raw) if raw else ()


def topic(value: Any) -> Topic | None:
    """``大类\\小类`` (or ``/``, ``>``) → a topic class (one of the 22) with its sub-class."""
    raw = text(value)
    return _read(parse_topic, raw) if raw else None


def doc_number(value: Any) -> str | None:
    raw = text(value)
    return parse_doc_number(raw) if raw else None


def _read(parse: Any, raw: str) -> Any:
    if len(raw) > MAX_VALUE:
        raise BadValue(f"{raw[:20]!r}… is {len(raw)} characters, too long for this field", "")
    try:
        return parse(raw)
    except ValueError as exc:
        raise BadValue(str(exc), "") from None


def kind(value: Any) -> str | None:
    raw = text(value)
    if raw is not None and raw not in KINDS:
        raise BadValue(f"{raw!r} is not a record kind", ", ".join(KINDS))
    return raw


def link(value: Any) -> str | None:
    raw = text(value)
    if raw is not None and not re.match(r"https?://[^\s/]+", raw, re.I):
        raise BadValue(f"{raw!r} is not an http(s) URL", "https://… (an absolute address)")
    return raw


_READ = {
    "published": moment,
    "updated": moment,
    "created": day,
    "issuers": names,
    "keywords": keywords,
    "topic": topic,
    "doc_number": doc_number,
    "kind": kind,
    "link": link,
}


__all__ = [
    "CHINA",
    "FIELDS",
    "BadValue",
    "Columns",
    "config_error",
    "day",
    "moment",
    "source_path",
    "text",
]
