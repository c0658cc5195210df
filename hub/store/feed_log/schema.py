"""The tables of the portal's feeds (one migration step, appended to hub.store.migrations).

``records`` holds only the newest revision of each record, but a feed's
archives (RFC 5005) must keep showing what was published then, so the feed
logger (``hub.store.feed_log.log``, a follower) appends every revision it sees to
``feed_log``: one row per (record, revision), numbered by ``position``
(1, 2, 3, … with no gaps, in commit order, because only the follower writes
it, under its advisory lock).

``feed_scope`` numbers the same rows again within each scope a feed can cover,
so that every feed's pages are dense: ``tree:cn.gd`` (the subtree of the node
at path ``cn.gd``) and ``own:cn.gd`` (that node's own records). A row of a
record at ``cn.gd.gz`` gets one number in ``tree:cn``, ``tree:cn.gd``,
``tree:cn.gd.gz`` and ``own:cn.gd.gz``. Page ``k`` of a feed is ``seq`` in
``[k·N, (k+1)·N)`` of its scope, so the page boundaries never move.
"""

from hub.store.connection import Connection

TABLES = """
CREATE TABLE feed_log (
    position    bigint PRIMARY KEY CHECK (position > 0),
    id          text NOT NULL,
    revision    integer NOT NULL,
    path        text COLLATE "C" NOT NULL,
    kind        text NOT NULL,
    topic_class text,
    issuers     text[] NOT NULL DEFAULT '{}',
    lang        text NOT NULL,
    withdrawn   boolean NOT NULL,
    published   timestamptz NOT NULL,
    updated     timestamptz NOT NULL,
    logged_at   timestamptz NOT NULL DEFAULT now(),
    xml         text NOT NULL,
    UNIQUE (id, revision)
);
CREATE TABLE feed_scope (
    scope    text COLLATE "C" NOT NULL,
    seq      bigint NOT NULL CHECK (seq >= 0),
    position bigint NOT NULL,
    PRIMARY KEY (scope, seq)
);
"""


def STEP(conn: Connection) -> None:  # the name every schema module exports
    """Create the tables; keep ``feed_log.xml`` with lz4 where the server has it."""
    conn.execute(TABLES)
    row = conn.execute(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    ).fetchone()
    if row and row[0]:
        conn.execute("ALTER TABLE feed_log ALTER COLUMN xml SET COMPRESSION lz4")
