"""``govhub demo``, the README's run command, as a user runs it: embedded database,
in-process bus, the whole sample federation, then an HTTP overview and feeds."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import feedparser
import pytest

ROOT = Path(__file__).parent.parent


def demo_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVHUB_")}
    return env | {"GOVHUB_DATA_DIR": str(data_dir), "PYTHONIOENCODING": "utf-8"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


def test_demo_once_runs_the_federation_and_again_finds_it_unchanged(data_dir: Path) -> None:
    command = [sys.executable, "-m", "hub.cli", "demo", "--once"]
    first = subprocess.run(
        command, cwd=ROOT, env=demo_env(data_dir), capture_output=True, text=True, timeout=300
    )
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    count = len(list((ROOT / "examples" / "records").glob("*.xml")))
    assert f"  {count} queued" in first.stdout
    assert f"  {count} inserted; 0 dead-lettered" in first.stdout
    assert "the notice reached 14 of 14 nodes below the centre" in first.stdout
    again = subprocess.run(
        command, cwd=ROOT, env=demo_env(data_dir), capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"  {count} unchanged" in again.stdout and "nothing new" in again.stdout


def test_demo_serves_overview_records_and_feeds_then_stops_on_sigterm(data_dir: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "demo", "--port", "0"],
        cwd=ROOT,
        env=demo_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = None
        deadline = time.monotonic() + 240
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            found = re.search(r"== 6\. Serving on (http://\S+)/", line)
            url = found.group(1) if found else None
        assert url, "the demo never said where it serves"
        overview = urllib.request.urlopen(f"{url}/", timeout=10).read().decode()
        assert "涉县人民政府" in overview
        assert "inbox.atom" not in overview, "operators' addresses are not on citizens' pages"
        stored = json.loads(
            urllib.request.urlopen(f"{url}/records.json?scope=cn.gd", timeout=10).read()
        )
        assert stored and all(r["path"].startswith("cn.gd") for r in stored)
        feed = feedparser.parse(
            urllib.request.urlopen(f"{url}/nodes/shexian/inbox.atom", timeout=10).read()
        )
        assert not feed.bozo
        assert any("防汛四级应急响应" in entry.title for entry in feed.entries)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
