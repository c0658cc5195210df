"""``setup_broker``: make RabbitMQ hold what the federation needs, and say what changed.

One read of the broker's definitions, a comparison with what the federation
map asks for (topology.py), one import of whatever is missing or different,
then a re-read until the broker shows it. Running it again finds everything
and changes nothing. Objects the map no longer needs are reported, never
deleted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from hub.bus.broker.admin import BrokerAdmin, Definitions
from hub.bus.errors import BrokerAdminError, BrokerSetupError
from hub.bus.topology import (
    DEAD,
    EXCHANGES,
    QueueLimits,
    broker_user,
    dead_queue,
    dead_queue_arguments,
    node_permissions,
    node_queues,
    node_topic_permissions,
    queue_arguments,
)
from hub.errors import ConfigInvalid, Problem
from hub.federation import Federation, Node

BROKER_CREDENTIAL = "broker_password"
"""The credential in nodes.toml that holds a node's broker password."""

_HASHES = {
    "rabbit_password_hashing_sha256": hashlib.sha256,
    "rabbit_password_hashing_sha512": hashlib.sha512,
    "rabbit_password_hashing_md5": hashlib.md5,
}

Action = Literal["created", "updated", "found", "extra"]


@dataclass(frozen=True, slots=True)
class Change:
    """One object and what setup did with it (``extra``: on the broker, not in the map)."""

    action: Action
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.action:8} {self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class SetupReport:
    vhost: str
    changes: tuple[Change, ...]

    def count(self, action: Action) -> int:
        return sum(change.action == action for change in self.changes)

    @property
    def changed(self) -> bool:
        return any(change.action in ("created", "updated") for change in self.changes)

    def summary(self) -> str:
        counts = ", ".join(
            f"{self.count(action)} {action}" for action in ("created", "updated", "found", "extra")
        )
        return f"vhost {self.vhost}: {counts}"

    def __str__(self) -> str:
        return "\n".join([*(str(c) for c in self.changes if c.action != "found"), self.summary()])


@dataclass
class _Wanted:
    """One desired object: its definitions section, identity, and full definition."""

    section: str
    kind: str
    name: str
    definition: dict[str, Any]
    compare: tuple[str, ...]  # fields that must match; a mismatch is an update (or a conflict)
    mutable: bool = True  # False: RabbitMQ cannot change it in place (exchanges, queues)
    password: str | None = field(default=None, repr=False)


def setup_broker(
    federation: Federation,
    vhost: str,
    admin: BrokerAdmin,
    environ: Mapping[str, str],
    *,
    user_prefix: str = "",
    limits: QueueLimits | None = None,
    settle_timeout: float = 30.0,
) -> SetupReport:
    """Create the vhost, exchanges, every node's queues and bindings, and one user per node.

    Each node's password comes from the environment variable its
    ``broker_password`` credential names (``environ`` is usually ``os.environ``);
    every missing one is reported at once (``ConfigInvalid``), before the
    broker is touched. Users are named ``user_prefix + node id``. Queues or
    exchanges that exist with other arguments stop the run (``BrokerSetupError``)
    before anything changes.
    """
    passwords = _passwords(federation, environ)
    wanted = list(_wanted(federation, vhost, passwords, user_prefix, limits or QueueLimits()))
    current = _index(admin.export_definitions(), vhost)
    changes, todo, conflicts = _compare(wanted, current)
    if conflicts:
        raise BrokerSetupError(vhost=vhost, conflicts="\n".join(conflicts))
    if todo:
        admin.import_definitions(_definitions(todo))
        _wait_until_applied(admin, vhost, todo, settle_timeout)
    extra = _extra_bindings(wanted, current)
    return SetupReport(vhost, tuple(changes) + tuple(extra))


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A RabbitMQ password hash (``rabbit_password_hashing_sha256``): base64(salt + sha256)."""
    salt = salt if salt is not None else secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def password_matches(user: Mapping[str, Any], password: str) -> bool:
    """Whether an exported RabbitMQ user's hash is the hash of ``password``."""
    digest = _HASHES.get(str(user.get("hashing_algorithm")))
    try:
        raw = base64.b64decode(str(user.get("password_hash", "")), validate=True)
    except ValueError:
        return False
    if digest is None or len(raw) < 5:
        return False
    salt, expected = raw[:4], raw[4:]
    return hmac.compare_digest(digest(salt + password.encode()).digest(), expected)


def _passwords(federation: Federation, environ: Mapping[str, str]) -> dict[str, str]:
    passwords: dict[str, str] = {}
    problems: list[Problem] = []
    for node in federation.nodes.values():
        if BROKER_CREDENTIAL not in node.credentials:
            variable = f"GOVHUB_NODE_{node.id.upper().replace('-', '_')}_PASSWORD"
            problems.append(
                Problem(
                    federation.where,
                    node.line,
                    f"node[{node.id}].credentials.{BROKER_CREDENTIAL}",
                    "is missing: every node needs a broker user",
                    f'{BROKER_CREDENTIAL} = {{ env = "{variable}" }}',
                )
            )
            continue
        try:
            passwords[node.id] = node.resolve_credentials(environ)[BROKER_CREDENTIAL]
        except ConfigInvalid as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigInvalid(problems)
    return passwords


def _wanted(
    federation: Federation,
    vhost: str,
    passwords: Mapping[str, str],
    prefix: str,
    limits: QueueLimits,
) -> Iterator[_Wanted]:
    yield _Wanted("vhosts", "vhost", vhost, {"name": vhost}, ())
    for name in EXCHANGES:
        exchange = {"name": name, "vhost": vhost, "type": "topic", "durable": True}
        exchange |= {"auto_delete": False, "internal": False, "arguments": {}}
        compare = ("type", "durable", "auto_delete")  # exports leave out "internal"
        yield _Wanted("exchanges", "exchange", name, exchange, compare, mutable=False)
    for node in federation.nodes.values():
        yield from _node_wanted(federation, node, vhost, passwords[node.id], prefix, limits)


def _node_wanted(
    federation: Federation, node: Node, vhost: str, password: str, prefix: str, limits: QueueLimits
) -> Iterator[_Wanted]:
    user = broker_user(node.id, prefix)
    account = {"name": user, "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []}
    account["password_hash"] = hash_password(password)
    yield _Wanted("users", "user", user, account, ("tags",), password=password)
    rights = node_permissions(federation, node.id)
    permission = {"user": user, "vhost": vhost, "configure": rights.configure}
    permission |= {"write": rights.write, "read": rights.read}
    yield _Wanted("permissions", "permissions", user, permission, ("configure", "write", "read"))
    for topic in node_topic_permissions(federation, node.id):
        definition = {"user": user, "vhost": vhost, "exchange": topic.exchange}
        definition |= {"write": topic.write, "read": topic.read}
        name = f"{user} on {topic.exchange}"
        yield _Wanted("topic_permissions", "topic permissions", name, definition, ("write", "read"))
    for spec in node_queues(federation, node.id):
        queues = [
            (spec.name, queue_arguments(spec.name, limits)),
            (dead_queue(spec.name), dead_queue_arguments(limits)),
        ]
        for name, arguments in queues:
            queue = {"name": name, "vhost": vhost, "durable": True, "auto_delete": False}
            queue["arguments"] = arguments
            compare = ("durable", "auto_delete", "arguments")
            yield _Wanted("queues", "queue", name, queue, compare, mutable=False)
        for exchange, key in ((DEAD, spec.name), *spec.bindings):
            destination = dead_queue(spec.name) if exchange == DEAD else spec.name
            binding: dict[str, Any] = {"source": exchange, "vhost": vhost}
            binding |= {"destination": destination, "destination_type": "queue"}
            binding |= {"routing_key": key, "arguments": {}}
            name = f"{exchange} → {binding['destination']} by {key}"
            yield _Wanted("bindings", "binding", name, binding, ())


def _identity(section: str, definition: Mapping[str, Any]) -> tuple[str, ...]:
    fields = {
        "vhosts": ("name",),
        "users": ("name",),
        "permissions": ("user",),
        "topic_permissions": ("user", "exchange"),
        "exchanges": ("name",),
        "queues": ("name",),
        "bindings": ("source", "destination_type", "destination", "routing_key"),
    }[section]
    return (section, *(str(definition.get(f)) for f in fields))


def _index(definitions: Definitions, vhost: str) -> dict[tuple[str, ...], dict[str, Any]]:
    """The broker's definitions that concern ``vhost`` (and all users), by identity."""
    index = {}
    for section in ("vhosts", "users", "permissions", "topic_permissions"):
        for item in definitions.get(section) or []:
            if section in ("vhosts", "users") or item.get("vhost") == vhost:
                index[_identity(section, item)] = item
    for section in ("exchanges", "queues", "bindings"):
        for item in definitions.get(section) or []:
            if item.get("vhost") == vhost:
                index[_identity(section, item)] = item
    return index


def _differs(wanted: _Wanted, current: Mapping[str, Any]) -> list[str]:
    differ = [f for f in wanted.compare if current.get(f) != wanted.definition[f]]
    if wanted.password is not None and not password_matches(current, wanted.password):
        differ.append("password")
    return differ


def _compare(
    wanted: list[_Wanted], current: Mapping[tuple[str, ...], Mapping[str, Any]]
) -> tuple[list[Change], list[_Wanted], list[str]]:
    changes, todo, conflicts = [], [], []
    for item in wanted:
        existing = current.get(_identity(item.section, item.definition))
        if existing is None:
            changes.append(Change("created", item.kind, item.name))
            todo.append(item)
            continue
        differ = _differs(item, existing)
        if not differ:
            changes.append(Change("found", item.kind, item.name))
        elif item.mutable:
            changes.append(Change("updated", item.kind, item.name))
            todo.append(item)
        else:
            have = {f: existing.get(f) for f in differ}
            want = {f: item.definition[f] for f in differ}
            conflicts.append(
                f"  {item.kind} {item.name} exists with {have}, the federation needs {want} "
                f"(delete it, e.g. rabbitmqctl delete_queue -p VHOST {item.name}, after "
                "moving its messages, then run setup again)"
            )
    return changes, todo, conflicts


def _definitions(items: list[_Wanted]) -> Definitions:
    definitions: Definitions = {}
    for item in items:
        definitions.setdefault(item.section, []).append(item.definition)
    return definitions


def _wait_until_applied(
    admin: BrokerAdmin, vhost: str, items: list[_Wanted], timeout: float
) -> None:
    """Re-read the definitions until the broker shows every imported object (import is
    asynchronous in RabbitMQ 3.10)."""
    deadline = time.monotonic() + timeout
    while True:
        current = _index(admin.export_definitions(), vhost)
        pending = [
            item
            for item in items
            if (found := current.get(_identity(item.section, item.definition))) is None
            or _differs(item, found)
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(f"{item.kind} {item.name}" for item in pending[:5])
            raise BrokerAdminError(
                command="import_definitions",
                reason=f"after {timeout:g} s the broker still lacks {names}",
                fix="look for errors in the broker's log; then run setup again",
            )
        time.sleep(0.5)


def _extra_bindings(
    wanted: list[_Wanted], current: Mapping[tuple[str, ...], Mapping[str, Any]]
) -> Iterator[Change]:
    """Bindings into govhub's queues that the map no longer asks for (left in place)."""
    ours = {item.name for item in wanted if item.section == "queues"}
    expected = {_identity(item.section, item.definition) for item in wanted}
    for identity, binding in current.items():
        if identity[0] == "bindings" and identity not in expected and identity[3] in ours:
            name = f"{binding['source']} → {binding['destination']} by {binding['routing_key']}"
            yield Change("extra", "binding", name)
