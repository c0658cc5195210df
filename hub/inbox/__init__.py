"""The inbox: what a node's ancestors push down, kept for the site's CMS.

``consumer`` takes deliveries of ``<id>.down`` (each record checked on its
own), ``entries`` is the inbox table, ``render`` writes it as Atom, RSS and
JSON, and ``webhook`` tells the CMS when something arrives.
"""
