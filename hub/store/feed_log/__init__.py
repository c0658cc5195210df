"""The feed log: every change of a stored record, once per feed scope, in order, so feeds
are served from an append-only log. ``log`` is the follower and its reads, ``schema`` the tables."""
