"""The deployment files: docker-compose.yml passes `docker-compose config`, and needs its secrets."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support.services import in_ci

ROOT = Path(__file__).parent.parent


def example_environment() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {key: value for key, value in pairs}


@pytest.fixture
def compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        message = "docker-compose is not installed (Debian: apt-get install docker-compose)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return found


def run_config(compose: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GOVHUB_")}
    return subprocess.run(
        [compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        env=clean | environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compose_file_is_valid(compose: str) -> None:
    result = run_config(compose, example_environment())
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_run_without_secrets(compose: str) -> None:
    result = run_config(compose, {})
    assert result.returncode != 0
    assert "set it in .env" in result.stderr


def test_every_example_secret_is_used_and_every_used_one_is_listed() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    listed = set(example_environment())
    used = {part.split("${", 1)[1].split(":", 1)[0] for part in text.split("\n") if "${" in part}
    assert used == listed
