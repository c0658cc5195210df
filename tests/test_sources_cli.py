"""``govhub sources``, ``sources reset`` and ``sources run`` as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub import records
from hub.cli import main
from hub.harvest.state import source_state
from hub.nodedb import open_state, state_path, transaction
from hub.outbox import entries as outbox

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples" / "records"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample federation with a folder source on shexian (the last node), reading ./drop."""
    pytest.importorskip("adapters.folder")
    text = (ROOT / "nodes.toml").read_text(encoding="utf-8")
    text += '\n[[node.sources]]\nname = "drop"\nadapter = "folder"\npath = "drop"\ninterval = 600\n'
    path = tmp_path / "nodes.toml"
    path.write_text(text, encoding="utf-8")
    (tmp_path / "drop").mkdir()
    monkeypatch.setenv("GOVHUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GOVHUB_CONFIG", str(path))
    return path


def test_sources_run_harvests_into_the_outbox_and_prints_the_tally(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drop = config.parent / "drop"
    (drop / "notice.xml").write_bytes((EXAMPLES / "notice.xml").read_bytes())  # shexian's own
    assert main(["sources", "run", "--node", "shexian", "drop"]) == 0
    out = capsys.readouterr().out
    assert "shexian/drop: 1 item, 1 record (1 queued); next check 20" in out
    state = open_state(state_path(config.parent / "data", "shexian"))
    [entry] = outbox.due(state, 10)
    assert entry.record_id == records.parse((EXAMPLES / "notice.xml").read_bytes()).id
    # Once more: the cursor is past the file; nothing new.
    assert main(["sources", "run", "--node", "shexian", "--json"]) == 0
    tally = json.loads(capsys.readouterr().out)
    assert tally["source"] == "drop" and tally["items"] == 0 and tally["error"] is None


def test_a_problem_item_makes_run_exit_1_and_the_listing_shows_it(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (config.parent / "drop" / "other.xml").write_bytes((EXAMPLES / "news.xml").read_bytes())
    assert main(["sources", "run", "--node", "shexian"]) == 1
    assert "1 unreadable" in capsys.readouterr().out
    assert main(["sources", "--node", "shexian"]) == 0
    listing = capsys.readouterr().out
    assert "shexian/drop  folder  ok" in listing
    assert "items seen    1" in listing and "item problems 1" in listing
    assert "of node 'mee' in a source of node 'shexian'" in listing
    assert "(every 600 s)" in listing
    assert main(["sources", "--node", "shexian", "--json"]) == 0
    [entry] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert entry["state"] == "ok" and entry["item_problems"] == 1 and entry["cursor"]
    assert entry["last_problem"]["stage"] == "convert"


def test_listing_without_state_files_creates_none(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sources", "--json"]) == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(e["node"], e["source"]) for e in entries} >= {
        ("gz", "portal-feed"),
        ("shexian", "drop"),
    }
    gz = next(e for e in entries if e["node"] == "gz")
    assert gz["state"] == "new" and gz["url"] == "https://www.gz.gov.cn/rss.xml"
    assert not (config.parent / "data").exists()


def test_reset_unparks_a_source(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = open_state(state_path(config.parent / "data", "shexian"))
    with transaction(state):
        state.execute(
            "INSERT INTO source_state (source, errors, last_error, parked, cursor)"
            " VALUES ('drop', 10, 'HTTP 500', 1, 'c7')"
        )
    assert main(["sources", "--node", "shexian"]) == 0
    assert (
        "parked (after 10 failures; `govhub sources reset` when fixed)" in capsys.readouterr().out
    )
    assert main(["sources", "reset", "--node", "shexian", "drop"]) == 0
    assert (
        "shexian/drop: reset; 0 errors, next check now (cursor c7 kept)" in capsys.readouterr().out
    )
    after = source_state(state, "drop")
    assert after.condition == "ok" and after.cursor == "c7" and after.last_error is None


def test_unknown_sources_and_nodes_are_usage_errors(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sources", "reset", "--node", "shexian", "dorp"]) == 2
    assert "no source 'dorp'; did you mean 'drop'?" in capsys.readouterr().err
    assert main(["sources", "run", "--node", "hanshan"]) == 2
    assert "node 'hanshan' has no sources" in capsys.readouterr().err


def test_a_bad_source_setting_stops_run_naming_node_source_key_and_line(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = config.read_text(encoding="utf-8").replace('path = "drop"', 'path = "drop"\npatern = 1')
    config.write_text(text, encoding="utf-8")
    line = text.splitlines().index('name = "drop"')  # the [[node.sources]] header's line
    assert main(["sources", "run", "--node", "shexian"]) == 1
    err = capsys.readouterr().err
    assert f"nodes.toml:{line}: node[shexian].sources[drop].patern: unknown key" in err
    assert "did you mean 'pattern'?" in err
