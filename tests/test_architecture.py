"""The layout keeps its promises: docs/architecture.md's import rules hold in the code.

The rules are read from the table in docs/architecture.md (package, what it holds,
what it may import), so the page and this test cannot drift apart. The imports are
read from the source with ``ast``: nothing is imported to check it.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOPS = ("hub", "adapters")
DOC = ROOT / "docs" / "architecture.md"
MAX_LINES = 400

# Imports between packages the rules forbid but the code still has, each with
# the reason and who removes it. The test fails once an exception is no longer
# needed, so that it is deleted here (and from docs/architecture.md) too.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}

# Modules of one package that import each other in a cycle, with the reason.
CYCLES_ALLOWED: dict[frozenset[str], str] = {
    frozenset({"hub.records.model", "hub.records.encode"}): (
        "one concept: Record.to_bytes, to_canonical and to_bytes_and_hash are the "
        "encoder's front door, imported inside the methods"
    ),
    frozenset({"hub.harvest.harvester", "hub.harvest.loop"}): (
        "known exception: loop names the Harvester type (under TYPE_CHECKING) that "
        "runs it; hub/harvest is being reworked, so the loop should take a protocol "
        "or the harvester's bound method instead"
    ),
}


@dataclass(frozen=True, slots=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported module (a module of hub/ or adapters/), dotted
    line: int


@cache
def modules() -> dict[str, Path]:
    """Every module of hub/ and adapters/ by dotted name (a package by its own name)."""
    found = {}
    for top in TOPS:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def package_of_module(name: str) -> str:
    """The package a module's relative imports start from."""
    return name if modules()[name].name == "__init__.py" else name.rpartition(".")[0]


def known(name: str) -> str | None:
    """The module ``name`` names, or the nearest package holding it; None if not ours."""
    while name:
        if name in modules():
            return name
        name = name.rpartition(".")[0]
    return None


