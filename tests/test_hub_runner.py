"""The running hub (competing consumers, drain, errors) on the in-process bus and a real
PostgreSQL, and the `govhub hub` / `govhub deadletters` commands. The same hub on the
real broker, through outages and crashes: tests/test_faults.py."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest
import support.postgres as postgres_fixtures
from support.samples import news

from hub.bus import MemoryBus, Message, up_key
from hub.bus.errors import ConsumeError
from hub.bus.topology import node_queues, up_queue
from hub.cli import deadletters, hub
from hub.cli.common import EXIT_INVALID, EXIT_OK, EXIT_USAGE, UsageError
from hub.errors import HubError
from hub.federation import load_federation, parse_federation
from hub.ingest.consume import Checker, consume_forever
from hub.ingest.runner import HubOptions, HubReport, run_hub
from hub.settings import Settings
from hub.store import connect, count_records, list_dead_letters, list_records
from hub.store.connection import Connection

pg_url = postgres_fixtures.pg_url
pg_conn = postgres_fixtures.pg_conn

ROOT = Path(__file__).parent.parent
MAP_TEXT = (ROOT / "nodes.toml").read_text(encoding="utf-8")
FEDERATION = load_federation(ROOT / "nodes.toml")
MOF = """
[[node]]
id = "mof"
name = "财政部"
level = "department"
parent = "cn"
site_code = "bm14000001"
domain = "www.mof.gov.cn"
"""  # a node the broker may know before the hub's map does


def news_message(index: int, revision: int = 1, node: str = "mee") -> Message:
    path = f"cn.{node}"
    site = "bm14000001" if node == "mof" else "bm17000001"
    return Message(
        "up",
        up_key(path, "news"),
        news(index, revision, node, site),
        message_id=f"{node}-{index}@{revision}",
    )


async def hub_until(
    bus: MemoryBus, pg: str, until: Callable[[], bool], options: HubOptions | None = None
) -> HubReport:
    """Run the root's hub on ``bus`` until ``until()`` holds, then stop it."""
    stop = asyncio.Event()

    async def connect_bus() -> MemoryBus:
        return bus.as_user("cn")

    plan = options or HubOptions(up_queue("cn"), consumers=2, prefetch=20, batch=10)
    checker = Checker(FEDERATION, "cn")
    task = asyncio.create_task(run_hub(connect_bus, checker, lambda: connect(pg), stop, plan))
    async with asyncio.timeout(30):
        while not until() and not task.done():
            await asyncio.sleep(0.05)
    stop.set()
    return await task


def stored(conn: Connection, records: int, dead: int = 0) -> Callable[[], bool]:
    def done() -> bool:
        return count_records(conn) >= records and len(list_dead_letters(conn)) >= dead

    return done


async def root_queues(bus: MemoryBus) -> None:
    for spec in node_queues(FEDERATION, "cn"):
        await bus.declare_queue(spec.name, spec.bindings)


def test_competing_consumers_store_every_record_once(pg_conn: Connection, pg_url: str) -> None:
    async def scenario() -> HubReport:
        bus = MemoryBus()
        await root_queues(bus)
        messages = [news_message(i, revision) for revision in (1, 2) for i in range(300)]
        await bus.as_user("mee").publish_many(messages + messages[:50])  # and 50 duplicates
        queue = bus.broker.queues["cn.up"]
        report = await hub_until(bus, pg_url, lambda: not queue and count_records(pg_conn) == 300)
        assert report.stored + len(queue) == 650, "each message was stored, or is back"
        return report

    report = asyncio.run(scenario())
    assert count_records(pg_conn) == 300
    assert {r.revision for r in list_records(pg_conn, limit=1000)} == {2}
    assert report.dead == 0 and report.count("inserted") == 300
    assert all(t.batches > 0 for t in report.tallies), "both consumers took batches"


