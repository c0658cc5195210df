"""Reading one ``[[node]]`` table into a ``Node``, reporting every bad value.

A value that fails its check is reported and replaced by a blank placeholder,
so reading goes on and the graph checks can still run; the map is never built
from a node with a problem.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from hub.codes import SITE_CODE_EXPECTED, site_code_problem
from hub.federation import rules
from hub.federation.locate import KeyPath
from hub.federation.model import Node, Source, Subscription
from hub.federation.report import Scope, toml_type

Rule = Callable[[str], rules.Issue]

_MISSING_EXPECTED = {
    "id": rules.ID_EXPECTED,
    "name": "the agency's legal name, e.g. 广东省人民政府",
    "level": "one of " + ", ".join(rules.LEVELS),
    "parent": "the id of the parent node (only the central node has none)",
    "site_code": SITE_CODE_EXPECTED,
    "domain": rules.DOMAIN_EXPECTED,
    "icp": rules.ICP_EXPECTED,
    "police_filing": rules.POLICE_EXPECTED,
    "sources/name": "a name for the source, unique in this node",
    "sources/adapter": "the name of an adapter, e.g. feed or folder",
    "subscribe/from": "the id of an ancestor of this node",
    "subscribe/kinds": "an array of record kinds: " + ", ".join(rules.KINDS),
}


def _hint(keys: KeyPath) -> str:
    """The expected-value hint for a key, by its shape (``sources/name``)."""
    return _MISSING_EXPECTED.get("/".join(key for key in keys if isinstance(key, str)), "")


def node_label(table: dict[str, Any], index: int) -> str:
    """How messages name a node: its id, or ``#n`` (1-based) when it has none."""
    node_id = table.get("id")
    return node_id if isinstance(node_id, str) and node_id.strip() else f"#{index + 1}"


def read_node(scope: Scope, table: dict[str, Any]) -> Node:
    """The node in ``table``; problems go to ``scope``."""
    check_keys(scope, table, (), rules.NODE_KEYS)
    check_inline_secrets(scope, table)
    level = text(scope, table, "level", rule=rules.level_problem)
    return Node(
        id=text(scope, table, "id", rule=rules.id_problem),
        name=text(scope, table, "name"),
        level=level,
        parent=read_parent(scope, table, level),
        site_code=text(scope, table, "site_code", rule=_site_code_issue),
        domain=text(scope, table, "domain", rule=rules.domain_problem),
        icp=text(scope, table, "icp", rule=rules.icp_problem, required=False) or None,
        police_filing=text(scope, table, "police_filing", rule=rules.police_problem, required=False)
        or None,
        languages=texts(scope, table, "languages", allowed=rules.LANGUAGES)
        or rules.DEFAULT_LANGUAGES,
        sources=read_sources(scope, table),
        credentials=read_credentials(scope, table),
        subscriptions=read_subscriptions(scope, table),
        line=scope.line(),
    )


def _site_code_issue(value: str) -> rules.Issue:
    message = site_code_problem(value)
    return None if message is None else (message, SITE_CODE_EXPECTED)


def read_parent(scope: Scope, table: dict[str, Any], level: str) -> str | None:
    """The parent id: absent on the central node, required on every other."""
    if level == "central":
        if "parent" in table:
            scope.problem(("parent",), "the central node has no parent", "no parent key here")
        return None
    return text(scope, table, "parent", required=level in rules.LEVELS)


# -- values ------------------------------------------------------------------


def text(
    scope: Scope,
    table: dict[str, Any],
    key: str,
    *,
    within: KeyPath = (),
    rule: Rule | None = None,
    required: bool = True,
) -> str:
    """A non-blank string at ``key``, checked by ``rule``; ``""`` when bad or absent."""
    keys = (*within, key)
    value = table.get(key)
    if value is None:
        if required:
            scope.problem(keys, "is missing", _hint(keys))
        return ""
    if not isinstance(value, str):
        scope.problem(keys, f"must be a string, not {toml_type(value)}", _hint(keys))
        return ""
    if not value.strip():
        scope.problem(keys, "is blank", _hint(keys))
        return ""
    issue = rule(value) if rule else None
    if issue:
        scope.problem(keys, *issue)
        return ""
    return value


def texts(
    scope: Scope,
    table: dict[str, Any],
    key: str,
    *,
    within: KeyPath = (),
    allowed: tuple[str, ...] = (),
    required: bool = False,
) -> tuple[str, ...]:
    """A non-empty array of distinct strings (from ``allowed`` if given); ``()`` if absent."""
    keys = (*within, key)
    values = table.get(key)
    expected = "one of " + ", ".join(allowed) if allowed else "non-blank strings"
    if values is None:
        if required:
            scope.problem(keys, "is missing", _hint(keys))
        return ()
    if not isinstance(values, list) or not values:
        what = "an empty array" if values == [] else toml_type(values)
        scope.problem(keys, f"must be a non-empty array of strings, not {what}", expected)
        return ()
    good: list[str] = []
    for position, value in enumerate(values):
        if not isinstance(value, str) or not value.strip() or (allowed and value not in allowed):
            scope.problem((*keys, position), f"{value!r} is not allowed here", expected)
        elif value in good:
            scope.problem((*keys, position), f"{value!r} is listed twice")
        else:
            good.append(value)
    return tuple(good)


