"""What the broker holds for a federation: exchanges, each node's queues, users' rights.

Pure functions of the federation map; ``setup.setup_broker`` makes the broker
match them and ``AmqpBus.declare_queue`` declares queues with the same
arguments. See docs/routing.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hub.bus.routing import DOWN, MARKER, UP, Binding, ancestor_bindings, subtree_binding
from hub.federation import Federation

DEAD = "dead"
EXCHANGES = (UP, DOWN, DEAD)
"""Durable topic exchanges. ``dead`` takes dead letters, keyed by the queue they left."""

END = r"\z"
"""The end of a name in a permission regex (Erlang's re is PCRE).

Never ``$``: it also matches before a final newline, so ``^up$`` would grant
``up\n`` too (and ``^$``, RabbitMQ's own "nothing", a name ``\n``).
"""

NOTHING = rf"^{END}"
"""A permission regex that grants nothing: it matches only the empty name."""

_QUEUE = re.compile(r"[a-z0-9][a-z0-9_-]*(\.[a-z0-9_-]+)*")


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """Limits every govhub queue is declared with.

    ``delivery_limit``: a message returned to its queue more often than this
    (consumer crashes, ``requeue``) is dead-lettered as a poison message.
    ``max_length``: once a queue holds more ready messages than this, the broker
    refuses new ones (quorum queues take one past the limit, then refuse), so
    publishers get a ``PublishError`` instead of the broker running out of memory.
    """

    delivery_limit: int = 10
    max_length: int = 100_000


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue and the (exchange, binding key) pairs that feed it."""

    name: str
    bindings: tuple[Binding, ...]


@dataclass(frozen=True, slots=True)
class Permissions:
    """A user's resource permissions in the vhost: regexes over exchange and queue names."""

    configure: str
    write: str
    read: str


@dataclass(frozen=True, slots=True)
class TopicPermission:
    """A user's topic permission on one exchange: regexes over routing and binding keys."""

    exchange: str
    write: str
    read: str


def check_queue_name(name: str) -> None:
    """``ValueError`` unless ``name`` is dot-separated lowercase words (it is also a key)."""
    if not _QUEUE.fullmatch(name) or name.endswith(".dead"):
        raise ValueError(
            f"{name!r} is not a queue name (expected lowercase words joined by dots, "
            "not ending in .dead, e.g. gz.up)"
        )


def dead_queue(name: str) -> str:
    """The dead-letter queue of queue ``name``; the ``dead`` exchange routes to it by ``name``."""
    return f"{name}.dead"


def queue_arguments(name: str, limits: QueueLimits) -> dict[str, str | int]:
    """Arguments of a govhub queue: quorum, a delivery limit, dead letters to ``dead``."""
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": limits.delivery_limit,
        "x-dead-letter-exchange": DEAD,
        "x-dead-letter-routing-key": name,
        # Dead-lettering by the broker (delivery limit) is confirmed, not fire-and-forget;
        # RabbitMQ requires reject-publish overflow for that.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        "x-max-length": limits.max_length,
    }


def dead_queue_arguments(limits: QueueLimits) -> dict[str, str | int]:
    """Arguments of a dead-letter queue: quorum, bounded, no dead letters of its own."""
    return {
        "x-queue-type": "quorum",
        "x-overflow": "reject-publish",
        "x-max-length": limits.max_length,
    }


def up_queue(node_id: str) -> str:
    """The queue where a portal receives its subtree's records."""
    return f"{node_id}.{UP}"


def down_queue(node_id: str) -> str:
    """The queue where a node receives pushes and subscribed records from above."""
    return f"{node_id}.{DOWN}"


def is_portal(federation: Federation, node_id: str) -> bool:
    """A node with children: it receives its subtree and may push down to it."""
    return bool(federation.children(node_id))


def node_queues(federation: Federation, node_id: str) -> tuple[QueueSpec, ...]:
    """The queues of one node (dead-letter queues not listed: each queue has one).

    A portal, and the root, get ``<id>.up`` bound to their subtree; every node
    below the root gets ``<id>.down`` bound to its ancestors' pushes and to the
    records its subscriptions name.
    """
    node = federation.node(node_id)
    queues = []
    if is_portal(federation, node_id) or node.parent is None:
        queues.append(QueueSpec(up_queue(node.id), ((UP, subtree_binding(node.path)),)))
    if node.parent is not None:
        bindings = ancestor_bindings(federation, node.id, node.subscriptions)
        queues.append(QueueSpec(down_queue(node.id), bindings))
    return tuple(queues)


def broker_user(node_id: str, prefix: str = "") -> str:
    """The RabbitMQ user of a node: its id, after an optional prefix shared by the federation."""
    return f"{prefix}{node_id}"


def node_permissions(federation: Federation, node_id: str) -> Permissions:
    """Resource permissions: declare nothing, write to up (down if a portal) and dead, read
    only its own queues and their dead letters."""
    exchanges = [UP, DOWN, DEAD] if is_portal(federation, node_id) else [UP, DEAD]
    names = [q.name for q in node_queues(federation, node_id)]
    readable = [_literal(n) for name in names for n in (name, dead_queue(name))]
    return Permissions(
        configure=NOTHING,
        write=_one_of(exchanges),
        read=_one_of(readable),
    )


def node_topic_permissions(federation: Federation, node_id: str) -> tuple[TopicPermission, ...]:
    """Topic permissions: which routing keys the node may publish with, per exchange.

    ``up``: only its own path (``up.cn.gd.gz._.<kind>``, not a child's, not a
    parent's). ``down``: only a portal, only from its own path. ``dead``: only
    keyed by its own queues. Binding keys (``read``) are granted nowhere: nodes
    bind nothing, ``setup_broker`` does.
    """
    path = federation.node(node_id).path
    own = rf"{_literal(path)}\.{MARKER}\.[a-z]+{END}"
    queues = [_literal(q.name) for q in node_queues(federation, node_id)]
    down = rf"^{DOWN}\.{own}" if is_portal(federation, node_id) else NOTHING
    return (
        TopicPermission(UP, rf"^{UP}\.{own}", NOTHING),
        TopicPermission(DOWN, down, NOTHING),
        TopicPermission(DEAD, _one_of(queues), NOTHING),
    )


def _one_of(patterns: list[str]) -> str:
    """A permission regex matching a whole name that is one of ``patterns``."""
    return f"^({'|'.join(patterns)}){END}"


def _literal(name: str) -> str:
    """A queue name or path as a regex: ids are slugs, so only the dots need escaping."""
    return name.replace(".", r"\.")
