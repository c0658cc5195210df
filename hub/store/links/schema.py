"""The tables of the portal's links (one migration step, appended to hub.store.migrations).

Both are written only by the link follower (``hub.store.links.linker``), off the hub's
hot path, and can be rebuilt from ``records`` by resetting its cursor.

``links``: one row per ``relations/relation`` of a record, as declared, plus the
record id it resolves to (``target``, NULL while the target has not arrived).
``linked_records``: what the linker derived from each record: its copy group
(every republication (转载) of one document shares ``copy_group``), the keys it
matched copies by, and whether it is an alert for the portal's notices box.
"""

STEP = """
CREATE TABLE links (
    source                 text NOT NULL,
    position               integer NOT NULL,
    type                   text NOT NULL,
    target_ref             text,
    target_doc_number_norm text,
    target                 text,
    PRIMARY KEY (source, position)
);
CREATE INDEX links_target ON links (target, type) WHERE target IS NOT NULL;
CREATE INDEX links_target_ref ON links (target_ref) WHERE target_ref IS NOT NULL;
CREATE INDEX links_target_doc ON links (target_doc_number_norm)
    WHERE target_doc_number_norm IS NOT NULL;

CREATE TABLE linked_records (
    id         text PRIMARY KEY,
    copy_group text NOT NULL,
    kind       text NOT NULL,
    title_key  text NOT NULL,
    issuer_key text NOT NULL,
    created    date,
    alert      boolean NOT NULL DEFAULT false
);
CREATE INDEX linked_records_group ON linked_records (copy_group);
CREATE INDEX linked_records_title ON linked_records (title_key, issuer_key, kind);
CREATE INDEX linked_records_alert ON linked_records (id) WHERE alert;
"""
