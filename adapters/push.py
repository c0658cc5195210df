"""Records a CMS POSTs to the node → a durable spool → records, read as the folder adapter does.

The node's HTTP port takes ``POST /push/{source}`` (hub/node/port.py): it checks
the bearer token, the size and the records, then writes the body into the spool
and answers 202 only once the file is on disk (temporary file, fsync, atomic
rename, fsync of the directory), so an accepted POST survives a crash.

The spool is a maildir-like pair of folders under
``GOVHUB_DATA_DIR/push/<node>/<source>/``:

- ``new/``: the server renames each accepted body in here;
- ``cur/``: ``fetch`` moves files from ``new/`` to ``cur/``, giving each the
  next number of the source (``000000000042.xml``), and reads ``cur/`` in that
  order. The cursor is the name of the last file whose records were committed,
  so the next ``fetch`` removes those files and reads the rest again.

Every folder of the spool is 0700 and every file 0600 (hub.private), whatever
the umask: the bodies are records not yet published.

Numbering at the consumer, rather than trusting the time a file was written,
means a slow write that lands after a quicker, later one is still read: it is
simply numbered after it. Each file is read with the folder adapter's
``read_records`` (one item per record), and ``convert`` checks the records are
the node's own with the folder adapter's ``owned``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from adapters.columns import source_path
from adapters.contract import Context, Failure, Item
from adapters.folder import owned, read_records
from adapters.settings import read_settings
from hub.errors import ConfigInvalid, Problem
from hub.federation import Node
from hub.private import private_dir
from hub.records import Limits, Record

MAX_BYTES = 4 * 1024 * 1024
STALE_TEMPORARY = 24 * 3600  # seconds after which a temporary file left by a crash is removed
_NUMBERED = re.compile(r"\d{12}\.xml")


@dataclass(frozen=True, slots=True)
class PushSettings:
    token: str = field(
        default="push_token",
        metadata={"help": "the node credential holding the bearer token the CMS must send"},
    )
    max_bytes: int = field(default=MAX_BYTES, metadata={"help": "largest POST body, in bytes"})
    spool: str = field(
        default="",
        metadata={"help": "the spool folder (default: GOVHUB_DATA_DIR/push/<node>/<source>)"},
    )


class PushAdapter:
    """Records the site's CMS pushed to ``POST /push/{source}``, in the order they came."""

    name: ClassVar[str] = "push"
    Settings: ClassVar[type] = PushSettings
    sample: ClassVar[str] = "spool"  # a sample record file is read as it is, nothing moved

    def __init__(self, settings: PushSettings, context: Context) -> None:
        self.settings, self.context = settings, context
        self.limits = Limits(max_bytes=settings.max_bytes)
        if settings.spool:
            self.spool = source_path(context, settings.spool)
        else:
            self.spool = spool_dir(_data_dir(context), context.node.id, context.source)

    async def fetch(self, cursor: str | None) -> AsyncIterator[Item | Failure]:
        if self.spool.is_file():  # `govhub adapter check push FILE`: read the file, move nothing
            label = self.settings.spool
            for entry in await asyncio.to_thread(
                read_records, self.spool, label, label, self.limits
            ):
                yield entry
            return
        files = await asyncio.to_thread(take_in, self.spool, cursor)
        for file in files:
            label = f"push:{self.context.source}/{file.name}"
            for entry in await asyncio.to_thread(read_records, file, label, file.name, self.limits):
                yield entry

    def convert(self, item: Item) -> Record | None:
        return owned(item.data, self.context, item.where)


def spool_dir(data_dir: Path, node_id: str, source: str) -> Path:
    """Where pushes to one source of one node wait for the harvester."""
    return data_dir / "push" / node_id / source


def _data_dir(context: Context) -> Path:
    known = context.extra.get("data_dir")
    if known:
        return Path(known)
    from hub.settings import Settings

    return Settings.from_env().data_dir


# -- The spool --------------------------------------------------------------------------------


