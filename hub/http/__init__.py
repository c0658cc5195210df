"""What every govhub HTTP server shares: ``listen`` (limits and timeouts),
``conditional`` (RFC 9110 conditional GET) and ``errors`` (the one JSON error
shape and the one error middleware)."""
