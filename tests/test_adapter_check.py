"""``govhub adapter check``: a sample file or a configured source, nothing published."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import records
from hub.cli import main
from hub.cli.adapter import _setting

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples" / "records"

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>涉县新闻</title><link>http://www.shexian.gov.cn/</link>
<description>涉县人民政府网站</description>
<item><title>涉县召开安全生产会议</title><link>http://www.shexian.gov.cn/a/1.html</link>
<pubDate>Mon, 06 May 2024 09:00:00 +0800</pubDate><description>&lt;p&gt;会议要求落实责任。&lt;/p&gt;</description></item>
<item><title>涉县开展植树活动</title><link>http://www.shexian.gov.cn/a/2.html</link>
<pubDate>Tue, 07 May 2024 09:00:00 +0800</pubDate></item>
<item><link>http://www.shexian.gov.cn/a/3.html</link><pubDate>Wed, 08 May 2024 09:00:00 +0800</pubDate></item>
</channel></rss>
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GOVHUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GOVHUB_CONFIG", str(ROOT / "nodes.toml"))
    return tmp_path


def test_a_sample_feed_is_served_on_loopback_and_reported_with_coverage(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("adapters.feed.adapter")
    sample = env / "news.rss"
    sample.write_text(FEED, encoding="utf-8")
    code = main(["adapter", "check", "feed", str(sample), "--node", "shexian"])
    out = capsys.readouterr().out
    assert code == 1  # the third entry has no title
    assert f"on {sample} (served as url on a loopback port)" in out
    assert "records of node shexian" in out and "127.0.0.1" not in out  # problems name the file
    assert "items found       3" in out and "records produced  2" in out
    assert "without a record  1 (0 held none, 1 failed to convert)" in out  # 3 = 2 + 1
    assert "valid records     2" in out
    assert "/news.rss#entry 3: convert: title:" in out  # the item it came from
    assert "title 2/2" in out and "link 2/2" in out and "indexNumber 0/2" in out
    assert "body 1/2" in out
    assert not (env / "data").exists()  # nothing written


def test_xml_prints_a_batch_that_parses_back(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("adapters.feed.adapter")
    sample = env / "news.xml"
    sample.write_text(FEED, encoding="utf-8")
    main(["adapter", "check", "feed", str(sample), "--node", "shexian", "--xml"])
    captured = capsys.readouterr()
    found = records.parse_batch(captured.out.encode())
    assert [r.title for r in found] == ["涉县召开安全生产会议", "涉县开展植树活动"]
    assert all(r.origin.node == "shexian" for r in found)
    assert "items found       3" in captured.err  # the report goes to standard error


def test_a_path_sample_with_set_values_and_the_root_node_by_default(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("adapters.folder")
    document = EXAMPLES / "document.xml"  # node cn's, the root
    assert main(["adapter", "check", "folder", str(document)]) == 0
    out = capsys.readouterr().out
    assert f"(path = {document.resolve()})" in out and "records of node cn" in out
    assert "indexNumber 1/1" in out and "docNumber 1/1" in out
    assert main(["adapter", "check", "folder", str(document), "--set", "max_bytes=100"]) == 1
    assert "over max_bytes = 100" in capsys.readouterr().out


def test_a_configured_source_is_checked_without_publishing(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("adapters.folder")
    config = env / "nodes.toml"
    config.write_text(
        (ROOT / "nodes.toml").read_text(encoding="utf-8")
        + '\n[[node.sources]]\nname = "drop"\nadapter = "folder"\npath = "drop"\n',
        encoding="utf-8",
    )
    (env / "drop").mkdir()
    (env / "drop" / "notice.xml").write_bytes((EXAMPLES / "notice.xml").read_bytes())
    (env / "drop" / "news.xml").write_bytes((EXAMPLES / "news.xml").read_bytes())  # mee's
    code = main(["adapter", "check", "--config", str(config), "--node", "shexian", "drop"])
    out = capsys.readouterr().out
    assert code == 1
    assert "source shexian/drop (adapter folder)" in out
    assert "items found       2" in out and "valid records     1" in out
    assert "drop/news.xml:2: convert: origin/@node: record urn:govhub:mee:" in out
    assert not (env / "data").exists()


def test_usage_errors(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapter", "check", "records-folder"]) == 2
    assert "give --node ID with a SOURCE" in capsys.readouterr().err
    assert main(["adapter", "check", "folder", str(env / "missing.xml")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["adapter", "check", "fodler", str(EXAMPLES / "notice.xml")]) == 1
    assert "no adapter called 'fodler' is installed (did you mean 'folder'?)" in (
        capsys.readouterr().err
    )


def test_set_values_are_toml_when_they_parse_else_text() -> None:
    assert _setting("max_bytes=100") == ("max_bytes", 100)
    assert _setting("enabled=true") == ("enabled", True)
    assert _setting('columns=["a", "b"]') == ("columns", ["a", "b"])
    assert _setting("kind=notice") == ("kind", "notice")
    assert _setting("url=http://x/a=b") == ("url", "http://x/a=b")


PAGES = ROOT / "tests" / "fixtures" / "page"


def test_a_page_that_gives_no_record_is_explained_and_named_by_its_file(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    guide = PAGES / "guide" / "zfxxgkzn.html"
    code = main(["adapter", "check", "page", str(guide), "--node", "shexian"])
    out = capsys.readouterr().out
    assert code == 1  # a page without a record is a finding, not a pass
    assert "items found       1" in out and "records produced  0" in out
    assert "without a record  1 (1 held none, 0 failed to convert)" in out
    assert f"  {guide}: no record: required field title missing: looked for " in out
    assert "127.0.0.1" not in out.split("\n", 1)[1]  # every problem names the file


def test_a_local_index_number_is_a_warning_of_a_valid_record(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = PAGES / "fujian-pz" / "t20220923_2234.html"
    code = main(["adapter", "check", "page", str(page), "--node", "shexian"])
    out = capsys.readouterr().out
    assert code == 0  # the record is valid: the site's own 索引号 is kept, not refused
    assert "valid records     1" in out and "localIndexNumber 1/1" in out
    assert "warnings          1" in out
    assert (
        f"  {page}: indexNumber: 索引号 'PZ00102-1700-2022-00034' kept as localIndexNumber" in out
    )
