"""The cms-json adapter: found through its entry point, its sample becomes valid records."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from adapters.contract import Context, Failure, Item
from adapters.registry import registry
from hub import records
from hub.errors import InputError
from hub.federation import load_federation

from govhub_cms_json import CmsJsonAdapter, Settings

HERE = Path(__file__).parents[1]
NODE = load_federation(HERE.parents[1] / "nodes.toml").node("gz")


def fetch(adapter: CmsJsonAdapter, cursor: str | None = None) -> list[Item | Failure]:
    async def collect() -> list[Item | Failure]:
        return [entry async for entry in adapter.fetch(cursor)]

    return asyncio.run(collect())


def adapter(path: Path) -> CmsJsonAdapter:
    return CmsJsonAdapter(Settings(path=str(path)), Context(NODE, "cms"))


def test_govhub_finds_the_adapter_through_its_entry_point() -> None:
    assert registry().load("cms-json") is CmsJsonAdapter


def test_the_sample_becomes_valid_records_oldest_change_first() -> None:
    source = adapter(HERE / "sample.json")
    items = fetch(source)
    assert [item.key for item in items] == ["1024", "1025"]
    made = [source.convert(item) for item in items if isinstance(item, Item)]
    for record in made:
        assert record is not None and records.parse(record.to_xml()) == record
    news, notice = made
    assert news is not None and notice is not None
    assert (news.kind, notice.kind) == ("news", "notice")
    assert news.issuers == ("广州市人民政府",)  # no department: the node's own name
    assert notice.issuers == ("广州市应急管理局",)
    assert notice.published.isoformat() == "2024-03-25T15:30:00+08:00"
    assert notice.body is not None and "script" not in notice.body and "森林防火" in notice.body
    assert news.body is not None and "onerror" not in news.body
    assert fetch(source, items[-1].cursor) == []


def test_a_bad_article_is_reported_and_the_others_go_on(tmp_path: Path) -> None:
    export = json.loads((HERE / "sample.json").read_text(encoding="utf-8"))
    export["articles"][0]["publish_time"] = "昨天"
    export["articles"].append("not an article")
    (tmp_path / "export.json").write_text(json.dumps(export, ensure_ascii=False), "utf-8")
    source = adapter(tmp_path / "export.json")
    entries = fetch(source)
    failures = [e for e in entries if isinstance(e, Failure)]
    assert len(failures) == 1 and "articles[2]" in failures[0].where
    bad = next(e for e in entries if isinstance(e, Item) and e.key == "1025")
    with pytest.raises(InputError, match="'昨天' is not a time"):
        source.convert(bad)