def spool(directory: Path, body: bytes) -> str:
    """Write ``body`` into ``directory/new`` durably; the file's name once it is there.

    Temporary file, fsync, atomic rename, fsync of the folder: after the return
    the body is on disk under its final name, whatever happens next.
    """
    new = private_dir(directory / "new", within=directory)  # bodies are records: 0700/0600
    name = f"{time.time_ns():020d}-{secrets.token_hex(4)}.xml"
    temporary = new / f".{name}.tmp"
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(body)
        while view:
            view = view[os.write(handle, view) :]
        os.fsync(handle)
    finally:
        os.close(handle)
    os.replace(temporary, new / name)
    _sync_dir(new)
    return name


def take_in(directory: Path, cursor: str | None) -> list[Path]:
    """The spool's files after ``cursor``, in order, after moving ``new/`` into ``cur/``.

    Files up to ``cursor`` were committed by the harvester: they are removed.
    """
    new, cur = directory / "new", directory / "cur"
    private_dir(new, within=directory)
    private_dir(cur, within=directory)
    done = cursor if cursor and _NUMBERED.fullmatch(cursor) else ""
    numbered = sorted(f.name for f in cur.iterdir() if _NUMBERED.fullmatch(f.name))
    for name in numbered:
        if name <= done:
            (cur / name).unlink()
    last = max([int(done[:12]) if done else 0] + [int(n[:12]) for n in numbered])
    arrived = sorted(f.name for f in new.iterdir() if not f.name.startswith("."))
    for name in arrived:
        last += 1
        os.replace(new / name, cur / f"{last:012d}.xml")
    if arrived or numbered:
        _sync_dir(cur)
        _sync_dir(new)
    _remove_stale_temporaries(new)
    return sorted(
        (f for f in cur.iterdir() if _NUMBERED.fullmatch(f.name) and f.name > done),
        key=lambda f: f.name,
    )


def _remove_stale_temporaries(new: Path) -> None:
    limit = time.time() - STALE_TEMPORARY
    for file in new.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            if file.stat().st_mtime < limit:
                file.unlink()


def _sync_dir(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


# -- What the HTTP endpoint needs -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PushSource:
    """One push source as ``POST /push/{source}`` checks it: its token, limit and spool."""

    name: str
    token: str
    max_bytes: int
    spool: Path


def push_sources(
    node: Node,
    data_dir: Path,
    environ: Mapping[str, str],
    *,
    where: str = "nodes.toml",
    root: str = ".",
) -> dict[str, PushSource]:
    """The node's push sources by name, tokens read from ``environ``.

    Raises ``ConfigInvalid`` naming the source and credential when a token is
    not declared in ``nodes.toml`` or its environment variable is unset, so the
    node stops at start-up rather than refusing every push.
    """
    found: dict[str, PushSource] = {}
    problems: list[Problem] = []
    for source in node.sources:
        if source.adapter != PushAdapter.name:
            continue
        settings = read_settings(PushSettings, source, node, where)
        label = f"node[{node.id}].sources[{source.name}].token"
        variable = node.credentials.get(settings.token)
        if variable is None:
            expected = f'{settings.token} = {{ env = "…" }} under [node.credentials]'
            message = f"node {node.id!r} has no credential {settings.token!r}"
            problems.append(Problem(where, source.line or None, label, message, expected))
            continue
        token = environ.get(variable, "")
        if len(token) < 16:
            message = f"{variable} is unset or shorter than 16 characters"
            expected = f"{variable} set to a long random token (openssl rand -hex 32)"
            problems.append(Problem("environment", None, label, message, expected))
            continue
        if settings.spool:
            directory = (
                Path(settings.spool)
                if Path(settings.spool).is_absolute()
                else Path(root) / settings.spool
            )
        else:
            directory = spool_dir(data_dir, node.id, source.name)
        found[source.name] = PushSource(source.name, token, settings.max_bytes, directory)
    if problems:
        raise ConfigInvalid(problems)
    return found
