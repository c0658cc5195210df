"""The harvester: a node's sources read through their adapters into its outbox, on schedule.

``harvester`` holds the flow (``Harvester.harvest``: fetch, convert, check,
revise, accept, commit the cursor); ``plan`` checks the sources at start-up,
``schedule`` says when each is next due, ``loop`` runs every due source,
``batch`` revises a converted batch by content hash and writes it, ``flight``
keeps a harvest's batches in read order between fetch and commit, ``convert``
and ``workers`` turn items into checked records (in worker processes, through
``transfer``), ``http`` watches what servers say, ``tally`` counts and ``state``
keeps each source's cursor, schedule and HTTP validators in the node's state file.
"""
