"""The tables of the portal's search (one migration step, appended to hub.store.migrations).

``search_docs`` has one row per record, written by the search follower
(``hub.store.search.query``), never by the hub's write path. A record's searchable
text is kept twice, normalised (NFKC, lower case, document-number brackets
unified): ``heading`` (title, document number in normal form, index number)
and ``content`` (summary and body text). Its index terms (character unigrams
and bigrams of CJK runs, Latin words, digit runs, whole numbers; each a 32-bit
hash) are two ``integer[]`` columns under GIN: ``heading_terms`` and ``terms``
(heading and content together). GIN keeps one compressed posting list per
term, a few bytes per record, where an inverted table would keep a 40-byte row
per (term, record) pair: about 450 pairs per record, 450 million rows for a
million records. A withdrawn record keeps its row (``withdrawn``, no terms),
so that the follower knows a record's previous state when it changes; the
per-node counts of the node directory (``search_node_stats``) follow from it.

A change to what the index holds (``hub.store.search.terms.INDEX_VERSION``) comes
with a step of its own, ``REINDEX``, that makes the search follower start again
from the first record: the index is rebuilt by the hub's own follower, in the
background, the old rows answering (in the old normalisation) until each is
replaced; the per-node counts stay right, as the follower counts a replaced row
once. No stale index is ever kept silently: the hub applies the step when it
starts (``hub.store.migrations.migrate``).
"""

STEP = """
CREATE TABLE search_docs (
    id            text PRIMARY KEY,
    node          text NOT NULL,
    path          text COLLATE "C" NOT NULL,
    kind          text NOT NULL,
    topic_class   text,
    lang          text NOT NULL,
    validity      text,
    published     timestamptz NOT NULL,
    withdrawn     boolean NOT NULL,
    heading       text NOT NULL,
    content       text NOT NULL,
    heading_terms integer[] NOT NULL,
    terms         integer[] NOT NULL
);
-- ANALYZE tracks the 10,000 most common terms (default: 1,000), which the query reads
-- from pg_stats to choose its plan (see hub.store.search.query).
ALTER TABLE search_docs ALTER COLUMN terms SET STATISTICS 1000,
    ALTER COLUMN heading_terms SET STATISTICS 1000;
CREATE INDEX search_docs_terms ON search_docs USING gin (terms);
CREATE INDEX search_docs_heading_terms ON search_docs USING gin (heading_terms);
CREATE INDEX search_docs_published ON search_docs (published, id);
CREATE INDEX search_docs_path ON search_docs (path);
CREATE INDEX search_docs_validity ON search_docs (validity, id) WHERE validity IS NOT NULL;

CREATE TABLE search_node_stats (
    node           text PRIMARY KEY,
    records        bigint NOT NULL DEFAULT 0,
    withdrawn      bigint NOT NULL DEFAULT 0,
    last_published timestamptz,
    last_stored    timestamptz
);
"""


REINDEX = """
-- Index version 2 (hub.store.search.terms.INDEX_VERSION): Traditional characters folded to
-- Simplified. The search follower starts again from the first record and rewrites each row.
DELETE FROM followers WHERE name = 'search';
"""

REINDEX_STEPS: dict[int, str] = {2: REINDEX}
"""The reindex step of each index version after the first (hub.store.search.terms.
INDEX_VERSION is the newest): a test checks that each is a migration step."""
