"""The adapter kit: the registry, settings checks, the example package, and docs that keep up."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import re
import tomllib
import typing
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pytest

from adapters.contract import Context, Item
from adapters.registry import GROUP, AdapterConflict, registry
from adapters.settings import read_settings
from adapters.tabular import CsvAdapter
from hub import records
from hub.errors import ConfigInvalid
from hub.federation import Source, load_federation

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
NODE = load_federation(ROOT / "nodes.toml").node("gz")
EXAMPLE = ROOT / "examples" / "adapter-package"
PAGES = {"csv": "exports", "excel": "exports"}  # adapters that share a page; others: their name


def builtin() -> dict[str, EntryPoint]:
    """govhub's own entry points (an installed third-party package may add more)."""
    return {
        point.name: point
        for point in entry_points(group=GROUP)
        if point.dist is not None and point.dist.name == "govhub"
    }


BUILTIN = sorted(builtin())


def test_every_builtin_adapter_is_registered() -> None:
    assert set(BUILTIN) >= {"feed", "page", "csv", "excel", "sql", "folder", "push"}


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_adapter_meets_the_contract(name: str) -> None:
    adapter = registry().load(name)
    assert adapter.name == name
    assert dataclasses.is_dataclass(adapter.Settings)
    settings = {f.name for f in dataclasses.fields(adapter.Settings)}
    assert adapter.sample in settings, f"{name}: sample {adapter.sample!r} is not a setting"
    assert inspect.isasyncgenfunction(adapter.fetch), f"{name}: fetch must be an async generator"
    assert callable(adapter.convert)
    hints = typing.get_type_hints(adapter.Settings)
    for spec in dataclasses.fields(adapter.Settings):
        assert spec.metadata.get("help"), f"{name}: setting {spec.name} has no help"
        assert spec.name in hints


def _shown(value: Any) -> set[str]:
    """How a docs page may write a default: TOML, or as Python writes it."""
    if isinstance(value, bool):
        return {"`true`", "`false`"} & {f"`{str(value).lower()}`"}
    if isinstance(value, str):
        return {f'`"{value}"`', f"`'{value}'`"} | ({f"`{value}`"} if value else set())
    if isinstance(value, int | float):
        return {f"`{value}`", f"`{value:_}`", f"`{value:,}`"}
    if value is None:
        return {"`None`", "(not set)", "`none`"}
    if value in ({}, [], ()):
        return {"`{}`", "`[]`", "(none)"}
    return {f"`{value!r}`"}


@pytest.mark.parametrize("name", BUILTIN)
def test_every_setting_of_every_builtin_adapter_is_documented_with_its_default(name: str) -> None:
    page = DOCS / "adapters" / f"{PAGES.get(name, name)}.md"
    assert page.exists(), f"docs/adapters/{page.name} is missing (the {name} adapter's page)"
    text = page.read_text(encoding="utf-8")
    adapter = registry().load(name)
    for spec in dataclasses.fields(adapter.Settings):
        rows = [line for line in text.splitlines() if f"`{spec.name}`" in line and "|" in line]
        assert rows, f"{page.name}: setting {spec.name} of {name} is not in a table"
        if spec.default is not dataclasses.MISSING:
            default: Any = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            default = spec.default_factory()
        else:
            assert any("required" in row for row in rows), (
                f"{page.name}: say {spec.name} is required"
            )
            continue
        assert any(shown in row for row in rows for shown in _shown(default)), (
            f"{page.name}: {spec.name} of {name} does not give its default {default!r}"
        )


def test_the_kit_page_links_every_adapter_page_and_the_check_command() -> None:
    kit = (DOCS / "adapters.md").read_text(encoding="utf-8")
    for page in sorted((DOCS / "adapters").glob("*.md")):
        assert f"](adapters/{page.name})" in kit, f"docs/adapters.md does not link {page.name}"
    for name in BUILTIN:
        assert f"`{name}`" in kit, f"docs/adapters.md does not list the {name} adapter"
    for words in ("govhub adapter check", "--set", "--xml", "[project.entry-points.", GROUP):
        assert words in kit
    for target in re.findall(r"\]\(([^)#:]+)\)", kit):
        assert (DOCS / target).exists(), f"docs/adapters.md links to missing {target}"


