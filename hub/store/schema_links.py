"""The tables of the portal's links (one migration step, appended to hub.store.migrations)."""

STEP = """
SELECT 1
"""
