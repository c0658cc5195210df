"""Finding adapters by name: the ``govhub.adapters`` entry-point group.

The built-in adapters are registered in govhub's own ``pyproject.toml`` under
the same group, so a third-party package installed with pip is found the same
way and needs no change to govhub::

    [project.entry-points."govhub.adapters"]
    cms-export = "acme_govhub.export:ExportAdapter"

Two adapters that claim one name stop start-up with an error naming both.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from hub.errors import ConfigInvalid, HubError, Problem

GROUP = "govhub.adapters"


class AdapterConflict(HubError):
    """Two installed packages register an adapter under the same name."""


@dataclass(frozen=True, slots=True)
class Registry:
    """Installed adapters by name (loaded on first use)."""

    points: Mapping[str, EntryPoint]

    def names(self) -> list[str]:
        return sorted(self.points)

    def load(self, name: str, *, where: str = "nodes.toml", line: int | None = None) -> type:
        """The adapter class called ``name``; ``ConfigInvalid`` with close names if unknown."""
        point = self.points.get(name)
        if point is None:
            close = difflib.get_close_matches(name, self.points, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            expected = "one of " + ", ".join(self.names())
            message = f"no adapter called {name!r} is installed{hint}"
            raise ConfigInvalid([Problem(where, line, "adapter", message, expected)])
        adapter = point.load()
        if getattr(adapter, "name", None) != name:
            raise AdapterConflict(
                f"entry point {point.value} registers {name!r} but its class says "
                f"name = {getattr(adapter, 'name', None)!r}; make them equal"
            )
        return adapter


def registry(points: Iterable[EntryPoint] | None = None) -> Registry:
    """The installed adapters; ``AdapterConflict`` when two claim one name."""
    found: dict[str, EntryPoint] = {}
    clashes: list[str] = []
    for point in entry_points(group=GROUP) if points is None else points:
        other = found.get(point.name)
        if other is not None and other.value != point.value:
            owner = point.dist.name if point.dist else "?"
            first = other.dist.name if other.dist else "?"
            clashes.append(
                f"adapter {point.name!r} is registered twice: {other.value} (package {first}) "
                f"and {point.value} (package {owner}); uninstall one or rename its entry point"
            )
        found[point.name] = point
    if clashes:
        raise AdapterConflict("\n".join(clashes))
    return Registry(found)
