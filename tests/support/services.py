"""Access to the real services that integration tests use (PostgreSQL, RabbitMQ).

Policy: in CI (``CI=true``) a missing service fails the test; on a developer's
machine the test is skipped with a message that says how to start the service.
Each test run uses its own database schema or vhost, so runs never collide.
"""

from __future__ import annotations

import os
import socket
from typing import NoReturn

import pytest

AMQP_HEADER = b"AMQP\x00\x00\x09\x01"  # protocol 0-9-1; a running broker answers Connection.Start

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


def amqp_answers(host: str, port: int, timeout: float = 5.0) -> bool:
    """Whether an AMQP broker on ``host:port`` greets a client (Connection.Start).

    A RabbitMQ node whose app is stopped (``rabbitmqctl stop_app``) can still
    accept the TCP connection, then closes it without a word."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(AMQP_HEADER)
            frame = sock.recv(7)
    except OSError:
        return False
    return len(frame) == 7 and frame[0] == 1  # a method frame


def require_service(name: str, host: str, port: int) -> None:
    """Fail (in CI) or skip (elsewhere) unless ``name`` listens on ``host:port`` and,
    for RabbitMQ, its app answers the AMQP greeting."""
    if not reachable(host, port):
        unavailable(
            f"{name} is not reachable on {host}:{port}; start it with: {HOW_TO_START[name]}"
        )
    if name == "RabbitMQ" and not amqp_answers(host, port):
        unavailable(
            f"RabbitMQ accepts connections on {host}:{port} but does not answer AMQP: its app "
            "is stopped or still starting; start it with: rabbitmqctl start_app"
        )


def unavailable(message: str) -> NoReturn:
    """A service the test needs is missing: fail in CI, skip elsewhere, saying why."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)
