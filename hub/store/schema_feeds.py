"""The tables of the portal's feeds (one migration step, appended to hub.store.migrations)."""

STEP = """
SELECT 1
"""
