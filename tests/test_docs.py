"""The docs keep up with the code: every command, flag and setting is documented,
and the README starts with the two commands."""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

import pytest

from hub.cli import build_parser
from hub.settings import SETTINGS

ROOT = Path(__file__).parent.parent
CLI_DOC = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


def commands() -> dict[str, argparse.ArgumentParser]:
    """Every command, and every action of commands that have them (``review list``)."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs and prefix:
            found[prefix] = parser
        for sub in subs:
            for name, child in sub.choices.items():
                walk(f"{prefix} {name}".strip(), child)

    walk("", build_parser())
    return found


def section_of(command: str) -> str:
    """The docs/cli.md section of ``command``, or of the command it is an action of."""
    for heading in (command, command.split()[0]):
        marker = f"## `govhub {heading}`"
        if marker in CLI_DOC:
            return CLI_DOC.split(marker, 1)[1].split("\n## ", 1)[0]
    raise AssertionError(f"docs/cli.md has no section for govhub {command}")


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_command_and_flag_is_documented(name: str) -> None:
    section = section_of(name)
    assert f"govhub {name}" in section, f"docs/cli.md does not show the usage of govhub {name}"
    for action in commands()[name]._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        names = action.option_strings or [action.metavar or action.dest]
        for flag in names:
            assert f"`{flag}" in section, f"docs/cli.md, govhub {name}: {flag} is not documented"


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    for setting in SETTINGS:
        assert f"`{setting.name}`" in doc, f"docs/settings.md does not document {setting.name}"
        assert f"`{setting.default}`" in doc, (
            f"docs/settings.md gives no default for {setting.name}"
        )


def test_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", readme, re.S)
    assert block is not None and readme.index("```sh") < 200
    lines = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert lines == ["./dev govhub demo", "./dev test"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "\n./dev test\n" in ci, ".ci/run must run the README's test command"


def test_docs_links_resolve() -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_every_package_is_packaged() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("hub", "adapters")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"
    assert config["tool"]["setuptools"]["package-dir"]["hub.schemas"] == "schemas"


def test_changelog_has_unreleased_section() -> None:
    assert "## Unreleased" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