def test_stopping_while_the_database_is_down_returns_every_message(pg_conn: Connection) -> None:
    with socket.socket() as probe:  # a port where nothing listens: the database is "down"
        probe.bind(("127.0.0.1", 0))
        down = f"postgresql://postgres@127.0.0.1:{probe.getsockname()[1]}/test"

    async def scenario() -> tuple[HubReport, int, float]:
        bus = MemoryBus()
        await root_queues(bus)
        await bus.as_user("mee").publish_many([news_message(i) for i in range(40)])
        stop = asyncio.Event()

        async def connect_bus() -> MemoryBus:
            return bus.as_user("cn")

        options = HubOptions(up_queue("cn"), consumers=2, prefetch=10, batch=10, drain_timeout=5)
        checker = Checker(FEDERATION, "cn")
        task = asyncio.create_task(
            run_hub(connect_bus, checker, lambda: connect(down), stop, options)
        )
        await asyncio.sleep(1.0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        stop.set()
        report = await task
        return report, len(bus.broker.queues["cn.up"]), loop.time() - started

    report, left, stopping = asyncio.run(scenario())
    assert report.stored == 0 and report.waits_for_database > 0
    assert left == 40, "nothing acked: every message is back in the queue"
    assert stopping < 4, "a batch waiting for the database does not hold up the stop"


def test_a_consumer_that_cannot_start_stops_the_hub_with_its_error() -> None:
    async def scenario() -> None:
        bus = MemoryBus()  # no queues declared

        async def connect_bus() -> MemoryBus:
            return bus.as_user("cn")

        options = HubOptions(up_queue("cn"), consumers=3, prefetch=5, batch=5)
        await run_hub(connect_bus, Checker(FEDERATION, "cn"), _no_store, asyncio.Event(), options)

    with pytest.raises(ConsumeError, match=r"cn\.up"):
        asyncio.run(asyncio.wait_for(scenario(), 10))


def _no_store() -> Connection:
    raise AssertionError("no store connection is needed")


def test_a_consumer_closed_under_the_hub_ends_it_rather_than_spinning(pg_url: str) -> None:
    async def scenario() -> None:
        bus = MemoryBus()
        await root_queues(bus)
        async with bus.as_user("cn").consume(up_queue("cn"), prefetch=5) as deliveries:
            task = asyncio.create_task(
                consume_forever(
                    deliveries, Checker(FEDERATION, "cn"), lambda: connect(pg_url), asyncio.Event()
                )
            )
            await asyncio.sleep(0.1)
            await deliveries.stop()  # not through the stop event
            tally = await asyncio.wait_for(task, 5)
            assert tally.batches == 0

    asyncio.run(scenario())


def test_options_refuse_a_batch_larger_than_the_prefetch() -> None:
    with pytest.raises(ValueError, match="cannot exceed prefetch"):
        HubOptions("cn.up", prefetch=10, batch=20)
    with pytest.raises(ValueError, match="consumers must be at least 1"):
        HubOptions("cn.up", consumers=0)


# -- the commands ------------------------------------------------------------------------


def cli(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """What `govhub ARGV` does (hub.cli.main), with these two command modules."""
    parser = argparse.ArgumentParser(prog="govhub")
    commands = parser.add_subparsers()
    hub.add_parser(commands)
    deadletters.add_parser(commands)
    args = parser.parse_args(argv)
    try:
        return int(
            args.handler(args, Settings.from_env(environ, config=getattr(args, "config", None)))
        )
    except UsageError as exc:
        print(f"govhub: {exc}")
        return EXIT_USAGE
    except HubError as exc:
        print(f"govhub: {exc}")
        return EXIT_INVALID


def test_hub_run_needs_a_broker_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["hub", "run"], {"GOVHUB_CONFIG": str(ROOT / "nodes.toml")}) == EXIT_USAGE
    out = capsys.readouterr().out
    assert "GOVHUB_BROKER_URL is empty" in out and "only for `govhub demo`" in out


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--node", "yx"], "node 'yx' has no nodes below it"),
        (["--batch", "300"], "cannot exceed prefetch"),
        (["--consumers", "0"], "consumers must be at least 1"),
    ],
)
def test_hub_run_refuses_what_cannot_work(
    flags: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {"GOVHUB_CONFIG": str(ROOT / "nodes.toml"), "GOVHUB_BROKER_URL": "amqp://x/y"}
    assert cli(["hub", "run", *flags], environ) == EXIT_USAGE
    assert expected in capsys.readouterr().out


def test_hub_run_names_a_missing_password_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOVHUB_NODE_GD_PASSWORD", raising=False)
    environ = {"GOVHUB_CONFIG": str(ROOT / "nodes.toml"), "GOVHUB_BROKER_URL": "amqp://x/y"}
    assert cli(["hub", "run", "--node", "gd"], environ) == EXIT_INVALID
    assert "GOVHUB_NODE_GD_PASSWORD is not set" in capsys.readouterr().out


def test_log_lines_end_with_the_structured_keys() -> None:
    import logging

    formatter = hub.KeyFormatter("%(message)s")
    record = logging.LogRecord("hub", logging.INFO, __file__, 1, "stored %d", (3,), None)
    record.node, record.stage = "cn", "hub"
    assert formatter.format(record) == "stored 3 node=cn stage=hub"


@pytest.fixture
def dead_letters(pg_conn: Connection, pg_url: str) -> list[int]:
    """Dead letters made by the hub itself: one unknown node (mof, not in the hub's map
    yet), one invalid record, one spoofed publisher."""

    async def scenario() -> HubReport:
        bus = MemoryBus()
        await root_queues(bus)
        await bus.as_user("mof").publish(news_message(1, node="mof"))
        broken = news(2).replace(b"<revision>1", b"<revision>x")
        await bus.as_user("mee").publish(Message("up", up_key("cn.mee", "news"), broken))
        await bus.as_user("ndrc").publish(news_message(3))  # ndrc publishing under mee's key
        return await hub_until(bus, pg_url, stored(pg_conn, 0, dead=3))

    report = asyncio.run(scenario())
    assert report.dead == 3 and count_records(pg_conn) == 0
    return [d.id for d in list_dead_letters(pg_conn)]


def settings_env(pg_url: str, config: Path | None = None) -> dict[str, str]:
    return {"GOVHUB_DATABASE_URL": pg_url, "GOVHUB_CONFIG": str(config or ROOT / "nodes.toml")}


def test_deadletters_list_and_show(
    dead_letters: list[int], pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown, invalid, spoofed = dead_letters
    assert cli(["deadletters", "list"], settings_env(pg_url)) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "3 unresolved dead letters"
    assert lines[0].startswith(f"#{unknown} ") and "unknown route" in lines[0]
    assert "hub:cn  up.cn.mee._.news  invalid record (1 problems)" in lines[1]
    assert "published by broker user 'ndrc', not by 'mee'" in lines[2]

    assert cli(["deadletters", "list", "--json"], settings_env(pg_url)) == EXIT_OK
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == dead_letters
    assert rows[0]["user_id"] == "mof" and rows[0]["message_id"] == "mof-1@1"
    assert rows[1]["problems"][0].startswith("up.cn.mee._.news")

    assert cli(["deadletters", "show", str(invalid)], settings_env(pg_url)) == EXIT_OK
    shown = capsys.readouterr().out
    assert "problem: up.cn.mee._.news" in shown and "revision" in shown
    assert "header user_id: mee" in shown and "<revision>x" in shown

    assert cli(["deadletters", "show", "999999"], settings_env(pg_url)) == EXIT_USAGE
    assert "there is no dead letter #999999" in capsys.readouterr().out
    assert spoofed


def test_deadletters_retry_stores_what_passes_after_the_map_is_fixed(
    dead_letters: list[int],
    pg_conn: Connection,
    pg_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    unknown, invalid, _ = dead_letters
    assert cli(["deadletters", "retry", str(unknown)], settings_env(pg_url)) == EXIT_INVALID
    assert f"#{unknown}: still fails: unknown route" in capsys.readouterr().out
    assert count_records(pg_conn) == 0

    fixed = tmp_path / "nodes.toml"
    fixed.write_text(MAP_TEXT + MOF, encoding="utf-8")
    parse_federation(fixed.read_text(encoding="utf-8"))  # the fixed map is valid
    assert cli(["deadletters", "retry", str(unknown)], settings_env(pg_url, fixed)) == EXIT_OK
    assert capsys.readouterr().out.strip() == f"#{unknown}: stored (inserted 1), resolved"
    [row] = list_records(pg_conn)
    assert (row.id, row.node, row.path) == ("urn:govhub:mof:n-1", "mof", "cn.mof")

    assert cli(["deadletters", "retry", "--all"], settings_env(pg_url, fixed)) == EXIT_INVALID
    out = capsys.readouterr().out
    assert f"#{invalid}: still fails: invalid record" in out
    assert "published by broker user 'ndrc'" in out
    assert out.strip().endswith("2 retried: 0 resolved, 2 still failing")

    dead = {d.id: d for d in list_dead_letters(pg_conn, include_resolved=True)}
    assert dead[unknown].resolved and dead[unknown].retry_count == 2
    assert not dead[invalid].resolved and dead[invalid].retry_count == 1
    assert cli(["deadletters", "list"], settings_env(pg_url)) == EXIT_OK
    assert capsys.readouterr().out.splitlines()[-1] == "2 unresolved dead letters"


def test_deadletters_resolve_keeps_the_reason(
    dead_letters: list[int], pg_conn: Connection, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, invalid, _ = dead_letters
    argv = ["deadletters", "resolve", str(invalid), "--reason", "source fixed; sent as r2"]
    assert cli(argv, settings_env(pg_url)) == EXIT_OK
    assert cli(["deadletters", "list"], settings_env(pg_url)) == EXIT_OK
    assert capsys.readouterr().out.splitlines()[-1] == "2 unresolved dead letters"
    assert cli(["deadletters", "list", "--all", "--json"], settings_env(pg_url)) == EXIT_OK
    rows = {r["id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows[invalid]["resolved"] and rows[invalid]["resolution"]["reason"] == (
        "source fixed; sent as r2"
    )
    assert cli(["deadletters", "show", str(invalid)], settings_env(pg_url)) == EXIT_OK
    assert "source fixed; sent as r2" in capsys.readouterr().out
    assert cli(["deadletters", "retry", str(invalid)], settings_env(pg_url)) == EXIT_OK
    assert "already resolved" in capsys.readouterr().out
    assert cli(["deadletters", "retry"], settings_env(pg_url)) == EXIT_USAGE
