"""Reading ``nodes.toml``: one flow from text to a checked ``Federation``."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from hub.errors import ConfigInvalid, Problem
from hub.federation.graph import Entry, check_graph, with_paths
from hub.federation.locate import locate_keys
from hub.federation.model import Federation
from hub.federation.nodes import node_label, read_node
from hub.federation.report import Report, Scope, toml_type

_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")
_ELSEWHERE = "pass another file with --config PATH or set GOVHUB_CONFIG"


def parse_federation(text: str, where: str = "nodes.toml") -> Federation:
    """The federation described by ``text``; ``ConfigInvalid`` lists every problem.

    ``where`` names the text in messages (``nodes.toml:42: node[gz].parent: ...``).
    """
    data = _read_toml(text, where)
    report = Report(where, locate_keys(text))
    entries = [_read_entry(report, index, table) for index, table in _node_tables(data, report)]
    check_graph(entries, report)
    report.raise_if_any()
    return Federation._build(with_paths([entry.node for entry in entries]), where)


def load_federation(path: str | os.PathLike[str]) -> Federation:
    """The federation in the file at ``path`` (UTF-8 TOML)."""
    where = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        problem = Problem(where, None, "file", "not found", f"a federation map; {_ELSEWHERE}")
        raise ConfigInvalid([problem]) from None
    except (OSError, UnicodeDecodeError) as error:
        problem = Problem(where, None, "file", f"cannot be read: {error}", _ELSEWHERE)
        raise ConfigInvalid([problem]) from None
    return parse_federation(text, where)


def _read_entry(report: Report, index: int, table: dict[str, Any]) -> Entry:
    scope = Scope(report, index, node_label(table, index))
    return Entry(scope, read_node(scope, table))


def _read_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        position = _TOML_POSITION.search(str(error))
        line = int(position.group(1)) if position else None
        problem = Problem(where, line, "toml", str(error), "valid TOML, see https://toml.io")
        raise ConfigInvalid([problem]) from None


def _node_tables(data: dict[str, Any], report: Report) -> list[tuple[int, dict[str, Any]]]:
    """The ``[[node]]`` tables with their positions; anything else at the top is reported."""
    for key in data:
        if key != "node":
            report.add((key,), key, "unknown top-level key", "only [[node]] tables")
    tables = data.get("node", [])
    if not isinstance(tables, list):
        report.add(("node",), "node", f"must be [[node]] tables, not {toml_type(tables)}")
        return []
    if not tables:
        report.add((), "node", "the map has no [[node]] tables", "one [[node]] table per site")
    for index, table in enumerate(tables):
        if not isinstance(table, dict):
            report.add(("node", index), f"node[#{index + 1}]", f"is {toml_type(table)}", "a table")
    return [(index, table) for index, table in enumerate(tables) if isinstance(table, dict)]
