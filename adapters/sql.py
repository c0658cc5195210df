"""A CMS database → records: one record per row of a SELECT, read incrementally.

The source's ``query`` is a plain SELECT that the adapter wraps, so nobody has
to write placeholders for three drivers::

    SELECT * FROM (<query>) AS govhub_rows
     WHERE c > :last OR (c = :last AND k > :last_key)      -- only with a cursor
     ORDER BY c, k                                         -- c: cursor_column, k: key

Ordering by the key after the cursor column means rows that share a cursor
value (two articles saved in the same second) are never skipped when a run
stops between them. Without ``cursor_column`` every run reads every row and the
harvester's content hash recognises the unchanged ones.

The database is opened read-only (SQLite ``mode=ro``, PostgreSQL
``default_transaction_read_only``, MySQL ``SET SESSION TRANSACTION READ ONLY``)
with a statement timeout, and rows are fetched in chunks from a server-side
cursor, off the event loop. A password is never written in ``nodes.toml``:
``password`` names one of the node's credentials, whose environment variable
holds it.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlsplit

from adapters.columns import Columns, config_error, source_path
from adapters.contract import Context, Failure, Item
from hub.records import Record

_IDENTIFIER = re.compile(r"[^\W\d]\w{0,62}")
_SCHEMES = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql"}
_SCHEMES |= {"mysql": "mysql", "mariadb": "mysql", "mysql+pymysql": "mysql"}


@dataclass(frozen=True, slots=True)
class SqlSettings:
    query: str = field(metadata={"help": "a SELECT returning one row per record"})
    key: str = field(metadata={"help": "the column that identifies a row for life (its id)"})
    columns: dict[str, str] = field(
        metadata={"help": 'record field → column, e.g. { title = "title", published = "pub_date" }'}
    )
    url: str = field(
        default="",
        metadata={
            "help": "postgresql://user@host/db, mysql://user@host/db or sqlite:///cms.db "
            "(no password in the URL)"
        },
    )
    path: str = field(
        default="", metadata={"help": "a SQLite file, instead of url (relative: project root)"}
    )
    cursor_column: str = field(
        default="",
        metadata={
            "help": "a column that grows with every change (updated_at, id): read only newer"
        },
    )
    password: str = field(
        default="",
        metadata={"help": "the name of the node credential holding the password (nodes.toml)"},
    )
    kind: str = field(default="document", metadata={"help": "the kind of every record"})
    chunk: int = field(default=500, metadata={"help": "rows fetched at a time"})
    timeout: float = field(default=60.0, metadata={"help": "longest a query may run, in seconds"})


class SqlAdapter:
    """One record per row of a SELECT on SQLite, PostgreSQL or MySQL/MariaDB."""

    name: ClassVar[str] = "sql"
    Settings: ClassVar[type] = SqlSettings
    sample: ClassVar[str] = "path"  # a sample is a SQLite file

    def __init__(self, settings: SqlSettings, context: Context) -> None:
        self.settings, self.context = settings, context
        self.columns = Columns.from_settings(settings.columns, settings.key, settings.kind, context)
        if bool(settings.url) == bool(settings.path):
            raise config_error(
                context, "url", "give either url or path (a SQLite file), not both or neither"
            )
        self.url = settings.url or f"sqlite:///{settings.path}"
        self.dialect = _dialect(self.url, context)
        for setting in ("key", "cursor_column"):
            value = getattr(settings, setting)
            if value and not _IDENTIFIER.fullmatch(value):
                raise config_error(
                    context, setting, f"{value!r} is not a plain column name", "letters, digits, _"
                )
        if settings.chunk < 1 or settings.timeout <= 0:
            raise config_error(context, "chunk", "chunk and timeout must be positive", "e.g. 500")
        self.where = settings.path or _redacted(settings.url)

    async def fetch(self, cursor: str | None) -> AsyncIterator[Item | Failure]:
        try:
            conn = await asyncio.to_thread(self._connect)
        except Exception as exc:  # each driver has its own errors; all mean "cannot connect"
            yield Failure(self.where, f"cannot connect: {_reason(exc)}")
            return
        try:
            async for entry in self._rows(conn, cursor):
                yield entry
        finally:
            await asyncio.to_thread(conn.close)

    def convert(self, item: Item) -> Record | None:
        return self.columns.record(self.context, item.data, item.where)

    async def _rows(self, conn: Any, cursor: str | None) -> AsyncIterator[Item | Failure]:
        statement, parameters = self._statement(cursor)
        try:
            rows = await asyncio.to_thread(_execute, conn, self.dialect, statement, parameters)
            names = [column[0] for column in rows.description]
        except Exception as exc:
            yield Failure(self.where, f"the query failed: {_reason(exc)}; check query and columns")
            return
        missing = self.columns.absent(names, self.where)
        if missing is not None:
            yield missing
            return
        while True:
            try:
                chunk = await asyncio.to_thread(rows.fetchmany, self.settings.chunk)
            except Exception as exc:
                yield Failure(self.where, f"reading rows failed: {_reason(exc)}")
                return
            if not chunk:
                return
            for values in chunk:
                row = dict(zip(names, values, strict=True))
                key = str(row[self.settings.key])
                where = f"{self.where} {self.settings.key}={key}"
                yield Item(key, where, row, self._cursor(row))

    def _statement(self, cursor: str | None) -> tuple[str, list[Any] | None]:
        """The wrapped query and its parameters. The query text is the operator's own (from
        nodes.toml), the names are checked identifiers, and values go as parameters."""
        quote_name, mark = self.dialect.quote, self.dialect.mark
        query = self.settings.query.strip().rstrip(";")
        key = quote_name(self.settings.key)
        order, after, parameters = f"ORDER BY {key}", "", None
        if self.settings.cursor_column:
            column = quote_name(self.settings.cursor_column)
            order = f"ORDER BY {column}, {key}"
            if cursor is not None:
                last, last_key = _decode(cursor)
                after = f"WHERE {column} > {mark} OR ({column} = {mark} AND {key} > {mark}) "
                parameters = [last, last, last_key]
                query = self.dialect.escape(query)
        return f"SELECT * FROM ({query}) AS govhub_rows {after}{order}", parameters  # noqa: S608

    def _cursor(self, row: Mapping[str, Any]) -> str | None:
        if not self.settings.cursor_column:
            return None
        return _encode(row[self.settings.cursor_column], row[self.settings.key])

    def _connect(self) -> Any:
        return self.dialect.connect(self.url, self.settings, self.context)


# -- Dialects ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    mark: str  # the driver's parameter placeholder
    quote: Callable[[str], str]
    escape: Callable[[str], str]  # the query text made safe for the driver's % formatting
    connect: Callable[[str, SqlSettings, Context], Any]


def _dialect(url: str, context: Context) -> Dialect:
    parts = urlsplit(url)
    name = _SCHEMES.get(parts.scheme.lower())
    if name is None:
        raise config_error(
            context,
            "url",
            f"{parts.scheme or url!r} is not a database this adapter reads",
            "sqlite:///…, postgresql://… or mysql://…",
        )
    if parts.password:
        raise config_error(
            context,
            "url",
            "the URL holds a password; secrets are never written in nodes.toml",
            'the URL without it, and password = "<credential>" naming a node credential',
        )
    if name == "sqlite":
        return Dialect(name, "?", _double_quoted, str, _connect_sqlite)
    if name == "postgresql":
        return Dialect(name, "%s", _double_quoted, _percent, _connect_postgresql)
    return Dialect(name, "%s", _backquoted, _percent, _connect_mysql)


def _double_quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _backquoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _percent(query: str) -> str:
    return query.replace("%", "%%")


def _password(settings: SqlSettings, context: Context) -> str | None:
    """The password from the credential the settings name, read from the environment now."""
    if not settings.password:
        return None
    import os

    variable = context.node.credentials.get(settings.password)
    if variable is None:
        known = ", ".join(sorted(context.node.credentials)) or "none"
        raise config_error(
            context,
            "password",
            f"node {context.node.id!r} has no credential {settings.password!r} (it has: {known})",
            f'{settings.password} = {{ env = "…" }} under [node.credentials]',
        )
    value = os.environ.get(variable)
    if not value:
        raise config_error(
            context,
            "password",
            f"{variable} is not set",
            f"{variable} set in the node's environment",
        )
    return value


def _connect_sqlite(url: str, settings: SqlSettings, context: Context) -> sqlite3.Connection:
    # sqlite:///cms.db → cms.db (from the project root); sqlite:////srv/cms.db → /srv/cms.db
    path = unquote(urlsplit(url).path)[1:]
    file = source_path(context, path)
    if not file.is_file():
        raise FileNotFoundError(f"no SQLite file at {file}")
    uri = f"file:{quote(str(file.resolve()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=settings.timeout)
    conn.execute("PRAGMA query_only = ON")
    return conn


def _connect_postgresql(url: str, settings: SqlSettings, context: Context) -> Any:
    import psycopg

    options = (
        f"-c default_transaction_read_only=on -c statement_timeout={int(settings.timeout * 1000)}"
    )
    url = url.replace("postgres://", "postgresql://", 1)
    password = _password(settings, context)
    extra: dict[str, Any] = {"password": password} if password else {}
    return psycopg.connect(url, options=options, connect_timeout=10, **extra)


def _connect_mysql(url: str, settings: SqlSettings, context: Context) -> Any:
    import pymysql
    import pymysql.cursors

    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=_password(settings, context) or "",
        database=unquote(parts.path.lstrip("/")) or None,
        charset="utf8mb4",
        connect_timeout=10,
        read_timeout=int(settings.timeout),
        cursorclass=pymysql.cursors.SSCursor,
        init_command="SET SESSION TRANSACTION READ ONLY",
    )


def _execute(conn: Any, dialect: Dialect, statement: str, parameters: list[Any] | None) -> Any:
    """Run the statement; PostgreSQL through a named (server-side) cursor: rows come in chunks."""
    rows = conn.cursor(name="govhub_rows") if dialect.name == "postgresql" else conn.cursor()
    if parameters is None:
        rows.execute(statement)
    else:
        rows.execute(statement, parameters)
    return rows


def _reason(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(query="", fragment="").geturl()


# -- The cursor: the last row's cursor value and key, typed ------------------------------------


def _encode(value: Any, key: Any) -> str:
    return json.dumps([_typed(value), _typed(key)], ensure_ascii=False)


def _typed(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"hex": bytes(value).hex()}
    return value


def _decode(cursor: str) -> tuple[Any, Any]:
    value, key = json.loads(cursor)
    return _untyped(value), _untyped(key)


def _untyped(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    ((kind, text),) = value.items()
    readers: dict[str, Callable[[str], Any]] = {
        "datetime": datetime.fromisoformat,
        "date": date.fromisoformat,
        "decimal": Decimal,
        "hex": bytes.fromhex,
    }
    return readers[kind](text)
