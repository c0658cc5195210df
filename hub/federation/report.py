"""Collecting every problem of a map, each with its file, line and field."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from hub.errors import ConfigInvalid, Problem
from hub.federation.locate import KeyPath, line_of


@dataclass
class Report:
    """The problems found so far in one file, located through its key lines."""

    where: str
    lines: dict[KeyPath, int]
    problems: list[Problem] = field(default_factory=list)

    def add(self, at: KeyPath, name: str, message: str, expected: str = "") -> None:
        line = line_of(self.lines, at) if at else None
        self.problems.append(Problem(self.where, line, name, message, expected))

    def line(self, at: KeyPath) -> int:
        return line_of(self.lines, at) or 0

    def raise_if_any(self) -> None:
        """Raise ``ConfigInvalid`` with every problem, in file order."""
        if self.problems:
            raise ConfigInvalid(sorted(self.problems, key=lambda p: p.line or 0))


@dataclass(frozen=True)
class Scope:
    """One ``[[node]]`` table of the file: the ``index``-th, called ``label``."""

    report: Report
    index: int
    label: str

    def at(self, *keys: str | int) -> KeyPath:
        return ("node", self.index, *keys)

    def name(self, *keys: str | int) -> str:
        parts = (f"[{key}]" if isinstance(key, int) else f".{key}" for key in keys)
        return f"node[{self.label}]" + "".join(parts)

    def problem(self, keys: KeyPath, message: str, expected: str = "") -> None:
        self.report.add(self.at(*keys), self.name(*keys), message, expected)

    def line(self, *keys: str | int) -> int:
        return self.report.line(self.at(*keys))

    def mention(self, *keys: str | int) -> str:
        """The node and a line for messages about another node: ``node[gd] at line 15``."""
        return f"{self.name()} at line {self.line(*keys)}"


def toml_type(value: Any) -> str:
    """The TOML name of a parsed value's type, for messages."""
    names: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (list, "an array"),
        (dict, "a table"),
        (datetime.datetime, "a date-time"),
        (datetime.date, "a date"),
        (datetime.time, "a time"),
    ]
    return next((name for kind, name in names if isinstance(value, kind)), type(value).__name__)
