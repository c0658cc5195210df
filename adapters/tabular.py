"""Exports (CSV, Excel) → records, one per row, through the shared column mapping.

The csv and excel adapters read a catalogue export (size- and row-limited) and
yield one item per non-empty row; ``adapters.columns`` turns each row into a
record, the same way the sql adapter does.

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
import hashlib
import io
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from adapters.columns import Columns, config_error, source_path, text
from adapters.contract import Context, Failure, Item
from hub.errors import InputError
from hub.records import Record

MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 100_000
MAX_EXPANSION = 20  # an .xlsx may unpack to at most this many times max_bytes (zip bombs)


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


__all__ = ["CsvAdapter", "ExcelAdapter"]
