"""The federation map as the rest of govhub sees it: nodes and how they nest."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NoReturn

from hub.errors import ConfigInvalid, Problem
from hub.federation.tree import render_rows


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Source:
    """A legacy system a node reads records from; ``settings`` go to its adapter."""

    name: str
    adapter: str
    settings: Mapping[str, Any] = field(default_factory=_empty, hash=False)
    line: int = 0


@dataclass(frozen=True, slots=True)
class Subscription:
    """A downward subscription: records of ``kinds`` (and ``topics``) from an ancestor.

    An empty ``topics`` means every topic.
    """

    from_id: str
    kinds: tuple[str, ...]
    topics: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True)
class Node:
    """One government website in the federation.

    ``credentials`` maps a credential name to the environment variable that holds
    it; the values themselves are read only by the node, at run time, through
    ``resolve_credentials``. ``path`` is the dotted chain of ids from the root
    (``cn.gd.gz``) and ``line`` the line of the node's ``[[node]]`` header.
    ``icp`` and ``police_filing`` are the site's ICP and 公安 filing numbers, which
    its page footers show; ``None`` where the map does not give them.
    """

    id: str
    name: str
    level: str
    parent: str | None
    site_code: str
    domain: str
    icp: str | None = None
    police_filing: str | None = None
    languages: tuple[str, ...] = ("zh-Hans",)
    sources: tuple[Source, ...] = ()
    credentials: Mapping[str, str] = field(default_factory=_empty, hash=False)
    subscriptions: tuple[Subscription, ...] = ()
    path: str = ""
    line: int = 0

    def resolve_credentials(self, environ: Mapping[str, str]) -> dict[str, str]:
        """This node's credentials read from ``environ`` (usually ``os.environ``).

        Raises ``ConfigInvalid`` naming every credential whose variable is unset
        or empty.
        """
        missing = [
            Problem(
                "environment",
                None,
                f"node[{self.id}].credentials.{key}",
                f"{variable} is not set",
                f"{variable} set, non-empty, in the environment of node {self.id}",
            )
            for key, variable in self.credentials.items()
            if not environ.get(variable)
        ]
        if missing:
            raise ConfigInvalid(missing)
        return {key: environ[variable] for key, variable in self.credentials.items()}


class UnknownNode(ConfigInvalid, KeyError):
    """An id or path that names no node; a ``KeyError`` as well as a ``ConfigInvalid``."""

    def __init__(self, where: str, field: str, wanted: str, known: Iterable[str]) -> None:
        close = difflib.get_close_matches(wanted, list(known), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        super().__init__([Problem(where, None, field, f"{wanted!r} is not in the map{hint}")])

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


class Federation:
    """The checked federation map, immutable.

    Built only by ``parse_federation`` or ``load_federation``, which guarantee a
    single central root, known parents, no cycles, levels that nest, and unique
    ids, site codes and domains.
    """

    __slots__ = ("_by_path", "_children", "_nodes", "_root", "_where")

    _nodes: Mapping[str, Node]
    _children: Mapping[str, tuple[Node, ...]]
    _by_path: Mapping[str, Node]
    _root: Node
    _where: str

    def __init__(self) -> None:
        raise TypeError("build a Federation with parse_federation() or load_federation()")

    @classmethod
    def _build(cls, nodes: Iterable[Node], where: str) -> Federation:
        """Wrap nodes that have already passed every check (file order kept)."""
        self = object.__new__(cls)
        by_id = {node.id: node for node in nodes}
        children: dict[str, list[Node]] = {node_id: [] for node_id in by_id}
        for node in by_id.values():
            if node.parent is not None:
                children[node.parent].append(node)
        set_slot = object.__setattr__
        set_slot(self, "_nodes", MappingProxyType(by_id))
        set_slot(self, "_children", MappingProxyType({k: tuple(v) for k, v in children.items()}))
        set_slot(self, "_by_path", MappingProxyType({n.path: n for n in by_id.values()}))
        set_slot(self, "_root", next(n for n in by_id.values() if n.parent is None))
        set_slot(self, "_where", where)
        return self

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("a Federation is immutable")

    def __repr__(self) -> str:
        return f"<Federation of {len(self._nodes)} nodes from {self._where}>"

    @property
    def nodes(self) -> Mapping[str, Node]:
        """Every node by id, in file order."""
        return self._nodes

    @property
    def where(self) -> str:
        """The file (or other label) the map was read from, as messages name it."""
        return self._where

    @property
    def root(self) -> Node:
        """The central node."""
        return self._root

    def node(self, node_id: str) -> Node:
        """The node with ``node_id``; ``UnknownNode`` suggests close ids otherwise."""
        try:
            return self._nodes[node_id]
        except KeyError:
            raise UnknownNode(self._where, f"node[{node_id}]", node_id, self._nodes) from None

    def by_path(self, path: str) -> Node:
        """The node at a dotted ``path`` such as ``cn.gd.gz``."""
        try:
            return self._by_path[path]
        except KeyError:
            raise UnknownNode(self._where, f"path[{path}]", path, self._by_path) from None

    def children(self, node_id: str) -> tuple[Node, ...]:
        """The direct children of a node, in file order."""
        return self._children[self.node(node_id).id]

    def ancestors(self, node_id: str) -> tuple[Node, ...]:
        """The parent chain of a node, nearest first, ending at the root."""
        chain: list[Node] = []
        parent = self.node(node_id).parent
        while parent is not None:
            chain.append(self._nodes[parent])
            parent = chain[-1].parent
        return tuple(chain)

    def subtree(self, node_id: str) -> tuple[Node, ...]:
        """The node and all its descendants, depth first, in file order."""
        return tuple(self._walk(self.node(node_id)))

    def is_in_subtree(self, node_id: str, ancestor_id: str) -> bool:
        """Whether ``node_id`` is ``ancestor_id`` or one of its descendants."""
        node, ancestor = self.node(node_id), self.node(ancestor_id)
        return node.path == ancestor.path or node.path.startswith(ancestor.path + ".")

    def render_tree(self) -> str:
        """The map as a tree, one node per line: id, name, level, site code, domain, path."""
        rows = [
            (branch + node.id, node.name, node.level, node.site_code, node.domain, f"({node.path})")
            for branch, node in self._branches(self._root, "", "")
        ]
        return render_rows(rows)

    def _walk(self, node: Node) -> Iterator[Node]:
        yield node
        for child in self._children[node.id]:
            yield from self._walk(child)

    def _branches(self, node: Node, lead: str, indent: str) -> Iterator[tuple[str, Node]]:
        """Pairs of (connector prefix, node) for ``render_tree``."""
        yield lead, node
        children = self._children[node.id]
        for position, child in enumerate(children):
            last = position == len(children) - 1
            yield from self._branches(
                child,
                indent + ("└── " if last else "├── "),
                indent + ("    " if last else "│   "),
            )
