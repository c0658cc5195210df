"""The benchmarks run to their report.

Their figures are not checked (a benchmark is not a test, and a timing is
never asserted): this only keeps them from rotting between the runs that
produce bench/README.md's figures. ``validate``, ``review`` and ``feeds`` need
no services and run with ``--quick``; ``pipeline`` runs at its smallest size
against the real PostgreSQL and RabbitMQ (a schema and a vhost of its own, its
hubs' portals on free ports). ``harvest``, ``feed_serve`` and ``search`` take
minutes of machine time, wrk or newsboat; they run by hand (``./dev bench NAME``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict
from support.postgres import BASE_URL
from support.rabbitmq import HOST, PORT, rabbitmqctl
from support.services import require_service

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


def test_the_pipeline_runs_against_the_real_services() -> None:
    """Every stage once (raw bus and COPY, one and two `govhub hub run` processes,
    latency, fan-out) at ``bench.pipeline.SMOKE`` size; each row of its tables has a figure."""
    database = conninfo_to_dict(BASE_URL)
    require_service(
        "PostgreSQL",
        str(database.get("host") or "127.0.0.1"),
        int(str(database.get("port") or 5432)),
    )
    require_service("RabbitMQ", HOST, PORT)
    rabbitmqctl("version")  # the benchmark sets its vhost and users up with rabbitmqctl
    done = subprocess.run(
        [sys.executable, "-c", "from bench import pipeline; pipeline.run(sizes=pipeline.SMOKE)"],
        cwd=ROOT,
        env=os.environ
        | {"GOVHUB_BENCH_DATABASE_URL": BASE_URL, "GOVHUB_BENCH_BROKER": f"{HOST}:{PORT}"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {
        "govhub: hub alone, draining the queue, 1 hub process",
        "govhub: hub alone, draining the queue, 2 hub processes",
        "govhub: outbox → relay (≤50/message) → hub, 1 hub process",
        "govhub: outbox → relay (≤50/message) → hub, 2 hub processes",
        "govhub: publish_many → hub, 50 records/message, 2 hub processes",
        "ceiling, 1 record/message (bus + COPY)",
        "50 records/s for 1 s, 1 hub process",
        "20 classic inboxes",
    }
    figures = {
        line.split("  ")[0]: line
        for line in done.stdout.splitlines()
        if re.search(r"\s\d[\d,]*(\s|%|$)", line)
    }
    assert rows <= figures.keys(), done.stdout
    assert "verdict: one hub process stores" in done.stdout, done.stdout
