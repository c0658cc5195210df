"""Broker administration: read and write RabbitMQ definitions.

RabbitMQ describes everything ``setup_broker`` manages (vhosts, users with
password hashes, permissions, topic permissions, exchanges, queues, bindings)
as one JSON document, its *definitions*. An admin backend does two things:
export them, and import a set of them (additively). ``RabbitmqctlAdmin`` runs
``rabbitmqctl``; an HTTP backend would use ``GET`` and ``POST /api/definitions``
of the management plugin. Two calls per run instead of one per object: each
``rabbitmqctl`` call starts an Erlang VM (about a second).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from hub.bus.errors import BrokerAdminError

Definitions = dict[str, Any]


class BrokerAdmin(Protocol):
    def export_definitions(self) -> Definitions:
        """Every definition on the broker (all vhosts), as RabbitMQ's JSON document."""
        ...

    def import_definitions(self, definitions: Mapping[str, Any]) -> None:
        """Create or overwrite the objects in ``definitions``; leave every other one alone."""


class RabbitmqctlAdmin:
    """``BrokerAdmin`` through ``rabbitmqctl``, run as a subprocess (argument lists, no shell).

    It must run where it can reach the broker's Erlang node: on the broker's
    host, as root or the ``rabbitmq`` user (``node`` names another node).
    """

    def __init__(
        self, executable: str = "rabbitmqctl", *, node: str | None = None, timeout: float = 120.0
    ) -> None:
        self.executable = executable
        self.node = node
        self.timeout = timeout

    def export_definitions(self) -> Definitions:
        output = self.run(["export_definitions", "-", "--format", "json"])
        try:
            definitions = json.loads(output[output.index("{") :])
        except ValueError as exc:
            raise BrokerAdminError(
                command=f"{self.executable} export_definitions",
                reason=f"printed no JSON document: {_quote(output)}",
                fix="check the RabbitMQ version (3.8.2 or later exports definitions)",
            ) from exc
        if not isinstance(definitions, dict):
            raise BrokerAdminError(
                command=f"{self.executable} export_definitions",
                reason="printed JSON that is not an object",
                fix="check the RabbitMQ version",
            )
        return definitions

    def import_definitions(self, definitions: Mapping[str, Any]) -> None:
        self.run(["import_definitions", "--format", "json"], stdin=json.dumps(definitions))

    def run(self, arguments: Sequence[str], *, stdin: str | None = None) -> str:
        """Run ``rabbitmqctl -q ARGUMENTS``; its standard output, or ``BrokerAdminError``."""
        executable = shutil.which(self.executable)
        command = " ".join([self.executable, *arguments])
        if executable is None:
            raise BrokerAdminError(
                command=command,
                reason=f"{self.executable} is not installed or not on PATH",
                fix="run this on the broker's host, where RabbitMQ's CLI tools are, "
                "or give the path to rabbitmqctl",
            )
        node = ["-n", self.node] if self.node else []
        try:
            done = subprocess.run(  # noqa: S603 (an argument list, no shell)
                [executable, "-q", *node, *arguments],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerAdminError(
                command=command,
                reason=f"no answer within {self.timeout:g} s",
                fix="is the broker's node up? try rabbitmqctl status",
            ) from exc
        if done.returncode != 0:
            raise BrokerAdminError(
                command=command,
                reason=f"exit status {done.returncode}: {_quote(done.stderr or done.stdout)}",
                fix="run it as root or the rabbitmq user on the broker's host; "
                "rabbitmqctl status shows whether the node is up",
            )
        return done.stdout


def _quote(text: str, limit: int = 1500) -> str:
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit] + " …")


class HttpAdmin:
    """``BrokerAdmin`` through the management plugin's HTTP API (``/api/definitions``).

    For brokers that govhub cannot reach with rabbitmqctl (another host, a
    container): ``url`` is the management API's base, e.g. ``http://rabbitmq:15672``,
    with an administrator's user and password.
    """

    def __init__(self, url: str, user: str, password: str, *, timeout: float = 60.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise BrokerAdminError(
                command=f"management API at {url}",
                reason="the URL is not http(s)",
                fix="give the management API's base URL, e.g. http://rabbitmq:15672",
            )
        self.url = url.rstrip("/")
        self.timeout = timeout
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._auth = f"Basic {token}"

    def export_definitions(self) -> Definitions:
        definitions = json.loads(self._call("GET", None) or "{}")
        if not isinstance(definitions, dict):
            raise BrokerAdminError(
                command=f"GET {self.url}/api/definitions",
                reason="the answer is not a JSON object",
                fix="check that the URL is the management API's",
            )
        return definitions

    def import_definitions(self, definitions: Mapping[str, Any]) -> None:
        self._call("POST", json.dumps(definitions).encode())

    def _call(self, method: str, body: bytes | None) -> str:
        endpoint = f"{self.url}/api/definitions"
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked in __init__)
            endpoint,
            data=body,
            method=method,
            headers={"Authorization": self._auth, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                return str(answer.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise BrokerAdminError(
                command=f"{method} {endpoint}",
                reason=f"HTTP {exc.code}: {_quote(exc.read().decode('utf-8', 'replace'))}",
                fix="use an administrator's user and password (tag administrator)",
            ) from exc
        except OSError as exc:
            raise BrokerAdminError(
                command=f"{method} {endpoint}",
                reason=str(exc),
                fix="is the management plugin enabled (rabbitmq-plugins enable "
                "rabbitmq_management) and the URL right?",
            ) from exc
