"""What adapter authors reuse: ``http`` (a polite HTTP client with conditional GET),
``sanitize`` (HTML to the record's body profile), ``chinese_values`` (dates,
numbers and terms as Chinese sites write them) and ``columns`` (column mappings
for tabular sources)."""
