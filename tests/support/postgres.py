"""PostgreSQL fixtures for integration tests: a real server, a unique schema.

Bind the ones a module uses by name (a plain ``from postgres_fixtures import
pg_conn`` works too, but ruff then reports F811 on every test that takes it)::

    import support.postgres as postgres_fixtures

    pg_url = postgres_fixtures.pg_url
    pg_conn = postgres_fixtures.pg_conn

- ``pg_url``: a URL whose search_path is a fresh schema ``govhub_test_<random>``,
  created for the test module and dropped (CASCADE) after it.
- ``pg_conn``: an autocommit connection to ``pg_url``, migrated, with every
  table emptied, so each test starts from nothing.
- ``pg_fresh_url``: a URL naming a schema that does not exist yet (for
  migration tests); dropped after the test if something created it.

- ``own_pg_url``: like ``pg_url``, on a PostgreSQL server of this test run's
  own (the embedded one, started once per run in a temporary folder). For tests
  that read the change feed (hub.store.changes): a row becomes visible there
  only once every transaction that started before it has ended on the whole
  server, so another client's long write transaction on the shared server would
  hold them back. Bind it as ``pg_url = postgres_fixtures.own_pg_url``; ``pg_conn``
  then uses it too.

The server is ``GOVHUB_TEST_DATABASE_URL`` (default: ``postgres`` on
127.0.0.1:5432, database ``test``). When it is not reachable the tests fail
in CI and are skipped elsewhere (``services.require_service``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from hub.store import connect, migrate, with_schema
from hub.store.connection import Connection
from hub.store.embedded import start_embedded
from support.services import require_service

BASE_URL = os.environ.get("GOVHUB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def new_schema_name() -> str:
    return f"govhub_test_{secrets.token_hex(4)}"


def drop_schema(schema: str, server: str = BASE_URL) -> None:
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def schema_url(server: str) -> Iterator[str]:
    """A URL whose search_path is a fresh schema on ``server``, dropped (CASCADE) after."""
    schema = new_schema_name()
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield with_schema(server, schema)
    finally:
        drop_schema(schema, server)


def _require_postgres() -> None:
    params = conninfo_to_dict(BASE_URL)
    host, port = str(params.get("host") or "127.0.0.1"), int(str(params.get("port") or 5432))
    require_service("PostgreSQL", host, port)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    _require_postgres()
    yield from schema_url(BASE_URL)


@pytest.fixture
def pg_conn(pg_url: str) -> Iterator[Connection]:
    conn = connect(pg_url)
    try:
        migrate(conn)
        tables = conn.execute(
            "SELECT tablename FROM pg_tables"
            " WHERE schemaname = current_schema() AND tablename <> 'schema_version'"
        ).fetchall()
        if tables:
            names = sql.SQL(", ").join(sql.Identifier(t[0]) for t in tables)
            conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(names))
        yield conn
    finally:
        conn.close()


@pytest.fixture
def pg_fresh_url() -> Iterator[str]:
    _require_postgres()
    schema = new_schema_name()
    try:
        yield with_schema(BASE_URL, schema)
    finally:
        drop_schema(schema)


@pytest.fixture(scope="session")
def own_server_url() -> Iterator[str]:
    """The URL of a PostgreSQL server that only this test run uses (stopped at the end)."""
    base = Path(tempfile.mkdtemp(prefix="govhub-pg-"))
    try:
        with start_embedded(base / "postgres") as server:
            yield server.url
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def own_pg_url(own_server_url: str) -> Iterator[str]:
    yield from schema_url(own_server_url)
