"""The records a node refused, kept with their reasons: the one writer of the ``refused`` table.

Whatever the node will not publish (an invalid document, a record that is not
the node's own, a push the port would not spool) is written here, never
dropped: the pipeline (``hub.outbox.pipeline``) and the node's port
(``hub.node.port``) both call ``keep_refused``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from hub.errors import Problem
from hub.nodedb import now


def keep_refused(
    conn: sqlite3.Connection, source: str, problems: Sequence[Problem], body: bytes
) -> None:
    """Keep ``body`` from ``source`` with why it was refused, inside the caller's transaction."""
    conn.execute(
        "INSERT INTO refused (at, source, problems, body) VALUES (?, ?, ?, ?)",
        (
            now().isoformat(),
            source,
            json.dumps([str(p) for p in problems], ensure_ascii=False),
            body,
        ),
    )
