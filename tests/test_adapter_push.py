"""Push: a CMS POSTs records to the node over loopback; the push adapter reads the spool."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import sqlite3
import stat
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.columns import CHINA
from adapters.contract import Context, Failure, Item
from adapters.push import PushAdapter, push_sources, spool, spool_dir, take_in
from adapters.settings import read_settings
from hub.errors import ConfigInvalid
from hub.federation import Source, load_federation
from hub.node.port import View, make_app
from hub.nodedb import open_state
from hub.records import Record

ROOT = Path(__file__).parents[1]
FEDERATION = load_federation(ROOT / "nodes.toml")
TOKEN = secrets.token_hex(16)  # a fresh token per run
SOURCE = Source("cms", "push", {"max_bytes": 20_000}, line=50)
NODE = dataclasses.replace(
    FEDERATION.node("gz"),
    sources=(SOURCE,),
    credentials={"push_token": "GOVHUB_TEST_PUSH_TOKEN"},
)
ENVIRON = {"GOVHUB_TEST_PUSH_TOKEN": TOKEN}
XML = {"Content-Type": "application/xml", "Authorization": f"Bearer {TOKEN}"}


def record(local: str, title: str = "关于开展城市更新工作的通知", node: str = "gz") -> Record:
    context = Context(FEDERATION.node(node), "cms")
    return context.record(local, title=title, published=datetime(2024, 3, 1, 9, tzinfo=CHINA))


def batch(*items: Record) -> bytes:
    inner = b"".join(r.to_xml().split(b"?>", 1)[1] for r in items)
    return b'<records xmlns="urn:govhub:record:1">' + inner + b"</records>"


def post_all(
    tmp_path: Path, posts: list[tuple[str, dict[str, str], bytes]]
) -> list[tuple[int, Any]]:
    """POST each body to a node listening on loopback; (status, JSON) for each."""
    state = open_state(tmp_path / "state.sqlite3")
    view = View(NODE, state, push=push_sources(NODE, tmp_path, ENVIRON))

    async def scenario() -> list[tuple[int, Any]]:
        async with TestClient(TestServer(make_app(view), host="127.0.0.1", port=0)) as client:
            answers = []
            for path, headers, body in posts:
                response = await client.post(path, data=body, headers=headers)
                answers.append((response.status, await response.json()))
                if response.status == 401:
                    assert response.headers["WWW-Authenticate"].startswith("Bearer")
            return answers

    try:
        return asyncio.run(scenario())
    finally:
        state.close()


def adapter(tmp_path: Path, **settings: Any) -> PushAdapter:
    source = dataclasses.replace(SOURCE, settings={**SOURCE.settings, **settings})
    values = read_settings(PushAdapter.Settings, source, NODE, "nodes.toml")
    return PushAdapter(values, Context(NODE, "cms", extra={"data_dir": tmp_path}))


def fetch(source: PushAdapter, cursor: str | None = None) -> list[Item | Failure]:
    async def collect() -> list[Item | Failure]:
        return [entry async for entry in source.fetch(cursor)]

    return asyncio.run(collect())


def spooled(tmp_path: Path) -> list[str]:
    directory = spool_dir(tmp_path, "gz", "cms")
    return sorted(
        f.name
        for sub in ("new", "cur")
        if (directory / sub).exists()
        for f in (directory / sub).iterdir()
    )


def test_only_the_right_token_type_size_and_records_are_taken(tmp_path: Path) -> None:
    good = record("a").to_xml()
    answers = post_all(
        tmp_path,
        [
            ("/push/cms", {"Content-Type": "application/xml"}, good),
            ("/push/cms", {**XML, "Authorization": "Bearer wrong-token"}, good),
            ("/push/cms", {**XML, "Authorization": f"Basic {TOKEN}"}, good),
            ("/push/elsewhere", XML, good),
            ("/push/cms", {**XML, "Content-Type": "text/plain"}, good),
            ("/push/cms", XML, good + b" " * 20_000),
            ("/push/cms", XML, good.replace(b"<title>", b"<titel>", 1)),
            ("/push/cms", XML, record("b", node="sz").to_xml()),
            ("/push/cms", XML, b'<!DOCTYPE x [<!ENTITY e "e">]><record>&e;</record>'),
        ],
    )
    statuses = [status for status, _ in answers]
    assert statuses == [401, 401, 401, 404, 415, 413, 422, 422, 422]
    for status, body in answers:
        assert {"status", "error", "parameter"} <= set(body) and body["status"] == status
    assert [body["parameter"] for _, body in answers[:5]] == [
        "Authorization",
        "Authorization",
        "Authorization",
        "source",
        "Content-Type",
    ]
    assert "Authorization: Bearer" in answers[0][1]["error"]
    assert "no push source 'elsewhere' (this token opens: cms)" in answers[3][1]["error"]
    assert "over the limit of 20,000 bytes" in answers[5][1]["error"]
    invalid = answers[6][1]
    assert invalid["parameter"] == "body" and "nothing was spooled" in invalid["error"]
    assert any("push:cms:" in p and "titel" in p for p in invalid["problems"])
    assert "of node 'sz' pushed to node 'gz'" in answers[7][1]["problems"][0]
    assert "DOCTYPE" in answers[8][1]["problems"][0]
    assert spooled(tmp_path) == []  # nothing refused reaches the spool …
    state = sqlite3.connect(tmp_path / "state.sqlite3")
    kept = state.execute("SELECT source, problems, body FROM refused ORDER BY seq").fetchall()
    assert len(kept) == 3 and {row[0] for row in kept} == {"push:cms"}  # … but it is kept, with why
    assert "titel" in json.loads(kept[0][1])[0] and kept[1][2] == record("b", node="sz").to_xml()


def test_accepted_pushes_are_spooled_durably_and_read_back_in_order(tmp_path: Path) -> None:
    first, second, third = (
        record("a"),
        record("b", "关于春耕生产的通知"),
        record("c", "关于植树的通知"),
    )
    answers = post_all(
        tmp_path,
        [
            ("/push/cms", XML, first.to_xml()),
            ("/push/cms", {**XML, "Content-Type": "text/xml"}, batch(second, third)),
        ],
    )
    assert [status for status, _ in answers] == [202, 202]
    assert answers[0][1]["accepted"] == [first.id] and answers[1][1]["accepted"] == [
        second.id,
        third.id,
    ]
    new = spool_dir(tmp_path, "gz", "cms") / "new"
    files = sorted(new.iterdir())
    assert [f.name for f in files] == sorted([answers[0][1]["spooled"], answers[1][1]["spooled"]])
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    # A new adapter (a restarted node) reads what was accepted, in the order it came.
    source = adapter(tmp_path)
    entries = fetch(source)
    assert all(isinstance(e, Item) for e in entries)
    assert [source.convert(e) for e in entries if isinstance(e, Item)] == [first, second, third]
    assert [e.cursor for e in entries] == ["000000000001.xml", None, "000000000002.xml"]
    # Until the harvester commits (stores a cursor), the same records come again: none lost.
    assert [e.key for e in fetch(source) if isinstance(e, Item)] == [first.id, second.id, third.id]
    # Once it has, the committed files leave the spool.
    assert fetch(source, "000000000002.xml") == []
    assert spooled(tmp_path) == []


def test_a_late_file_is_numbered_after_the_ones_already_taken(tmp_path: Path) -> None:
    directory = spool_dir(tmp_path, "gz", "cms")
    spool(directory, record("a").to_xml())
    assert [f.name for f in take_in(directory, None)] == ["000000000001.xml"]
    # A write that started earlier but finished later has an older name: it still comes next.
    (directory / "new" / "00000000000000000001-late.xml").write_bytes(record("late").to_xml())
    taken = take_in(directory, "000000000001.xml")
    assert [f.name for f in taken] == ["000000000002.xml"]
    assert b"urn:govhub:gz:late" in taken[0].read_bytes()
    assert not (directory / "cur" / "000000000001.xml").exists()


def test_a_sample_file_is_read_in_place(tmp_path: Path) -> None:
    sample = tmp_path / "sample.xml"
    sample.write_bytes(batch(record("s1"), record("s2")))
    source = adapter(tmp_path, spool=str(sample))
    assert [e.key for e in fetch(source) if isinstance(e, Item)] == [
        "urn:govhub:gz:s1",
        "urn:govhub:gz:s2",
    ]
    assert sample.exists() and not (tmp_path / "push").exists()


def test_a_push_source_without_a_usable_token_stops_the_node_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid) as unset:
        push_sources(NODE, tmp_path, {})
    assert "GOVHUB_TEST_PUSH_TOKEN is unset or shorter than 16 characters" in str(unset.value)
    with pytest.raises(ConfigInvalid) as short:
        push_sources(NODE, tmp_path, {"GOVHUB_TEST_PUSH_TOKEN": "letmein"})
    assert "shorter than 16" in str(short.value)
    undeclared = dataclasses.replace(NODE, credentials={})
    with pytest.raises(ConfigInvalid) as missing:
        push_sources(undeclared, tmp_path, ENVIRON)
    (problem,) = missing.value.problems
    assert problem.field == "node[gz].sources[cms].token" and problem.line == 50
    assert "has no credential 'push_token'" in problem.message
    assert push_sources(FEDERATION.node("gz"), tmp_path, {}) == {}  # no push source: nothing needed
