# ruff: noqa: S608, S106  (test tables have generated names; "passwords" here are credential names)
"""The sql adapter against real SQLite, PostgreSQL and MariaDB: incremental, read-only, typed.

PostgreSQL gets a schema of its own per run and MariaDB a table of its own,
both dropped afterwards. A missing server fails in CI and is skipped elsewhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from support.services import require_service

from adapters.columns import CHINA
from adapters.contract import Context, Failure, Item
from adapters.settings import read_settings
from adapters.sql import SqlAdapter
from hub import records
from hub.errors import ConfigInvalid
from hub.federation import Source, load_federation

ROOT = Path(__file__).parents[1]
NODE = dataclasses.replace(
    load_federation(ROOT / "nodes.toml").node("gz"),
    credentials={"cms_db": "GOVHUB_TEST_CMS_DB_PASSWORD"},
)
PG_URL = os.environ.get("GOVHUB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}
COLUMNS = {
    "title": "title",
    "published": "pub_date",
    "doc_number": "doc_no",
    "topic": "topic",
    "link": "url",
}
ROWS = [
    (
        1,
        "关于开展春季植树活动的通知",
        "2024-03-01 09:00:00",
        "穗府〔2024〕1号",
        "农业、林业、水利",
        "2024-03-01 10:00:00",
    ),
    (
        2,
        "关于做好清明节期间安全工作的通知",
        "2024-03-25 15:30:00",
        "穗府〔2024〕2号",
        "综合政务\\应急管理",
        "2024-03-25 16:00:00",
    ),
    (
        3,
        "关于公布2024年重点项目的决定",
        "2024-03-25 15:30:00",
        None,
        "工业、交通",
        "2024-03-25 16:00:00",
    ),
]

Run = Callable[[str, list[Any] | None], None]


@dataclasses.dataclass
class Database:
    """A database holding the ``articles`` table: the settings to reach it and a writer."""

    settings: dict[str, Any]
    table: str
    run: Run  # run one statement with parameters (the dialect's own placeholder)
    mark: str


def _insert(db: Database, row: tuple[Any, ...]) -> None:
    marks = ", ".join([db.mark] * 6)
    sql = (
        f"INSERT INTO {db.table} (id, title, pub_date, doc_no, topic, updated_at) VALUES ({marks})"
    )
    db.run(sql, list(row))


def _filled(db: Database) -> Database:
    for row in ROWS:
        _insert(db, row)
    return db


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Database:
    path = tmp_path / "cms.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT, pub_date TEXT,"
            " doc_no TEXT, topic TEXT, updated_at TEXT)"
        )

    def run(sql: str, parameters: list[Any] | None) -> None:
        with sqlite3.connect(path) as conn:
            conn.execute(sql, parameters or [])

    query = "SELECT id, title, pub_date, doc_no, topic, updated_at, 'https://www.gz.gov.cn/a/' || id AS url FROM articles"
    return _filled(Database({"path": str(path), "query": query}, "articles", run, "?"))


@pytest.fixture
def postgres_db() -> Iterator[Database]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    schema = f"govhub_test_{secrets.token_hex(4)}"
    admin = psycopg.connect(PG_URL, autocommit=True)
    admin.execute("SET TIME ZONE 'Asia/Shanghai'")  # the CMS writes Beijing times
    admin.execute(f"CREATE SCHEMA {schema}")
    admin.execute(
        f"CREATE TABLE {schema}.articles (id integer PRIMARY KEY, title text, pub_date timestamptz,"
        " doc_no text, topic text, updated_at timestamptz)"
    )

    def run(sql: str, parameters: list[Any] | None) -> None:
        admin.execute(sql, parameters)

    query = (
        f"SELECT a.*, 'https://www.gz.gov.cn/a/' || id AS url FROM {schema}.articles a"
        " WHERE title LIKE '%%'"  # a % in the query must survive the driver's formatting
    )
    try:
        yield _filled(Database({"url": PG_URL, "query": query}, f"{schema}.articles", run, "%s"))
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.fixture
def mariadb_db() -> Iterator[Database]:
    require_service("MariaDB", "127.0.0.1", 3306)
    table = f"govhub_test_{secrets.token_hex(4)}"
    admin = pymysql.connect(**MARIADB, charset="utf8mb4", autocommit=True)  # type: ignore[arg-type]
    with admin.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {table} (id INT PRIMARY KEY, title VARCHAR(200), pub_date DATETIME,"
            " doc_no VARCHAR(50), topic VARCHAR(50), updated_at DATETIME) CHARACTER SET utf8mb4"
        )

    def run(sql: str, parameters: list[Any] | None) -> None:
        with admin.cursor() as cursor:
            cursor.execute(sql, parameters)

    query = (
        f"SELECT t.*, CONCAT('https://www.gz.gov.cn/a/', id) AS url FROM {table} t"
        " WHERE title LIKE '%'"
    )
    url = "mysql://root@127.0.0.1:3306/test"
    try:
        yield _filled(Database({"url": url, "query": query}, table, run, "%s"))
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP TABLE {table}")
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def database(request: pytest.FixtureRequest) -> Database:
    db: Database = request.getfixturevalue(f"{request.param.replace('postgresql', 'postgres')}_db")
    return db


def adapter(db_settings: dict[str, Any], **settings: Any) -> SqlAdapter:
    values = {"key": "id", "columns": COLUMNS, **db_settings, **settings}
    source = Source("cms", "sql", values, line=12)
    node = dataclasses.replace(NODE, sources=(source,))
    context = Context(node, "cms", root=str(ROOT))
    return SqlAdapter(read_settings(SqlAdapter.Settings, source, node, "nodes.toml"), context)


def fetch(source: SqlAdapter, cursor: str | None = None) -> list[Item | Failure]:
    async def collect() -> list[Item | Failure]:
        return [entry async for entry in source.fetch(cursor)]

    return asyncio.run(collect())


def test_rows_become_valid_records_read_incrementally_without_losing_ties(
    database: Database,
) -> None:
    source = adapter(database.settings, cursor_column="updated_at")
    entries = fetch(source)
    items = [e for e in entries if isinstance(e, Item)]
    assert [i.key for i in items] == ["1", "2", "3"] and len(entries) == 3
    made = [source.convert(item) for item in items]
    assert all(r is not None and records.parse(r.to_xml()) == r for r in made)
    first, second, third = (r for r in made if r is not None)
    assert first.id == "urn:govhub:gz:1" and first.title == ROWS[0][1]
    assert first.published == datetime(2024, 3, 1, 9, tzinfo=CHINA)
    assert first.link == "https://www.gz.gov.cn/a/1" and first.doc_number == "穗府〔2024〕1号"
    assert second.topic is not None and (second.topic.top, second.topic.sub) == (
        "综合政务",
        "应急管理",
    )
    assert third.doc_number is None
    # Rows 2 and 3 share updated_at: a run that stopped after 2 still reads 3.
    assert [e.key for e in fetch(source, items[1].cursor) if isinstance(e, Item)] == ["3"]
    assert fetch(source, items[2].cursor) == []
    # A new row and a changed row come next, in the order they changed.
    _insert(
        database,
        (
            4,
            "关于调整公交线路的通告",
            "2024-04-02 08:00:00",
            None,
            "工业、交通",
            "2024-04-02 09:00:00",
        ),
    )
    database.run(
        f"UPDATE {database.table} SET title = {database.mark}, updated_at = {database.mark} WHERE id = 1",
        ["关于开展春季植树活动的通知（更新）", "2024-04-03 09:00:00"],
    )
    later = fetch(source, items[2].cursor)
    assert [e.key for e in later if isinstance(e, Item)] == ["4", "1"]
    changed = source.convert(later[1])  # type: ignore[arg-type]
    assert changed is not None and changed.title.endswith("（更新）") and changed.id == first.id


def test_without_a_cursor_column_every_run_reads_every_row_in_key_order(database: Database) -> None:
    source = adapter(database.settings, chunk=2)  # chunks smaller than the table
    entries = fetch(source)
    assert [e.key for e in entries if isinstance(e, Item)] == ["1", "2", "3"]
    assert all(isinstance(e, Item) and e.cursor is None for e in entries)


def test_query_and_column_mistakes_are_failures_not_crashes(database: Database) -> None:
    columns = {**COLUMNS, "summary": "abstract"}
    (missing,) = fetch(adapter(database.settings, columns=columns))
    assert isinstance(missing, Failure) and "no column 'abstract'" in missing.message
    (broken,) = fetch(adapter(database.settings, query="SELECT * FROM no_such_table_here"))
    assert isinstance(broken, Failure) and broken.message.startswith("the query failed:")


def test_the_database_is_opened_read_only(sqlite_db: Database) -> None:
    source = adapter(sqlite_db.settings)
    conn = source._connect()
    try:
        with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only"):
            conn.execute("DELETE FROM articles")
    finally:
        conn.close()


def test_postgresql_sessions_are_read_only_and_take_the_password_from_a_credential(
    postgres_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = adapter(postgres_db.settings, password="cms_db")
    monkeypatch.delenv("GOVHUB_TEST_CMS_DB_PASSWORD", raising=False)
    (unset,) = fetch(source)
    assert isinstance(unset, Failure) and "GOVHUB_TEST_CMS_DB_PASSWORD is not set" in unset.message
    monkeypatch.setenv("GOVHUB_TEST_CMS_DB_PASSWORD", "secret-from-the-environment")
    assert len(fetch(source)) == 3  # trust authentication ignores it; the lookup worked
    conn = source._connect()
    try:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute(f"DELETE FROM {postgres_db.table}")
    finally:
        conn.close()
    (other,) = fetch(adapter(postgres_db.settings, password="nope"))
    assert (
        isinstance(other, Failure) and "has no credential 'nope' (it has: cms_db)" in other.message
    )


def test_mariadb_sessions_are_read_only(mariadb_db: Database) -> None:
    conn = adapter(mariadb_db.settings)._connect()
    try:
        with (
            conn.cursor() as cursor,
            pytest.raises(pymysql.err.OperationalError, match="READ ONLY"),
        ):
            cursor.execute(f"DELETE FROM {mariadb_db.table}")
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("settings", "key", "says"),
    [
        ({"url": "postgresql://cms:hunter2@db/cms"}, "url", "the URL holds a password"),
        ({"url": "oracle://db/cms"}, "url", "is not a database this adapter reads"),
        ({"url": "postgresql://db/cms", "path": "cms.db"}, "url", "either url or path"),
        (
            {"path": "cms.db", "cursor_column": "updated_at; DROP TABLE x"},
            "cursor_column",
            "not a plain column name",
        ),
    ],
)
def test_settings_errors_name_the_node_source_key_and_line(
    settings: dict[str, Any], key: str, says: str
) -> None:
    with pytest.raises(ConfigInvalid) as caught:
        adapter({"query": "SELECT * FROM articles", **settings})
    (problem,) = caught.value.problems
    assert (problem.where, problem.line, problem.field) == (
        "nodes.toml",
        12,
        f"node[gz].sources[cms].{key}",
    )
    assert says in problem.message
    assert "hunter2" not in str(caught.value)


def test_an_unreachable_server_is_one_failure_naming_it() -> None:
    (failure,) = fetch(adapter({"url": "postgresql://nobody@127.0.0.1:1/cms", "query": "SELECT 1"}))
    assert isinstance(failure, Failure) and failure.where == "postgresql://nobody@127.0.0.1:1/cms"
    assert failure.message.startswith("cannot connect:")
