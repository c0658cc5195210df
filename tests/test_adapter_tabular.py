"""The csv and excel adapters: one record per row, bad rows reported with file, row and column."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import zipfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from support import pairs

from adapters.columns import CHINA
from adapters.contract import Context, Failure, Item
from adapters.settings import read_settings
from adapters.tabular import CsvAdapter, ExcelAdapter
from hub import records
from hub.errors import ConfigInvalid, InputError
from hub.federation import Source, load_federation
from hub.records import Record, Topic

ROOT = Path(__file__).parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "tabular"
NODE = load_federation(ROOT / "nodes.toml").node("gz")
COLUMNS = {
    "index_number": "索引号",
    "title": "标题",
    "doc_number": "发文字号",
    "issuers": "发布机构",
    "created": "成文日期",
    "published": "发布日期",
    "topic": "主题分类",
    "keywords": "主题词",
    "summary": "摘要",
    "link": "链接",
}


def adapter(cls: type, root: Path = FIXTURES, **settings: Any) -> Any:
    """The adapter as the harvester builds it: settings checked as nodes.toml gives them."""
    source = Source("catalogue", cls.name, settings, line=90)
    node = dataclasses.replace(NODE, sources=(source,))
    return cls(
        read_settings(cls.Settings, source, node, "nodes.toml"),
        Context(node, "catalogue", root=str(root)),
    )


def fetch(source: Any, cursor: str | None = None) -> list[Item | Failure]:
    async def collect() -> list[Item | Failure]:
        return [entry async for entry in source.fetch(cursor)]

    return asyncio.run(collect())


def convert(source: Any, entries: list[Item | Failure]) -> tuple[list[Record], list[str]]:
    """Records (each checked against the record standard) and the problems of the other rows."""
    made, problems = [], []
    for entry in entries:
        if isinstance(entry, Failure):
            problems.append(f"{entry.where}: {entry.message}")
            continue
        try:
            record = source.convert(entry)
        except InputError as exc:
            problems.extend(str(p) for p in exc.problems)
            continue
        assert records.parse(record.to_xml()) == record
        made.append(record)
    return made, problems


def test_a_csv_export_becomes_one_valid_record_per_good_row() -> None:
    source = adapter(CsvAdapter, path="catalogue.csv", columns=COLUMNS)
    entries = fetch(source)
    assert [e.where for e in entries] == [f"catalogue.csv:{n}" for n in (2, 3, 4, 6, 7, 8)]
    made, problems = convert(source, entries)
    assert len(made) == 4
    first, second, third, last = made
    assert (
        first.kind == "document" and first.title == "广州市人民政府关于印发广州市城市更新办法的通知"
    )
    assert first.published == datetime(2019, 2, 15, tzinfo=CHINA)
    assert first.created == date(2019, 2, 11)
    assert first.topic == Topic("城乡建设、环境保护", "城乡规划")
    assert first.keywords == ("城市更新", "办法")
    assert first.index_number == "11440100007482966A/2019-00012"
    assert first.id.startswith("urn:govhub:gz:h") and first.origin.site == NODE.site_code
    assert second.issuers == ("广州市人民政府办公厅", "广州市农业农村局")
    assert second.published == datetime(2019, 2, 21, 10, 30, tzinfo=CHINA)
    assert second.summary is None  # an empty cell leaves the field out
    assert (
        third.summary == "多行\n摘要" and third.published.isoformat() == "2019-03-05T00:00:00+08:00"
    )
    assert last.published.isoformat() == "2019-04-01T09:00:00+08:00"
    # The bad rows: each names the file and line, the column, what is wrong and the fix.
    assert len(problems) == 2
    assert problems[0] == (
        "catalogue.csv:6: 发布日期: published: '2019年13月45日' is not a real date: there is no "
        "month 13 (expected a date like 2019年02月15日 or 2019-02-15)"
    )
    assert (
        problems[1]
        == "catalogue.csv:7: 标题: empty, but title is required (expected text (required))"
    )


def test_the_same_row_always_becomes_the_same_record_id_and_gb18030_reads_alike() -> None:
    utf8, _ = convert(
        source := adapter(CsvAdapter, path="catalogue.csv", columns=COLUMNS), fetch(source)
    )
    again, _ = convert(source, fetch(source))
    gb = adapter(CsvAdapter, path="catalogue-gb18030.csv", columns=COLUMNS, encoding="gb18030")
    chinese, _ = convert(gb, fetch(gb))
    assert [r.id for r in utf8] == [r.id for r in again] == [r.id for r in chinese]
    assert utf8 == chinese


def test_a_file_in_the_wrong_encoding_is_one_failure_that_names_the_setting() -> None:
    entries = fetch(adapter(CsvAdapter, path="catalogue-gb18030.csv", columns=COLUMNS))
    assert len(entries) == 1 and isinstance(entries[0], Failure)
    assert entries[0].where == "catalogue-gb18030.csv:1"
    assert (
        "not utf-8-sig text" in entries[0].message and 'encoding = "gb18030"' in entries[0].message
    )


def test_the_cursor_resumes_within_an_unchanged_file_and_rereads_a_changed_one(
    tmp_path: Path,
) -> None:
    export = tmp_path / "export.csv"
    export.write_bytes((FIXTURES / "catalogue.csv").read_bytes())
    source = adapter(CsvAdapter, root=tmp_path, path="export.csv", columns=COLUMNS)
    entries = fetch(source)
    middle = entries[2].cursor
    assert middle is not None and middle.endswith(":4")
    assert [e.where for e in fetch(source, middle)] == [e.where for e in entries[3:]]
    assert fetch(source, entries[-1].cursor) == []  # nothing new in an unchanged file
    export.write_bytes(export.read_bytes() + b"\r\n")  # any change: a new fingerprint
    assert [e.where for e in fetch(source, entries[-1].cursor)] == [e.where for e in entries]


def test_a_column_the_file_lacks_stops_the_file_with_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text(
        "标题,发布时间,链接\n通知,2020-01-01,https://a.gov.cn/1\n", "utf-8"
    )
    columns = {"title": "标题", "published": "发布日期", "link": "链接"}
    entries = fetch(adapter(CsvAdapter, root=tmp_path, path="x.csv", columns=columns))
    assert len(entries) == 1 and isinstance(entries[0], Failure)
    assert entries[0].where == "x.csv:1"
    assert "no column '发布日期' (did you mean '发布时间'?)" in entries[0].message
    assert "fix the columns (or key) setting" in entries[0].message


def test_tab_separated_files_a_key_column_and_a_sanitized_body(tmp_path: Path) -> None:
    (tmp_path / "x.tsv").write_text(
        "编号\t标题\t日期\t正文\n"
        "A-1\t关于春节放假的通知\t2020-01-20 09:00\t<p>放假<script>alert(1)</script></p>\n",
        "utf-8",
    )
    columns = {"title": "标题", "published": "日期", "body": "正文"}
    source = adapter(
        CsvAdapter,
        root=tmp_path,
        path="x.tsv",
        columns=columns,
        key="编号",
        delimiter="\t",
        kind="notice",
    )
    (record,), problems = convert(source, fetch(source))
    assert problems == []
    assert record.id == "urn:govhub:gz:A-1" and record.kind == "notice"
    assert record.issuers == (NODE.name,)  # no issuer column: the node's own name
    assert record.body is not None and "放假" in record.body and "script" not in record.body


def test_size_and_row_limits_refuse_with_the_setting_to_change(tmp_path: Path) -> None:
    rows = "".join(f"通知{n},2020-01-0{n},https://a.gov.cn/{n}\n" for n in range(1, 6))
    (tmp_path / "x.csv").write_text("标题,日期,链接\n" + rows, "utf-8")
    columns = {"title": "标题", "published": "日期", "link": "链接"}
    (small,) = fetch(
        adapter(CsvAdapter, root=tmp_path, path="x.csv", columns=columns, max_bytes=50)
    )
    assert isinstance(small, Failure) and "over max_bytes = 50" in small.message
    entries = fetch(adapter(CsvAdapter, root=tmp_path, path="x.csv", columns=columns, max_rows=3))
    assert [type(e) for e in entries] == [Item, Item, Item, Failure]
    assert "more than max_rows = 3 rows" in entries[-1].message  # type: ignore[union-attr]
    (missing,) = fetch(adapter(CsvAdapter, root=tmp_path, path="gone.csv", columns=columns))
    assert isinstance(missing, Failure) and "cannot read the file" in missing.message


@pytest.mark.parametrize(
    ("settings", "key", "says"),
    [
        (
            {"columns": {"titel": "标题", "published": "日期"}},
            "columns.titel",
            "did you mean 'title'?",
        ),
        ({"columns": {"title": "标题"}}, "columns", "no column for published"),
        ({"columns": {"title": "标题", "published": "日期"}}, "key", "no column identifies a row"),
        ({"columns": COLUMNS, "encoding": "big-5-ish"}, "encoding", "not an encoding"),
        ({"columns": COLUMNS, "delimiter": ";;"}, "delimiter", "not one character"),
        ({"columns": COLUMNS, "kind": "memo"}, "kind", "not a record kind"),
    ],
)
def test_settings_errors_name_the_node_source_key_and_line(
    settings: dict[str, Any], key: str, says: str
) -> None:
    with pytest.raises(ConfigInvalid) as caught:
        adapter(CsvAdapter, path="catalogue.csv", **settings)
    (problem,) = caught.value.problems
    assert (problem.where, problem.line) == ("nodes.toml", 90)
    assert problem.field == f"node[gz].sources[catalogue].{key}"
    assert says in problem.message


# -- Excel ------------------------------------------------------------------------------------


def workbook(path: Path) -> Path:
    book = openpyxl.Workbook()
    book.active.title = "说明"
    book.active.append(["本表由内容管理系统导出"])
    sheet = book.create_sheet("公文")
    sheet.append([])  # a blank first row: the header is the first row with something in it
    sheet.append(["编号", "标题", "发布日期", "成文日期", "主题分类", "索引号", "合计"])
    sheet.append(
        [
            101,
            "关于印发城市更新办法的通知",
            datetime(2019, 2, 15, 9, 30),
            date(2019, 2, 11),
            "城乡建设、环境保护",
            "11440100007482966A/2019-00012",
            "=1+1",
        ]
    )
    sheet.append([None] * 7)
    sheet.append(
        [
            102,
            "关于做好春耕生产工作的通知",
            "2019年2月21日",
            None,
            "农业、林业、水利/农业",
            None,
            None,
        ]
    )
    sheet.append([103, "日期有误的通知", "明天", None, None, None, None])
    book.save(path)
    return path


def test_an_excel_sheet_becomes_records_with_sheet_and_row_in_every_place(tmp_path: Path) -> None:
    workbook(tmp_path / "export.xlsx")
    columns = {
        "title": "标题",
        "published": "发布日期",
        "created": "成文日期",
        "topic": "主题分类",
        "index_number": "索引号",
    }
    source = adapter(
        ExcelAdapter, root=tmp_path, path="export.xlsx", sheet="公文", columns=columns, key="编号"
    )
    entries = fetch(source)
    assert [e.where for e in entries] == [
        "export.xlsx:公文!3",
        "export.xlsx:公文!5",
        "export.xlsx:公文!6",
    ]
    assert [e.key for e in entries if isinstance(e, Item)] == ["101", "102", "103"]
    (first, second), problems = convert(source, entries)
    assert first.id == "urn:govhub:gz:101"
    assert first.published == datetime(2019, 2, 15, 9, 30, tzinfo=CHINA)
    assert (
        first.created == date(2019, 2, 11) and first.index_number == "11440100007482966A/2019-00012"
    )
    assert second.published == datetime(2019, 2, 21, tzinfo=CHINA)
    assert second.topic == Topic("农业、林业、水利", "农业")
    assert problems == [
        "export.xlsx:公文!6: 发布日期: published: '明天' is not a date "
        "(expected a date like 2019-02-15, optionally with a time: 2022-04-17 10:30:00)"
    ]
    assert fetch(source, entries[1].cursor)[0].where == "export.xlsx:公文!6"


def test_excel_refuses_a_missing_sheet_a_non_workbook_and_a_zip_bomb(tmp_path: Path) -> None:
    workbook(tmp_path / "export.xlsx")
    columns = {"title": "标题", "published": "发布日期"}
    (missing,) = fetch(
        adapter(
            ExcelAdapter,
            root=tmp_path,
            path="export.xlsx",
            sheet="文件",
            columns=columns,
            key="编号",
        )
    )
    assert (
        isinstance(missing, Failure)
        and "no sheet '文件'; the sheets are '说明', '公文'" in missing.message
    )
    (tmp_path / "fake.xlsx").write_text("标题,发布日期\n", "utf-8")
    (fake,) = fetch(
        adapter(ExcelAdapter, root=tmp_path, path="fake.xlsx", columns=columns, key="编号")
    )
    assert isinstance(fake, Failure) and "not an .xlsx workbook" in fake.message
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", b"\0" * 5_000_000)
    (tmp_path / "bomb.xlsx").write_bytes(bomb.getvalue())
    (refused,) = fetch(
        adapter(
            ExcelAdapter,
            root=tmp_path,
            path="bomb.xlsx",
            columns=columns,
            key="编号",
            max_bytes=100_000,
        )
    )
    assert isinstance(refused, Failure) and "unpacks to 5,000,000 bytes" in refused.message


def test_values_are_read_as_chinese_sites_write_them(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text(
        "标题,日期,文号,主题分类,链接\n"
        "甲,２０２０年１月２日,无,教育,https://a.gov.cn/1\n"
        "乙,2020-01-02 10时30分,穗府〔2020〕1号,体育运动,https://a.gov.cn/2\n"
        f"丙,{'2020-01-02' + ' ' * 5000 + 'x'},,,https://a.gov.cn/3\n",
        "utf-8",
    )
    columns = {
        "title": "标题",
        "published": "日期",
        "doc_number": "文号",
        "topic": "主题分类",
        "link": "链接",
    }
    source = adapter(CsvAdapter, root=tmp_path, path="x.csv", columns=columns)
    (first,), problems = convert(source, fetch(source))
    assert first.published == datetime(2020, 1, 2, tzinfo=CHINA)
    assert first.doc_number is None  # 无: no document number
    assert first.topic == Topic("科技、教育", "教育")  # the narrower word a local site shows
    assert len(problems) == 2
    assert problems[0].startswith(
        "x.csv:3: 主题分类: topic: 主题分类 '体育运动' is not a topic class"
    )
    assert (
        problems[1].startswith("x.csv:4: 日期: published: '2020-01-02")
        and "too long" in problems[1]
    )


ADAPTERS = {"csv": CsvAdapter, "excel": ExcelAdapter}


@pytest.mark.parametrize("path", pairs.pairs("tabular"), ids=lambda path: path.name)
def test_fixture_pairs(path: Path) -> None:
    """Each export in tests/fixtures/tabular/ becomes what its .json says, row by row."""
    source = pairs.source_of(path)
    made = adapter(ADAPTERS[source["adapter"]], **source["settings"])
    outcomes = [pairs.outcome(found, made.convert) for found in fetch(made)]
    assert outcomes == pairs.expected(path, outcomes)
