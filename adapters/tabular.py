"""Exports (CSV, Excel) → records, through one column mapping that the sql adapter shares.

Many CMSs and office workflows can export their disclosure catalogue as a
spreadsheet: one row per document, one column per field (标题, 发布日期, 文号,
索引号, …). The source's ``columns`` table says which column fills which record
field; ``Columns`` checks that table at start-up and turns one row (a mapping of
column → value, whatever produced it) into a record, or into problems that name
the file, the row, the column and the fix. The csv, excel and sql adapters all
go through it, so a date or a topic is read the same way everywhere.

Resuming: an item's cursor is ``<file fingerprint>:<row>``. When the file has not
changed since the stored cursor, rows up to it are skipped (a crash mid-file
resumes where it stopped; an unchanged file yields nothing). When it has
changed, every row is read again and the harvester's content hash recognises
the rows that stayed the same, which is simpler and safer than guessing which
rows an edited export moved.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import difflib
import hashlib
import io
import re
import zipfile
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

from adapters.chinese_values import (
    as_published,
    parse_doc_number,
    parse_topic,
    parse_when,
    split_issuers,
    split_keywords,
)
from adapters.contract import Context, Failure, Item
from hub import records
from hub.errors import ConfigInvalid, InputError, Problem
from hub.records import KINDS, Record, Topic

CHINA = timezone(timedelta(hours=8), "+08:00")
MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 100_000
MAX_VALUE = 200  # characters of a date, topic: longer is not one (and regexes stay cheap)
MAX_EXPANSION = 20  # an .xlsx may unpack to at most this many times max_bytes (zip bombs)

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
            from adapters.sanitize import sanitize_html

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

    Text is read by ``adapters.chinese_values`` (the page adapter's reader too),
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


# -- The two file adapters --------------------------------------------------------------------


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True, slots=True)
class TabularSettings:
    path: str = field(metadata=_help("the export file; relative paths start at the project root"))
    columns: dict[str, str] = field(
        metadata=_help(
            'record field → column header, e.g. { title = "标题", published = "发布日期" }'
        )
    )
    key: str = field(
        default="",
        metadata=_help("the column that identifies a row for life (default: the link column)"),
    )
    kind: str = field(default="document", metadata=_help("the kind of every record"))
    max_bytes: int = field(default=MAX_BYTES, metadata=_help("largest file read, in bytes"))
    max_rows: int = field(default=MAX_ROWS, metadata=_help("most rows read from one file"))


@dataclass(frozen=True, slots=True)
class CsvSettings(TabularSettings):
    encoding: str = field(default="utf-8-sig", metadata=_help("the file's encoding, e.g. gb18030"))
    delimiter: str = field(default=",", metadata=_help('one character: "," or "\\t" or ";"'))


@dataclass(frozen=True, slots=True)
class ExcelSettings(TabularSettings):
    sheet: str = field(default="", metadata=_help("the sheet's name (default: the first sheet)"))


Row = tuple[int, str, dict[str, Any]]  # (number, where, column → value)


class _Tabular:
    """What the csv and excel adapters share: rows in, one item per row, the mapping out."""

    sample: ClassVar[str] = "path"

    def __init__(self, settings: TabularSettings, context: Context) -> None:
        self.settings, self.context = settings, context
        self.columns = Columns.from_settings(settings.columns, settings.key, settings.kind, context)
        self.file = source_path(context, settings.path)
        self.label = settings.path

    async def fetch(self, cursor: str | None) -> AsyncIterator[Item | Failure]:
        found = await asyncio.to_thread(self._load)
        if isinstance(found, Failure):
            yield found
            return
        fingerprint, rows = found
        start = _resume(cursor, fingerprint)
        for entry in rows:
            if isinstance(entry, Failure):
                yield entry
                continue
            number, where, row = entry
            if number > start:
                yield Item(self._key(row, where), where, row, f"{fingerprint}:{number}")

    def convert(self, item: Item) -> Record | None:
        return self.columns.record(self.context, item.data, item.where)

    def _key(self, row: dict[str, Any], where: str) -> str:
        try:
            return self.columns.key_of(row, where)
        except InputError:
            return where  # convert reports the empty key against this row

    def _load(self) -> Failure | tuple[str, list[Row | Failure]]:
        try:
            size = self.file.stat().st_size
            if size > self.settings.max_bytes:
                return Failure(
                    self.label,
                    f"the file is {size:,} bytes, over max_bytes = {self.settings.max_bytes:,}; "
                    "split the export or raise max_bytes",
                )
            data = self.file.read_bytes()
        except OSError as exc:
            return Failure(self.label, f"cannot read the file: {exc.strerror or exc}")
        fingerprint = hashlib.sha256(data).hexdigest()[:16]
        rows = self._rows(data)
        return rows if isinstance(rows, Failure) else (fingerprint, rows)

    def _rows(self, data: bytes) -> Failure | list[Row | Failure]:
        raise NotImplementedError

    def _limited(self, rows: Iterator[Row | Failure]) -> list[Row | Failure]:
        kept: list[Row | Failure] = []
        for count, entry in enumerate(rows, start=1):
            if count > self.settings.max_rows:
                kept.append(
                    Failure(
                        self.label,
                        f"more than max_rows = {self.settings.max_rows:,} rows; the rest were "
                        "not read (split the export or raise max_rows)",
                    )
                )
                break
            kept.append(entry)
        return kept


def _resume(cursor: str | None, fingerprint: str) -> int:
    """The last row done in this very file, or 0 (a new or changed file is read whole)."""
    if cursor and cursor.startswith(fingerprint + ":"):
        number = cursor.rsplit(":", 1)[1]
        return int(number) if number.isdigit() else 0
    return 0


class CsvAdapter(_Tabular):
    """One record per row of a CSV export (UTF-8 with or without BOM, or GB18030)."""

    name: ClassVar[str] = "csv"
    Settings: ClassVar[type] = CsvSettings

    def __init__(self, settings: CsvSettings, context: Context) -> None:
        super().__init__(settings, context)
        self.encoding, self.delimiter = settings.encoding, settings.delimiter
        try:
            codecs.lookup(settings.encoding)
        except LookupError:
            raise config_error(
                context,
                "encoding",
                f"{settings.encoding!r} is not an encoding Python knows",
                "utf-8-sig, utf-8 or gb18030",
            ) from None
        if len(settings.delimiter) != 1 or settings.delimiter in '"\r\n':
            raise config_error(
                context,
                "delimiter",
                f"{settings.delimiter!r} is not one character",
                '",", "\\t" or ";"',
            )

    def _rows(self, data: bytes) -> Failure | list[Row | Failure]:
        try:
            content = data.decode(self.encoding)
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            return Failure(
                f"{self.label}:{line}",
                f"not {self.encoding} text (byte {exc.start}: {exc.reason}); "
                'set encoding = "gb18030" for exports from Chinese Windows, or save as UTF-8',
            )
        reader = csv.reader(
            io.StringIO(content, newline=""), delimiter=self.delimiter, strict=False
        )
        try:
            headers, line = _header(reader)
        except csv.Error as exc:
            return Failure(f"{self.label}:{reader.line_num}", f"not CSV: {exc}")
        if headers is None:
            return Failure(
                self.label, "the file has no header row; its first row must name the columns"
            )
        missing = self.columns.absent(headers, f"{self.label}:{line}")
        if missing:
            return missing
        return self._limited(self._records(reader, headers))

    def _records(self, reader: Any, headers: list[str]) -> Iterator[Row | Failure]:
        line = reader.line_num
        while True:
            start = line + 1
            try:
                cells = next(reader, None)
            except csv.Error as exc:  # a field over the csv module's size limit, a stray NUL
                line = reader.line_num
                yield Failure(f"{self.label}:{start}", f"unreadable row: {exc}")
                continue
            if cells is None:
                return
            line = reader.line_num
            if any(cell.strip() for cell in cells):
                yield start, f"{self.label}:{start}", dict(zip(headers, cells, strict=False))


def _header(reader: Any) -> tuple[list[str] | None, int]:
    for cells in reader:
        if any(cell.strip() for cell in cells):
            return [cell.strip().lstrip("\ufeff") for cell in cells], reader.line_num
    return None, 0


class ExcelAdapter(_Tabular):
    """One record per row of an Excel workbook (.xlsx), read streaming and without formulas."""

    name: ClassVar[str] = "excel"
    Settings: ClassVar[type] = ExcelSettings

    def __init__(self, settings: ExcelSettings, context: Context) -> None:
        super().__init__(settings, context)
        self.sheet = settings.sheet

    def _rows(self, data: bytes) -> Failure | list[Row | Failure]:
        import openpyxl

        unpacked = _unpacked_size(data)
        if unpacked is None:
            return Failure(self.label, "not an .xlsx workbook (not a zip file); save it as .xlsx")
        limit = self.settings.max_bytes * MAX_EXPANSION
        if unpacked > limit:
            return Failure(
                self.label, f"the workbook unpacks to {unpacked:,} bytes, over {limit:,}; refused"
            )
        try:
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
            return Failure(self.label, f"not a readable .xlsx workbook: {exc}")
        try:
            return self._sheet_rows(book)
        finally:
            book.close()

    def _sheet_rows(self, book: Any) -> Failure | list[Row | Failure]:
        if self.sheet and self.sheet not in book.sheetnames:
            return Failure(
                self.label,
                f"no sheet {self.sheet!r}; the sheets are {', '.join(map(repr, book.sheetnames))}",
            )
        sheet = book[self.sheet] if self.sheet else book.worksheets[0]
        title = sheet.title
        rows = enumerate(sheet.iter_rows(values_only=True), start=1)
        headers: list[str] | None = None
        for number, cells in rows:
            if any(text(cell) for cell in cells):
                headers = [text(cell) or "" for cell in cells]
                missing = self.columns.absent(headers, f"{self.label}:{title}!{number}")
                if missing:
                    return missing
                break
        if headers is None:
            return Failure(
                f"{self.label}:{title}", "the sheet is empty; its first row must name the columns"
            )
        names = headers
        return self._limited(
            (number, f"{self.label}:{title}!{number}", dict(zip(names, cells, strict=False)))
            for number, cells in rows
            if any(text(cell) for cell in cells)
        )


def _unpacked_size(data: bytes) -> int | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        return None


__all__ = [
    "CHINA",
    "Columns",
    "CsvAdapter",
    "ExcelAdapter",
    "config_error",
    "day",
    "moment",
    "source_path",
    "text",
]
