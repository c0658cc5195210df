"""The govhub command line: exit codes, output, help."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hub.cli import build_parser, main

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples" / "records"
NODES = ROOT / "nodes.toml"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run the installed ``govhub`` command as a user would."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("GOVHUB_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_validate_all_examples_with_the_map() -> None:
    result = run("validate", str(EXAMPLES), "--config", str(NODES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    count = len(list(EXAMPLES.glob("*.xml")))
    assert f"{count} records checked: {count} valid, 0 invalid" in result.stderr


def test_validate_reports_one_line_per_problem_and_exits_1(tmp_path: Path) -> None:
    good = (EXAMPLES / "document.xml").read_text(encoding="utf-8")
    (tmp_path / "good.xml").write_text(good, encoding="utf-8")
    bad = good.replace("000014349/2018-00226", "00001434/2006-166").replace(
        "<revision>1", "<revision>0"
    )
    (tmp_path / "bad.xml").write_text(bad, encoding="utf-8")
    result = run("validate", str(tmp_path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines == [
        f"{tmp_path / 'bad.xml'}:4: revision: '0' is not a valid revision (expected a whole number from 1, e.g. 1)",
        f"{tmp_path / 'bad.xml'}:6: indexNumber: '00001434/2006-166' is not a valid index number "
        "(expected ORGCODE/YYYY-NNNNN, e.g. 000014349/2006-00166)",
    ]
    assert "2 records checked: 1 valid, 1 invalid" in result.stderr


def test_validate_with_map_checks_origin(tmp_path: Path) -> None:
    text = (EXAMPLES / "document.xml").read_text(encoding="utf-8")
    (tmp_path / "a.xml").write_text(
        text.replace('site="bm01000001"', 'site="bm01000002"'), encoding="utf-8"
    )
    result = run("validate", str(tmp_path / "a.xml"), "--config", str(NODES))
    assert result.returncode == 1
    assert "a.xml:5: origin/@site: 'bm01000002' is not the site code of node 'cn'" in result.stdout
    without_map = run("validate", str(tmp_path / "a.xml"))
    assert without_map.returncode == 0


def test_validate_unknown_node(tmp_path: Path) -> None:
    text = (EXAMPLES / "document.xml").read_text(encoding="utf-8")
    text = text.replace('node="cn"', 'node="xx"').replace("urn:govhub:cn:", "urn:govhub:xx:")
    (tmp_path / "a.xml").write_text(text, encoding="utf-8")
    result = run("validate", str(tmp_path / "a.xml"), "--config", str(NODES), "-q")
    assert result.returncode == 1
    assert "origin/@node: node 'xx' is not in" in result.stdout
    assert result.stderr == ""


def test_validate_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = run("validate", str(tmp_path / "nope.xml"))
    assert missing.returncode == 2
    assert "nope.xml: no such file or folder" in missing.stderr
    assert run("validate").returncode == 2
    assert run("validate", "--bogus", str(EXAMPLES)).returncode == 2


def test_bad_setting_is_a_clear_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", "validate", str(EXAMPLES)],
        env={**os.environ, "GOVHUB_MAX_RECORD_BYTES": "lots"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "GOVHUB_MAX_RECORD_BYTES: 'lots' is not usable" in result.stderr


def test_max_record_bytes_setting_applies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVHUB_MAX_RECORD_BYTES", "1000")
    assert main(["validate", str(EXAMPLES / "document.xml")]) == 1
    assert (
        "over the limit of 1,000 (expected GOVHUB_MAX_RECORD_BYTES to raise it)"
        in capsys.readouterr().out
    )


def test_nodes_prints_the_tree() -> None:
    result = run("nodes", "--config", str(NODES))
    assert result.returncode == 0, result.stderr
    assert "├── gd" in result.stdout and "cn.gd.gz.yx" in result.stdout
    assert "15 nodes (" in result.stdout


def test_nodes_reports_map_problems_with_lines(tmp_path: Path) -> None:
    bad = NODES.read_text(encoding="utf-8").replace('parent = "gd"', 'parent = "gdx"', 1)
    (tmp_path / "nodes.toml").write_text(bad, encoding="utf-8")
    result = run("nodes", cwd=tmp_path)
    assert result.returncode == 1
    assert "nodes.toml:" in result.stderr and "'gdx'" in result.stderr


def test_nodes_without_a_map_says_how_to_point_at_one(tmp_path: Path) -> None:
    result = run("nodes", cwd=tmp_path)
    assert result.returncode == 1
    assert "nodes.toml" in result.stderr and "GOVHUB_CONFIG" in result.stderr


def test_demo_stops_before_starting_anything_when_an_example_is_invalid(tmp_path: Path) -> None:
    shutil.copy(NODES, tmp_path / "nodes.toml")
    shutil.copytree(EXAMPLES, tmp_path / "examples" / "records")
    broken = tmp_path / "examples" / "records" / "notice.xml"
    broken.write_text(
        broken.read_text(encoding="utf-8").replace("<revision>", "<revision>x"), encoding="utf-8"
    )
    result = run("demo", "--once", cwd=tmp_path)
    assert result.returncode == 1
    count = len(list(EXAMPLES.glob("*.xml")))
    assert f"{count - 1} valid, 1 invalid" in result.stdout
    assert "✗ " in result.stdout and "notice.xml:4: revision:" in result.stdout
    assert "store:" not in result.stdout  # nothing was started


def test_config_lists_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    from hub.settings import SETTINGS

    assert main(["config"]) == 0
    out = capsys.readouterr().out
    for setting in SETTINGS:
        assert setting.name in out and setting.help in out


def test_help_for_every_command() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) >= {"validate", "nodes", "config", "demo"}
    for name in commands:
        result = run(name, "--help")
        assert result.returncode == 0
        assert f"usage: govhub {name}" in result.stdout


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "commands:" in capsys.readouterr().out
