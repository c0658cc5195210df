"""A record arriving with the id and revision of a stored one but other content is a
conflict, kept where the operator looks, never ``unchanged`` with its content lost.

The hub (ingest → PostgreSQL → `govhub deadletters`) on a real database; the node's
publication pipeline (its refused table).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest
import support.postgres as postgres_fixtures
from test_hub_runner import cli, settings_env
from test_ingest import EXAMPLES, FEDERATION, batch_of, hub_round, message

from hub import records
from hub.bus import MemoryBus, Message, up_key
from hub.cli.deadletters import retry_dead_letter
from hub.ingest.consume import CONFLICT_REASON, Checker
from hub.nodedb import open_state
from hub.outbox.pipeline import Outcome as PipelineOutcome
from hub.outbox.pipeline import Pipeline
from hub.records.model import Record
from hub.review import Reviewer, ReviewPolicy
from hub.store import list_dead_letters, list_records, record_xml
from hub.store.connection import Connection
from hub.store.dead_letters import dead_letter_by_id

pg_url = postgres_fixtures.pg_url
pg_conn = postgres_fixtures.pg_conn

EXIT_OK = 0


def edited(record: Record, **changes: object) -> bytes:
    """``record`` with other content and the same id and revision (what a buggy CMS sends)."""
    return dataclasses.replace(record, **changes).to_xml()  # type: ignore[arg-type]


def test_same_revision_other_content_is_a_conflict_kept_as_a_dead_letter(
    pg_conn: Connection, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    notice = records.parse(EXAMPLES["notice"])  # node shexian
    changed = edited(notice, title=notice.title + "（更正）")
    publish = [
        ("shexian", message("shexian", EXAMPLES["notice"])),
        ("shexian", message("shexian", EXAMPLES["notice"])),  # a redelivery: unchanged
        ("shexian", message("shexian", changed)),
    ]
    tally = asyncio.run(hub_round(MemoryBus(), pg_url, publish))
    assert tally.outcomes == {"inserted": 1, "unchanged": 1, "conflict": 1}
    assert records.parse((record_xml(pg_conn, notice.id) or "").encode()) == notice  # first kept

    [dead] = list_dead_letters(pg_conn)
    assert dead.reason == CONFLICT_REASON
    stored_hash = notice.xml_and_hash()[1]
    new_hash = records.parse(changed).xml_and_hash()[1]
    assert stored_hash != new_hash
    [problem] = dead.problems
    assert f"{notice.id} revision {notice.revision}" in problem
    assert stored_hash in problem and new_hash in problem and "higher revision" in problem
    assert records.parse(dead.body).title == notice.title + "（更正）"  # the content is kept
    assert dead.headers["user_id"] == "shexian"

    assert cli(["deadletters", "list"], settings_env(pg_url)) == EXIT_OK
    out = capsys.readouterr().out
    assert f"#{dead.id} " in out and CONFLICT_REASON in out

    # Retried as it is, it still conflicts: it stays open, and nothing is overwritten.
    item = dead_letter_by_id(pg_conn, dead.id)
    assert item is not None
    retried = retry_dead_letter(pg_conn, Checker(FEDERATION, "cn"), item)
    assert not retried.resolved and "conflict" in str(retried)
    assert [d.id for d in list_dead_letters(pg_conn)] == [dead.id]


def test_a_conflict_inside_a_batch_is_kept_alone_and_the_rest_stored(
    pg_conn: Connection, pg_url: str
) -> None:
    notice = records.parse(EXAMPLES["notice"])
    other = dataclasses.replace(notice, id=f"{notice.id}-2", title="另一条").to_xml()
    changed = edited(notice, summary="内容被改，修订号未变")
    key = up_key("cn.he.hd.shexian", "notice")
    first = Message("up", key, batch_of(EXAMPLES["notice"]))
    second = Message("up", key, batch_of(changed, other))
    tally = asyncio.run(hub_round(MemoryBus(), pg_url, [("shexian", first), ("shexian", second)]))
    assert tally.outcomes == {"inserted": 2, "conflict": 1}
    assert sorted(r.id for r in list_records(pg_conn)) == sorted([notice.id, f"{notice.id}-2"])
    [dead] = list_dead_letters(pg_conn)
    assert dead.reason == CONFLICT_REASON
    kept = records.parse(dead.body)  # this record alone, not the whole batch
    assert kept.id == notice.id and kept.summary == "内容被改，修订号未变"


def test_two_copies_in_one_batch_with_other_content_conflict_too(
    pg_conn: Connection, pg_url: str
) -> None:
    notice = records.parse(EXAMPLES["notice"])
    changed = edited(notice, title="同一修订号的另一个版本")
    body = batch_of(EXAMPLES["notice"], changed)
    key = up_key("cn.he.hd.shexian", "notice")
    tally = asyncio.run(hub_round(MemoryBus(), pg_url, [("shexian", Message("up", key, body))]))
    assert tally.outcomes == {"inserted": 1, "conflict": 1}
    [dead] = list_dead_letters(pg_conn)
    assert records.parse(dead.body).title == "同一修订号的另一个版本"


# -- the node: its pipeline keeps a conflict in its refused table ------------------------


def test_the_node_pipeline_keeps_a_conflict_in_its_refused_table(tmp_path: Path) -> None:
    notice = records.parse(EXAMPLES["notice"])  # node shexian
    state = open_state(tmp_path / "shexian.sqlite3")
    pipeline = Pipeline(FEDERATION.node("shexian"), state, Reviewer(ReviewPolicy()))
    changed = edited(notice, title=notice.title + "（更正）")
    assert pipeline.accept(EXAMPLES["notice"], "a.xml").outcome is PipelineOutcome.QUEUED
    assert pipeline.accept(EXAMPLES["notice"], "a.xml").outcome is PipelineOutcome.UNCHANGED
    conflict = pipeline.accept(changed, "b.xml")
    assert conflict.outcome is PipelineOutcome.CONFLICT
    assert str(conflict).startswith(f"{notice.id}: conflict\n")
    [problem] = conflict.problems
    assert problem.field == "revision" and f"revision {notice.revision + 1}" in str(problem)
    [(source, problems, body)] = state.execute("SELECT source, problems, body FROM refused")
    assert source == "b.xml" and "this copy has content" in json.loads(problems)[0]
    assert records.parse(body).title == notice.title + "（更正）"  # the content is kept
    outbox_rows = state.execute("SELECT revision FROM outbox WHERE record_id = ?", (notice.id,))
    assert [row[0] for row in outbox_rows] == [notice.revision]  # nothing sent in its place
    revised = edited(notice, title=notice.title + "（更正）", revision=notice.revision + 1)
    assert pipeline.accept(revised, "c.xml").outcome is PipelineOutcome.QUEUED
