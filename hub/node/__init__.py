"""The node: one per government site. ``runner`` puts the harvest, the outbox and the
inbox together over the node's state file (``hub.nodedb``); ``port`` is the node's
local HTTP port (inbox feeds, status, the push endpoint)."""
