"""Search: Chinese on character bigrams. ``terms`` turns text into terms, ``index`` is the
follower that indexes stored records, ``query`` answers a query, ``schema`` the tables."""
