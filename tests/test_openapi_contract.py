"""The API's contract, checked from outside: schemathesis against a live portal.

The portal (``hub.web.serve.serving_portal``, the whole app) serves the search
test corpus from a fresh schema on a free loopback port, in a thread of its
own. schemathesis reads its ``/openapi.json`` and, for every operation, sends
requests the document says are valid (each must be answered 2xx or 404) and
invalid (each must be refused with a 4xx), the boundary values of every
parameter, and methods the document does not list (405 with ``Allow``); every
answer is checked against the document with all of schemathesis' checks:
status, media type, headers, body schema, no 5xx.

The number of examples is bounded and the generation seeded, so a run is the
same every time. One rule of ``q`` is not a pattern (a letter or digit in each
word, the words as NFKC leaves them): the document names it ``format:
search-query``, and the test gives schemathesis that format's values (words of
letters, digits, punctuation and symbols, kept when the API's own check accepts
them), as a client would read the description. Every phase runs, as
``st run --checks all`` runs them: examples, coverage, fuzzing, and stateful
sequences along the links schemathesis infers (a listed record to its own
address).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest
import schemathesis
import support.postgres as postgres_fixtures
from hypothesis import strategies as st
from schemathesis import engine
from schemathesis.engine import events
from test_search import CORPUS, FEDERATION, follow, store

from hub.store import connect, migrate
from hub.store.search.query import MAX_PARTS
from hub.web.api import search as web_search
from hub.web.serve import PortalOptions, serving_portal

pg_url = postgres_fixtures.pg_url
EXAMPLES = 25  # generated requests per operation and phase; the run stays well under a minute
SEED = 20261208


def _accepted(text: str) -> bool:
    try:
        web_search.parse_query(text)
    except ValueError:
        return False
    return True


_WORD = st.text(st.characters(categories=("L", "N", "P", "S")), min_size=1, max_size=12)
SEARCH_QUERY = st.lists(_WORD, min_size=1, max_size=MAX_PARTS).map(" ".join).filter(_accepted)


def _serve(url: str, ready: Future[str], stop: threading.Event) -> None:
    async def main() -> None:
        try:
            async with serving_portal(FEDERATION, "cn", url, PortalOptions(port=0)) as server:
                ready.set_result(server.url)
                while not stop.is_set():
                    await asyncio.sleep(0.05)
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    asyncio.run(main())


@pytest.fixture(scope="module")
def portal(pg_url: str) -> Iterator[str]:
    """The base URL of the whole portal over the search corpus, on a free port."""
    with connect(pg_url) as conn:
        migrate(conn)
        store(conn, CORPUS)
        follow(conn)
    ready: Future[str] = Future()
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(pg_url, ready, stop), daemon=True)
    thread.start()
    try:
        yield ready.result(timeout=30)
    finally:
        stop.set()
        thread.join(timeout=30)


def failures(schema: Any) -> list[str]:
    """Run every phase of schemathesis and describe each failure (none: an empty list)."""
    found: list[str] = []
    for event in engine.from_schema(schema).execute():
        if isinstance(event, events.FatalError | events.NonFatalError):
            found.append(f"schemathesis could not run: {event}")
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            recorder = event.recorder
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.status != engine.Status.SUCCESS:
                        case = recorder.cases[case_id].value
                        response = recorder.find_response(case_id=case_id)
                        status = response.status_code if response is not None else "no answer"
                        found.append(
                            f"{check.name}: {case.method} {case.formatted_path}"
                            f" query={case.query} headers={case.headers} -> {status}:"
                            f" {check.failure_info and check.failure_info.failure.title}"
                        )
    return found


def test_the_api_answers_as_its_document_says(portal: str) -> None:
    schemathesis.openapi.format("search-query", SEARCH_QUERY)
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "checks": {"enabled": True},
            "generation": {"mode": "all", "max-examples": EXAMPLES, "database": "none"},
        }
    )
    schema = schemathesis.openapi.from_url(f"{portal}/openapi.json", config=config)
    assert failures(schema) == []
