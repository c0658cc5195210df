"""Checks across nodes: unique values, one root, known parents, no cycles, nesting.

Works on nodes as read, where a bad value is a blank placeholder: a check skips
what it cannot judge, so each mistake is reported once.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from typing import NamedTuple

from hub.federation import rules
from hub.federation.model import Node
from hub.federation.report import Report, Scope


class Entry(NamedTuple):
    """A node as read, with the scope of its ``[[node]]`` table for locating problems."""

    scope: Scope
    node: Node


def check_graph(entries: Sequence[Entry], report: Report) -> None:
    """Report every problem between nodes."""
    for attribute in ("id", "site_code", "domain"):
        _check_unique(entries, attribute)
    by_id: dict[str, Entry] = {}
    for entry in entries:
        if entry.node.id:
            by_id.setdefault(entry.node.id, entry)
    _check_root(entries, report)
    for entry in entries:
        _check_parent(entry, by_id)
    if not _check_cycles(entries, by_id):
        for entry in entries:
            _check_subscriptions(entry, by_id)


def with_paths(nodes: Sequence[Node]) -> list[Node]:
    """The nodes with ``path`` filled in; only for a map that passed ``check_graph``."""
    by_id = {node.id: node for node in nodes}
    return [dataclasses.replace(node, path=".".join(_chain(node, by_id)[::-1])) for node in nodes]


def _chain(node: Node, by_id: dict[str, Node]) -> list[str]:
    """Ids from the node up to the root."""
    chain = [node.id]
    while node.parent is not None:
        node = by_id[node.parent]
        chain.append(node.id)
    return chain


def _check_unique(entries: Sequence[Entry], attribute: str) -> None:
    first: dict[str, Entry] = {}
    for entry in entries:
        value = getattr(entry.node, attribute)
        if not value:
            continue
        if value in first:
            earlier = first[value].scope
            entry.scope.problem(
                (attribute,),
                f"{value!r} is already used by {earlier.mention(attribute)}",
                f"each {attribute.replace('_', ' ')} used once in the map",
            )
        first.setdefault(value, entry)


def _check_root(entries: Sequence[Entry], report: Report) -> None:
    """Exactly one node of level central."""
    central = [entry.scope for entry in entries if entry.node.level == "central"]
    if entries and not central:
        report.add((), "node", 'no node has level = "central"', "exactly one central node")
    for scope in central[1:]:
        scope.problem(
            ("level",),
            f"a second central node; {central[0].mention()} is the root",
            "exactly one central node",
        )


def _check_parent(entry: Entry, by_id: dict[str, Entry]) -> None:
    """The parent exists and its level may hold this node's level."""
    child = entry.node
    if not child.parent or child.parent == child.id:  # own parent: a cycle, reported there
        return
    if child.parent not in by_id:
        close = difflib.get_close_matches(child.parent, list(by_id), n=3)
        expected = "the id of a node in this file" + (
            ", e.g. " + " or ".join(close) if close else ""
        )
        entry.scope.problem(("parent",), f"{child.parent!r} is not a node", expected)
        return
    parent = by_id[child.parent].node
    allowed = rules.PARENT_LEVELS.get(child.level)
    if allowed and parent.level in rules.LEVELS and parent.level not in allowed:
        entry.scope.problem(
            ("parent",),
            f"a {child.level} node cannot sit under {parent.id} ({parent.level})",
            "a parent of level " + " or ".join(allowed),
        )


def _check_cycles(entries: Sequence[Entry], by_id: dict[str, Entry]) -> bool:
    """Report each parent cycle once, named from its first node in the file."""
    done: set[str] = set()
    found = False
    for entry in entries:
        chain: list[str] = []
        current: str | None = entry.node.id
        while current in by_id and current not in done and current not in chain:
            chain.append(current)
            current = by_id[current].node.parent
        done.update(chain)
        if current in chain:
            found = True
            _report_cycle(chain[chain.index(current) :], by_id)
    return found


def _report_cycle(cycle: list[str], by_id: dict[str, Entry]) -> None:
    start = min(range(len(cycle)), key=lambda position: by_id[cycle[position]].scope.index)
    ordered = cycle[start:] + cycle[:start]
    by_id[ordered[0]].scope.problem(
        ("parent",),
        "parents form a cycle: " + " -> ".join([*ordered, ordered[0]]),
        "a parent chain that ends at the central node",
    )


def _check_subscriptions(entry: Entry, by_id: dict[str, Entry]) -> None:
    """Each subscription names an ancestor (the map is known to be acyclic here)."""
    ancestors: list[str] = []
    parent = entry.node.parent
    while parent and parent in by_id:
        ancestors.append(parent)
        parent = by_id[parent].node.parent
    for position, subscription in enumerate(entry.node.subscriptions):
        if subscription.from_id and subscription.from_id not in ancestors:
            entry.scope.problem(
                ("subscribe", position, "from"),
                f"{subscription.from_id!r} is not an ancestor of {entry.node.id}",
                "one of " + ", ".join(ancestors) if ancestors else "the id of an ancestor",
            )
