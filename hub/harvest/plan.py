"""Start-up: every source of a node checked before the first harvest.

``plan_sources`` checks each ``[[node.sources]]`` table (adapter installed,
govhub's scheduling keys, the adapter's settings) and reports every problem of
every source at once, so an operator fixes ``nodes.toml`` in one pass. A
``Planned`` source is what the harvester (``hub.harvest.harvester``) reads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from adapters.contract import Adapter
from adapters.registry import Registry
from adapters.settings import read_settings
from hub.errors import ConfigInvalid, Problem
from hub.federation import Node, Source
from hub.harvest.schedule import Plan, split_plan


@dataclass(frozen=True, slots=True)
class Planned:
    """A configured source, checked: its adapter class, its settings, its schedule."""

    node: Node
    source: Source  # without govhub's scheduling keys
    adapter: type[Adapter]
    settings: Any  # the adapter's own Settings dataclass, checked
    plan: Plan

    @property
    def name(self) -> str:
        return self.source.name


def plan_sources(node: Node, adapters: Registry, where: str) -> list[Planned]:
    """Every source of ``node``, checked; one ``ConfigInvalid`` with every problem of every source.

    ``AdapterConflict`` (two packages claiming one adapter name) comes from the registry.
    """
    problems: list[Problem] = []
    planned: list[Planned] = []
    for source in node.sources:
        plan, bare, found = split_plan(source, node, where)
        problems.extend(found)
        line = source.line or node.line
        try:
            adapter = adapters.load(source.adapter, where=where, line=line)
        except ConfigInvalid as exc:
            label = f"node[{node.id}].sources[{source.name}].adapter"
            problems.extend(dataclasses.replace(p, field=label) for p in exc.problems)
            continue
        try:
            settings = read_settings(adapter.Settings, bare, node, where)  # type: ignore[attr-defined]
        except ConfigInvalid as exc:
            problems.extend(exc.problems)
            continue
        planned.append(Planned(node, bare, adapter, settings, plan))
    if problems:
        raise ConfigInvalid(problems)
    return planned
