"""Access to the real services that integration tests use (PostgreSQL, RabbitMQ).

Policy: in CI (``CI=true``) a missing service fails the test; on a developer's
machine the test is skipped with a message that says how to start the service.
Each test run uses its own database schema or vhost, so runs never collide.
"""

from __future__ import annotations

import os
import socket

import pytest

HOW_TO_START = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "RabbitMQ": "rabbitmq-server -detached",
    "MariaDB": "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Fail (in CI) or skip (elsewhere) unless ``name`` listens on ``host:port``."""
    if reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}; start it with: {HOW_TO_START[name]}"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)
