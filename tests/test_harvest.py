"""The harvester: start-up checks, revisions by content, cursors, problems, the schedule, HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.contract import Context, Failure, Item
from adapters.registry import GROUP, AdapterConflict, registry
from hub import records
from hub.bus import MemoryBus
from hub.bus.topology import node_queues, up_queue
from hub.errors import ConfigInvalid, InputError, Problem
from hub.federation import Node, Source, load_federation
from hub.harvest.harvester import Harvester
from hub.harvest.http import HarvestHttp
from hub.harvest.plan import Planned, plan_sources
from hub.harvest.schedule import Plan, after_failure, after_success
from hub.harvest.state import (
    DurableValidators,
    recent_problems,
    reset,
    source_state,
    validators_of,
)
from hub.harvest.tally import Tally
from hub.node.runner import run_node
from hub.nodedb import open_state, transaction
from hub.outbox import entries as outbox
from hub.outbox import held
from hub.outbox.pipeline import Pipeline
from hub.records import Record
from hub.review import Reviewer, ReviewPolicy
from hub.settings import Settings

ROOT = Path(__file__).parent.parent
FEDERATION = load_federation(ROOT / "nodes.toml")
CST = timezone(timedelta(hours=8))


# -- Test adapters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptSettings:
    count: int = field(default=5, metadata={"help": "how many items"})
    fail_after: int = field(default=-1, metadata={"help": "raise after this many items"})
    unreadable: list[int] = field(default_factory=list, metadata={"help": "items that fail"})
    broken: list[int] = field(default_factory=list, metadata={"help": "convert raises"})
    invalid: list[int] = field(default_factory=list, metadata={"help": "records refused"})
    secret: list[int] = field(default_factory=list, metadata={"help": "records held"})
    local: list[int] = field(default_factory=list, metadata={"help": "索引号 in a site's form"})
    suffix: str = field(default="", metadata={"help": "appended to every title"})


class ScriptAdapter:
    """Items 1..count after the cursor (the cursor is the last item's number)."""

    name: ClassVar[str] = "script"
    Settings: ClassVar[type] = ScriptSettings
    sample: ClassVar[str] = "count"

    def __init__(self, settings: ScriptSettings, context: Context) -> None:
        self.settings, self.context = settings, context

    async def fetch(self, cursor: str | None) -> AsyncIterator[Item | Failure]:
        for n in range(int(cursor or 0) + 1, self.settings.count + 1):
            if n - 1 == self.settings.fail_after:
                raise ConnectionError("the source went away")
            if n in self.settings.unreadable:
                yield Failure(f"script#{n}", "cannot read this one", str(n))
                continue
            yield Item(f"item-{n}", f"script#{n}", n, str(n))

    def convert(self, item: Item) -> Record | None:
        n = item.data
        if n in self.settings.broken:
            raise InputError([Problem(item.where, None, "date", "no date in the item")])
        if n % 7 == 0:
            return None  # an item that holds no record
        title = f"第{n}号通知{self.settings.suffix}"
        if n in self.settings.secret:
            title = "机密★5年 " + title
        record = self.context.record(
            item.key, title=title, published=datetime(2024, 1, 1, 9, tzinfo=CST) + timedelta(n)
        )
        if n in self.settings.invalid:
            record = dataclasses.replace(record, index_number="not-an-index-number")
        if n in self.settings.local:
            local = f"PZ00102-1700-2022-{n:05d}"
            record = dataclasses.replace(record, index_number=None, local_index_number=local)
        return record


@dataclass(frozen=True)
class JsonSettings:
    url: str = field(metadata={"help": "the JSON list's URL"})


class JsonAdapter:
    """A JSON list of {"key", "title"} at ``url``, read through the node's HTTP client."""

    name: ClassVar[str] = "json"
    Settings: ClassVar[type] = JsonSettings
    sample: ClassVar[str] = "url"

    def __init__(self, settings: JsonSettings, context: Context) -> None:
        self.settings, self.context = settings, context

    async def fetch(self, cursor: str | None) -> AsyncIterator[Item | Failure]:
        assert self.context.http is not None
        answer = await self.context.http.get(self.settings.url)
        if answer.not_modified:
            return
        for entry in json.loads(answer.body):
            yield Item(entry["key"], f"{self.settings.url}#{entry['key']}", entry)

    def convert(self, item: Item) -> Record | None:
        published = datetime(2024, 3, 1, tzinfo=CST)
        return self.context.record(item.key, title=item.data["title"], published=published)


def point(name: str, cls: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"test_harvest:{cls}", group=GROUP)


ADAPTERS = registry([point("script", "ScriptAdapter"), point("json", "JsonAdapter")])


def node_with(*sources: Source) -> Node:
    return dataclasses.replace(FEDERATION.node("shexian"), sources=sources)


def source(name: str = "s", adapter: str = "script", line: int = 40, **settings: Any) -> Source:
    return Source(name, adapter, settings, line)


@dataclass
class Rig:
    """A node with sources, its state file, a harvester."""

    node: Node
    planned: list[Planned]
    state: sqlite3.Connection
    path: Path

    def harvester(self, **options: Any) -> Harvester:
        pipeline = Pipeline(self.node, self.state, Reviewer(ReviewPolicy()))
        return Harvester(self.node, self.state, pipeline, **options)

    def harvest(self, index: int = 0, **options: Any) -> Tally:
        return asyncio.run(self.harvester(**options).harvest(self.planned[index]))

    def queued(self) -> list[outbox.Entry]:
        return outbox.due(self.state, 10_000)


def rig(tmp_path: Path, *sources: Source) -> Rig:
    node = node_with(*sources)
    path = tmp_path / "state.sqlite3"
    return Rig(node, plan_sources(node, ADAPTERS, "nodes.toml"), open_state(path), path)


# -- Start-up ---------------------------------------------------------------------------------


def test_start_up_reports_every_problem_of_every_source_with_node_source_key_and_line() -> None:
    node = node_with(
        source("a", count="many", interval=5, line=80),
        source("b", adapter="scritp", line=90),
        source("c", cuont=3, max_errors=0, line=100),
        source("d", enabled="yes", line=110),
    )
    with pytest.raises(ConfigInvalid) as caught:
        plan_sources(node, ADAPTERS, "nodes.toml")
    text = str(caught.value)
    assert "nodes.toml:80: node[shexian].sources[a].count: 'many' is not an integer" in text
    assert "nodes.toml:80: node[shexian].sources[a].interval: 5 is not usable" in text
    assert "nodes.toml:90: node[shexian].sources[b].adapter: no adapter called 'scritp'" in text
    assert "did you mean 'script'?" in text
    assert "nodes.toml:100: node[shexian].sources[c].cuont: unknown key" in text
    assert "nodes.toml:100: node[shexian].sources[c].max_errors" in text
    assert "nodes.toml:110: node[shexian].sources[d].enabled: 'yes' is not usable" in text
    assert len(caught.value.problems) == 6


def test_scheduling_keys_are_govhubs_and_two_adapters_with_one_name_conflict() -> None:
    node = node_with(source(interval=60, max_errors=3, enabled=False, count=2))
    [planned] = plan_sources(node, ADAPTERS, "nodes.toml")
    assert planned.plan == Plan(60.0, 3, False)
    assert planned.settings == ScriptSettings(count=2)
    assert "interval" not in planned.source.settings
    other = EntryPoint(name="script", value="test_harvest:JsonAdapter", group=GROUP)
    with pytest.raises(AdapterConflict, match="'script' is registered twice"):
        registry([point("script", "ScriptAdapter"), other])


# -- Revisions by content ---------------------------------------------------------------------


def test_unchanged_items_make_no_revision_and_changed_ones_make_revision_2(tmp_path: Path) -> None:
    first = rig(tmp_path, source(count=3))
    tally = first.harvest()
    assert (tally.items, tally.records, tally.queued) == (3, 3, 3)
    # The cursor says 3: a source that re-delivers everything is what dedup is for.
    with transaction(first.state):
        first.state.execute("UPDATE source_state SET cursor = NULL")
    again = first.harvest()
    assert (again.items, again.unchanged, again.queued) == (3, 3, 0)
    with transaction(first.state):
        first.state.execute("UPDATE source_state SET cursor = NULL")
    changed = rig(tmp_path, source(count=3, suffix="（修订）"))
    tally = changed.harvest()
    assert (tally.queued, tally.unchanged) == (3, 0)
    revisions = {(e.record_id, e.revision) for e in changed.queued()}
    assert ("urn:govhub:shexian:item-1", 2) in revisions
    latest = records.parse(changed.queued()[-1].body)
    assert latest.revision == 2 and latest.title.endswith("（修订）")


def test_a_held_record_counts_as_known(tmp_path: Path) -> None:
    held_rig = rig(tmp_path, source(count=2, secret=[2]))
    tally = held_rig.harvest()
    assert (tally.queued, tally.held) == (1, 1)
    with transaction(held_rig.state):
        held_rig.state.execute("UPDATE source_state SET cursor = NULL")
    again = held_rig.harvest()
    assert (again.unchanged, again.held) == (2, 0)
    assert len(held.list_held(held_rig.state)) == 1


# -- Per-item problems ------------------------------------------------------------------------


def test_per_item_problems_are_counted_kept_and_logged_and_the_source_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    r = rig(tmp_path, source(count=9, unreadable=[2], broken=[3], invalid=[4]))
    tally = r.harvest()
    # 9 items: 2 is a Failure (not an item), 3 cannot convert, 4 is refused, 7 holds no record.
    assert (tally.items, tally.failures, tally.convert_errors, tally.refused) == (8, 1, 1, 1)
    assert (tally.empty, tally.queued, tally.error) == (1, 5, None)
    state = source_state(r.state, "s")
    assert state.cursor == "9" and state.errors == 0 and state.item_problems == 3
    assert state.items_seen == 8 and state.records_made == 5
    problems = {(p.item, p.stage): p.message for p in recent_problems(r.state, "s")}
    assert problems[("script#2", "fetch")] == "cannot read this one"
    assert "no date in the item" in problems[("script#3", "convert")]
    assert "indexNumber" in problems[("script#4", "refused")]
    refused = r.state.execute("SELECT source FROM refused").fetchall()
    assert refused == [("[s] script#4",)]
    logged = caplog.text
    assert "script#2: fetch: cannot read this one" in logged
    assert "script#3: convert" in logged


def test_a_local_index_number_is_published_and_noted_once_as_nonconforming(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path, source(count=3, local=[2]))
    tally = r.harvest()
    assert (tally.queued, tally.refused) == (3, 0)
    [problem] = recent_problems(r.state, "s")
    assert (problem.item, problem.stage) == ("script#2", "nonconforming")
    assert "'PZ00102-1700-2022-00002'" in problem.message
    assert "ORGCODE/YYYY-NNNNN" in problem.message
    queued = {entry.record_id: entry.body for entry in r.queued()}
    assert b"<localIndexNumber>PZ00102-1700-2022-00002</localIndexNumber>" in b"".join(
        queued.values()
    )
    with transaction(r.state):  # harvested again from the start: unchanged, noted no more
        r.state.execute("UPDATE source_state SET cursor = NULL")
    again = r.harvest()
    assert again.unchanged == 3
    assert len(recent_problems(r.state, "s")) == 1


# -- Cursor and crashes -----------------------------------------------------------------------


def test_the_cursor_is_saved_with_the_records_and_a_restart_resumes(tmp_path: Path) -> None:
    crashing = rig(tmp_path, source(count=12, fail_after=6))
    tally = crashing.harvest(batch=4)  # commits after 4 records, then at the failure
    assert tally.error == "ConnectionError: the source went away"
    state = source_state(crashing.state, "s")
    assert state.cursor == "6" and state.errors == 1
    assert [e.record_id.rsplit("-", 1)[1] for e in crashing.queued()] == [
        "1", "2", "3", "4", "5", "6"
    ]  # fmt: skip
    crashing.state.close()
    restarted = rig(tmp_path, source(count=12))
    tally = restarted.harvest()
    assert (tally.items, tally.unchanged) == (6, 0)  # 7..12, nothing read twice
    assert source_state(restarted.state, "s").cursor == "12"
    assert len(restarted.queued()) == 11  # 7 holds no record


def test_a_killed_harvest_loses_only_the_uncommitted_batch(tmp_path: Path) -> None:
    r = rig(tmp_path, source(count=10))
    harvester = r.harvester(batch=3)
    seen = 0

    class Killed(BaseException):
        """Stands for the process dying: nothing after it runs."""

    original = harvester._take

    def take(*args: Any) -> None:
        nonlocal seen
        original(*args)
        seen += 1
        if seen == 5:
            raise Killed

    harvester._take = take  # type: ignore[method-assign]
    with pytest.raises(Killed):
        asyncio.run(harvester.harvest(r.planned[0]))
    state = source_state(r.state, "s")
    assert state.cursor == "3"  # the first batch of 3 committed; 4 and 5 were not
    assert len(r.queued()) == 3
    r.harvest()
    assert len(r.queued()) == 9 and source_state(r.state, "s").cursor == "10"


# -- Schedule, backoff, parking, reset --------------------------------------------------------


def test_backoff_grows_with_jitter_and_parks_after_max_errors() -> None:
    plan = Plan(interval=100, max_errors=4)
    at = datetime(2024, 1, 1, tzinfo=UTC)
    rng = random.Random(7)  # noqa: S311 (jitter, not secrets)
    delays = [
        (after_failure(plan, errors, at, rng=rng).next_check_at - at).total_seconds()  # type: ignore[operator]
        for errors in range(3)
    ]
    for errors, delay in enumerate(delays, start=1):
        assert 0.9 * 100 * 2**errors <= delay <= 1.1 * 100 * 2**errors
    parked = after_failure(plan, 3, at)
    assert parked.parked and parked.next_check_at is None and parked.errors == 4
    huge = after_failure(Plan(interval=80_000, max_errors=10), 5, at)
    assert huge.next_check_at is not None and huge.next_check_at - at <= timedelta(days=1.1)


def test_a_failing_source_is_parked_then_reset(tmp_path: Path) -> None:
    r = rig(tmp_path, source(count=3, fail_after=0, max_errors=2))
    assert r.harvest().error is not None
    first = source_state(r.state, "s")
    assert first.condition == "failing" and first.errors == 1
    assert first.next_check_at is not None and first.next_check_at > datetime.now(UTC)
    r.harvest()
    parked = source_state(r.state, "s")
    assert parked.condition == "parked" and not parked.due(datetime.now(UTC) + timedelta(days=9))
    assert parked.last_error == "ConnectionError: the source went away"
    with transaction(r.state):
        back = reset(r.state, "s")
    assert back.condition == "ok" and back.errors == 0 and back.due(datetime.now(UTC))


def test_a_success_unparks_and_schedules_an_interval_on(tmp_path: Path) -> None:
    r = rig(tmp_path, source(count=2, interval=600))
    before = datetime.now(UTC)
    tally = r.harvest()
    state = source_state(r.state, "s")
    assert state.condition == "ok" and state.last_success_at is not None
    assert tally.next_check_at == state.next_check_at
    assert state.next_check_at is not None
    assert before + timedelta(seconds=600) <= state.next_check_at
    assert state.next_check_at <= datetime.now(UTC) + timedelta(seconds=600)


def test_the_running_harvester_takes_due_sources_and_skips_parked_and_disabled(
    tmp_path: Path,
) -> None:
    r = rig(
        tmp_path,
        source("due", count=2),
        source("parked", count=2),
        source("off", count=2, enabled=False),
    )
    with transaction(r.state):
        r.state.execute("INSERT INTO source_state (source, parked) VALUES ('parked', 1)")

    async def scenario() -> None:
        stop, wake = asyncio.Event(), asyncio.Event()
        harvester = r.harvester(wake=wake)
        running = asyncio.create_task(harvester.run(r.planned, stop, idle=0.05))
        await until(lambda: source_state(r.state, "due").last_success_at is not None)
        assert wake.is_set()  # the relay was woken
        stop.set()
        await running

    asyncio.run(scenario())
    assert {e.record_id for e in r.queued()} == {
        "urn:govhub:shexian:item-1",
        "urn:govhub:shexian:item-2",
    }
    assert source_state(r.state, "parked").items_seen == 0
    assert source_state(r.state, "off").items_seen == 0


# -- HTTP: conditional GET across restarts, Cache-Control, Retry-After -------------------------


@dataclass
class Site:
    """A loopback server for one JSON list, with programmable answers."""

    entries: list[dict[str, str]]
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    seen: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(dict(request.headers))
        if self.status != 200:
            return web.Response(status=self.status, headers=self.headers)
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers=self.headers)
        headers = {"ETag": '"v1"', **self.headers}
        return web.json_response(self.entries, headers=headers)