def imported_names(module: str, node: ast.Import | ast.ImportFrom) -> Iterable[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = package_of_module(module).split(".")
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    for alias in node.names:
        # ``from hub import records`` imports the module hub.records
        full = f"{base}.{alias.name}"
        yield full if full in modules() else base


@cache
def imports() -> tuple[Import, ...]:
    """Every import of one of our modules, anywhere in a module (functions and
    ``if TYPE_CHECKING:`` blocks too: a type is a dependency)."""
    found = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in imported_names(name, node):
                    resolved = known(target)
                    if resolved is not None and resolved != name:
                        found.append(Import(name, resolved, node.lineno))
    return tuple(found)


def package(module: str) -> str:
    """The package a module belongs to for the rules: ``hub.store.search.index`` →
    ``hub.store``; a module directly under hub/ or adapters/ is a package of its own."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def package_imports() -> dict[tuple[str, str], list[Import]]:
    found: dict[tuple[str, str], list[Import]] = defaultdict(list)
    for imp in imports():
        a, b = package(imp.source), package(imp.target)
        if a != b and a not in TOPS and b not in TOPS:
            found[a, b].append(imp)
    return found


def where(imp: Import) -> str:
    return f"{modules()[imp.source].relative_to(ROOT)}:{imp.line} imports {imp.target}"


@cache
def rules() -> dict[str, frozenset[str] | None]:
    """docs/architecture.md's table: package → what it may import (None: any)."""
    table: dict[str, frozenset[str] | None] = {}
    row = re.compile(r"^\|\s*`([\w.]+)`\s*\|[^|]*\|([^|]*)\|\s*$")
    for number, text in enumerate(DOC.read_text(encoding="utf-8").splitlines(), 1):
        match = row.match(text)
        if not match:
            continue
        name, allowed = match.group(1), match.group(2).strip()
        assert name not in table, f"docs/architecture.md:{number}: {name} has two rows"
        if allowed == "any":
            table[name] = None
        elif allowed == "none":
            table[name] = frozenset()
        else:
            names = re.findall(r"`([\w.]+)`", allowed)
            assert names, (
                f"docs/architecture.md:{number}: the 'may import' cell of {name} should "
                "list packages in backquotes, or say none or any"
            )
            table[name] = frozenset(names)
    assert table, "docs/architecture.md has no package table"
    return table


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[set[str]]:
    """The cycles of ``graph``: its strongly connected parts of more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graphs are a few hundred nodes deep at most
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            part = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                part.add(member)
                if member == node:
                    break
            if len(part) > 1:
                found.append(part)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_reader_sees_every_form_of_import() -> None:
    seen = {(imp.source, imp.target) for imp in imports()}
    # from hub import records (a module named in the import list)
    assert ("adapters.folder", "hub.records") in seen
    # a module by its dotted path, and a name from a package's __init__
    assert ("hub.store.feed_log.log", "hub.store.connection") in seen
    assert ("adapters.sql", "adapters.contract") in seen
    # inside a method
    assert ("hub.records.model", "hub.records.encode") in seen
    # under if TYPE_CHECKING:
    assert ("adapters.contract", "adapters.kit.http") in seen


def test_the_table_names_every_package_and_only_those() -> None:
    in_code = {package(name) for name in modules()} - set(TOPS)
    in_doc = set(rules())
    assert not in_code - in_doc, (
        f"docs/architecture.md's table lacks {sorted(in_code - in_doc)}: add a row saying "
        "what each holds and what it may import"
    )
    assert not in_doc - in_code, (
        f"docs/architecture.md names packages that do not exist: {sorted(in_doc - in_code)}"
    )
    for name, allowed in rules().items():
        unknown = (allowed or frozenset()) - in_code
        assert not unknown, (
            f"docs/architecture.md: {name} may import {sorted(unknown)}, which do not exist"
        )


def test_the_rules_themselves_are_layered() -> None:
    """Every row allows only rows above it, so following the rules cannot make a cycle."""
    order = list(rules())
    for position, (name, allowed) in enumerate(rules().items()):
        later = sorted((allowed or frozenset(order[:position])) - set(order[:position]))
        assert not later, (
            f"docs/architecture.md: {name} may import {later}, which come later in the "
            "table; the table goes from the bottom of the order up"
        )


def test_no_import_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in package_imports():
        graph[a].add(b)
    cycles = strongly_connected(graph)
    details = [
        f"{sorted(cycle)}: "
        + "; ".join(
            where(imp)
            for (a, b), found in package_imports().items()
            if a in cycle and b in cycle
            for imp in found[:2]
        )
        for cycle in cycles
    ]
    assert not cycles, "import cycles between packages:\n" + "\n".join(details)


def test_modules_form_no_cycle_but_the_listed_ones() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in imports():
        graph[imp.source].add(imp.target)
    cycles = [frozenset(cycle) for cycle in strongly_connected(graph)]
    unlisted = [sorted(cycle) for cycle in cycles if cycle not in CYCLES_ALLOWED]
    assert not unlisted, (
        f"modules import each other in a cycle: {unlisted}; move what both need into "
        "a module below them, or, if they are one concept, list them in CYCLES_ALLOWED "
        "with the reason"
    )
    stale = [sorted(cycle) for cycle in CYCLES_ALLOWED if cycle not in cycles]
    assert not stale, f"these cycles are gone: delete them from CYCLES_ALLOWED: {stale}"


@pytest.mark.parametrize("name", sorted(rules()))
def test_each_package_imports_only_what_the_doc_allows(name: str) -> None:
    allowed = rules()[name]
    if allowed is None:
        return
    wrong = [
        where(imp)
        for (a, b), found in sorted(package_imports().items())
        if a == name and b not in allowed and (a, b) not in KNOWN_EXCEPTIONS
        for imp in found
    ]
    assert not wrong, (
        f"{name} may import only {sorted(allowed) or 'nothing of ours'} "
        f"(docs/architecture.md), but:\n" + "\n".join(wrong)
    )


def test_the_known_exceptions_are_still_needed() -> None:
    for (a, b), reason in KNOWN_EXCEPTIONS.items():
        assert (a, b) in package_imports(), (
            f"{a} no longer imports {b}: delete the exception from KNOWN_EXCEPTIONS "
            f"and docs/architecture.md ({reason})"
        )
        assert b not in (rules()[a] or frozenset()), f"{a} → {b} is allowed now; drop the exception"


def test_modules_stay_small() -> None:
    long = {
        str(path.relative_to(ROOT)): count
        for path in modules().values()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines, split them by concept: {long}"


def test_no_utils_module() -> None:
    catch_alls = [
        name for name in modules() if re.search(r"(^|\.)(utils?|helpers|misc|common_utils)$", name)
    ]
    assert not catch_alls, f"catch-all modules, name them for what they hold: {catch_alls}"


def test_no_three_modules_share_a_prefix_in_one_folder() -> None:
    """``harvest.py``, ``harvest_loop.py``, ``harvest_batch.py`` in one folder: a package."""
    by_prefix: dict[tuple[Path, str], list[str]] = defaultdict(list)
    for path in modules().values():
        if path.name != "__init__.py":
            by_prefix[path.parent, path.stem.split("_")[0]].append(path.name)
    crowded = {
        f"{folder.relative_to(ROOT)}/{prefix}*": sorted(names)
        for (folder, prefix), names in by_prefix.items()
        if len(names) >= 3
    }
    assert not crowded, f"make each of these a package: {crowded}"
