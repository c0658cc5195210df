"""The node: one per government site. It takes records from the site's sources,
validates and reviews them, keeps them durably in its outbox and relays them up
to the hub; it receives what its ancestors push down. State lives in one SQLite
file per node (``state``); ``pipeline`` is the way in."""
