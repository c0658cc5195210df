"""Open the hub's store the way the settings say: an external PostgreSQL when a
URL is configured, else the embedded server in the data directory
(``GOVHUB_DATA_DIR/postgres``: one data dir, one store, whichever command opens
it). Either way the schema is migrated before the connection is handed out, and
one line says which database was opened (on stderr unless told otherwise)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hub.store.connection import Connection, connect, describe
from hub.store.embedded import start_embedded
from hub.store.migrations import migrate

Say = Callable[[str], None]


def to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def embedded_dir(data_dir: Path) -> Path:
    """Where the embedded server keeps its data under ``GOVHUB_DATA_DIR``."""
    return data_dir / "postgres"


def which_store(url: str, data_dir: Path) -> str:
    """The line that says which database a command uses."""
    if url:
        return f"store: GOVHUB_DATABASE_URL ({describe(url)})"
    return f"store: the embedded PostgreSQL in {embedded_dir(data_dir)}"


@contextmanager
def database_url(url: str, data_dir: Path, say: Say | None = to_stderr) -> Iterator[str]:
    """``url`` itself, or the URL of an embedded server started for the duration.

    ``say`` gets the line naming the database (``None``: say nothing)."""
    if say is not None:
        say(which_store(url, data_dir))
    if url:
        yield url
        return
    with start_embedded(embedded_dir(data_dir)) as server:
        yield server.url


@contextmanager
def open_store(url: str, data_dir: Path, say: Say | None = to_stderr) -> Iterator[Connection]:
    """A migrated connection to the store (starting the embedded server if needed)."""
    with database_url(url, data_dir, say) as resolved, connect(resolved) as conn:
        migrate(conn)
        yield conn
