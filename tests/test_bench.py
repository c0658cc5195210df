"""The benchmarks that need no services run to their report.

Their figures are not checked (a benchmark is not a test, and a timing is
never asserted): this only keeps them from rotting between the runs that
produce bench/README.md's figures. The others need PostgreSQL, RabbitMQ, wrk or
newsboat and minutes of machine time; they run by hand (``./dev bench NAME``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("name", "report"),
    [
        ("validate", "verdict: govhub validates"),
        ("review", "verdict: 10,000 terms cost"),
        ("feeds", "results: equal entry by entry on both feeds"),
    ],
)
def test_a_quick_run_reaches_its_report(name: str, report: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", name, "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert report in done.stdout, done.stdout