def serve(site: Site, scenario: Callable[[str], Awaitable[None]]) -> None:
    async def main() -> None:
        app = web.Application()
        app.router.add_get("/list.json", site.handle)
        async with TestServer(app, host="127.0.0.1", port=0) as server:
            await scenario(str(server.make_url("/list.json")))

    asyncio.run(main())


async def harvest_http(tmp_path: Path, url: str, **keys: Any) -> tuple[Tally, sqlite3.Connection]:
    node = node_with(source("web", adapter="json", url=url, **keys))
    [planned] = plan_sources(node, ADAPTERS, "nodes.toml")
    state = open_state(tmp_path / "state.sqlite3")
    validators = DurableValidators.load(state)  # a new client and store, as after a restart
    async with HarvestHttp(validators) as http:
        pipeline = Pipeline(node, state, Reviewer(ReviewPolicy()))
        harvester = Harvester(node, state, pipeline, http=http, validators=validators)
        return await harvester.harvest(planned), state


def test_conditional_get_survives_a_restart(tmp_path: Path) -> None:
    site = Site([{"key": "a", "title": "甲"}, {"key": "b", "title": "乙"}])

    async def scenario(url: str) -> None:
        first, state = await harvest_http(tmp_path, url)
        assert first.queued == 2 and validators_of(state, url) is not None
        state.close()
        second, state = await harvest_http(tmp_path, url)  # a fresh client: the store is durable
        assert second.not_modified and second.items == 0 and str(second).startswith("0 items (not")
        assert site.seen[1].get("If-None-Match") == '"v1"'
        assert "If-None-Match" not in site.seen[0]

    serve(site, scenario)


