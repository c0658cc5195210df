"""``govhub broker setup --management-url``: the same setup through the management HTTP API.

The management plugin is enabled for the test when the broker does not have it,
and disabled again afterwards, so the broker is left as it was found.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.rabbitmq import HOST, PORT, delete_users, rabbitmqctl
from support.services import reachable, require_service

from hub.bus import BrokerAdminError, HttpAdmin, setup_broker
from hub.federation import load_federation

FEDERATION = load_federation(Path(__file__).parent.parent / "nodes.toml")
MANAGEMENT = 15672


@pytest.fixture(scope="module")
def management_url() -> Iterator[str]:
    require_service("RabbitMQ", HOST, PORT)
    rabbitmqctl("ping")
    enabled_here = not reachable(HOST, MANAGEMENT)
    if enabled_here:
        subprocess.run(
            ["rabbitmq-plugins", "enable", "rabbitmq_management"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        deadline = time.monotonic() + 60
        while not reachable(HOST, MANAGEMENT) and time.monotonic() < deadline:
            time.sleep(0.5)
    try:
        yield f"http://{HOST}:{MANAGEMENT}"
    finally:
        if enabled_here:
            subprocess.run(
                ["rabbitmq-plugins", "disable", "rabbitmq_management"],
                check=True,
                capture_output=True,
                timeout=120,
            )


def test_setup_through_the_management_api_is_idempotent(management_url: str) -> None:
    run = uuid.uuid4().hex[:8]
    vhost, prefix = f"govhub-http-{run}", f"h{run}-"
    environ = {
        v: f"pw-{run}" for node in FEDERATION.nodes.values() for v in node.credentials.values()
    }
    admin = HttpAdmin(management_url, "guest", "guest")
    try:
        first = setup_broker(FEDERATION, vhost, admin, environ, user_prefix=prefix)
        assert first.count("created") > 0 and first.count("updated") == 0
        again = setup_broker(FEDERATION, vhost, admin, environ, user_prefix=prefix)
        assert again.count("created") == 0 and again.count("updated") == 0
        assert again.count("found") == first.count("created") + first.count("found")
        users = rabbitmqctl("list_users")
        assert f"{prefix}gz" in users and f"{prefix}cn" in users
    finally:
        rabbitmqctl("delete_vhost", vhost)
        delete_users(prefix)


def test_wrong_credentials_are_a_clear_error(management_url: str) -> None:
    with pytest.raises(BrokerAdminError, match="HTTP 401") as caught:
        HttpAdmin(management_url, "guest", "wrong").export_definitions()
    assert "administrator" in str(caught.value)
    with pytest.raises(BrokerAdminError, match="not http"):
        HttpAdmin("amqp://x", "u", "p")
