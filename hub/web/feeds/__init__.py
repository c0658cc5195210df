"""The portal's feeds: ``routes`` (the address, HTTP), ``documents`` (building and caching
documents from the feed log) and ``render`` (Atom and RSS entries and documents)."""
