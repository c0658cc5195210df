"""Open the hub's store the way the settings say: an external PostgreSQL when a
URL is configured, else the embedded server in the data directory. Either way
the schema is migrated before the connection is handed out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hub.store.connection import Connection, connect
from hub.store.embedded import start_embedded
from hub.store.migrations import migrate


@contextmanager
def database_url(url: str, data_dir: Path) -> Iterator[str]:
    """``url`` itself, or the URL of an embedded server started for the duration."""
    if url:
        yield url
        return
    with start_embedded(data_dir / "postgres") as server:
        yield server.url


@contextmanager
def open_store(url: str, data_dir: Path) -> Iterator[Connection]:
    """A migrated connection to the store (starting the embedded server if needed)."""
    with database_url(url, data_dir) as resolved, connect(resolved) as conn:
        migrate(conn)
        yield conn
