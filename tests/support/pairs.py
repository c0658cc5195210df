"""Input files beside their expected output: ``tests/fixtures/<adapter>/x.rss`` and ``x.rss.json``.

The JSON file holds what the test needs to read the input (``source``: the adapter's
settings, and for the feed adapter the ``Content-Type`` it is served with) and what
the adapter must make of it (``expected``: one entry per item ``fetch`` yields, in
order: the record's fields that differ from their defaults, or the failure's or
the error's message). To add a case, drop in an input file and its ``.json`` with
``source`` alone, then write ``expected`` from what the adapter does today::

    GOVHUB_WRITE_FIXTURES=1 ./dev pytest tests/test_adapter_feed.py -k pairs

and read every line of the result before committing it: the file is the judgment.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from adapters.contract import Failure, Item
from hub.errors import HubError
from hub.records import Record, parse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def pairs(adapter: str) -> list[Path]:
    """The input files of ``tests/fixtures/<adapter>/`` that have an expected output beside them."""
    folder = FIXTURES / adapter
    return sorted(path for path in folder.iterdir() if expected_path(path).is_file())


def expected_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def source_of(path: Path) -> dict[str, Any]:
    """The ``source`` part of an input's JSON: how the test reads it."""
    source: dict[str, Any] = json.loads(expected_path(path).read_text(encoding="utf-8"))["source"]
    return source


def plain(value: Any) -> Any:
    """``value`` as JSON: dataclasses by their fields that differ from the default."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        shown = {}
        for field in dataclasses.fields(value):
            if not field.compare:
                continue
            found = getattr(value, field.name)
            default = (
                field.default_factory()
                if field.default_factory is not dataclasses.MISSING
                else field.default
            )
            if found != default:
                shown[field.name] = plain(found)
        return shown
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [plain(each) for each in value]
    if isinstance(value, Mapping):
        return {str(key): plain(each) for key, each in value.items()}
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def outcome(found: Item | Failure, convert: Callable[[Item], Record | None]) -> dict[str, Any]:
    """What became of one fetched item: its record, no record, a failure or an error."""
    if isinstance(found, Failure):
        return {"failure": found.message}
    try:
        record = convert(found)
    except HubError as exc:
        return {"error": str(exc)}
    if record is not None:
        again = parse(record.to_xml(), "the record the adapter built")
        if again != record:
            raise AssertionError(
                f"{found.where}: the record changes through its XML: {record} != {again}"
            )
    return {"record": None if record is None else plain(record)}


def replaced(outcomes: list[dict[str, Any]], old: str, new: str) -> list[dict[str, Any]]:
    """``outcomes`` with ``old`` replaced by ``new`` in every string (a loopback server's
    address, which changes from run to run, by a name that does not)."""
    found: list[dict[str, Any]] = json.loads(json.dumps(outcomes).replace(old, new))
    return found


def expected(path: Path, outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The expected output beside ``path``, to compare ``outcomes`` with (with
    ``GOVHUB_WRITE_FIXTURES=1``: ``outcomes``, written there first; see above)."""
    beside = expected_path(path)
    document = json.loads(beside.read_text(encoding="utf-8"))
    if os.environ.get("GOVHUB_WRITE_FIXTURES") == "1":
        document["expected"] = outcomes
        text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
        beside.write_text(text, encoding="utf-8")
    assert "expected" in document, (
        f"{beside} has no expected output: write it with GOVHUB_WRITE_FIXTURES=1 and read it"
    )
    found: list[dict[str, Any]] = document["expected"]
    return found
