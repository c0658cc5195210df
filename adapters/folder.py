"""A folder of record XML files → records: what a CMS plug-in writes out.

A CMS that can already write govhub records (one ``<record>`` per file, or a
``<records>`` batch) drops them into a folder; this adapter reads the files
that are new since the last run, oldest first.

- **Order and cursor.** Files are taken in the order (modification time in
  nanoseconds, name); the cursor is that pair for the last file read. A file
  written again gets a newer time and is read again (the harvester's content
  hash drops what did not change). So a writer must create or replace files,
  best as a temporary name renamed into place, and must not back-date them
  (``cp -p`` or ``rsync -t`` keep old times, and those files would be missed).
- **One item per record.** ``fetch`` parses each file with the hardened record
  parser (``hub.records.parse_batch``: no DTD, no entities, size and depth
  limits, the schema, the rules) and yields one ``Item`` per record, carrying
  the parsed ``Record``; only the last record of a file carries the file's
  cursor, so a run that stops inside a batch reads the whole file again. A file
  that is not valid is one ``Failure`` with every problem (file:line, field,
  reason, fix); its cursor moves past it, and fixing the file (which gives it
  a newer time) has it read again.
- **Whose records.** ``convert`` returns the parsed record after checking that
  it is this node's own (id, origin node and site code); another node's record
  is a per-item error, never published under this node.

Symbolic links and hidden files (``.name``, where writers keep temporary files)
are skipped: a link could point anywhere on the machine.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from adapters.columns import config_error, source_path
from adapters.contract import Context, Failure, Item
from hub import records
from hub.errors import InputError, Problem
from hub.records import Limits, Record, RecordInvalid

MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FolderSettings:
    path: str = field(
        metadata={"help": "the folder the CMS writes records to (or one record file)"}
    )
    pattern: str = field(
        default="*.xml", metadata={"help": "which files are records, e.g. *.xml or **/*.xml"}
    )
    max_bytes: int = field(default=MAX_BYTES, metadata={"help": "largest file read, in bytes"})


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where a file stands in the reading order; the cursor is the last file's position."""

    mtime_ns: int
    name: str

    def __str__(self) -> str:
        return f"{self.mtime_ns}:{self.name}"

    @classmethod
    def parse(cls, cursor: str | None) -> Position | None:
        if not cursor:
            return None
        mtime, _, name = cursor.partition(":")
        return cls(int(mtime), name) if mtime.isdigit() else None


class FolderAdapter:
    """Record files from a folder, oldest first; one item per record."""

    name: ClassVar[str] = "folder"
    Settings: ClassVar[type] = FolderSettings
    sample: ClassVar[str] = "path"

    def __init__(self, settings: FolderSettings, context: Context) -> None:
        self.settings, self.context = settings, context
        self.root = source_path(context, settings.path)
        pattern = Path(settings.pattern)
        if pattern.is_absolute() or ".." in pattern.parts or not settings.pattern:
            raise config_error(
                context, "pattern", f"{settings.pattern!r} leaves the folder", "e.g. *.xml"
            )
        self.limits = Limits(max_bytes=settings.max_bytes)

    async def fetch(self, cursor: str | None) -> AsyncIterator[Item | Failure]:
        after = Position.parse(cursor)
        found = await asyncio.to_thread(self._listing, after)
        if isinstance(found, Failure):
            yield found
            return
        for position, file in found:
            label = self._label(file)
            for entry in await asyncio.to_thread(
                read_records, file, label, str(position), self.limits
            ):
                yield entry

    def convert(self, item: Item) -> Record | None:
        return owned(item.data, self.context, item.where)

    def _listing(self, after: Position | None) -> Failure | list[tuple[Position, Path]]:
        if self.root.is_file():
            files = [self.root]
        elif self.root.is_dir():
            inside = self.root.resolve()
            files = [
                file
                for file in self.root.glob(self.settings.pattern)
                if not file.is_symlink()
                and file.is_file()
                and file.resolve().is_relative_to(inside)  # no way out through a linked folder
                and not any(part.startswith(".") for part in file.relative_to(self.root).parts)
            ]
        else:
            return Failure(self.settings.path, "no such folder; create it or fix path")
        return listing(files, self.root, after)

    def _label(self, file: Path) -> str:
        if file == self.root:
            return self.settings.path
        return str(Path(self.settings.path) / file.relative_to(self.root))


def listing(files: list[Path], root: Path, after: Position | None) -> list[tuple[Position, Path]]:
    """``files`` in reading order, only those after ``after``."""
    ordered = []
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            continue  # gone since the glob: a writer replaced it; the next run sees the new one
        name = file.name if file == root else str(file.relative_to(root))
        position = Position(stat.st_mtime_ns, name)
        if after is None or position > after:
            ordered.append((position, file))
    ordered.sort()
    return ordered


def read_records(file: Path, label: str, cursor: str, limits: Limits) -> list[Item | Failure]:
    """One item per record of ``file`` (the last carries ``cursor``), or one failure.

    The file is read with the hardened record parser; everything wrong with it
    comes back as one ``Failure`` naming ``label``, the lines and the fixes.
    """
    try:
        with open(file, "rb") as handle:  # one open: the size checked is the size read
            size = os.fstat(handle.fileno()).st_size
            if size > limits.max_bytes:
                message = f"the file is {size:,} bytes, over max_bytes = {limits.max_bytes:,}"
                return [Failure(label, message, cursor)]
            data = handle.read(limits.max_bytes + 1)
    except OSError as exc:
        return [Failure(label, f"cannot read the file: {exc.strerror or exc}", cursor)]
    try:
        found = records.parse_batch(data, label, limits=limits)
    except RecordInvalid as exc:
        first = next((p.line for p in exc.problems if p.line), None)
        where = f"{label}:{first}" if first else label
        return [Failure(where, "invalid record file:\n" + _lines(exc.problems), cursor)]
    if not found:
        return [Failure(label, "the batch holds no records", cursor)]
    last = len(found) - 1
    return [
        Item(
            record.id,
            f"{label}:{record.lines.get('record', 1)}",
            record,
            cursor if index == last else None,
        )
        for index, record in enumerate(found)
    ]


def owned(record: Record, context: Context, where: str) -> Record:
    """``record`` when it is the context node's own; ``InputError`` naming what is foreign."""
    node = context.node
    if record.origin.node != node.id or record.node != node.id:
        message = (
            f"record {record.id} of node {record.origin.node!r} in a source of node {node.id!r}"
        )
        expected = f'ids urn:govhub:{node.id}:… and <origin node="{node.id}">'
        raise InputError([Problem(where, None, "origin/@node", message, expected)])
    if record.origin.site != node.site_code:
        message = f"{record.origin.site!r} is not the site code of node {node.id!r}"
        raise InputError([Problem(where, None, "origin/@site", message, node.site_code)])
    return record


def _lines(problems: list[Problem]) -> str:
    return "\n".join(f"  {problem}" for problem in problems)
