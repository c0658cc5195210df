"""tests/support/services.py: a RabbitMQ whose port answers but whose app is stopped is
one clear skip (a failure in CI) with the reason, not a dozen errors from a fixture."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from support.services import amqp_answers, require_service


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and closes them without a word, as a RabbitMQ node
    does after `rabbitmqctl stop_app`."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)  # so that the thread sees `stop` soon
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                conn.recv(8)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        server.close()
        thread.join(timeout=5)


def test_a_port_that_does_not_speak_amqp_is_no_broker(silent_port: int) -> None:
    assert not amqp_answers("127.0.0.1", silent_port)


def test_outside_ci_it_is_skipped_with_the_reason(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"app is stopped.*rabbitmqctl start_app"):
        require_service("RabbitMQ", "127.0.0.1", silent_port)


def test_in_ci_it_fails_with_the_reason(silent_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="does not answer AMQP"):
        require_service("RabbitMQ", "127.0.0.1", silent_port)
