"""Connections to PostgreSQL: open one in the right schema, survive a restart.

A database is named by a URL (``postgresql://user@host:5432/db``) or a libpq
``key=value`` string. The schema is the connection's ``search_path``; it travels
inside the URL as ``options=-c search_path=NAME`` (``with_schema``), so one
string is enough to reach the same tables from any process. Every store
function turns psycopg's errors into ``StoreError``; ``DatabaseUnavailable``
(retryable) means the server went away: ``wait_for_database`` waits, with
backoff, until it is back, and ``Reconnecting`` (the hub's consumers and
followers) keeps one connection, reopened with backoff, for work that must
wait out an outage.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from hub.lifecycle import Backoff
from hub.store.errors import DatabaseUnavailable, StoreError

Connection = psycopg.Connection[Any]

SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
UNAVAILABLE_HINT = (
    "PostgreSQL is down, restarting or unreachable; the work was not done and can be "
    "retried once wait_for_database() succeeds"
)
ABORTED_HINT = "the server aborted the transaction (deadlock or serialization); retry it"

P = ParamSpec("P")
T = TypeVar("T")


def with_schema(url: str, schema: str) -> str:
    """``url`` with its ``search_path`` set to ``schema`` (replacing any ``options``)."""
    if not SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"{schema!r} is not a schema name (lower-case letters, digits, _)")
    option = f"-c search_path={schema}"
    if "://" not in url:
        return make_conninfo(url, options=option)
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", option))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def describe(url: str) -> str:
    """``host:port/dbname`` of ``url``, without the password, for messages."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(unparsable database URL)"
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{host}:{params.get('port') or 5432}/{params.get('dbname') or params.get('user') or ''}"


def translate_errors(action: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a store function so that psycopg errors leave it as ``StoreError``."""

    def decorate(func: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return func(*args, **kwargs)
            except psycopg.OperationalError as exc:
                aborted = (exc.sqlstate or "").startswith("40")  # deadlock, serialization
                hint = ABORTED_HINT if aborted else UNAVAILABLE_HINT
                raise DatabaseUnavailable(action, _first_line(exc), hint) from exc
            except psycopg.Error as exc:
                raise StoreError(
                    action,
                    _first_line(exc),
                    "this is a bug or a schema mismatch; "
                    "check `migrate` ran and report the message",
                ) from exc

        return wrapper

    return decorate


def connect(
    url: str, *, schema: str | None = None, autocommit: bool = True, timeout: float = 10.0
) -> Connection:
    """A connection to ``url``, in ``schema`` when given (else the URL's search_path).

    Connections are autocommit by default: every store function opens its own
    transaction, or a savepoint inside the caller's ``conn.transaction()``.
    """
    if schema is not None:
        url = with_schema(url, schema)
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=max(2, round(timeout)))
    except psycopg.OperationalError as exc:
        action = f"connect to {describe(url)}"
        raise DatabaseUnavailable(action, _first_line(exc), UNAVAILABLE_HINT) from exc


def wait_for_database(
    url: str, timeout: float = 60.0, *, first_delay: float = 0.1, max_delay: float = 5.0
) -> None:
    """Return once ``url`` accepts a connection and a query; back off between tries.

    Raises ``DatabaseUnavailable`` with the last error when ``timeout`` seconds pass.
    """
    deadline = time.monotonic() + timeout
    backoff = Backoff("wait_for_database", describe(url), first_delay, max_delay)
    while True:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                action = f"reach {describe(url)} within {timeout:g} s"
                raise DatabaseUnavailable(action, _first_line(exc), UNAVAILABLE_HINT) from exc
            time.sleep(min(backoff.next(_first_line(exc)), remaining))


class Reconnecting:
    """One store connection for a long-running part of the hub, opened when first needed
    and again after the database went away.

    ``run(work, stop)`` does ``work(conn)`` in a thread. While the database is
    unavailable (a retryable ``StoreError``) it waits with ``backoff`` (each wait
    logged once, naming ``who`` waits), reconnects and does the work again, until it
    succeeds (the result) or ``stop`` is set (``None``: the work was not done).
    ``on_wait`` is told of each wait as it begins (the hub's tally counts them).
    Other errors leave at once.
    """

    def __init__(
        self,
        connect: Callable[[], Connection],
        who: str,
        *,
        first: float = 0.1,
        most: float = 5.0,
        extra: Mapping[str, Any] | None = None,
        on_wait: Callable[[StoreError], None] | None = None,
    ) -> None:
        self._connect = connect
        self._conn: Connection | None = None
        self.backoff = Backoff(who, "the database", first, most, extra or {})
        self.on_wait = on_wait

    async def run(self, work: Callable[[Connection], T], stop: asyncio.Event) -> T | None:
        while True:
            try:
                if self._conn is None or self._conn.closed or self._conn.broken:
                    self.close()
                    self._conn = await asyncio.to_thread(self._connect)
                done = await asyncio.to_thread(work, self._conn)
            except StoreError as exc:
                if not exc.retryable:
                    raise
                if self.on_wait is not None:
                    self.on_wait(exc)
                if not await self.backoff.wait(exc, stop):
                    return None
                continue
            self.backoff.reset()
            return done

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
