"""A polite HTTP client for adapters: conditional GET, limits, and the server's wishes.

Every adapter that reads the web goes through ``HttpClient.get``:

- conditional GET: the ``ETag`` and ``Last-Modified`` of the previous answer
  (kept in a ``Validators`` store, durable in the node) go out as
  ``If-None-Match`` / ``If-Modified-Since``; a 304 comes back as
  ``Response.not_modified``;
- at most ``per_host`` requests at a time to one host;
- ``Retry-After`` on 429 and 503 raises ``RetryLater`` with the delay, so the
  harvester waits that long; ``Cache-Control: max-age`` (and ``Expires``) is
  returned as ``fresh_until``, so the harvester does not ask again sooner;
- a size limit on the body and a timeout on the whole request: the web is hostile.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict

from hub.errors import HubError

USER_AGENT = "govhub/1 (+https://www.gov.cn; federated disclosure harvester)"
MAX_BYTES = 20 * 1024 * 1024


class FetchError(HubError):
    """A request failed: the message names the URL and what went wrong."""

    def __init__(self, url: str, message: str, status: int | None = None) -> None:
        self.url, self.status = url, status
        super().__init__(f"{url}: {message}")


class RetryLater(FetchError):
    """The server asked us to come back later (429 or 503 with ``Retry-After``)."""

    def __init__(self, url: str, status: int, delay: float) -> None:
        self.delay = delay
        super().__init__(url, f"HTTP {status}, retry after {delay:.0f} s", status)


@dataclass(frozen=True, slots=True)
class Validators:
    """What a server said about a URL last time, for the next conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


class ValidatorStore(Protocol):
    def get(self, url: str) -> Validators | None: ...
    def put(self, url: str, validators: Validators) -> None: ...


@dataclass
class MemoryValidators:
    """A ``ValidatorStore`` in memory (the harvester keeps them in the node's SQLite file)."""

    known: dict[str, Validators] = field(default_factory=dict)

    def get(self, url: str) -> Validators | None:
        return self.known.get(url)

    def put(self, url: str, validators: Validators) -> None:
        self.known[url] = validators


@dataclass(frozen=True, slots=True)
class Response:
    url: str  # after redirects
    status: int
    body: bytes
    headers: Mapping[str, str]
    not_modified: bool = False
    fresh_until: datetime | None = None

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    @property
    def charset(self) -> str | None:
        """The charset the ``Content-Type`` header declares, if any."""
        found = re.search(r"charset=[\"']?([\w.:\-]+)", self.headers.get("Content-Type", ""), re.I)
        return found.group(1).lower() if found else None


class HttpClient:
    """One shared client per node; use as ``async with HttpClient(...) as http``."""

    def __init__(
        self,
        validators: ValidatorStore | None = None,
        *,
        per_host: int = 2,
        timeout: float = 30.0,
        max_bytes: int = MAX_BYTES,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.validators = validators if validators is not None else MemoryValidators()
        self.per_host, self.max_bytes = per_host, max_bytes
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._headers = {"User-Agent": user_agent}
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpClient:
        self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(self, url: str, *, conditional: bool = True) -> Response:
        """GET ``url``; ``FetchError`` (or ``RetryLater``) unless it answers 2xx or 304."""
        if self._session is None:
            raise RuntimeError("use HttpClient as an async context manager")
        headers = {}
        known = self.validators.get(url) if conditional else None
        if known and known.etag:
            headers["If-None-Match"] = known.etag
        if known and known.last_modified:
            headers["If-Modified-Since"] = known.last_modified
        host = urlsplit(url).netloc
        gate = self._hosts.setdefault(host, asyncio.Semaphore(self.per_host))
        async with gate:
            try:
                async with self._session.get(url, headers=headers) as answer:
                    return await self._read(url, answer)
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = str(exc) or type(exc).__name__
                raise FetchError(url, f"request failed: {reason}") from exc

    async def _read(self, url: str, answer: aiohttp.ClientResponse) -> Response:
        headers = CIMultiDict(answer.headers)  # case-insensitive: servers write ``Etag`` too
        fresh = fresh_until(headers, datetime.now(UTC))
        if answer.status == 304:
            return Response(str(answer.url), 304, b"", headers, True, fresh)
        if answer.status in (429, 503) and "Retry-After" in headers:
            raise RetryLater(url, answer.status, retry_after(headers["Retry-After"]))
        if not 200 <= answer.status < 300:
            status = f"HTTP {answer.status} {answer.reason or ''}".strip()
            raise FetchError(url, status, answer.status)
        body = bytearray()
        async for chunk in answer.content.iter_chunked(65536):
            body += chunk
            if len(body) > self.max_bytes:
                raise FetchError(url, f"larger than the limit of {self.max_bytes} bytes")
        etag, modified = headers.get("ETag"), headers.get("Last-Modified")
        if etag or modified:
            self.validators.put(url, Validators(etag, modified))
        return Response(str(answer.url), answer.status, bytes(body), headers, False, fresh)


def retry_after(value: str, now: datetime | None = None) -> float:
    """Seconds to wait from a ``Retry-After`` value (seconds or an HTTP date); 60 if unreadable."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 60.0
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def fresh_until(headers: Mapping[str, str], now: datetime) -> datetime | None:
    """Until when the answer is fresh by ``Cache-Control: max-age`` or ``Expires``."""
    control = headers.get("Cache-Control", "")
    if re.search(r"\bno-(cache|store)\b", control):
        return None
    age = re.search(r"\bmax-age=(\d+)", control)
    if age:
        return now + timedelta(seconds=int(age.group(1)))
    expires = headers.get("Expires")
    if expires:
        try:
            return email.utils.parsedate_to_datetime(expires)
        except (TypeError, ValueError):
            return None
    return None
