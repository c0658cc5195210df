"""The federation map: which government sites take part and how they nest.

``nodes.toml`` lists every node (one site each): the central portal, State
Council departments, provinces, municipalities and counties. ``load_federation``
reads and checks it, reporting every problem with its line, and returns an
immutable ``Federation`` that answers tree questions (children, ancestors,
subtree, paths). Paths such as ``cn.gd.gz`` become routing-key prefixes.
See docs/federation.md.
"""

from hub.federation.model import Federation, Node, Source, Subscription, UnknownNode
from hub.federation.parse import load_federation, parse_federation
from hub.federation.rules import KINDS, LANGUAGES, LEVELS, PARENT_LEVELS

__all__ = [
    "KINDS",
    "LANGUAGES",
    "LEVELS",
    "PARENT_LEVELS",
    "Federation",
    "Node",
    "Source",
    "Subscription",
    "UnknownNode",
    "load_federation",
    "parse_federation",
]
