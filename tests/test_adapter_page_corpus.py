"""The page adapter, with no selectors, on layouts of many CMS families.

Every page of ``tests/fixtures/page/<family>/`` (written in the shape of TRS WCM,
Hanweb 大汉, 开普云 UCAP, 南威, 浪潮, county templates, a 行政处罚 table, a Fujian
local 索引号, empty labels beside a sidebar, list and guide pages) goes through
``PageAdapter.convert`` and is checked against the ``.expected.json`` beside it;
``gov-pages/`` holds the expectations of the real pages of the shared corpus,
read in place. ``bench/page_coverage.py`` reads the same corpus for the coverage
figures in docs/adapters/page.md.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from adapters.kit.chinese_values import MODE_TERMS, VALIDITY_TERMS, parse_term
from adapters.page.html import read_html
from adapters.page.labels import field_of, pairs_in
from adapters.page.links import detail_links, next_page
from hub import records
from hub.codes import standard_index_number
from hub.store.search.terms import indexed_text, query_terms, text_terms


def _coverage_module() -> object:
    """bench/page_coverage.py, which defines what "right" means for the corpus; loaded by
    path, since the tests do not put the project root on ``sys.path``."""
    path = Path(__file__).parents[1] / "bench" / "page_coverage.py"
    spec = importlib.util.spec_from_file_location("page_coverage", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["page_coverage"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


coverage = _coverage_module()
SHARED = coverage.SHARED  # type: ignore[attr-defined]
Case = coverage.Case  # type: ignore[attr-defined]
convert = coverage.convert  # type: ignore[attr-defined]
mismatches = coverage.mismatches  # type: ignore[attr-defined]
CASES = coverage.cases(shared=True)  # type: ignore[attr-defined]


def _id(case: Any) -> str:
    return case.name


def test_the_corpus_covers_many_layout_families() -> None:
    families = {case.name.split("/")[0] for case in CASES if "shared" not in case.expected}
    assert len(families) >= 15, families


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_each_page_gives_its_expected_record(case: Any) -> None:
    if "shared" in case.expected and not case.page.is_file():
        pytest.skip(f"shared corpus of real government pages not found at {SHARED}")
    outcome = convert(case)
    assert mismatches(case, outcome) == []
    if outcome.record is not None:
        assert records.parse(outcome.record.to_xml()) == outcome.record  # valid, round-trips
    if "links" in case.expected:
        root = read_html(case.page.read_bytes())
        assert detail_links(root, case.expected["url"]) == case.expected["links"]
        assert next_page(root, case.expected["url"]) == case.expected.get("next")


@pytest.mark.parametrize(
    ("label", "name"),
    [
        ("信息索引号", "index_number"),
        ("索　引　号：", "index_number"),
        ("政府信息索引号", "index_number"),
        ("【发布机构】", "issuers"),
        ("发文机关:", "issuers"),
        ("生成日期", "created"),
        ("有 效 性", "validity"),
        ("时效", "validity"),
        ("效力状态", "validity"),
        ("公开方式", "mode"),
        ("公开范围", "audience"),
        ("信息分类", "topic"),
        ("信息名称", "title"),
        ("浏览次数", None),
        ("处罚决定书编号", None),
    ],
)
def test_labels_are_read_by_meaning(label: str, name: str | None) -> None:
    assert field_of(label) == name


def test_one_line_of_pairs_splits_at_every_label() -> None:
    line = "来源：武乡县林业局　　发布时间：2022-01-05 10:12　　浏览次数：1234"
    assert pairs_in(line) == [("source", "武乡县林业局　　"), ("published", "2022-01-05 10:12　　")]
    assert pairs_in("国家税务总局发布日期：2022") == []  # must start with a label
    assert pairs_in("【索引号】PZ00102-1700-2022-00034") == [
        ("index_number", "PZ00102-1700-2022-00034")
    ]


def test_values_are_mapped_to_the_schema_terms() -> None:
    assert parse_term("现行有效", VALIDITY_TERMS, "有效性") == "in-force"
    assert parse_term("【已废止】", VALIDITY_TERMS, "有效性") == "repealed"
    assert parse_term("失效", VALIDITY_TERMS, "有效性") == "expired"
    assert parse_term("依申请公开", MODE_TERMS, "公开方式") == "on-request"
    assert parse_term("无", VALIDITY_TERMS, "有效性") is None
    with pytest.raises(ValueError, match="有效性 '待定' is not a known value"):
        parse_term("待定", VALIDITY_TERMS, "有效性")


def test_an_unknown_validity_is_left_out_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    case = next(c for c in CASES if c.name == "trs-wcm/t20220315_4512301")
    page = case.page.read_text(encoding="utf-8").replace("<td>有效</td>", "<td>待定</td>")
    changed = case.page.with_name("changed.html")
    try:
        changed.write_text(page, encoding="utf-8")
        with caplog.at_level(logging.WARNING, logger="adapters.page.adapter"):
            outcome = convert(Case("changed", changed, case.expected))
    finally:
        changed.unlink()
    assert outcome.record is not None and outcome.record.validity is None
    assert any("有效性 dropped" in message for message in outcome.warnings)


def test_a_local_index_number_is_searchable() -> None:
    case = next(c for c in CASES if c.name == "fujian-pz/t20220923_2234")
    record = convert(case).record
    assert record is not None and record.local_index_number == "PZ00102-1700-2022-00034"
    xml = record.to_xml(pretty=False).decode()
    text = indexed_text(record.title, None, None, xml, record.id)
    assert "pz00102-1700-2022-00034" in text.heading.split("\n")[1:]
    heading_terms = text_terms(text.heading)
    assert set(query_terms("pz00102-1700-2022-00034")) <= heading_terms


def test_the_standard_form_is_found_under_full_width_and_spaces() -> None:
    assert (
        standard_index_number("００００１４３４９／２００６-００１６６") == "000014349/2006-00166"
    )
    assert standard_index_number(" 000014349/2006-00166 ") == "000014349/2006-00166"
    assert standard_index_number("PZ00102-1700-2022-00034") is None
    assert standard_index_number("000014348/2020-35147") is None  # its check character fails


def test_the_record_standard_carries_a_local_index_number() -> None:
    case = next(c for c in CASES if c.name == "fujian-pz/t20220923_2234")
    record = convert(case).record
    assert record is not None
    xml = record.to_xml().decode()
    assert "<localIndexNumber>PZ00102-1700-2022-00034</localIndexNumber>" in xml
    assert records.problems(xml.encode(), "fujian.xml") == []  # accepted, not refused
    both = xml.replace(
        "<localIndexNumber>", "<indexNumber>000014349/2022-00001</indexNumber><localIndexNumber>"
    )
    problems = records.problems(both.encode(), "both.xml")
    assert problems and problems[0].field == "localIndexNumber"  # one or the other
