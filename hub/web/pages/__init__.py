"""The portal's HTML pages: ``routes`` (directory, home, record, catalogue, search)
and ``render`` (templates, views and error pages)."""
