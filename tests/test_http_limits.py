"""hub.http.listen against slow and greedy clients, on loopback: connections that trickle
header bytes are closed after the head timeout while a normal client is still served;
past the connection limit a connection gets a 503 in the one error shape; a body sent
too slowly gets a 408. The settings behind the limits are checked too."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_adapter_push import ENVIRON, NODE

from adapters.push import push_sources
from hub.errors import ConfigInvalid
from hub.http.listen import Limits, limits_of, listen
from hub.node.port import View, make_app
from hub.nodedb import open_state
from hub.settings import Settings

TRICKLERS = 300
PATIENCE = 60.0  # seconds a test waits for what must happen far sooner; never a measurement


@contextlib.asynccontextmanager
async def node_port(tmp_path: Path, limits: Limits) -> AsyncIterator[tuple[str, int]]:
    """The node's port (hub.node.port) served by ``listen`` within ``limits``."""
    state = open_state(tmp_path / "state.sqlite3")
    view = View(NODE, state, push=push_sources(NODE, tmp_path, ENVIRON))
    server = await listen(make_app(view), "127.0.0.1", 0, limits=limits)
    try:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        yield host, int(port)
    finally:
        await server.runner.cleanup()
        state.close()


async def get_status(host: str, port: int) -> tuple[int, bytes]:
    """A normal, quick client: one GET /status, its status and body."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /status HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), PATIENCE)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def trickle(host: str, port: int, closed: list[bool]) -> None:
    """Send a request head a few bytes at a time, never finishing it, until the server
    closes the connection; then record that it did."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"GET /status HTTP/1.1\r\nHost: node\r\n")
        while True:
            writer.write(b"X-Slow: 1\r\n")
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(65536), 0.2)
            except TimeoutError:
                continue
            if not data or reader.at_eof():
                closed.append(True)
                return
    except ConnectionError:
        closed.append(True)
    finally:
        writer.close()


def test_trickling_clients_are_closed_and_a_normal_client_is_served(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int, int]:
        limits = Limits(head_timeout=1.0, body_timeout=5.0, max_connections=TRICKLERS + 50)
        async with node_port(tmp_path, limits) as (host, port):
            closed: list[bool] = []
            tasks = [asyncio.create_task(trickle(host, port, closed)) for _ in range(TRICKLERS)]
            status, _ = await get_status(host, port)  # served while they trickle
            _, pending = await asyncio.wait(tasks, timeout=PATIENCE)
            for task in pending:
                task.cancel()
            after, _ = await get_status(host, port)
            return status, len(closed), after

    served, closed, after = asyncio.run(scenario())
    assert served == 200
    assert closed == TRICKLERS  # every trickling connection was closed by the server
    assert after == 200


def test_past_the_connection_limit_a_connection_gets_503_in_the_one_shape(
    tmp_path: Path,
) -> None:
    async def scenario() -> tuple[list[bytes], int]:
        limits = Limits(head_timeout=PATIENCE, body_timeout=5.0, max_connections=20)
        async with node_port(tmp_path, limits) as (host, port):
            held = [await asyncio.open_connection(host, port) for _ in range(20)]
            # The server has taken the first 20 once each answers a request on its own.
            for reader, writer in held[:1]:
                writer.write(b"GET /status HTTP/1.1\r\nHost: node\r\n\r\n")
                await writer.drain()
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PATIENCE)
            extra = [await asyncio.open_connection(host, port) for _ in range(3)]
            refused = [await asyncio.wait_for(r.read(), PATIENCE) for r, _ in extra]
            for _, writer in held + extra:
                writer.close()
            status = 0
            for _ in range(200):  # the server sees the closes soon; then it serves again
                status, _ = await get_status(host, port)
                if status != 503:
                    break
                await asyncio.sleep(0.05)
            return refused, status

    refused, status = asyncio.run(scenario())
    for answer in refused:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503"), answer
        shape = json.loads(body)
        assert shape["status"] == 503 and shape["parameter"] is None and shape["error"]
    assert status == 200


def test_a_body_sent_too_slowly_gets_408_in_the_one_shape(tmp_path: Path) -> None:
    async def scenario() -> bytes:
        limits = Limits(head_timeout=PATIENCE, body_timeout=0.5, max_connections=10)
        async with node_port(tmp_path, limits) as (host, port):
            reader, writer = await asyncio.open_connection(host, port)
            token = ENVIRON["GOVHUB_TEST_PUSH_TOKEN"]
            writer.write(
                b"POST /push/cms HTTP/1.1\r\nHost: node\r\nContent-Type: application/xml\r\n"
                + f"Authorization: Bearer {token}\r\nContent-Length: 5000\r\n\r\n".encode()
                + b"<record"
            )
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), PATIENCE)
            writer.close()
            return answer

    answer = asyncio.run(scenario())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split()[1] == b"408", answer
    shape = json.loads(body)
    assert shape == {"status": 408, "error": shape["error"], "parameter": "body"}
    assert "did not arrive within 0.5 seconds" in shape["error"]


def test_the_limits_come_from_the_settings() -> None:
    settings = Settings.from_env(
        {
            "GOVHUB_HTTP_HEAD_TIMEOUT": "7.5",
            "GOVHUB_HTTP_BODY_TIMEOUT": "30",
            "GOVHUB_HTTP_MAX_CONNECTIONS": "64",
        }
    )
    assert limits_of(settings) == Limits(head_timeout=7.5, body_timeout=30, max_connections=64)
    assert limits_of(Settings.from_env({})) == Limits()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GOVHUB_HTTP_HEAD_TIMEOUT", "0"),
        ("GOVHUB_HTTP_HEAD_TIMEOUT", "soon"),
        ("GOVHUB_HTTP_BODY_TIMEOUT", "-1"),
        ("GOVHUB_HTTP_MAX_CONNECTIONS", "0"),
    ],
)
def test_unusable_limits_are_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigInvalid) as caught:
        Settings.from_env({name: value})
    assert name in str(caught.value)
