"""Conditional GET (RFC 9110 §13.1), for every feed govhub serves: a node's inbox, the
portal's feeds.

``If-None-Match`` decides when the request has it (weak comparison: ``W/"x"``
matches ``"x"``, and ``*`` matches anything); otherwise ``If-Modified-Since``,
compared in whole seconds, the resolution of the ``Last-Modified`` header.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

from aiohttp import web


def http_date(when: datetime) -> str:
    """``when`` as a ``Last-Modified`` value: ``Tue, 21 May 2024 02:14:09 GMT``."""
    return format_datetime(when.astimezone(UTC), usegmt=True)


def not_modified(request: web.Request, etag: str, last_modified: datetime | None) -> bool:
    """Whether the client's copy is current; ``etag`` is the value, without quotes."""
    if request.if_none_match is not None:
        return any(tag.value in (etag, "*") for tag in request.if_none_match)
    since = request.if_modified_since
    if since is None or last_modified is None:
        return False
    return last_modified.replace(microsecond=0) <= since
