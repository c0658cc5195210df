"""adapters.kit.sanitize: hostile HTML in, a body that hub.records.parse accepts out."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

import hub.records
from adapters.contract import Context
from adapters.kit.sanitize import plain_text, safe_url, sanitize_html
from hub.errors import InputError
from hub.federation.model import Node

CST = timezone(timedelta(hours=8))
NODE = Node("gz", "广州市人民政府", "city", "gd", "4401000001", "www.gz.gov.cn")

HOSTILE = """
bare text first <b>bold</b> <i>italic</i>
<script>alert(1)</script><style>p{color:red}</style>
<p onclick="steal()" style="background:url(javascript:alert(1))" class="lead">段落
  <a href="javascript:alert(1)">js</a> <a href=" jav&#x09;ascript:alert(2)">tab</a>
  <a href="vbscript:msgbox(1)">vb</a> <a href="data:text/html,<script>x</script>">data</a>
  <a href="/zwgk/a.html" onmouseover="x()">相对</a> <a href="mailto:gz@gz.gov.cn">mail</a>
  <img src="data:image/png;base64,AAAA" onerror="alert(3)"><img src="logo.png" width="10em" height="40">
</p>
<iframe src="https://evil.example/"></iframe><object data="x.swf"></object>
<form action="https://evil.example/"><input name="q"><button>go</button></form>
<svg onload="alert(4)"><circle/></svg><math><mi>x</mi></math>
<table border="1"><tr><td colspan="0" rowspan="-1" align="center">格</td>
<th scope="col" colspan="2">头</th></tr></table>
<ol start="three" type="1"><li lang="zh-CN" dir="RTL" xml:lang="en">一</li></ol>
<div id="x" data-x="1"><blockquote cite="javascript:x">引</blockquote></div>
<!-- a comment --><p>\x01控制\x00字符</p>
trailing text
"""


def _record(body: str | None) -> hub.records.Record:
    published = datetime(2024, 3, 1, 9, 30, tzinfo=CST)
    return Context(NODE, "portal").record("a1", title="标题", published=published, body=body)


def test_hostile_html_becomes_a_body_that_parse_accepts() -> None:
    body = sanitize_html(HOSTILE, "https://www.gz.gov.cn/zwgk/index.html")
    assert body is not None
    record = _record(body)
    parsed = hub.records.parse(record.to_xml(), "sanitized.xml")
    assert parsed == record  # the body survives to_xml → parse unchanged
    lowered = body.lower()
    for bad in ("<script", "<style", "<iframe", "<object", "<form", "<input", "<svg", "style="):
        assert bad not in lowered
    assert not re.search(r"\son\w+=", lowered)
    assert not re.search(r"(javascript|vbscript|data):", lowered)
    assert 'href="https://www.gz.gov.cn/zwgk/a.html"' in body
    assert 'src="https://www.gz.gov.cn/zwgk/logo.png"' in body
    assert 'href="mailto:gz@gz.gov.cn"' in body
    assert "相对" in body and "格" in body and "控制字符" in body


def test_every_top_level_element_is_xhtml_and_nothing_lies_between() -> None:
    body = sanitize_html("text <b>b</b><p>p</p>tail<ul><li>x</li></ul>")
    assert body == (
        '<p xmlns="http://www.w3.org/1999/xhtml">text <b>b</b></p>'
        '<p xmlns="http://www.w3.org/1999/xhtml">p</p>'
        '<p xmlns="http://www.w3.org/1999/xhtml">tail</p>'
        '<ul xmlns="http://www.w3.org/1999/xhtml"><li>x</li></ul>'
    )


def test_values_xml_schema_would_refuse_are_dropped() -> None:
    body = sanitize_html(
        '<table><tr><td colspan="0" rowspan="x">1</td><td colspan="2">2</td></tr></table>'
        '<img src="a.png" width="10em" height="20"><ol start="x"><li dir="RTL">i</li></ol>'
    )
    assert body is not None
    assert 'colspan="0"' not in body and "rowspan" not in body and 'colspan="2"' in body
    assert 'width="10em"' not in body and 'height="20"' in body
    assert "start=" not in body and 'dir="rtl"' in body
    hub.records.parse(_record(body).to_xml())


def test_nothing_left_is_none() -> None:
    for html in ("", "   ", "<p> </p>", "<script>alert(1)</script>", "<!-- only -->", "<br>"):
        assert sanitize_html(html) is None, html


def test_deep_nesting_is_flattened_below_the_body_limit() -> None:
    body = sanitize_html("<div>" * 60 + "深" + "</div>" * 60)
    assert body is not None and "深" in body
    assert body.count("<div") <= 50
    hub.records.parse(_record(body).to_xml())


def test_nesting_past_the_record_limit_is_a_problem_not_a_silent_loss() -> None:
    # libxml2's HTML parser drops what lies below 256 levels: refused before it gets there
    with pytest.raises(InputError, match=r"page\.html: body: the HTML is nested 300 levels"):
        sanitize_html("<div>" * 300 + "深" + "</div>" * 300, where="page.html")


def test_safe_url() -> None:
    assert safe_url("/a b.html", "http://x.cn/d/") == "http://x.cn/a%20b.html"
    assert safe_url("javascript:alert(1)") is None
    assert safe_url("data:text/plain,x", "http://x.cn/") is None
    assert safe_url("ftp://x.cn/f") is None
    assert safe_url("../up.html") == "../up.html"
    assert safe_url("https://x.cn/路径") == "https://x.cn/%E8%B7%AF%E5%BE%84"


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<b>政务</b> &amp; 公开", "政务 & 公开"),
        ("a \n\t b", "a b"),
        ("<script>x()</script>only", "only"),
        ("1 &lt; 2", "1 < 2"),
        ("", ""),
        # Cells, items, paragraphs and line breaks keep their texts apart; inline elements
        # join theirs as written.
        ("<table><tr><td>PM2.5</td><td>31微克/立方米</td></tr></table>", "PM2.5 31微克/立方米"),
        ("<ul><li>一</li><li>二</li></ul><p>三</p><p>四<br>五</p>", "一 二 三 四 五"),
        ("<p>国务院<span>办公厅</span><b>通知</b></p>", "国务院办公厅通知"),
        ("<TD>大写</TD><Th>标签</Th>", "大写 标签"),
    ],
)
def test_plain_text(html: str, text: str) -> None:
    assert plain_text(html) == text
