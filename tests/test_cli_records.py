"""``govhub records`` against a real PostgreSQL (one schema per test module)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub import records
from hub.cli import main
from hub.federation import load_federation
from hub.store import StoredRecord, upsert_records
from hub.store.connection import Connection

ROOT = Path(__file__).parent.parent


@pytest.fixture
def stored(
    pg_conn: Connection, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> list[records.Record]:
    federation = load_federation(ROOT / "nodes.toml")
    examples = [
        records.parse(p.read_bytes()) for p in sorted((ROOT / "examples" / "records").glob("*.xml"))
    ]
    upsert_records(
        pg_conn, [StoredRecord.from_record(r, federation.node(r.node).path) for r in examples]
    )
    monkeypatch.setenv("GOVHUB_DATABASE_URL", pg_url)
    return examples


def test_lists_a_subtree_newest_first(
    stored: list[records.Record], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["records", "--scope", "cn.gd"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = [r for r in stored if r.node in {"gd", "gz", "yx", "sz", "ft", "fs", "gdee"}]
    assert lines[-1] == f"{len(expected)} shown of {len(expected)} in scope"
    shown = [line.split("  ")[0] for line in lines[:-1]]
    newest_first = sorted(expected, key=lambda r: (r.published, r.id), reverse=True)
    assert shown == [r.id for r in newest_first]
    assert any(line.endswith("[withdrawn]") for line in lines)


def test_json_pages_with_cursors(
    stored: list[records.Record], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["records", "--json", "--limit", "5"]) == 0
    first = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(first) == 5 and {"id", "path", "kind", "revision", "cursor"} <= set(first[0])
    assert main(["records", "--json", "--limit", "100", "--after", first[-1]["cursor"]]) == 0
    rest = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(first) + len(rest) == len(stored)
    assert not {r["id"] for r in first} & {r["id"] for r in rest}


def test_filters_and_bad_arguments(
    stored: list[records.Record], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["records", "--kind", "service", "--json"]) == 0
    assert [json.loads(line)["kind"] for line in capsys.readouterr().out.splitlines()] == [
        "service"
    ]
    assert main(["records", "--limit", "0"]) == 2
    assert main(["records", "--after", "yesterday"]) == 2
    assert "--after" in capsys.readouterr().err
