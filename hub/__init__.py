"""govhub core: records, federation map, and (later) bus, ingest, store, feeds."""
