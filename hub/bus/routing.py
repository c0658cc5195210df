"""Routing keys and bindings, built from node paths (docs/routing.md).

The grammar, in full::

    key   = direction "." path "." "_" "." kind
    direction = "up" | "down"          (also the name of the exchange the key is used on)
    path  = id *("." id)               (the node's path, root first: cn.gd.gz)
    id    = [a-z][a-z0-9-]*            (a node id; never "_")
    kind  = a record kind              (document, notice, ...)

``up.cn.gd.gz._.document`` is a document that node ``cn.gd.gz`` publishes;
``down.cn.gd._.notice`` is a notice that portal ``cn.gd`` pushes to its subtree.
The ``_`` marker ends the path. No node id can be ``_``, so a reader (or a
binding, or a permission regex) always knows where the path stops, even when a
node's id is also a kind word (a node called ``news``) and even if more words
are added after the kind later. The topic class (主题分类) is not in the key:
it is Chinese text and optional, so it travels in the ``x-govhub-topic``
header and consumers filter on it (``wanted_by``).

Everything here is pure: strings in, strings out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hub.federation import KINDS, Federation, Subscription

UP = "up"
DOWN = "down"
DIRECTIONS = (UP, DOWN)
MARKER = "_"
TOPIC_HEADER = "x-govhub-topic"

_ID = re.compile(r"[a-z][a-z0-9-]*")

Binding = tuple[str, str]
"""(exchange, binding key), e.g. ``("up", "up.cn.gd.#")``."""


@dataclass(frozen=True, slots=True)
class Route:
    """A routing key taken apart: ``up.cn.gd.gz._.document`` → up, cn.gd.gz, document."""

    direction: str
    path: str
    kind: str


def up_key(path: str, kind: str) -> str:
    """The key for a record of ``kind`` that the node at ``path`` publishes upward."""
    return _key(UP, path, kind)


def down_key(path: str, kind: str) -> str:
    """The key for a record of ``kind`` that the portal at ``path`` pushes to its subtree."""
    return _key(DOWN, path, kind)


def parse_key(key: str) -> Route:
    """Take a routing key apart; ``ValueError`` if it does not follow the grammar."""
    direction, _, rest = key.partition(".")
    path, marker, kind = rest.rpartition(f".{MARKER}.")
    if direction not in DIRECTIONS or not marker:
        raise ValueError(f"{key!r} is not a govhub routing key (expected e.g. up.cn.gd._.notice)")
    _check_path(path)
    _check_kind(kind)
    return Route(direction, path, kind)


def subtree_binding(path: str) -> str:
    """The binding key on ``up`` that receives everything the subtree at ``path`` publishes.

    Topic matching is word by word, so ``up.cn.gd.#`` takes ``cn.gd`` itself and
    everything below it, but never ``cn.gdx``. The root's binding takes everything.
    """
    _check_path(path)
    return f"{UP}.{path}.#"


def push_binding(path: str) -> str:
    """The binding key on ``down`` that receives every push from the portal at ``path``."""
    _check_path(path)
    return f"{DOWN}.{path}.{MARKER}.*"


def ancestor_bindings(
    federation: Federation, node_id: str, subscriptions: Iterable[Subscription]
) -> tuple[Binding, ...]:
    """What node ``node_id`` takes from above: pushes and subscriptions.

    Every push of every ancestor (``down.<ancestor>._.*``), and, for each
    subscription, the subscribed kinds that the ancestor itself publishes
    (``up.<ancestor>._.<kind>`` on the up exchange: a record is published
    once and every interested node binds to it). Topics are not in the key;
    ``wanted_by`` applies them. Duplicates are dropped, order kept.
    """
    ancestors = {node.id: node for node in federation.ancestors(node_id)}
    bindings = [(DOWN, push_binding(node.path)) for node in ancestors.values()]
    for subscription in subscriptions:
        if subscription.from_id not in ancestors:
            raise ValueError(f"{subscription.from_id!r} is not an ancestor of {node_id!r}")
        path = ancestors[subscription.from_id].path
        bindings.extend((UP, up_key(path, kind)) for kind in subscription.kinds)
    return tuple(dict.fromkeys(bindings))


def wanted_by(federation: Federation, node_id: str, key: str, topic: str | None) -> bool:
    """Whether node ``node_id`` keeps a message with routing ``key`` and topic class ``topic``.

    Pushes from an ancestor and records from the node's own subtree are always
    kept; a record an ancestor published is kept when one of the node's
    subscriptions names that ancestor, its kind, and (if it lists topics) its topic.
    """
    node = federation.node(node_id)
    route = parse_key(key)
    if route.direction == DOWN or _in_subtree(route.path, node.path):
        return True
    return any(
        federation.node(subscription.from_id).path == route.path
        and route.kind in subscription.kinds
        and (not subscription.topics or topic in subscription.topics)
        for subscription in node.subscriptions
    )


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more words."""
    return _match(pattern.split("."), key.split("."))


def _match(pattern: Sequence[str], words: Sequence[str]) -> bool:
    # Positions in ``words`` that the pattern read so far can end at.
    ends = {0}
    for part in pattern:
        if part == "#":
            ends = set(range(min(ends), len(words) + 1)) if ends else set()
        else:
            ends = {i + 1 for i in ends if i < len(words) and part in ("*", words[i])}
        if not ends:
            return False
    return len(words) in ends


def _key(direction: str, path: str, kind: str) -> str:
    _check_path(path)
    _check_kind(kind)
    return f"{direction}.{path}.{MARKER}.{kind}"


def _check_path(path: str) -> None:
    if not all(_ID.fullmatch(word) for word in path.split(".")):
        raise ValueError(
            f"{path!r} is not a node path (expected ids joined by dots, e.g. cn.gd.gz)"
        )


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"{kind!r} is not a record kind (expected one of {', '.join(KINDS)})")


def _in_subtree(path: str, root: str) -> bool:
    return path == root or path.startswith(root + ".")
