"""What goes wrong in the store, said so that the operator (or the consumer) can act.

``StoreError.retryable`` is the one thing a consumer looks at: when it is true the
database is down, restarting or aborted the transaction, so the consumer stops
acking, waits with ``wait_for_database`` and tries the same messages again.
"""

from __future__ import annotations

from hub.errors import HubError, Unavailable


class StoreError(HubError):
    """The store could not do something; the message says what, why and what to do."""

    retryable = False

    def __init__(self, action: str, detail: str, hint: str) -> None:
        self.action = action
        self.detail = detail
        self.hint = hint
        super().__init__(f"store: could not {action}: {detail} ({hint})")


class DatabaseUnavailable(StoreError, Unavailable):
    """PostgreSQL is unreachable, restarting, or aborted the transaction; retry later."""

    retryable = True


class EmbeddedServerBusy(StoreError):
    """Another running PostgreSQL already uses the embedded server's data directory."""