# -- A third-party package: the example --------------------------------------------------------


def test_the_example_package_is_found_through_its_entry_point_and_converts_its_sample() -> None:
    adapter = registry().load("cms-json")
    assert adapter.__module__ == "govhub_cms_json" and adapter.sample == "path"
    source = Source("cms", "cms-json", {"path": str(EXAMPLE / "sample.json")}, line=1)
    settings = read_settings(adapter.Settings, source, NODE, "nodes.toml")
    instance = adapter(settings, Context(NODE, "cms"))

    async def collect() -> list[Any]:
        return [entry async for entry in instance.fetch(None)]

    items = asyncio.run(collect())
    assert len(items) == 2 and all(isinstance(item, Item) for item in items)
    made = [instance.convert(item) for item in items]
    assert [records.parse(r.to_xml()) for r in made] == made
    assert all(r.id.startswith("urn:govhub:gz:") for r in made)


def test_the_example_tests_are_collected_by_the_project_test_run() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "examples/adapter-package/tests" in config["tool"]["pytest"]["ini_options"]["testpaths"]
    setup = (ROOT / "dev").read_text(encoding="utf-8")  # ./dev installs it, and again on change
    assert 'install --quiet --no-deps -e "$example"' in setup and "$example/pyproject.toml" in setup


def test_a_second_registration_of_a_name_stops_start_up_naming_both() -> None:
    points = list(entry_points(group=GROUP))
    clash = EntryPoint(name="csv", value="acme_govhub.export:ExportAdapter", group=GROUP)
    with pytest.raises(AdapterConflict) as caught:
        registry([*points, clash])
    message = str(caught.value)
    assert "adapter 'csv' is registered twice" in message
    assert (
        "adapters.tabular:CsvAdapter" in message and "acme_govhub.export:ExportAdapter" in message
    )


def test_a_class_whose_name_differs_from_its_entry_point_is_refused() -> None:
    wrong = EntryPoint(name="spreadsheet", value="adapters.tabular:CsvAdapter", group=GROUP)
    with pytest.raises(
        AdapterConflict, match="registers 'spreadsheet' but its class says name = 'csv'"
    ):
        registry([wrong]).load("spreadsheet")


def test_an_unknown_adapter_suggests_a_close_name() -> None:
    with pytest.raises(ConfigInvalid) as caught:
        registry().load("cvs", where="nodes.toml", line=77)
    (problem,) = caught.value.problems
    assert (problem.where, problem.line, problem.field) == ("nodes.toml", 77, "adapter")
    assert "did you mean 'csv'?" in problem.message and "folder" in problem.expected


# -- Settings as nodes.toml gives them -----------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "key", "message", "expected"),
    [
        (
            {"path": "a.csv", "columns": {}, "delimeter": ";"},
            "delimeter",
            "did you mean 'delimiter'?",
            "columns",
        ),
        ({"columns": {}}, "path", "missing", "the export file"),
        (
            {"path": "a.csv", "columns": {}, "max_rows": "many"},
            "max_rows",
            "'many' is not an integer",
            "most rows",
        ),
        (
            {"path": "a.csv", "columns": {"title": 1}},
            "columns",
            "is not a table of text",
            "record field",
        ),
    ],
)
def test_settings_problems_name_the_node_source_key_and_line(
    settings: dict[str, Any], key: str, message: str, expected: str
) -> None:
    source = Source("catalogue", "csv", settings, line=120)
    with pytest.raises(ConfigInvalid) as caught:
        read_settings(CsvAdapter.Settings, source, NODE, "nodes.toml")
    (problem,) = caught.value.problems
    assert str(problem).startswith(f"nodes.toml:120: node[gz].sources[catalogue].{key}: ")
    assert message in problem.message and expected in problem.expected


def test_every_problem_of_a_source_is_reported_at_once() -> None:
    source = Source("catalogue", "csv", {"colums": {}, "encoding": 8}, line=5)
    with pytest.raises(ConfigInvalid) as caught:
        read_settings(CsvAdapter.Settings, source, NODE, "nodes.toml")
    fields = sorted(p.field.rsplit(".", 1)[1] for p in caught.value.problems)
    assert fields == ["columns", "colums", "encoding", "path"]
