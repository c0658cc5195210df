"""HTTP, watched: the node's one ``HttpClient``, telling each harvest what the server said.

The answers themselves go to the adapter, but the schedule needs what came
with them: how long the main URL's answer stays fresh (``Cache-Control``,
``Expires``), a ``Retry-After``, a 304. ``HarvestHttp`` notes these in the
``Watch`` of the harvest it runs in (the ``WATCH`` context variable, which
``Harvester.harvest`` sets). ``HttpClient`` itself keeps ``ETag`` and
``Last-Modified`` for the next conditional GET, in the node's durable store.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from datetime import datetime

from adapters.kit.http import HttpClient, Response, RetryLater


@dataclass
class Watch:
    """What the server said during one harvest: freshness and waits, for the schedule."""

    main_url: str | None
    fresh_until: datetime | None = None
    retry_after: float | None = None
    not_modified: bool = False
    answers: int = 0

    def saw(self, url: str, response: Response) -> None:
        self.answers += 1
        main = url == self.main_url if self.main_url else self.answers == 1
        if main:
            self.fresh_until = response.fresh_until
            self.not_modified = response.not_modified

    def asked_to_wait(self, delay: float) -> None:
        self.retry_after = max(delay, self.retry_after or 0.0)


WATCH: contextvars.ContextVar[Watch | None] = contextvars.ContextVar(
    "govhub_harvest_watch", default=None
)


class HarvestHttp(HttpClient):
    """The node's one ``HttpClient``, telling the harvest of each source what the server said
    (``fresh_until``, ``Retry-After``, 304), since the answers themselves go to the adapter."""

    async def get(self, url: str, *, conditional: bool = True) -> Response:
        watch = WATCH.get()
        try:
            response = await super().get(url, conditional=conditional)
        except RetryLater as exc:
            if watch is not None:
                watch.asked_to_wait(exc.delay)
            raise
        if watch is not None:
            watch.saw(url, response)
        return response