def test_validators_are_kept_only_when_the_harvest_completes(tmp_path: Path) -> None:
    site = Site([{"key": "a", "title": "甲"}, {"key": "b"}])  # b has no title: convert fails

    async def scenario(url: str) -> None:
        node = node_with(source("web", adapter="json", url=url))
        [planned] = plan_sources(node, ADAPTERS, "nodes.toml")
        state = open_state(tmp_path / "state.sqlite3")
        validators = DurableValidators.load(state)
        async with HarvestHttp(validators) as http:
            pipeline = Pipeline(node, state, Reviewer(ReviewPolicy()))
            harvester = Harvester(node, state, pipeline, http=http, validators=validators)
            harvester.batch = 1
            original = harvester._commit
            calls = 0

            async def commit(*args: Any) -> None:
                nonlocal calls
                calls += 1
                if calls == 2:
                    raise sqlite3.OperationalError("disk I/O error")
                await original(*args)

            harvester._commit = commit  # type: ignore[method-assign]
            with pytest.raises(sqlite3.OperationalError):
                await harvester.harvest(planned)
        assert validators_of(state, url) is None and validators.get(url) is None

    serve(site, scenario)


def test_cache_control_max_age_puts_the_next_check_off(tmp_path: Path) -> None:
    site = Site([{"key": "a", "title": "甲"}], headers={"Cache-Control": "max-age=7200"})

    async def scenario(url: str) -> None:
        tally, state = await harvest_http(tmp_path, url, interval=60)
        assert tally.next_check_at is not None
        assert tally.next_check_at >= datetime.now(UTC) + timedelta(seconds=7000)
        assert source_state(state, "web").next_check_at == tally.next_check_at

    serve(site, scenario)


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    site = Site([], status=503, headers={"Retry-After": "3600"})

    async def scenario(url: str) -> None:
        tally, state = await harvest_http(tmp_path, url, interval=60)
        assert tally.error is not None and "retry after 3600 s" in tally.error
        wait = source_state(state, "web").next_check_at - datetime.now(UTC)  # type: ignore[operator]
        assert timedelta(seconds=3500) < wait <= timedelta(seconds=3600)

    serve(site, scenario)


