"""Every route of the portal (hub.web.app) and of the node's port (hub.node.port) against
hostile requests, over real HTTP on loopback (PostgreSQL for the portal): bad and
NUL-bearing path parts and query values, unknown parameters, wrong methods, over-long
URLs, many and long headers. Never a 5xx; the machine addresses answer the one JSON
error shape, the pages the portal's HTML error page; every 405 says ``Allow``.

The routes are read from each app's router, so a new route is walked without a change
here (as Datasette's test_error_shape.py does). Hypothesis throws arbitrary text at the
search and record addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.client
import json
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import support.postgres as postgres_fixtures
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool
from test_adapter_push import ENVIRON, NODE
from test_pages import FEDERATION, fill

from adapters.push import push_sources
from hub.errors import RequestError
from hub.http.listen import MAX_HEADERS, MAX_LINE, listen
from hub.node.port import View
from hub.node.port import make_app as make_port
from hub.nodedb import open_state
from hub.store.connection import Connection
from hub.store.search.query import SearchQuery, SearchQueryError
from hub.web.app import make_app as make_portal
from hub.web.context import Portal
from hub.web.pages.render import machine_address

pg_url = postgres_fixtures.pg_url
pg_conn = postgres_fixtures.pg_conn

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
NAMES = ("q", "id", "node", "scope", "kind", "topic", "issuer", "lang", "script", "page")
NAMES += ("after", "cursor", "year", "from", "to", "limit", "format", "status", "unknown")
HOSTILE = (
    "",
    "\x00",
    "a\x00b",
    "a %",
    "碳 -",
    "COVID - 19",
    "' OR 1=1--",
    "-1",
    "99999999999999999999999",
    "²",
    "\x1b[31m",
    "../../etc/passwd",
    "%",
    "\ufeff\u200b",
    "𠀀" * 50,
    "x" * 3000,
)
"""Query values and path parts, each percent-encoded as UTF-8 on the wire."""
RAW_PARTS = ("%ff%fe", "%ED%A0%80", "%c0%af", "%00", "%2e%2e%2f", "%", "%zz", "a%2")
"""Path parts and query values sent as they are: invalid UTF-8, an encoded surrogate, an
encoded NUL, broken escapes."""


@dataclasses.dataclass(frozen=True)
class Answer:
    method: str
    target: str
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def where(self) -> str:
        return f"{self.method} {self.target[:200]}: {self.status} {self.body[:300]!r}"


class Client:
    """Raw HTTP/1.1 over one kept-alive connection: the target goes out exactly as given."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80

    def send(
        self, method: str, target: str, headers: list[tuple[str, str | bytes]] | None = None
    ) -> Answer:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            for name, value in headers or []:
                conn.putheader(name, value)
            conn.endheaders()
            response = conn.getresponse()
            body = response.read()
            return Answer(method, target, response.status, response.headers, body)
        finally:
            conn.close()


def check(answer: Answer, machine: bool) -> None:
    """No 5xx; an error in the one shape (machine) or as the portal's error page."""
    assert answer.status < 500, answer.where()
    if answer.status == 405:
        assert answer.headers.get("Allow"), answer.where()
    if answer.status < 400 or answer.method == "HEAD":
        return
    content_type = answer.headers.get("Content-Type", "")
    if machine:
        assert content_type.startswith("application/json"), answer.where()
        body = json.loads(answer.body)
        assert set(body) >= {"status", "error", "parameter"}, answer.where()
        assert body["status"] == answer.status, answer.where()
        assert isinstance(body["error"], str) and body["error"], answer.where()
        assert body["parameter"] is None or isinstance(body["parameter"], str), answer.where()
    else:
        assert content_type.startswith("text/html"), answer.where()
        assert b'<section class="error">' in answer.body, answer.where()


