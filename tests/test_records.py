"""The record model: parsing, validation errors, the rules beyond XSD, output."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from hub import records
from hub.records import Record, RecordInvalid

EXAMPLES = Path(__file__).parent.parent / "examples" / "records"
DOCUMENT = (EXAMPLES / "document.xml").read_bytes()


def edit(old: str, new: str, data: bytes = DOCUMENT) -> bytes:
    text = data.decode()
    assert old in text, f"test setup: {old!r} not in the record"
    return text.replace(old, new, 1).encode()


def problems_of(data: bytes) -> list[str]:
    return [str(problem) for problem in records.problems(data, "record.xml")]


def only_problem(data: bytes) -> str:
    found = problems_of(data)
    assert len(found) == 1, found
    return found[0]


# --- examples -------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.xml")), ids=lambda p: p.name)
def test_every_example_is_valid_and_round_trips(path: Path) -> None:
    record = records.parse(path.read_bytes(), path.name)
    assert records.parse(record.to_xml()) == record
    assert records.parse(record.to_xml(pretty=False)) == record


def test_examples_cover_every_kind() -> None:
    kinds = {records.parse(p.read_bytes()).kind for p in EXAMPLES.glob("*.xml")}
    assert kinds == set(records.KINDS)


def test_document_fields_are_read() -> None:
    record = records.parse(DOCUMENT)
    assert record.kind == "document"
    assert record.id == "urn:govhub:cn:000014349-2018-00226"
    assert (record.node, record.local_id) == ("cn", "000014349-2018-00226")
    assert record.origin == records.Origin("cn", "bm01000001")
    assert record.index_number == "000014349/2018-00226"
    assert record.issuers == ("国务院办公厅",)
    assert record.topic == records.Topic("综合政务", "政务公开")
    assert record.created == date(2018, 12, 5)
    assert record.published == datetime(2019, 1, 3, 17, 30, tzinfo=timezone(timedelta(hours=8)))
    assert record.disclosure == records.Disclosure("proactive", "public", "permanent")
    assert record.body is not None and record.body.startswith("<p xmlns=")
    assert record.language == "zh-Hans"
    assert record.lines["indexNumber"] == 6


def test_doc_number_has_a_normal_form() -> None:
    variants = ["国办发[2018]118号", "国办发（2018）118号", "国办发〔２０１８〕１１８号"]
    for variant in variants:
        record = records.parse(edit("国办发〔2018〕118号", variant))
        assert record.doc_number == variant  # stored as written
        assert record.doc_number_normalised == "国办发〔2018〕118号"


# --- canonical form and content hash ----------------------------------------


def test_canonical_form_ignores_layout_and_attribute_order() -> None:
    relaid = edit(
        '<origin node="cn" site="bm01000001"/>',
        '<origin   site="bm01000001"\n node="cn" ></origin>',
    )
    relaid = edit("<revision>1</revision>", "<revision>\n  1\n</revision>", relaid)
    a, b = records.parse(DOCUMENT), records.parse(relaid)
    assert a == b
    assert a.canonical() == b.canonical()
    assert a.content_hash() == b.content_hash()


def test_content_hash_leaves_out_revision_and_updated() -> None:
    first = records.parse(DOCUMENT)
    later = dataclasses.replace(first, revision=7, updated=first.published + timedelta(days=2))
    changed = dataclasses.replace(first, title=first.title + "（修订）")
    assert later.content_hash() == first.content_hash()
    assert later.canonical() != first.canonical()
    assert changed.content_hash() != first.content_hash()


def test_utc_spelling_is_the_same_instant() -> None:
    zulu = records.parse(edit("2019-01-03T17:30:00+08:00", "2019-01-03T09:30:00Z"))
    assert zulu.published == records.parse(DOCUMENT).published


# --- schema errors: field path, line, what is wrong, what is right ----------


def test_index_number_error_names_line_field_value_and_fix() -> None:
    message = only_problem(edit("000014349/2018-00226", "00001434/2006-166"))
    assert message == (
        "record.xml:6: indexNumber: '00001434/2006-166' is not a valid index number "
        "(expected ORGCODE/YYYY-NNNNN, e.g. 000014349/2006-00166)"
    )


def test_all_schema_errors_are_reported_at_once() -> None:
    data = edit("<revision>1</revision>", "<revision>0</revision>")
    data = edit('class="综合政务"', 'class="综合"', data)
    data = edit("<genre>意见</genre>", "<genre>指示</genre>", data)
    found = problems_of(data)
    assert [p.split(": ")[0:2] for p in found] == [
        ["record.xml:4", "revision"],
        ["record.xml:12", "topic/@class"],
        ["record.xml:13", "genre"],
    ]
    assert "'指示' is not a valid genre (expected one of 命令" in found[2]


def test_missing_required_element_says_what_is_missing() -> None:
    data = edit("<title>", "<!--", DOCUMENT)
    data = edit("</title>", "-->", data)
    message = only_problem(data)
    assert message.startswith(
        "record.xml:8: issuers: element 'issuers' is not allowed here; the next element may be title"
    )
    assert "(expected title: the document's title" in message


def test_missing_attribute_and_unknown_attribute() -> None:
    data = edit('<origin node="cn" site="bm01000001"/>', '<origin node="cn" colour="red"/>')
    found = problems_of(data)
    assert (
        "record.xml:5: origin/@colour: attribute is not allowed (expected one of node, site)"
        in found
    )
    assert any(
        p.startswith("record.xml:5: origin/@site: is required but missing (expected 6-digit")
        for p in found
    )


def test_elements_out_of_order_are_refused() -> None:
    data = edit("<genre>意见</genre>", "")
    data = edit("<created>", "<genre>意见</genre><created>", data)
    assert problems_of(data) == []  # the right place
    wrong = edit(
        "<urgency>routine</urgency>",
        "<urgency>routine</urgency><genre>意见</genre>",
        data.replace("<genre>意见</genre>".encode(), b""),
    )
    assert "genre" in only_problem(wrong)


def test_blank_title_is_refused() -> None:
    title = records.parse(DOCUMENT).title
    message = only_problem(edit(title, "   "))
    assert message.startswith("record.xml:7: title: '   ' is not a valid title")


def test_wrong_namespace_is_explained() -> None:
    message = only_problem(edit('xmlns="urn:govhub:record:1"', 'xmlns="urn:govhub:record:2"'))
    assert message == (
        "record.xml:2: record: <record> in namespace 'urn:govhub:record:2' is not a govhub record "
        '(expected <record xmlns="urn:govhub:record:1">)'
    )


# --- rules beyond XSD --------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "000014349/2018-00226",
            "000014348/2018-00226",
            "record.xml:6: indexNumber: organisation code '000014348' fails its check character (GB 11714)",
        ),
        (
            "000014349/2018-00226",
            "000014349/2017-00226",
            "record.xml:6: indexNumber: year 2017 matches neither created nor published (2018 or 2019)",
        ),
        (
            "<created>2018-12-05</created>",
            "<created>2019-12-05</created>",
            "record.xml:15: published: published 2019-01-03 is before created 2019-12-05",
        ),
        (
            "<id>urn:govhub:cn:",
            "<id>urn:govhub:gd:",
            "record.xml:3: id: id names node 'gd' but origin/@node is 'cn' (expected urn:govhub:cn:",
        ),
        (
            "<status>active</status>",
            "<status>withdrawn</status>",
            "record.xml:27: status/@reason: a withdrawn record must say why",
        ),
        (
            'duration="permanent"',
            'duration="permanent" until="2030-01-01"',
            "record.xml:17: disclosure/@until: until is given but the duration is not limited",
        ),
        (
            'xml:lang="zh-Hans"',
            'xml:lang="fr"',
            "record.xml:2: record/@xml:lang: language 'fr' is not one govhub serves",
        ),
        (
            'site="bm01000001"',
            'site="9900000001"',
            "record.xml:5: origin/@site:",
        ),
        (
            "<urgency>routine</urgency>",
            '<relations><relation type="amends"/></relations><urgency>routine</urgency>',
            "record.xml:26: relations/relation: a relation needs a target",
        ),
        (
            "<urgency>routine</urgency>",
            '<relations><relation type="amends" ref="urn:govhub:cn:000014349-2018-00226"/></relations>'
            "<urgency>routine</urgency>",
            "record.xml:26: relations/relation/@ref: a record cannot relate to itself",
        ),
    ],
    ids=[
        "check-char",
        "index-year",
        "dates-order",
        "id-node",
        "withdrawn-reason",
        "until",
        "language",
        "site-division",
        "relation-target",
        "relation-self",
    ],
)
def test_rule(old: str, new: str, expected: str) -> None:
    found = problems_of(edit(old, new))
    assert any(p.startswith(expected) for p in found), found


def test_withdrawn_needs_reason_and_time_and_keeps_them() -> None:
    data = edit(
        "<status>active</status>",
        '<status reason="内容有误" at="2019-01-04T09:00:00+08:00">withdrawn</status>',
    )
    record = records.parse(data)
    assert record.withdrawn and record.status is not None
    assert record.status.reason == "内容有误"
    assert problems_of(
        edit("<status>active</status>", '<status reason="内容有误">withdrawn</status>')
    ) == [
        "record.xml:27: status/@at: a withdrawn record must say when "
        '(expected at="2020-01-01T00:00:00+08:00" on <status>)'
    ]


def test_kind_specific_sections() -> None:
    service = "<service><name>建设工程规划许可证核发</name></service>"
    misplaced = edit("<status>active</status>", "<status>active</status>" + service)
    assert any(
        "<service> belongs only to records of kind 'service'" in p for p in problems_of(misplaced)
    )
    bare = edit('kind="document"', 'kind="service"')
    assert any("a service record needs a <service> section" in p for p in problems_of(bare))
    bare = edit('kind="document"', 'kind="interaction"')
    assert any(
        "an interaction record needs an <interaction> section" in p for p in problems_of(bare)
    )


def test_published_before_created_on_the_same_day_is_fine_across_offsets() -> None:
    # 2018-12-05T00:30+08:00 is still 12-05 where it was published, though 12-04 in UTC.
    data = edit("2019-01-03T17:30:00+08:00", "2018-12-05T00:30:00+08:00")
    assert problems_of(data) == []


# --- sanitized bodies ------------------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        (
            "<script>alert(1)</script>",
            "body/script: element 'script' is not allowed in a sanitized body",
        ),
        (
            '<p onclick="alert(1)">x</p>',
            "body/p/@onclick: attribute 'onclick' is not allowed on 'p'",
        ),
        (
            '<p style="background:url(javascript:x)">x</p>',
            "body/p/@style: attribute 'style' is not allowed",
        ),
        ('<a href="javascript:alert(1)">x</a>', "body/a/@href: unsafe URL 'javascript:alert(1)'"),
        ('<a href=" jav&#x09;ascript:alert(1)">x</a>', "body/a/@href: unsafe URL"),
        ('<img src="data:image/svg+xml;base64,PHN2Zz4=" alt=""/>', "body/img/@src: unsafe URL"),
        ("<iframe src='https://example.org'/>", "body/iframe: element 'iframe' is not allowed"),
    ],
    ids=["script", "onclick", "style", "javascript", "obfuscated", "data-url", "iframe"],
)
def test_unsafe_body_content_is_refused(markup: str, expected: str) -> None:
    body = f'<div xmlns="http://www.w3.org/1999/xhtml">{markup}</div>'
    found = problems_of(edit("<body>", f"<body>{body}"))
    assert any(expected in p.replace("body/div/", "body/") for p in found), found


def test_safe_links_and_tables_pass() -> None:
    body = (
        '<div xmlns="http://www.w3.org/1999/xhtml"><a href="/zhengce/">政策</a>'
        '<a href="https://www.gov.cn/">中国政府网</a><a href="mailto:ban@gov.cn">邮件</a>'
        '<table><tr><td colspan="2">合计</td></tr></table></div>'
    )
    record = records.parse(edit("<body>", f"<body>{body}"))
    assert record.body is not None and "中国政府网" in record.body


def test_body_whitespace_between_inline_elements_survives_round_trip() -> None:
    body = '<p xmlns="http://www.w3.org/1999/xhtml">甲 <b>乙</b> <i>丙</i></p>'
    record = records.parse(edit("<body>", f"<body>{body}"))
    again = records.parse(record.to_xml())
    assert again == record
    assert "</b> <i>" in (again.body or "")


# --- extensions -------------------------------------------------------------------------


def test_extension_elements_are_kept_and_forwarded() -> None:
    ext = '<x:ops xmlns:x="urn:example:gz-cms"><x:column id="42">政策文件</x:column></x:ops>'
    record = records.parse(edit("</record>", f"{ext}</record>"))
    assert len(record.extensions) == 1 and 'id="42"' in record.extensions[0]
    assert records.parse(record.to_xml()) == record


def test_api_refuses_text() -> None:
    with pytest.raises(TypeError, match="takes bytes"):
        records.parse(DOCUMENT.decode())  # type: ignore[arg-type]


def test_record_invalid_lists_problems() -> None:
    with pytest.raises(RecordInvalid) as caught:
        records.parse(edit("<revision>1</revision>", "<revision>x</revision>"), "a.xml")
    assert caught.value.problems[0].where == "a.xml"
    assert str(caught.value).startswith("a.xml:4: revision: 'x' is not a valid revision")


def test_model_is_immutable_value() -> None:
    record = records.parse(DOCUMENT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.title = "x"  # type: ignore[misc]
    assert isinstance(record, Record)
    assert record == records.parse(DOCUMENT) and hash(record.origin) == hash(
        records.Origin("cn", "bm01000001")
    )


def test_body_with_prefixes_declared_above_it_stays_self_contained() -> None:
    data = edit("<record ", '<record xmlns:h="http://www.w3.org/1999/xhtml" ')
    data = edit("<body>", "<body><h:p>前缀<h:b>加粗</h:b></h:p>", data)
    record = records.parse(data)
    assert record.body is not None and record.body.startswith(
        '<h:p xmlns:h="http://www.w3.org/1999/xhtml">'
    )
    assert records.parse(record.to_xml()) == record


def test_dates_the_schema_takes_but_python_cannot_hold_are_problems_every_time() -> None:
    """Origins, disclosures and statuses are built once per distinct value and shared;
    a value that fails is reported for each record that holds it, with its line."""
    withdrawn = edit(
        "<status>active</status>",
        '<status reason="内容有误" at="2019-01-04T24:00:00+08:00">withdrawn</status>',
    )
    for _ in range(2):
        assert only_problem(withdrawn).startswith("record.xml:27: status/@at: not a real date")


def test_token_values_are_collapsed_whatever_is_shared() -> None:
    spaced = records.parse(edit('mode="proactive"', 'mode="  proactive "'))
    plain = records.parse(DOCUMENT)
    assert spaced.disclosure == plain.disclosure
    assert spaced.disclosure is not None and spaced.disclosure.mode == "proactive"
