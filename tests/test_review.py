"""The confidentiality review: markings and mentions, sensitive terms, personal data."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub import records
from hub.errors import ConfigInvalid, RecordInvalid
from hub.records import XHTML_NS, Record
from hub.review import FIELDS, Finding, Reviewer, ReviewPolicy, body_text, read_terms
from hub.review.terms import MAX_TERM_CHARACTERS, TermMatcher

EXAMPLES = Path(__file__).parent.parent / "examples" / "records"
BASE = records.parse((EXAMPLES / "document.xml").read_bytes())
DEFAULT = Reviewer(ReviewPolicy())
TITLE = "涉县人民政府办公室关于切实做好冬春季森林草原防灭火工作的通知"

# GB 11643-1999, written out again here as an independent reading of the standard.
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)

RECORD_TEXT_FIELDS = FIELDS[:3]  # title, summary, body: the fields the helpers below fill


def check_char(first17: str) -> str:
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def valid_id(division: str, birth: str, sequence: str) -> str:
    return division + birth + sequence + check_char(division + birth + sequence)


def xhtml(*paragraphs: str) -> str:
    return "".join(f'<p xmlns="{XHTML_NS}">{text}</p>' for text in paragraphs)


def record(title: str = TITLE, summary: str | None = None, body: str | None = None) -> Record:
    return dataclasses.replace(BASE, title=title, summary=summary, body=body)


def put(field: str, text: str) -> Record:
    """A record carrying ``text`` in ``field`` (for the body: its first paragraph)."""
    if field == "title":
        return record(title=text)
    if field == "summary":
        return record(summary=text)
    return record(body=xhtml(text, "各乡镇人民政府，县政府有关部门：现就有关事项通知如下。"))


def plain(rec: Record, field: str) -> str:
    text = {"title": rec.title, "summary": rec.summary, "body": rec.body}[field]
    assert text is not None
    return body_text(text) if field == "body" else text


def only(findings: tuple[Finding, ...], rule: str) -> Finding:
    matching = [finding for finding in findings if finding.rule == rule]
    assert len(matching) == 1, findings
    return matching[0]


def assert_located(rec: Record, finding: Finding) -> None:
    """The finding's text (masked digits aside) is where its start says in the field's text."""
    there = plain(rec, finding.field)[finding.start : finding.start + len(finding.text)]
    assert len(there) == len(finding.text)
    assert all(shown in (char, "*") for char, shown in zip(there, finding.text, strict=True))


# --- clean records ----------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.xml")), ids=lambda p: p.name)
def test_real_example_records_have_no_findings(path: Path) -> None:
    reviewer = Reviewer(ReviewPolicy(("法轮功", "藏独", "疆独", "六四事件", "翻墙软件")))
    assert reviewer.review(records.parse(path.read_bytes(), path.name)) == ()


def test_a_record_read_from_xml_is_held_for_its_marking_and_phone_number() -> None:
    text = (EXAMPLES / "notice.xml").read_text(encoding="utf-8")
    first = f'<p xmlns="{XHTML_NS}">各乡镇人民政府'
    assert first in text
    text = text.replace(first, f'<p xmlns="{XHTML_NS}">秘密★1年</p>{first}', 1)
    text = text.replace("</summary>", "联系人：王某，电话：139 2345 6789。</summary>", 1)
    rec = records.parse(text.encode(), "notice.xml")
    found = DEFAULT.review(rec)
    assert [(f.rule, f.field, f.text) for f in found] == [
        ("mobile", "summary", "139 **** **89"),
        ("classification", "body", "秘密★1年"),
    ]
    assert all(f.holds for f in found)
    for finding in found:
        assert_located(rec, finding)


# --- classification markings -----------------------------------------------------------

STARRED = [
    "秘密★1年",
    "机密★10年",
    "绝密★长期",
    "绝密★启用前",
    "★秘密",
    "秘密★",
    "内部★",
    "机密☆",
    "秘密*",
    "机密＊5年",  # full-width asterisk
    "秘密★１年",  # full-width digit
    "★机密★6个月",
]


@pytest.mark.parametrize("field", RECORD_TEXT_FIELDS)
@pytest.mark.parametrize("form", STARRED)
def test_starred_marking_holds_in_every_field(form: str, field: str) -> None:
    rec = put(field, form)
    finding = only(DEFAULT.review(rec), "classification")
    assert (finding.field, finding.text, finding.start, finding.holds) == (field, form, 0, True)
    assert finding.reason == f"{field} carries the classification marking '{form}'"


def test_starred_marking_holds_inside_running_text_too() -> None:
    rec = record(summary="本通知为机密★1年文件，请按规定传达。")
    finding = only(DEFAULT.review(rec), "classification")
    assert (finding.text, finding.start, finding.holds) == ("机密★1年", 4, True)


STANDALONE = [
    "绝密",
    "机密",
    "秘密",
    "内部",
    "国家秘密",
    "工作秘密",
    "内部资料",
    "内部文件",
    "注意保密",
    "严禁外传",
]


@pytest.mark.parametrize("field", RECORD_TEXT_FIELDS)
@pytest.mark.parametrize("phrase", STANDALONE)
def test_marking_phrase_alone_on_its_line_holds_in_every_field(phrase: str, field: str) -> None:
    rec = put(field, phrase)
    finding = only(DEFAULT.review(rec), "classification")
    assert (finding.field, finding.text, finding.start, finding.holds) == (field, phrase, 0, True)
    assert finding.reason.endswith("on a line of its own")


@pytest.mark.parametrize("field", RECORD_TEXT_FIELDS)
@pytest.mark.parametrize(
    ("text", "marking"),
    [
        (f"{TITLE}【内部】", "内部"),
        (f"{TITLE}（内部）", "内部"),
        (f"{TITLE}(内部资料)", "内部资料"),
        (f"〔机密〕{TITLE}", "机密"),
        (f"[注意保密]{TITLE}", "注意保密"),
    ],
)
def test_marking_phrase_in_its_own_brackets_holds(text: str, marking: str, field: str) -> None:
    rec = put(field, text)
    finding = only(DEFAULT.review(rec), "classification")
    assert (finding.text, finding.holds) == (marking, True)
    assert finding.reason.endswith("in brackets")
    assert_located(rec, finding)


def test_document_head_with_copy_number_marking_and_urgency_holds() -> None:
    # GB/T 9704 layout: copy number, 密级和保密期限, urgency, each on its own line.
    rec = record(body=xhtml("000012<br/>机密★1年<br/>特急", "国务院办公厅关于……的通知"))
    finding = only(DEFAULT.review(rec), "classification")
    assert (finding.text, finding.start, finding.holds) == ("机密★1年", 7, True)
    assert_located(rec, finding)


@pytest.mark.parametrize(
    ("line", "marking"), [("内部资料 注意保存", "内部资料"), ("机密　特急", "机密")]
)
def test_marking_phrase_at_the_head_of_a_line_before_a_space_holds(line: str, marking: str) -> None:
    rec = record(body=xhtml(line, "各区人民政府："))
    finding = only(DEFAULT.review(rec), "classification")
    assert (finding.text, finding.start, finding.holds) == (marking, 0, True)
    assert finding.reason.endswith("at the head of a line")


@pytest.mark.parametrize(
    ("written", "field"),
    [
        ("机 密★1年", "title"),
        ("秘　密", "body"),  # ideographic space, alone on its line
        ("绝\u200b密★长期", "summary"),  # zero-width space
        ("★ 秘 密", "body"),
        ("内\ufeff部资料", "body"),
    ],
)
def test_spaced_or_zero_width_marking_still_holds(written: str, field: str) -> None:
    rec = put(field, written)
    finding = only(DEFAULT.review(rec), "classification")
    assert (finding.text, finding.start, finding.holds) == (written, 0, True)


@pytest.mark.parametrize(
    ("text", "mentioned"),
    [
        ("依法确定为国家秘密的政府信息，不予公开。", ["国家秘密"]),
        ("关于做好2024年度国家秘密定密管理工作的通知", ["国家秘密"]),
        ("严禁将内部资料、内部文件上传至互联网政务平台。", ["内部资料", "内部文件"]),
        ("保密工作人员要注意保密，涉密文件严禁外传。", ["注意保密", "严禁外传"]),
        ("对工作秘密、绝密级和机密级载体实行专人管理。", ["工作秘密", "绝密", "机密"]),
        ("根据保守国家秘密法第十三条的规定", ["国家秘密"]),
    ],
)
@pytest.mark.parametrize("field", RECORD_TEXT_FIELDS)
def test_words_in_running_text_are_mentions_that_do_not_hold(
    text: str, mentioned: list[str], field: str
) -> None:
    rec = put(field, text)
    found = DEFAULT.review(rec)
    assert [f.text for f in found] == mentioned
    assert all(f.rule == "classification" and f.severity == "mention" for f in found)
    assert not any(f.holds for f in found)
    assert "does not hold the record" in found[0].reason
    for finding in found:
        assert_located(rec, finding)


@pytest.mark.parametrize(
    "text",
    [
        "根据《中华人民共和国保守国家秘密法》和《中华人民共和国政府信息公开条例》，现将有关事项通知如下。",
        "《国家秘密定密管理暂行规定》自2014年3月9日起施行。",
        "涉及商业秘密、个人隐私等公开会对第三方合法权益造成损害的政府信息，行政机关不得公开。",
        "申请人不得泄露商业机密。",
        "保障政务数据的机密性、完整性和可用性。",
        "加强内部管理，健全内部审计和内部控制制度。",
        "做好保密工作，落实保密责任制。",
    ],
)
def test_law_titles_trade_secrets_and_everyday_words_are_not_even_mentions(text: str) -> None:
    assert DEFAULT.review(record(title=text, summary=text, body=xhtml(text))) == ()


def test_markings_are_not_checked_when_the_policy_says_so() -> None:
    reviewer = Reviewer(ReviewPolicy(check_markings=False))
    rec = record(title="秘密★1年", summary="内部资料", body=xhtml("依法确定为国家秘密的信息"))
    assert reviewer.review(rec) == ()


# --- sensitive terms --------------------------------------------------------------------


def terms_found(terms: tuple[str, ...], rec: Record) -> list[tuple[str, str, int]]:
    found = Reviewer(ReviewPolicy(terms, check_markings=False)).review(rec)
    assert all(f.rule == "sensitive-term" and f.holds for f in found)
    for finding in found:
        assert_located(rec, finding)
    return [(f.field, f.text, f.start) for f in found]


@pytest.mark.parametrize("field", RECORD_TEXT_FIELDS)
def test_term_is_found_in_every_field(field: str) -> None:
    rec = put(field, "近期有人在网上传播翻墙软件下载链接。")
    assert terms_found(("翻墙软件",), rec) == [(field, "翻墙软件", 9)]


def test_term_reason_names_the_configured_term_and_how_it_was_written() -> None:
    rec = record(summary="传播ＦＬＧ材料")
    finding = only(Reviewer(ReviewPolicy(("flg",))).review(rec), "sensitive-term")
    assert finding.text == "ＦＬＧ"
    assert finding.reason == "summary contains the sensitive term 'flg', written 'ＦＬＧ'"


@pytest.mark.parametrize(
    ("term", "written"),
    [
        ("flg", "ＦＬＧ"),  # full-width letters
        ("FLG", "flg"),  # case
        ("ＦＬＧ", "Flg"),  # full-width term
        ("8964", "８９６４"),  # full-width digits
        ("法轮功", "法 轮 功"),  # spaces between CJK characters
        ("法轮功", "法\u200b轮\u200d功"),  # zero-width characters
        ("法轮功", "法　轮　功"),  # ideographic spaces
        ("法 轮 功", "法轮功"),  # a spaced term in the list
    ],
)
def test_term_variants_are_matched(term: str, written: str) -> None:
    rec = record(summary=f"有人传播{written}相关材料")
    assert terms_found((term,), rec) == [("summary", written, 4)]


def test_overlapping_and_repeated_terms_are_all_reported() -> None:
    rec = record(title="中国人民，中国人")
    assert sorted(terms_found(("中国", "中国人", "国人", "人民"), rec)) == [
        ("title", "中国", 0),
        ("title", "中国", 5),
        ("title", "中国人", 0),
        ("title", "中国人", 5),
        ("title", "人民", 2),
        ("title", "国人", 1),
        ("title", "国人", 6),
    ]
    assert terms_found(("哈哈",), record(title="哈哈哈")) == [
        ("title", "哈哈", 0),
        ("title", "哈哈", 1),
    ]


def test_term_offsets_count_original_characters() -> None:
    # "…" and "⑩" fold to more than one character, the zero-width space to none.
    rec = record(body=xhtml("……⑩\u200b各地翻墙软件"))
    assert terms_found(("翻墙软件",), rec) == [("body", "翻墙软件", 6)]


def test_inline_markup_does_not_hide_a_term_but_a_block_boundary_separates() -> None:
    assert terms_found(("翻墙软件",), record(body=xhtml("下载<strong>翻墙</strong>软件"))) == [
        ("body", "翻墙软件", 2)
    ]
    assert terms_found(("翻墙软件",), record(body=xhtml("严禁翻墙", "软件下载"))) == []


def test_tags_and_attributes_of_the_body_are_not_matched() -> None:
    body = (
        f'<p xmlns="{XHTML_NS}" title="秘密★1年" class="翻墙软件">详见'
        '<a href="https://www.example.gov.cn/13800138000/11010519491231002X/翻墙软件.htm">'
        "附件</a>"
        '<img src="https://www.example.gov.cn/x.png" alt="机密★1年 13900139000"/></p>'
    )
    rec = record(body=body)
    assert body_text(body) == "详见附件"
    assert Reviewer(ReviewPolicy(("翻墙软件", "example", "p"))).review(rec) == ()


def test_single_character_terms_and_empty_terms() -> None:
    rec = record(title="甲乙丙")
    assert terms_found(("乙", "", "  "), rec) == [("title", "乙", 1)]


def test_thousands_of_terms_find_the_one_that_is_there() -> None:
    seeds = [(i * 1103515245 + 12345) % 2**31 for i in range(5000)]  # an LCG step each
    terms = [
        "".join(chr(0x4E00 + seed // 3000**k % 3000) for k in range(2 + seed % 2)) for seed in seeds
    ]
    terms = [term for term in terms if term not in TITLE]
    assert len(set(terms)) > 4900
    terms.insert(2500, "森林草原")
    assert terms_found(tuple(terms), record()) == [("title", "森林草原", TITLE.index("森林草原"))]


@given(
    terms=st.lists(st.text(alphabet="中国人民ab𠀀", min_size=1, max_size=4), max_size=30),
    text=st.text(alphabet="中国人民ab𠀀 ", max_size=40),
)
def test_matcher_finds_exactly_what_a_brute_force_search_finds(terms: list[str], text: str) -> None:
    expected = sorted(
        {(i, term) for term in terms for i in range(len(text)) if text.startswith(term, i)}
    )
    assert TermMatcher(terms).find(text) == expected


# --- ID numbers -------------------------------------------------------------------------

PUBLIC_SAMPLES = [
    "11010519491231002X",  # the example of GB 11643-1999 (Beijing, Chaoyang)
    "440524188001010014",  # the standard's second example (Guangdong, Shantou)
]


@pytest.mark.parametrize("number", PUBLIC_SAMPLES)
def test_public_sample_ids_are_valid_and_found(number: str) -> None:
    assert check_char(number[:17]) == number[17]
    rec = record(summary=f"申请人身份证号码：{number}。")
    finding = only(DEFAULT.review(rec), "id-number")
    assert (finding.field, finding.start, finding.holds) == ("summary", 9, True)
    assert finding.text == number[:3] + "*" * 13 + number[-2:]
    assert number not in finding.reason and finding.text in finding.reason


@pytest.mark.parametrize(
    ("division", "birth", "sequence"),
    [
        ("130426", "19850317", "123"),
        ("440304", "20000229", "007"),  # leap day
        ("650102", "19011001", "580"),
        ("810000", "19900101", "001"),  # Hong Kong residents' residence permit
        ("511702", date.today().strftime("%Y%m%d"), "042"),  # born today
    ],
)
@pytest.mark.parametrize("field", RECORD_TEXT_FIELDS)
def test_generated_valid_ids_are_found_in_every_field(
    division: str, birth: str, sequence: str, field: str
) -> None:
    number = valid_id(division, birth, sequence)
    text = f"经核实，当事人（身份证号{number}）已补办手续。"
    rec = put(field, text)
    finding = only(DEFAULT.review(rec), "id-number")
    assert (finding.field, finding.start) == (field, text.index(number))
    assert finding.text == number[:3] + "*" * 13 + number[-2:]
    assert not [f for f in DEFAULT.review(rec) if f.rule == "mobile"]


@pytest.mark.parametrize(
    "written",
    [
        "11010519491231002x",
        "１１０１０５１９４９１２３１００２Ｘ",
        "110105 19491231 002X",
        "110105-19491231-002X",
    ],
)
def test_id_written_with_lower_case_x_full_width_or_grouped_is_found(written: str) -> None:
    rec = record(summary=f"身份证号：{written}")
    finding = only(DEFAULT.review(rec), "id-number")
    assert (finding.start, finding.text[:3], finding.text[-2:]) == (5, written[:3], written[-2:])


def wrong_check(number: str) -> str:
    return number[:17] + next(c for c in "0123456789X" if c != number[17])


@pytest.mark.parametrize(
    "text",
    [
        wrong_check("11010519491231002X"),
        wrong_check(valid_id("130426", "19850317", "123")),
        valid_id("110105", "19490230", "002"),  # 30 February
        valid_id("110105", "19491301", "002"),  # month 13
        valid_id("110105", "20230229", "002"),  # not a leap year
        valid_id("110105", "17991231", "002"),  # before 1800
        valid_id("110105", (date.today() + timedelta(days=1)).strftime("%Y%m%d"), "002"),
        valid_id("991234", "19491231", "002"),  # no such province
        "1" + valid_id("110105", "19491231", "002"),  # inside a longer run of digits
        valid_id("110105", "19491231", "002") + "7",
        "0011010519491231002X",
    ],
)
def test_invalid_ids_and_longer_digit_runs_are_ignored(text: str) -> None:
    assert DEFAULT.review(record(summary=f"编号：{text}。")) == ()


# --- mobile numbers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("13800138000", "138******00"),
        ("138 0013 8000", "138 **** **00"),
        ("138-0013-8000", "138-****-**00"),
        ("１３８００１３８０００", "１３８******００"),
        ("199 1234 5678", "199 **** **78"),
    ],
)
@pytest.mark.parametrize("field", RECORD_TEXT_FIELDS)
def test_mobile_numbers_are_found_and_masked(written: str, shown: str, field: str) -> None:
    rec = put(field, f"联系人：李某，联系电话：{written}。")
    finding = only(DEFAULT.review(rec), "mobile")
    assert (finding.field, finding.text, finding.start, finding.holds) == (field, shown, 12, True)
    assert finding.reason == f"{field} contains the mobile number {shown}"


@pytest.mark.parametrize(
    ("written", "start"),
    [
        ("+86 13800138000", 4),
        ("+8613800138000", 3),
        ("+86-138-0013-8000", 4),
        ("(+86)13800138000", 5),
        ("（＋８６）１３８ ００１３ ８０００", 5),
        ("008613800138000", 4),
    ],
)
def test_mobile_numbers_after_a_country_code(written: str, start: int) -> None:
    rec = record(summary=f"电话：{written}")
    finding = only(DEFAULT.review(rec), "mobile")
    assert finding.start == 3 + start
    assert finding.text.startswith(("138", "１３８")) and finding.text.count("*") == 6


@pytest.mark.parametrize(
    "text",
    [
        "12800138000",  # 12 is no mobile prefix
        "10086",
        "1380013800",  # 10 digits
        "138001380001",  # 12 digits
        "813800138000",
        "8613800138000",  # a country code needs + or 00
        "全市财政收入15000000000元",  # an amount
        "合计13900000000 万元",
        "电话：010-12345678，邮编：100017",
        "索引号：000014349/2018-00226",
        "2021年全省实现地区生产总值124369.67亿元",
        "坐标 3.13800138000",
    ],
)
def test_non_mobile_numbers_are_ignored(text: str) -> None:
    assert DEFAULT.review(record(summary=text)) == ()


def test_personal_data_is_not_checked_when_the_policy_says_so() -> None:
    reviewer = Reviewer(ReviewPolicy(check_personal_data=False))
    assert reviewer.review(record(summary="13800138000，11010519491231002X")) == ()


def test_findings_never_carry_the_full_number() -> None:
    rec = record(summary="王某 13800138000，身份证 11010519491231002X")
    found = DEFAULT.review(rec)
    assert [f.rule for f in found] == ["mobile", "id-number"]
    assert "13800138000" not in repr(found) and "11010519491231002X" not in repr(found)
    assert "0013800" not in repr(found) and "0519491231" not in repr(found)


# --- findings and the body --------------------------------------------------------------


def test_findings_come_field_by_field_in_text_order() -> None:
    rec = record(
        title="秘密★1年 翻墙软件",
        summary="电话13800138000",
        body=xhtml("内部资料", "依法确定为国家秘密的政府信息"),
    )
    found = Reviewer(ReviewPolicy(("翻墙软件",))).review(rec)
    assert [(f.field, f.rule, f.start, f.severity) for f in found] == [
        ("title", "classification", 0, "hold"),
        ("title", "sensitive-term", 6, "hold"),
        ("summary", "mobile", 2, "hold"),
        ("body", "classification", 0, "hold"),
        ("body", "classification", 10, "mention"),
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        found[0].start = 1  # type: ignore[misc]


def test_body_text_puts_each_block_on_its_own_line() -> None:
    body = (
        xhtml("第一段", "第二<em>段</em>")
        + f'<ul xmlns="{XHTML_NS}"><li>甲</li><li>乙<br/>丙</li></ul>'
    )
    assert body_text(body) == "第一段\n第二段\n甲\n乙\n丙"


def test_a_body_that_is_not_xml_is_refused() -> None:
    with pytest.raises(RecordInvalid, match="body: is not well-formed XHTML"):
        DEFAULT.review(record(body="<p>未闭合"))


# --- terms file -------------------------------------------------------------------------


def test_terms_file_skips_comments_and_blanks_and_collapses_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "terms.txt"
    path.write_bytes(
        "\ufeff# 本节点敏感词表\n法轮功\n\n  翻墙软件  \r\n# 注释\nＦＬＧ\nFLG\n法轮功\n#标签#\n"
        "C# 语言 #1\n".encode()
    )
    assert read_terms(path) == ("法轮功", "翻墙软件", "FLG", "C# 语言 #1")
    policy = ReviewPolicy.from_terms_file(path, check_personal_data=False)
    assert policy == ReviewPolicy(("法轮功", "翻墙软件", "FLG", "C# 语言 #1"), False, True)
    assert terms_found(policy.sensitive_terms, record(title="下载翻墙软件")) == [
        ("title", "翻墙软件", 2)
    ]


def test_terms_file_errors_name_the_file_and_every_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "terms.txt"
    too_long = "长" * (MAX_TERM_CHARACTERS + 1)
    path.write_bytes(b"\xe6\xb3\x95\xe8\xbd\xae\n\xff\xfe bad\n" + too_long.encode() + b"\nok\n")
    with pytest.raises(ConfigInvalid) as caught:
        read_terms(path)
    lines = str(caught.value).splitlines()
    assert lines == [
        f"{path}:2: term: is not valid UTF-8 (byte 0xff at byte 1) (expected UTF-8 text, one"
        " term per line, '#' starting a comment line)",
        f"{path}:3: term: is 101 characters long, over the limit of 100 (expected one short"
        " term per line)",
    ]


def test_missing_terms_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid, match=r"missing\.txt: terms: cannot be read"):
        ReviewPolicy.from_terms_file(tmp_path / "missing.txt")


def test_interaction_messages_are_reviewed_for_personal_data() -> None:
    import dataclasses
    from pathlib import Path

    from hub import records
    from hub.review import Reviewer, ReviewPolicy

    path = Path(__file__).parent.parent / "examples" / "records" / "interaction.xml"
    record = records.parse(path.read_bytes())
    assert record.interaction is not None
    question = record.interaction.question + "联系电话：13800138000"
    leaky = dataclasses.replace(
        record, interaction=dataclasses.replace(record.interaction, question=question)
    )
    findings = Reviewer(ReviewPolicy()).review(leaky)
    assert [(f.rule, f.field) for f in findings if f.holds] == [("mobile", "interaction/question")]
    assert "138" in findings[-1].text and "13800138000" not in findings[-1].text
