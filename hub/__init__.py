"""govhub's core, one package per stage of a record's way: harvest → records and
review → outbox → bus → ingest → store → web (and bus → inbox, downward).
docs/architecture.md draws the way and says which package may import which."""
