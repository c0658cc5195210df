"""The database schema as an ordered list of steps; its length is the schema version.

A step is SQL, or a function for a step that depends on the server (lz4).
Steps are only ever appended: never edit or reorder one that has shipped.
``migrate`` applies the missing steps in one transaction under an advisory
lock, so two processes that start together do not both apply them.
"""

from __future__ import annotations

from collections.abc import Callable

from psycopg import sql

from hub.store.connection import Connection, translate_errors
from hub.store.errors import StoreError
from hub.store.feed_log import schema as schema_feeds
from hub.store.follow import FOLLOWERS
from hub.store.links import schema as schema_links
from hub.store.search import schema as schema_search

Step = str | Callable[[Connection], None]

RECORDS = """
CREATE TABLE records (
    id               text PRIMARY KEY,
    node             text NOT NULL,
    path             text COLLATE "C" NOT NULL,
    kind             text NOT NULL,
    revision         integer NOT NULL CHECK (revision > 0),
    content_hash     text NOT NULL,
    title            text NOT NULL,
    published        timestamptz NOT NULL,
    updated          timestamptz,
    withdrawn        boolean NOT NULL DEFAULT false,
    withdrawn_reason text,
    withdrawn_at     timestamptz,
    doc_number       text,
    doc_number_norm  text,
    index_number     text,
    topic_class      text,
    issuers          text[] NOT NULL DEFAULT '{}',
    lang             text NOT NULL,
    xml              text NOT NULL,
    stored_at        timestamptz NOT NULL DEFAULT now()
);
-- "C" collation: byte order, so a subtree is the range [path || '.', path || '/').
CREATE INDEX records_path ON records (path);
CREATE INDEX records_node ON records (node);
CREATE INDEX records_published_id ON records (published, id);
CREATE INDEX records_doc_number_norm ON records (doc_number_norm)
    WHERE doc_number_norm IS NOT NULL;
"""

DEAD_LETTERS = """
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL,
    reason      text NOT NULL,
    problems    jsonb NOT NULL DEFAULT '[]',
    routing_key text,
    headers     jsonb NOT NULL DEFAULT '{}',
    body        bytea NOT NULL,
    retried_at  timestamptz,
    retry_count integer NOT NULL DEFAULT 0,
    resolved    boolean NOT NULL DEFAULT false
);
CREATE INDEX dead_letters_unresolved ON dead_letters (id) WHERE NOT resolved;
"""


def lz4_supported(conn: Connection) -> bool:
    """Whether the server can compress TOAST with lz4 (PostgreSQL 14+ built with lz4)."""
    row = conn.execute(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    ).fetchone()
    return bool(row and row[0])


def compress_xml_with_lz4(conn: Connection) -> None:
    """Store ``records.xml`` with lz4 where the server has it; keep pglz otherwise."""
    if lz4_supported(conn):
        conn.execute("ALTER TABLE records ALTER COLUMN xml SET COMPRESSION lz4")


CHANGE_XID = """
ALTER TABLE records ADD COLUMN change_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX records_change ON records (change_xid, id);
"""
"""Which transaction last wrote each row, so that readers off the hot path (the
search indexer, feed caches) can follow every change in commit-safe order: see
``hub.store.changes``."""


MIGRATIONS: tuple[Step, ...] = (
    RECORDS,
    compress_xml_with_lz4,
    DEAD_LETTERS,
    CHANGE_XID + FOLLOWERS,
    schema_search.STEP,
    schema_feeds.STEP,
    schema_links.STEP,
    schema_search.REINDEX,
)
SCHEMA_VERSION = len(MIGRATIONS)


@translate_errors("migrate the database schema")
def migrate(conn: Connection) -> int:
    """Apply the steps the database lacks; return how many were applied.

    The schema is the first of the connection's ``search_path`` and is created
    when missing. Safe to call from several processes at once.
    """
    with conn.transaction():
        schema = _target_schema(conn)
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"govhub:{schema}"])
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = _version(conn)
        if current > SCHEMA_VERSION:
            raise StoreError(
                "migrate the database schema",
                f"schema {schema} is at version {current}, newer than this govhub "
                f"({SCHEMA_VERSION})",
                "upgrade govhub, or point it at another schema or database",
            )
        for number, step in enumerate(MIGRATIONS[current:], start=current + 1):
            if callable(step):
                step(conn)
            else:
                conn.execute(step)
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", [number])
    return SCHEMA_VERSION - current


@translate_errors("read the schema version")
def schema_version(conn: Connection) -> int:
    """The schema version of the connection's schema (0 when never migrated)."""
    exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    return _version(conn) if exists and exists[0] else 0


@translate_errors("read how records.xml is compressed")
def xml_compression(conn: Connection) -> str:
    """``lz4``, ``pglz`` or ``default`` (the server's default_toast_compression)."""
    row = conn.execute(
        "SELECT attcompression FROM pg_attribute"
        " WHERE attrelid = 'records'::regclass AND attname = 'xml'"
    ).fetchone()
    return {"l": "lz4", "p": "pglz"}.get(row[0] if row else "", "default")


def _version(conn: Connection) -> int:
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def _target_schema(conn: Connection) -> str:
    """The first schema of search_path (skipping a "$user" that does not exist)."""
    row = conn.execute("SELECT current_setting('search_path'), current_schema()").fetchone()
    search_path, current = row if row else ("", None)
    first = search_path.split(",")[0].strip()
    if first and first != '"$user"':
        return str(first.strip('"'))
    if current is None:
        raise StoreError(
            "migrate the database schema",
            f"search_path {search_path!r} names no schema that exists",
            "set a schema in the URL (options=-c search_path=NAME)",
        )
    return str(current)
