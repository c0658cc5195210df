"""A node's local, durable state: one SQLite file per node.

A node is small, so its outbox, its review queue (with the audit trail), the
records it refused and the harvest state of its sources (cursors, schedules,
HTTP validators) live in one SQLite database in WAL mode with full synchronous
commits: a record the node has accepted survives a crash or a restart.
Migrations are an ordered list; the schema version is its length.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from hub.errors import HubError
from hub.private import private_dir, private_file, tighten

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        record_id TEXT NOT NULL,
        revision INTEGER NOT NULL,
        content_hash TEXT NOT NULL,
        kind TEXT NOT NULL,
        topic TEXT,
        routing_key TEXT NOT NULL,
        body BLOB NOT NULL,
        accepted_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        sent_at TEXT,
        UNIQUE (record_id, revision)
    );
    CREATE INDEX outbox_unsent ON outbox (next_attempt_at, seq) WHERE sent_at IS NULL;
    CREATE TABLE held (
        record_id TEXT NOT NULL,
        revision INTEGER NOT NULL,
        body BLOB NOT NULL,
        findings TEXT NOT NULL,
        held_at TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'approved', 'rejected')),
        decided_by TEXT,
        decided_at TEXT,
        reason TEXT,
        PRIMARY KEY (record_id, revision)
    );
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        record_id TEXT NOT NULL,
        revision INTEGER NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE TABLE refused (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        source TEXT NOT NULL,
        problems TEXT NOT NULL,
        body BLOB NOT NULL
    );
    """,
    """
    CREATE TABLE inbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        record_id TEXT NOT NULL,
        revision INTEGER NOT NULL,
        kind TEXT NOT NULL,
        topic TEXT,
        origin TEXT NOT NULL,
        from_path TEXT NOT NULL,
        routing_key TEXT NOT NULL,
        via TEXT NOT NULL CHECK (via IN ('push', 'subscription')),
        received_at TEXT NOT NULL,
        title TEXT NOT NULL,
        link TEXT,
        issuers TEXT NOT NULL,
        published TEXT NOT NULL,
        updated TEXT,
        summary TEXT,
        withdrawn INTEGER NOT NULL DEFAULT 0 CHECK (withdrawn IN (0, 1)),
        withdrawn_reason TEXT,
        body BLOB NOT NULL,
        UNIQUE (record_id, revision)
    );
    CREATE INDEX inbox_kind ON inbox (kind, seq);
    """,
    """
    CREATE TABLE source_state (
        source TEXT PRIMARY KEY,
        cursor TEXT,
        next_check_at TEXT,
        errors INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        last_error_at TEXT,
        last_success_at TEXT,
        items_seen INTEGER NOT NULL DEFAULT 0,
        records_made INTEGER NOT NULL DEFAULT 0,
        item_problems INTEGER NOT NULL DEFAULT 0,
        parked INTEGER NOT NULL DEFAULT 0 CHECK (parked IN (0, 1))
    );
    CREATE TABLE source_problems (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,
        at TEXT NOT NULL,
        item TEXT NOT NULL,
        stage TEXT NOT NULL CHECK (stage IN ('fetch', 'convert', 'refused')),
        message TEXT NOT NULL
    );
    CREATE INDEX source_problems_source ON source_problems (source, seq);
    CREATE TABLE http_validators (
        url TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        saved_at TEXT NOT NULL
    );
    """,
    # An item problem may also be a conflict (same revision, other content: kept in
    # ``refused``) or a note on a record that was published but does not conform (a 索引号
    # kept in the site's own form). SQLite changes a CHECK by copying the table.
    """
    CREATE TABLE source_problems_next (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,
        at TEXT NOT NULL,
        item TEXT NOT NULL,
        stage TEXT NOT NULL
            CHECK (stage IN ('fetch', 'convert', 'refused', 'conflict', 'nonconforming')),
        message TEXT NOT NULL
    );
    INSERT INTO source_problems_next SELECT seq, source, at, item, stage, message
        FROM source_problems;
    DROP TABLE source_problems;
    ALTER TABLE source_problems_next RENAME TO source_problems;
    CREATE INDEX source_problems_source ON source_problems (source, seq);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def now() -> datetime:
    """The clock of the node's state: every time stamp written into the state file."""
    return datetime.now(UTC)


class NodeStateError(HubError):
    """The node's state file is unusable (newer schema, unreadable)."""


def state_path(data_dir: Path, node_id: str) -> Path:
    """Where a node keeps its state under ``GOVHUB_DATA_DIR``."""
    return data_dir / "nodes" / node_id / "state.sqlite3"


def open_state(path: Path) -> sqlite3.Connection:
    """Open (creating and migrating) the node's state database at ``path``.

    The folder is 0700 and the database with its ``-wal`` and ``-shm`` files 0600
    (hub.private): they hold held records, refused bodies and the audit trail.
    SQLite gives the ``-wal`` and ``-shm`` files the database file's mode.
    """
    folders = path.parent.parents
    layout = len(folders) > 1 and folders[0].name == "nodes"  # GOVHUB_DATA_DIR/nodes/<id>/
    private_dir(path.parent, within=folders[1] if layout else None)
    private_file(path)
    for companion in _companions(path):
        tighten(companion)  # left more open by an earlier govhub
    conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    _migrate(conn, path)
    return conn


def _companions(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: all of it is durable on return, or none of it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    with transaction(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise NodeStateError(
                f"{path}: schema version {version} is newer than this govhub knows "
                f"({SCHEMA_VERSION}); upgrade govhub or point GOVHUB_DATA_DIR elsewhere"
            )
        for step in MIGRATIONS[version:]:
            for statement in step.split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
