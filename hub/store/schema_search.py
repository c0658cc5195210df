"""The tables of the portal's search (one migration step, appended to hub.store.migrations)."""

STEP = """
SELECT 1
"""
