"""RabbitMQ for integration tests: a vhost of their own, deleted afterwards.

Import the fixtures explicitly in a test module::

    from support.rabbitmq import amqp_url, rabbit_vhost  # noqa: F401

The vhost is made and removed with ``rabbitmqctl`` (on this host, as root or
the rabbitmq user); the guest user gets every right in it.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

from support.services import in_ci, require_service

HOST, PORT = "127.0.0.1", 5672


def rabbitmqctl(*arguments: str) -> str:
    """Run rabbitmqctl; fail the test with its stderr if it fails."""
    executable = shutil.which("rabbitmqctl")
    if executable is None:
        message = "rabbitmqctl is not on PATH: run the RabbitMQ tests on the broker's host"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run(
        [executable, "-q", *arguments], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"rabbitmqctl {' '.join(arguments)}: {done.stderr.strip() or done.stdout}")
    return done.stdout


def delete_users(prefix: str) -> None:
    """Delete every broker user whose name starts with ``prefix`` (users are not per vhost)."""
    names = [
        line.split("\t")[0]
        for line in rabbitmqctl("list_users", "--no-table-headers").splitlines()
        if line.startswith(prefix)
    ]
    with ThreadPoolExecutor(max_workers=16) as pool:  # each call starts an Erlang VM: ~1 s
        list(pool.map(lambda name: rabbitmqctl("delete_user", name), names))


def url_for(vhost: str, user: str, password: str) -> str:
    return f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{HOST}:{PORT}/{quote(vhost, safe='')}"


@pytest.fixture(scope="module")
def rabbit_vhost() -> Iterator[str]:
    """A vhost unique to this test module, with full rights for guest; deleted at the end."""
    require_service("RabbitMQ", HOST, PORT)
    vhost = f"govhub-test-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield vhost
    finally:
        rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(scope="module")
def amqp_url(rabbit_vhost: str) -> str:
    """``amqp://guest:guest@127.0.0.1:5672/<the test vhost>``."""
    return url_for(rabbit_vhost, "guest", "guest")
