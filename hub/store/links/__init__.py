"""Cross-links between records and republication groups: ``linker`` is the follower that
keeps them, ``queries`` reads them for the portal, ``schema`` the tables."""
