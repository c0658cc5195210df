"""A node's publication pipeline: validate, check origin, dedup, review, outbox."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from hub import records
from hub.federation import load_federation
from hub.nodedb import SCHEMA_VERSION, NodeStateError, open_state
from hub.outbox import entries as outbox
from hub.outbox import held
from hub.outbox.pipeline import Outcome, Pipeline
from hub.review import Reviewer, ReviewPolicy

ROOT = Path(__file__).parent.parent
FEDERATION = load_federation(ROOT / "nodes.toml")
NOTICE = (ROOT / "examples" / "records" / "notice.xml").read_bytes()  # a shexian record


@pytest.fixture
def state(tmp_path: Path) -> sqlite3.Connection:
    return open_state(tmp_path / "shexian.sqlite3")


@pytest.fixture
def pipeline(state: sqlite3.Connection) -> Pipeline:
    return Pipeline(FEDERATION.node("shexian"), state, Reviewer(ReviewPolicy(("防火隔离带",))))


def revised(data: bytes, **changes: object) -> bytes:
    return dataclasses.replace(records.parse(data), **changes).to_xml()


def test_a_clean_record_is_queued_with_its_routing_key(
    pipeline: Pipeline, state: sqlite3.Connection
) -> None:
    result = pipeline.accept(NOTICE, "notice.xml")
    assert result.outcome is Outcome.QUEUED, str(result)
    [entry] = outbox.due(state, 10)
    assert entry.routing_key == "up.cn.he.hd.shexian._.notice"
    assert records.parse(entry.body) == result.record


def test_same_revision_or_same_content_is_unchanged_and_older_is_stale(pipeline: Pipeline) -> None:
    assert pipeline.accept(NOTICE, "a").outcome is Outcome.QUEUED
    assert pipeline.accept(NOTICE, "again").outcome is Outcome.UNCHANGED
    record = records.parse(NOTICE)
    same_content = revised(
        NOTICE, revision=record.revision + 1, updated=record.published + timedelta(days=1)
    )
    assert pipeline.accept(same_content, "b").outcome is Outcome.UNCHANGED
    changed = revised(NOTICE, revision=record.revision + 1, title=record.title + "（更新）")
    assert pipeline.accept(changed, "c").outcome is Outcome.QUEUED
    assert pipeline.accept(NOTICE, "old").outcome is Outcome.STALE


def test_invalid_and_foreign_records_are_refused_and_kept(
    pipeline: Pipeline, state: sqlite3.Connection
) -> None:
    broken = NOTICE.replace(b"<revision>", b"<revision>x")
    foreign = (ROOT / "examples" / "records" / "document.xml").read_bytes()
    assert pipeline.accept(broken, "broken.xml").outcome is Outcome.REFUSED
    result = pipeline.accept(foreign, "document.xml")
    assert result.outcome is Outcome.REFUSED
    assert "record of node 'cn' given to node 'shexian'" in str(result)
    kept = state.execute("SELECT source, problems FROM refused ORDER BY seq").fetchall()
    assert [source for source, _ in kept] == ["broken.xml", "document.xml"]
    assert "revision" in kept[0][1]
    assert outbox.due(state, 10) == []


def test_a_classified_record_is_held_then_approved_with_an_audit_trail(
    pipeline: Pipeline, state: sqlite3.Connection
) -> None:
    secret = revised(NOTICE, title="秘密★1年 " + records.parse(NOTICE).title)
    result = pipeline.accept(secret, "secret.xml")
    assert result.outcome is Outcome.HELD
    assert "classification marking" in str(result)
    assert outbox.due(state, 10) == []
    [waiting] = held.list_held(state)
    with pytest.raises(held.ReviewError, match="needs a reason"):
        pipeline.approve(waiting.record_id, waiting.revision, actor="李审核", reason=" ")
    pipeline.approve(
        waiting.record_id, waiting.revision, actor="李审核", reason="标志为示例文字，已核实可公开"
    )
    assert [e.record_id for e in outbox.due(state, 10)] == [waiting.record_id]
    with pytest.raises(held.ReviewError, match="already approved by 李审核"):
        pipeline.reject(waiting.record_id, waiting.revision, actor="王", reason="x")
    trail = held.audit_trail(state, waiting.record_id)
    assert [(e.action, e.actor) for e in trail] == [("held", "govhub"), ("approved", "李审核")]


def test_rejected_records_never_reach_the_outbox(
    pipeline: Pipeline, state: sqlite3.Connection
) -> None:
    record = records.parse(NOTICE)
    termed = revised(NOTICE, summary=(record.summary or "") + "防火隔离带位置")
    assert pipeline.accept(termed, "t.xml").outcome is Outcome.HELD
    decision = pipeline.reject(
        record.id, record.revision, actor="王审核", reason="涉及敏感设施位置"
    )
    assert decision.state == "rejected" and decision.reason == "涉及敏感设施位置"
    assert outbox.due(state, 10) == [] and held.list_held(state) == []
    assert [h.state for h in held.list_held(state, None)] == ["rejected"]


def test_outbox_survives_restart_and_backs_off(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite3"
    first = Pipeline(FEDERATION.node("shexian"), open_state(path), Reviewer(ReviewPolicy()))
    assert first.accept(NOTICE, "n").outcome is Outcome.QUEUED
    first.state.close()
    again = open_state(path)
    [entry] = outbox.due(again, 10)
    next_at = outbox.mark_failed(again, [entry.seq], "broker unreachable")
    assert outbox.due(again, 10) == []  # not due until the backoff passes
    assert [e.seq for e in outbox.due(again, 10, at=next_at)] == [entry.seq]
    outbox.mark_failed(again, [entry.seq], "broker unreachable")
    counts = outbox.counts(again)
    assert (counts.pending, counts.failing, counts.last_error) == (1, 1, "broker unreachable")
    outbox.mark_sent(again, [entry.seq])
    assert (
        outbox.counts(again).sent == 1
        and outbox.due(again, 10, at=next_at + timedelta(hours=1)) == []
    )


def test_a_newer_state_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite3"
    open_state(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(NodeStateError, match="newer than this govhub knows"):
        open_state(path)
