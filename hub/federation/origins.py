"""Whose a record is: the checks that need the federation map.

``origin_problems`` is the one check for every place a record reaches a node's
side (the pipeline, the push endpoint, the hub's consumer, the node's inbox);
``federation_problems`` checks a record's origin against the whole map
(``govhub validate --config``).
"""

from __future__ import annotations

from hub.errors import Problem
from hub.federation.model import Federation, Node
from hub.records.model import Record


def origin_problems(
    record: Record,
    node: Node,
    where: str,
    *,
    came: str,
    kind: str | None = None,
    kind_came: str = "arrived under",
) -> list[Problem]:
    """Why ``record`` is not ``node``'s own (none: it is): its origin node, the kind its
    route names (``kind``, when it came by a route), its site code.

    One check for every place a record reaches a node's side: the pipeline (given
    to a node), the push endpoint, the hub's consumer and the node's inbox (by a
    routing key). ``came`` ends the message about the node, as each place puts
    it: ``"given to node 'gz'"``, ``"arrived under node 'gz''s key"``.
    """
    if record.origin.node != node.id:
        message = f"record of node {record.origin.node!r} {came}"
        return [Problem(where, None, "origin/@node", message, f"origin node {node.id!r}")]
    if kind is not None and record.kind != kind:
        message = f"record kind {record.kind!r} {kind_came} kind {kind!r}"
        return [Problem(where, None, "record/@kind", message, kind)]
    if record.origin.site != node.site_code:
        message = f"{record.origin.site!r} is not the site code of node {node.id!r}"
        return [Problem(where, None, "origin/@site", message, node.site_code)]
    return []


def federation_problems(record: Record, federation: Federation, where: str) -> list[Problem]:
    """Problems with the record's origin as the federation map sees it."""
    node = federation.nodes.get(record.origin.node)
    if node is None:
        known = ", ".join(sorted(federation.nodes))
        return [
            Problem(
                where,
                record.lines.get("origin"),
                "origin/@node",
                f"node {record.origin.node!r} is not in {federation.where}",
                f"one of {known}",
            )
        ]
    if node.site_code != record.origin.site:
        return [
            Problem(
                where,
                record.lines.get("origin"),
                "origin/@site",
                f"{record.origin.site!r} is not the site code of node {node.id!r}",
                f"{node.site_code}, as {federation.where} says",
            )
        ]
    return []