# -- the routes, from the router ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Route:
    template: str  # /nodes/{id}/{name}.{format}
    parts: dict[str, str]  # path part -> its regular expression
    methods: frozenset[str]
    pattern: re.Pattern[str] | None
    static: bool = False

    def path(self, values: dict[str, str]) -> str:
        """The path with ``values`` (already encoded) in its parts."""
        return self.template.format(**values) if self.parts else self.template


def routes(app: web.Application) -> list[Route]:
    found = []
    for resource in app.router.resources():
        info = resource.get_info()
        methods = frozenset(route.method for route in resource)
        if "prefix" in info:  # static files: one part, the file's path
            template = str(info["prefix"]).rstrip("/") + "/{filename}"
            found.append(Route(template, {"filename": ".+"}, methods, None, static=True))
        elif "formatter" in info:
            pattern = info["pattern"]
            found.append(Route(info["formatter"], _groups(pattern.pattern), methods, pattern))
        else:
            found.append(Route(info["path"], {}, methods, None))
    return found


def _groups(pattern: str) -> dict[str, str]:
    """Each named group's own expression in ``pattern`` (balanced parentheses)."""
    groups = {}
    for match in re.finditer(r"\(\?P<(\w+)>", pattern):
        depth, at = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(pattern[at], 0)
            at += 1 if pattern[at] != "\\" else 2
        groups[match.group(1)] = pattern[match.end() : at - 1]
    return groups


def good_values(route: Route, samples: dict[str, str]) -> dict[str, str]:
    """A value for every part that the route matches: the first of an alternation
    (``(feed|own)``), else the sample for that name."""
    values = {}
    for name, expression in route.parts.items():
        choice = re.fullmatch(r"\(?([\w-]+)(?:\|[\w|-]+)\)?", expression)
        values[name] = choice.group(1) if choice else samples.get(name, "x")
    path = route.path(values)
    if route.pattern is not None:
        assert route.pattern.fullmatch(path), f"teach this test a value for {route.template}"
    return values


def walk(client: Client, app: web.Application, samples: dict[str, str], machine: Any) -> int:
    """Every hostile request against every route of ``app``; the number sent."""
    sent = 0
    for route in routes(app):
        good = good_values(route, samples)
        base = route.path(good)
        readable = "GET" in route.methods
        for method in METHODS:
            if method not in route.methods:
                answer = client.send(method, base)
                assert answer.status == 405, answer.where()
                check(answer, machine(base))
                sent += 1
        for name in route.parts:
            for value in [quote(v, safe="") for v in HOSTILE] + list(RAW_PARTS):
                path = route.path({**good, name: value or "%20"})
                method = "GET" if readable else sorted(route.methods)[0]
                check(client.send(method, path), machine(path))
                sent += 1
        if not readable:
            continue
        for number, name in enumerate(NAMES):
            values = (HOSTILE[1], HOSTILE[2 + number % 4], HOSTILE[6 + number % 10])
            encoded = [quote(value, safe="") for value in values]
            for value in [*encoded, RAW_PARTS[number % len(RAW_PARTS)]]:
                target = f"{base}?{quote(name)}={value}"
                check(client.send("GET", target), machine(base))
                sent += 1
        for target in (
            f"{base}?lang=zh-Hant&limit=1&limit=2&%00=1",
            f"{base}?" + "&".join(f"p{i}=1" for i in range(800)),
        ):
            check(client.send("GET", target), machine(base))
            sent += 1
    # What the HTTP parser refuses, before any route: the one shape, never bare text.
    too_long = client.send("GET", "/search?q=" + "a" * (MAX_LINE + 100))
    assert too_long.status == 414, too_long.where()
    many = [(f"X-Header-{i}", "v") for i in range(MAX_HEADERS + 50)]
    too_many = client.send("GET", "/", many)
    assert too_many.status == 431, too_many.where()
    long_header = client.send("GET", "/", [("X-Long", "v" * (MAX_LINE + 100))])
    assert long_header.status == 431, long_header.where()
    for answer in (too_long, too_many, long_header):
        check(answer, machine=True)
    return sent + 3