def test_after_success_caps_far_future_freshness() -> None:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    plan = Plan(interval=900)
    assert after_success(plan, at) == at + timedelta(seconds=900)
    far = after_success(plan, at, fresh_until=at + timedelta(days=365))
    assert far == at + timedelta(days=1)
    assert after_success(plan, at, retry_after=5000) == at + timedelta(seconds=5000)


# -- The real folder adapter -------------------------------------------------------------------


def test_the_folder_adapter_through_the_harvester(tmp_path: Path) -> None:
    pytest.importorskip("adapters.folder")
    drop = tmp_path / "drop"
    drop.mkdir()
    notice = (ROOT / "examples" / "records" / "notice.xml").read_bytes()  # shexian's own
    (drop / "notice.xml").write_bytes(notice)
    (drop / "broken.xml").write_bytes(b"<record>")
    node = node_with(Source("drop", "folder", {"path": str(drop)}, 50))
    [planned] = plan_sources(node, registry(), "nodes.toml")
    state = open_state(tmp_path / "state.sqlite3")
    harvester = Harvester(node, state, Pipeline(node, state, Reviewer(ReviewPolicy())))
    tally = asyncio.run(harvester.harvest(planned))
    assert (tally.queued, tally.failures) == (1, 1)
    [entry] = outbox.due(state, 10)
    assert entry.record_id == records.parse(notice).id
    again = asyncio.run(harvester.harvest(planned))
    assert again.items == 0  # the cursor is past both files


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


