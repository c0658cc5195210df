"""Checking a source's settings in ``nodes.toml`` against its adapter's ``Settings``.

Every problem names the file, the line of the ``[[node.sources]]`` table, the
node, the source and the key, and says what would be right, e.g.::

    nodes.toml:78: node[gz].sources[portal-feed].url: missing (expected the feed's URL)

All problems of a source are reported at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

from hub.errors import ConfigInvalid, Problem
from hub.federation import Node, Source

_NAMES = {str: "text", int: "an integer", float: "a number", bool: "true or false"}


def read_settings(settings_type: type, source: Source, node: Node, where: str) -> Any:
    """An instance of ``settings_type`` (a dataclass) from ``source.settings``.

    Raises ``ConfigInvalid`` listing every missing, unknown or mistyped key.
    """
    fields = {f.name: f for f in dataclasses.fields(settings_type)}
    hints = typing.get_type_hints(settings_type)
    problems: list[Problem] = []

    def problem(key: str, message: str, expected: str) -> None:
        label = f"node[{node.id}].sources[{source.name}].{key}"
        problems.append(Problem(where, source.line or node.line, label, message, expected))

    values: dict[str, Any] = {}
    for key, value in source.settings.items():
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "not a setting of this adapter"
            known = ", ".join(sorted(fields)) or "no settings"
            problem(key, f"unknown key for adapter {source.adapter!r} ({hint})", known)
            continue
        wanted = hints[key]
        if not _fits(value, wanted):
            problem(key, f"{value!r} is not {describe(wanted)}", _help(fields[key], wanted))
            continue
        values[key] = tuple(value) if isinstance(value, list) else value
    for name, spec in fields.items():
        required = (
            spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
        )
        if required and name not in source.settings:
            problem(name, "missing", _help(spec, hints[name]))
    if problems:
        raise ConfigInvalid(problems)
    return settings_type(**values)


def describe(wanted: Any) -> str:
    """A type annotation in words: ``list[str]`` → ``a list of text``."""
    if wanted in _NAMES:
        return _NAMES[wanted]
    origin, args = typing.get_origin(wanted), typing.get_args(wanted)
    if origin in (list, tuple):
        return f"a list of {describe(args[0])}"
    if origin in (dict, Mapping):
        return f"a table of {describe(args[1])}"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in args if a is not type(None))
    return getattr(wanted, "__name__", str(wanted))


def _help(spec: dataclasses.Field[Any], wanted: Any) -> str:
    return str(spec.metadata.get("help") or describe(wanted))


def _fits(value: Any, wanted: Any) -> bool:
    if wanted is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if wanted is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if wanted in (str, bool):
        return isinstance(value, wanted)
    origin, args = typing.get_origin(wanted), typing.get_args(wanted)
    if origin in (list, tuple):
        return isinstance(value, list) and all(_fits(v, args[0]) for v in value)
    if origin in (dict, Mapping):
        return isinstance(value, dict) and all(
            _fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items()
        )
    if origin is Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args if a is not type(None))
    return isinstance(value, wanted)
