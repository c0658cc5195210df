"""The hub's store: records and dead letters in PostgreSQL (psycopg 3, plain SQL).

One module per concept: ``connection`` (connect, errors, waiting for a restart),
``migrations`` (the schema as an ordered list of steps), ``records``
(revision-ordered upserts, tombstones, listings), ``dead_letters`` (messages
that could not be stored) and ``embedded`` (a PostgreSQL of our own when no
database URL is configured). See docs/store.md.
"""

from hub.store.connection import connect, describe, wait_for_database, with_schema
from hub.store.dead_letters import (
    DeadLetter,
    add_dead_letter,
    dead_letter_by_id,
    list_dead_letters,
    mark_dead_letter_retried,
    mark_resolved,
)
from hub.store.embedded import EmbeddedServer, default_data_dir, start_embedded
from hub.store.errors import DatabaseUnavailable, EmbeddedServerBusy, StoreError
from hub.store.migrations import SCHEMA_VERSION, migrate, schema_version, xml_compression
from hub.store.records import (
    Outcome,
    StoredRecord,
    count_records,
    list_records,
    record_xml,
    upsert_records,
)

__all__ = [
    "SCHEMA_VERSION",
    "DatabaseUnavailable",
    "DeadLetter",
    "EmbeddedServer",
    "EmbeddedServerBusy",
    "Outcome",
    "StoreError",
    "StoredRecord",
    "add_dead_letter",
    "connect",
    "count_records",
    "dead_letter_by_id",
    "default_data_dir",
    "describe",
    "list_dead_letters",
    "list_records",
    "mark_dead_letter_retried",
    "mark_resolved",
    "migrate",
    "record_xml",
    "schema_version",
    "start_embedded",
    "upsert_records",
    "wait_for_database",
    "with_schema",
    "xml_compression",
]