# -- The running node ---------------------------------------------------------------------------


def test_run_node_harvests_its_sources_and_the_relay_sends_them(tmp_path: Path) -> None:

    node = node_with(source(count=3))
    settings = Settings.from_env({}, data_dir=tmp_path, config=ROOT / "nodes.toml")

    async def scenario() -> int:
        bus = MemoryBus()
        for node_id in FEDERATION.nodes:
            for spec in node_queues(FEDERATION, node_id):
                await bus.declare_queue(spec.name, spec.bindings)
        stop = asyncio.Event()
        running = asyncio.create_task(
            run_node(
                node,
                FEDERATION,
                settings,
                bus.as_user("shexian"),
                port=0,
                stop=stop,
                adapters=ADAPTERS,
            )
        )
        await until(lambda: len(bus.broker.queues[up_queue("hd")]) > 0)
        stop.set()
        await running
        return len(bus.broker.queues[up_queue("hd")])

    assert asyncio.run(scenario()) >= 1  # the three records went up (in one batch message)
    state = open_state(tmp_path / "nodes" / "shexian" / "state.sqlite3")
    assert outbox.counts(state).sent == 3
    assert source_state(state, "s").cursor == "3"


def test_run_node_refuses_to_start_with_a_bad_source(tmp_path: Path) -> None:

    node = node_with(source(count="three"))
    settings = Settings.from_env({}, data_dir=tmp_path)
    with pytest.raises(ConfigInvalid, match=r"node\[shexian\]\.sources\[s\]\.count"):
        asyncio.run(
            run_node(
                node,
                FEDERATION,
                settings,
                MemoryBus().as_user("shexian"),
                port=0,
                stop=asyncio.Event(),
                adapters=ADAPTERS,
            )
        )