def tables(scope: Scope, table: dict[str, Any], key: str, header: str) -> list[dict[str, Any]]:
    """The array of tables at ``key``; items that are not tables are reported and dropped.

    Positions are kept (a dropped item leaves ``{}``) so that keys stay located.
    """
    items = table.get(key, [])
    if not isinstance(items, list):
        scope.problem((key,), f"must be an array of tables, not {toml_type(items)}", header)
        return []
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            scope.problem((key, position), f"must be a table, not {toml_type(item)}", header)
    return [item if isinstance(item, dict) else {} for item in items]


def check_keys(
    scope: Scope, table: dict[str, Any], within: KeyPath, known: tuple[str, ...]
) -> None:
    """Report keys outside ``known`` (typos, mostly), suggesting the closest known one."""
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            scope.problem((*within, key), "unknown key" + hint, "one of " + ", ".join(known))


# -- parts -------------------------------------------------------------------


def read_sources(scope: Scope, table: dict[str, Any]) -> tuple[Source, ...]:
    """``[[node.sources]]``: a unique name and an adapter each; other keys are settings."""
    sources: list[Source] = []
    seen: dict[str, int] = {}
    for position, item in enumerate(tables(scope, table, "sources", "[[node.sources]]")):
        within = ("sources", position)
        name = text(scope, item, "name", within=within)
        adapter = text(scope, item, "adapter", within=within)
        if name in seen:
            line = scope.line("sources", seen[name], "name")
            scope.problem((*within, "name"), f"{name!r} is already a source at line {line}")
        seen.setdefault(name, position)
        settings = {k: v for k, v in item.items() if k not in ("name", "adapter")}
        line = scope.line(*within)
        sources.append(Source(name, adapter, MappingProxyType(settings), line))
    return tuple(sources)


def read_credentials(scope: Scope, table: dict[str, Any]) -> MappingProxyType[str, str]:
    """``credentials``: each value an env reference, kept as the variable's name."""
    values = table.get("credentials", {})
    if not isinstance(values, dict):
        scope.problem(("credentials",), f"must be a table, not {toml_type(values)}")
        return MappingProxyType({})
    variables: dict[str, str] = {}
    for key, value in values.items():
        keys = ("credentials", key)
        if isinstance(value, str):
            scope.problem(keys, *_inline_secret(scope, key))
        elif not isinstance(value, dict) or set(value) != {"env"}:
            scope.problem(
                keys, f"must be an env reference, not {toml_type(value)}", rules.ENV_EXPECTED
            )
        elif variable := text(scope, value, "env", within=keys, rule=rules.env_name_problem):
            variables[key] = variable
    return MappingProxyType(variables)


def read_subscriptions(scope: Scope, table: dict[str, Any]) -> tuple[Subscription, ...]:
    """``[[node.subscribe]]``: which kinds (and topics) to take from which ancestor."""
    subscriptions: list[Subscription] = []
    for position, item in enumerate(tables(scope, table, "subscribe", "[[node.subscribe]]")):
        within = ("subscribe", position)
        check_keys(scope, item, within, rules.SUBSCRIBE_KEYS)
        subscriptions.append(
            Subscription(
                from_id=text(scope, item, "from", within=within),
                kinds=texts(
                    scope, item, "kinds", within=within, allowed=rules.KINDS, required=True
                ),
                topics=texts(scope, item, "topics", within=within),
                line=scope.line(*within),
            )
        )
    return tuple(subscriptions)


def check_inline_secrets(scope: Scope, table: dict[str, Any]) -> None:
    """Report secret-looking keys with plain string values anywhere outside ``credentials``."""
    for key, value in table.items():
        if key != "credentials":
            _find_secrets(scope, value, (key,), key)


def _find_secrets(scope: Scope, value: Any, keys: KeyPath, name: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _find_secrets(scope, item, (*keys, key), key)
    elif isinstance(value, list):
        for position, item in enumerate(value):
            _find_secrets(scope, item, (*keys, position), name)
    elif isinstance(value, str) and rules.is_secret_key(name):
        scope.problem(keys, *_inline_secret(scope, name))


def _inline_secret(scope: Scope, key: str) -> tuple[str, str]:
    variable = rules.env_hint(scope.label.lstrip("#"), key)
    return (
        f'is a secret written inline: write {{ env = "{variable}" }} instead '
        f"and set {variable} where node {scope.label} runs",
        "secrets only as env references, never in nodes.toml",
    )
