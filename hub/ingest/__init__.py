"""The hub's consumer: records from the portal's up queue, checked, stored, acked.

``consume`` holds one consumer's flow (take a batch, check each message, store
records and dead letters in one transaction, ack); ``runner`` runs competing
consumers until told to stop and drains them.
"""
