"""The folder adapter: record files in (mtime, name) order, one item per record, hostile files refused."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from support import pairs

from adapters.columns import CHINA
from adapters.contract import Context, Failure, Item
from adapters.folder import FolderAdapter
from adapters.settings import read_settings
from hub.errors import ConfigInvalid, InputError
from hub.federation import Source, load_federation
from hub.records import Record

ROOT = Path(__file__).parents[1]
FEDERATION = load_federation(ROOT / "nodes.toml")
NODE = FEDERATION.node("gz")


def record(local: str, title: str = "关于开展城市更新工作的通知", node: str = "gz") -> Record:
    context = Context(FEDERATION.node(node), "cms")
    return context.record(local, title=title, published=datetime(2024, 3, 1, 9, tzinfo=CHINA))


def batch(*items: Record) -> bytes:
    inner = b"".join(r.to_xml().split(b"?>", 1)[1] for r in items)
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<records xmlns="urn:govhub:record:1">'
        + inner
        + b"</records>"
    )


def write(path: Path, data: bytes, mtime: int) -> Path:
    path.write_bytes(data)
    os.utime(path, ns=(mtime * 10**9, mtime * 10**9))
    return path


def adapter(root: Path, **settings: Any) -> FolderAdapter:
    source = Source("cms", "folder", {"path": "out", **settings}, line=40)
    node = dataclasses.replace(NODE, sources=(source,))
    settings_ = read_settings(FolderAdapter.Settings, source, node, "nodes.toml")
    return FolderAdapter(settings_, Context(node, "cms", root=str(root)))


def fetch(source: FolderAdapter, cursor: str | None = None) -> list[Item | Failure]:
    async def collect() -> list[Item | Failure]:
        return [entry async for entry in source.fetch(cursor)]

    return asyncio.run(collect())


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    write(out / "b.xml", batch(record("b-1"), record("b-2", "关于春耕生产的通知")), 1_700_000_200)
    write(out / "a.xml", record("a").to_xml(), 1_700_000_100)
    write(out / "c.xml", record("c").to_xml().replace(b"<title>", b"<titel>", 1), 1_700_000_300)
    write(out / "notes.txt", b"not a record", 1_700_000_050)
    write(out / ".d.xml.tmp", b"<rec", 1_700_000_060)  # a writer's temporary file
    write(out / ".hidden.xml", record("hidden").to_xml(), 1_700_000_070)
    secret = write(tmp_path / "secret.xml", record("outside").to_xml(), 1_700_000_080)
    (out / "link.xml").symlink_to(secret)
    (tmp_path / "elsewhere").mkdir()
    write(tmp_path / "elsewhere" / "e.xml", record("linked").to_xml(), 1_700_000_090)
    (out / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    return tmp_path


def test_files_come_oldest_first_one_item_per_record_and_invalid_files_as_failures(
    folder: Path,
) -> None:
    source = adapter(folder)
    entries = fetch(source)
    assert [type(e).__name__ for e in entries] == ["Item", "Item", "Item", "Failure"]
    a, b1, b2, c = entries
    assert isinstance(a, Item) and isinstance(b1, Item) and isinstance(b2, Item)
    assert a.where == "out/a.xml:2" and a.key == "urn:govhub:gz:a"
    assert [b1.where, b2.where] == ["out/b.xml:3", "out/b.xml:14"]  # each record's own line
    assert b1.cursor is None and b2.cursor == "1700000200000000000:b.xml"  # the file's last record
    assert a.cursor == "1700000100000000000:a.xml"
    assert isinstance(c, Failure) and c.where.startswith("out/c.xml:")
    assert "invalid record file" in c.message and "titel" in c.message
    assert c.cursor == "1700000300000000000:c.xml"  # past it: fixing the file makes it new again
    made = [source.convert(item) for item in (a, b1, b2)]
    assert [r.id for r in made if r] == [
        "urn:govhub:gz:a",
        "urn:govhub:gz:b-1",
        "urn:govhub:gz:b-2",
    ]
    assert made[0] == record("a")


def test_the_cursor_skips_files_read_and_a_rewritten_file_is_read_again(folder: Path) -> None:
    source = adapter(folder)
    entries = fetch(source)
    after_a = entries[0].cursor
    assert [e.where for e in fetch(source, after_a)][:2] == [e.where for e in entries[1:3]]
    assert fetch(source, entries[-1].cursor) == []
    write(
        folder / "out" / "a.xml",
        record("a", "关于开展城市更新工作的通知（修订）").to_xml(),
        1_700_000_400,
    )
    (again,) = fetch(source, entries[-1].cursor)
    assert isinstance(again, Item) and again.key == "urn:govhub:gz:a"
    assert source.convert(again).title.endswith("（修订）")  # type: ignore[union-attr]


def test_another_nodes_record_is_a_per_item_error(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    write(tmp_path / "out" / "x.xml", record("x", node="sz").to_xml(), 1_700_000_000)
    source = adapter(tmp_path)
    (item,) = fetch(source)
    assert isinstance(item, Item)
    with pytest.raises(InputError) as caught:
        source.convert(item)
    (problem,) = caught.value.problems
    assert (
        problem.field == "origin/@node"
        and "of node 'sz' in a source of node 'gz'" in problem.message
    )


def test_hostile_and_oversized_files_are_refused_before_parsing_harm(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    laughs = (
        b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n<record>&lol2;</record>'
    )
    write(tmp_path / "out" / "1.xml", laughs, 1_700_000_001)
    write(tmp_path / "out" / "2.xml", record("big").to_xml() + b" " * 5000, 1_700_000_002)
    write(tmp_path / "out" / "3.xml", b"\xff\xfe garbage", 1_700_000_003)
    doctype, big, garbage = fetch(adapter(tmp_path, max_bytes=4000))
    assert (
        isinstance(doctype, Failure) and "<!DOCTYPE> declaration is not allowed" in doctype.message
    )
    assert isinstance(big, Failure) and "over max_bytes = 4,000" in big.message
    assert isinstance(garbage, Failure) and "invalid record file" in garbage.message


def test_one_file_as_the_path_and_settings_mistakes(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    write(tmp_path / "out" / "one.xml", batch(record("p"), record("q")), 1_700_000_000)
    source = adapter(tmp_path, path="out/one.xml")  # what `govhub adapter check folder FILE` does
    assert [e.where for e in fetch(source)] == ["out/one.xml:3", "out/one.xml:14"]
    (missing,) = fetch(adapter(tmp_path, path="nowhere"))
    assert isinstance(missing, Failure) and "no such folder" in missing.message
    with pytest.raises(ConfigInvalid) as caught:
        adapter(tmp_path, pattern="../*.xml")
    assert caught.value.problems[0].field == "node[gz].sources[cms].pattern"
    with pytest.raises(ConfigInvalid) as unknown:
        adapter(tmp_path, patern="*.xml")
    assert "did you mean 'pattern'?" in str(unknown.value)


def test_nested_folders_with_a_recursive_pattern(tmp_path: Path) -> None:
    (tmp_path / "out" / "2024" / "03").mkdir(parents=True)
    write(tmp_path / "out" / "2024" / "03" / "n.xml", record("n").to_xml(), 1_700_000_000)
    assert fetch(adapter(tmp_path)) == []
    (tmp_path / "elsewhere").mkdir()
    write(tmp_path / "elsewhere" / "e.xml", record("linked").to_xml(), 1_700_000_090)
    (tmp_path / "out" / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (item,) = fetch(adapter(tmp_path, pattern="**/*.xml"))  # not the linked folder's file
    assert isinstance(item, Item) and item.where == "out/2024/03/n.xml:2"
    assert item.cursor == "1700000000000000000:2024/03/n.xml"


@pytest.mark.parametrize("path", pairs.pairs("folder"), ids=lambda path: path.name)
def test_fixture_pairs(path: Path, tmp_path: Path) -> None:
    """Each file in tests/fixtures/folder/, dropped alone into the folder, becomes what
    its .json says: its records, or the reason it is refused."""
    out = tmp_path / "out"
    out.mkdir()
    write(out / path.name, path.read_bytes(), 1_700_000_000)
    made = adapter(tmp_path, **pairs.source_of(path)["settings"])
    outcomes = pairs.replaced(
        [pairs.outcome(found, made.convert) for found in fetch(made)], str(tmp_path), "<root>"
    )
    assert outcomes == pairs.expected(path, outcomes)
