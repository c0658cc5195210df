"""The one stop-or-wake wait, the one drain and the one reconnect-with-backoff."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from hub.lifecycle import Backoff, drain, first_of
from hub.store.connection import Connection, Reconnecting, connect
from hub.store.errors import StoreError


def test_first_of_says_whether_an_event_came_before_the_timeout() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        stop, wake = asyncio.Event(), asyncio.Event()
        asyncio.get_running_loop().call_soon(wake.set)
        woken = await first_of(stop, wake, timeout=30)
        wake.clear()
        timed_out = await first_of(stop, wake, timeout=0.01)
        stop.set()
        already = await first_of(stop, wake, timeout=None)  # set before: at once
        return woken, timed_out, already

    assert asyncio.run(scenario()) == (True, False, True)


def test_backoff_doubles_up_to_its_most_and_logs_each_wait_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backoff = Backoff("follower search", "the database", first=1.0, most=5.0)
    with caplog.at_level(logging.WARNING, logger="hub.lifecycle"):
        delays = [backoff.next(f"try {n}") for n in range(5)]
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert [r.getMessage() for r in caplog.records][:2] == [
        "follower search waits 1.0 s for the database: try 0",
        "follower search waits 2.0 s for the database: try 1",
    ]
    backoff.reset()
    assert backoff.next("again") == 1.0


def test_backoff_wait_gives_up_when_stopped() -> None:
    async def scenario() -> bool:
        stop = asyncio.Event()
        stop.set()
        return await Backoff("relay", "the broker", first=60).wait("down", stop)

    assert asyncio.run(scenario()) is False


def test_drain_lets_the_quick_finish_and_cancels_and_names_the_busy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> tuple[list[str], bool, bool]:
        stop = asyncio.Event()
        quick = asyncio.create_task(stop.wait(), name="relay")
        stuck = asyncio.create_task(asyncio.Event().wait(), name="consumer")
        stop.set()
        late = await drain([quick, stuck], 0.2, "node gz", {"node": "gz"})
        return [t.get_name() for t in late], quick.cancelled(), stuck.cancelled()

    with caplog.at_level(logging.WARNING, logger="hub.lifecycle"):
        late, quick_cancelled, stuck_cancelled = asyncio.run(scenario())
    assert (late, quick_cancelled, stuck_cancelled) == (["consumer"], False, True)
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("node gz: 1 still busy after 0.2 s, cancelled: consumer")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_reconnecting_waits_for_an_absent_database_until_stopped() -> None:
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/test"
    waits: list[StoreError] = []

    async def scenario() -> object:
        stop = asyncio.Event()

        def stop_after_three(error: StoreError) -> None:
            waits.append(error)
            if len(waits) == 3:
                stop.set()

        connecting = lambda: connect(url, timeout=2)  # noqa: E731
        store = Reconnecting(connecting, "test", first=0.01, most=0.02, on_wait=stop_after_three)
        try:
            return await store.run(lambda conn: conn.execute("SELECT 1").fetchone(), stop)
        finally:
            store.close()

    assert asyncio.run(scenario()) is None  # stopped: the work was not done
    assert len(waits) == 3 and all(error.retryable for error in waits)


def test_reconnecting_does_the_work_on_a_live_database(pg_url: str) -> None:
    async def scenario() -> object:
        store = Reconnecting(lambda: connect(pg_url), "test")
        try:

            def work(conn: Connection) -> object:
                row = conn.execute("SELECT 41 + 1").fetchone()
                return row[0] if row else None

            return await store.run(work, asyncio.Event())
        finally:
            store.close()

    assert asyncio.run(scenario()) == 42