# -- servers on loopback, in a thread of their own ------------------------------------------


@contextlib.contextmanager
def serving(start: Callable[[], AbstractAsyncContextManager[str]]) -> Iterator[Client]:
    """Run ``start()`` (yielding a base URL) on an event loop in a thread; a client for it."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    stack = contextlib.AsyncExitStack()
    try:
        url = asyncio.run_coroutine_threadsafe(stack.enter_async_context(start()), loop).result(60)
        yield Client(url)
    finally:
        asyncio.run_coroutine_threadsafe(stack.aclose(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def port(view: View) -> Callable[[], AbstractAsyncContextManager[str]]:
    """The node's port for ``view`` on a free loopback port, yielding its URL."""

    @contextlib.asynccontextmanager
    async def start() -> AsyncIterator[str]:
        server = await listen(make_port(view), "127.0.0.1", 0)
        try:
            yield server.url
        finally:
            await server.runner.cleanup()

    return start


def portal(url: str) -> Callable[[], AbstractAsyncContextManager[str]]:
    @contextlib.asynccontextmanager
    async def start() -> AsyncIterator[str]:
        kwargs = {"autocommit": True}
        async with AsyncConnectionPool(url, min_size=1, max_size=4, kwargs=kwargs) as pool:
            server = await listen(make_portal(Portal(FEDERATION, pool, "", "cn")), "127.0.0.1", 0)
            try:
                yield server.url
            finally:
                await server.runner.cleanup()

    return start


@pytest.fixture
def filled(pg_conn: Connection, pg_url: str) -> tuple[str, str]:
    """The store's URL, filled, and the id of one record in it."""
    fill(pg_conn)
    row = pg_conn.execute("SELECT id FROM records ORDER BY id LIMIT 1").fetchone()
    assert row is not None
    return pg_url, row[0]


