"""What adapter authors reuse: ``http`` (a polite HTTP client with conditional GET),
``sanitize`` (HTML to the record's body profile) and ``chinese_values`` (dates,
numbers and terms as Chinese sites write them). The kit knows nothing of the
adapter contract, so the contract may use it (``Context.http``); the column
mapping the tabular adapters share builds records through the contract and so
lives beside it, in ``adapters/columns.py``."""
