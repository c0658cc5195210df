"""The outbox: what a node publishes upward, kept durably until the broker confirms it.

``pipeline`` is the one way in (check, review, then queue or hold), ``held``
is the confidentiality review queue with its audit trail, ``entries`` the
outbox table, and ``relay`` sends what is queued up the bus.
"""
