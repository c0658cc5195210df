"""The JSON API: ``records`` (records and nodes), ``search``, ``params`` (the query
parameters they share) and ``openapi`` (operations checked against and described by
one OpenAPI document)."""