def test_every_portal_route_answers_hostile_requests_in_the_one_shape(
    filled: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    url, record = filled
    app = make_portal(Portal(FEDERATION, None, "", "cn"))  # type: ignore[arg-type]
    samples = {"id": "gd", "name": "portal.css", "page": "1"}
    with serving(portal(url)) as client:
        sent = walk(client, app, samples, machine_address)
        for path in (f"/records/{quote(record)}", f"/api/records/{quote(record)}"):
            check(client.send("GET", path + "?lang=%00"), machine_address(path))
    assert sent >= len(routes(app)) * len(NAMES)  # every route was walked
    assert not [r for r in caplog.records if r.exc_info], "a request logged a traceback"


def test_every_port_route_answers_hostile_requests_in_the_one_shape(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = open_state(tmp_path / "state.sqlite3")
    view = View(NODE, state, push=push_sources(NODE, tmp_path, ENVIRON))

    try:
        with serving(port(view)) as client:
            app = make_port(view)
            sent = walk(client, app, {"source": "cms"}, lambda path: True)
    finally:
        state.close()
    assert sent >= len(routes(app)) * len(NAMES)  # every route was walked
    assert not [r for r in caplog.records if r.exc_info], "a request logged a traceback"


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", "Basic abc", "Bearer 令牌".encode(), b"Bearer \xff\xfe"],
)
@pytest.mark.parametrize("source", ["cms", "nosuch"])
def test_push_authenticates_before_saying_which_sources_exist(
    tmp_path: Path, authorization: str | bytes | None, source: str
) -> None:
    state = open_state(tmp_path / "state.sqlite3")
    view = View(NODE, state, push=push_sources(NODE, tmp_path, ENVIRON))

    headers: list[tuple[str, str | bytes]] = [("Content-Type", "application/xml")]
    if authorization is not None:
        headers.append(("Authorization", authorization))
    try:
        with serving(port(view)) as client:
            answer = client.send("POST", f"/push/{source}", headers)
    finally:
        state.close()
    assert answer.status == 401, answer.where()
    assert answer.headers["WWW-Authenticate"].startswith("Bearer"), answer.where()
    check(answer, machine=True)
    if source != "cms":  # the node's one source is not told to a client without its token
        assert b"cms" not in answer.body, answer.where()
    assert b"opens:" not in answer.body, answer.where()


def test_search_and_record_addresses_take_any_text(filled: tuple[str, str]) -> None:
    url, _ = filled
    text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
    templates = ("/search?q={}", "/api/search?q={}", "/records/{}", "/api/records/{}")

    with serving(portal(url)) as client:

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(text=text, template=st.sampled_from(templates))
        def any_text(text: str, template: str) -> None:
            target = template.format(quote(text, safe="") or "%20")
            answer = client.send("GET", target)
            assert answer.status in (200, 400, 404), answer.where()
            check(answer, machine_address(target.split("?")[0]))

        any_text()


@pytest.mark.parametrize(
    "q",
    ["a %", "碳 -", "COVID - 19", "' OR 1=1--", "%", "- -", "a\x00b", "\x00", "x" * 201, "碳汇"],
)
def test_search_answers_results_or_a_400_naming_q(filled: tuple[str, str], q: str) -> None:
    url, _ = filled
    with serving(portal(url)) as client:
        for path in ("/api/search", "/search"):
            answer = client.send("GET", f"{path}?q={quote(q, safe='')}")
            check(answer, machine_address(path))
            assert answer.status == (200 if q == "碳汇" else 400), answer.where()
            if answer.status == 400 and path.startswith("/api/"):
                assert json.loads(answer.body)["parameter"] == "q", answer.where()


def test_refused_pushes_are_still_kept(tmp_path: Path) -> None:
    """The push endpoint's 422 still keeps what it refused (the one shape adds ``problems``)."""
    state = open_state(tmp_path / "state.sqlite3")
    view = View(NODE, state, push=push_sources(NODE, tmp_path, ENVIRON))

    headers: list[tuple[str, str | bytes]] = [
        ("Content-Type", "application/xml"),
        ("Authorization", f"Bearer {ENVIRON['GOVHUB_TEST_PUSH_TOKEN']}"),
        ("Content-Length", "9"),
    ]
    try:
        with serving(port(view)) as client:
            conn = http.client.HTTPConnection(client.host, client.port, timeout=30)
            conn.putrequest("POST", "/push/cms")
            for name, value in headers:
                conn.putheader(name, value)
            conn.endheaders(b"<record/>")
            response = conn.getresponse()
            body = json.loads(response.read())
            conn.close()
    finally:
        state.close()
    assert response.status == 422 and body["status"] == 422 and body["problems"]
    kept = sqlite3.connect(tmp_path / "state.sqlite3").execute("SELECT count(*) FROM refused")
    assert kept.fetchone() == (1,)


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("a\x00b", {}),
        ("a\ud800b", {}),
        ("碳汇", {"node": "g\x00d"}),
        ("碳汇", {"topic": "\udfff"}),
        ("碳汇", {"cursor": "h|2024-01-01T00:00:00+08:00|urn:govhub:gd:\x00"}),
    ],
)
def test_a_search_query_refuses_what_postgresql_cannot_take(
    text: str, fields: dict[str, str]
) -> None:
    """NUL and unpaired surrogates never reach the database (a DataError, a 500 before)."""
    with pytest.raises(SearchQueryError) as caught:
        SearchQuery(text, **fields)  # type: ignore[arg-type]
    error = caught.value
    assert isinstance(error, RequestError) and error.status == 400
    assert error.parameter == ("q" if not fields else next(iter(fields)))


@pytest.mark.parametrize("text", ["a %", "碳 -", "COVID - 19", "' OR 1=1--", "。"])
def test_a_word_without_a_letter_or_digit_is_named(text: str) -> None:
    with pytest.raises(SearchQueryError) as caught:
        SearchQuery(text)
    assert caught.value.parameter == "q" and "leave it out" in str(caught.value)
