"""Tests for hub.codes: organisation codes, credit codes, index numbers, site codes, 发文字号."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.codes import (
    INDEX_NUMBER_EXPECTED,
    SITE_CODE_EXPECTED,
    index_number_problem,
    index_number_year,
    normalise_doc_number,
    org_code_check_char,
    org_code_problem,
    site_code_problem,
    uscc_check_char,
    uscc_problem,
)

# Written out again here (not imported) so the tests are an independent reading of the standards.
ORG_BODY_CHARS = string.digits + string.ascii_uppercase  # GB 11714: value = position
ORG_CHECK_CHARS = string.digits + "X"
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: value = position
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
PROVINCE_NUMBERS = (*range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47))
PROVINCES = [f"{n:02d}" for n in (*PROVINCE_NUMBERS, *range(50, 55), *range(61, 66), 71, 81, 82)]

# Real codes of government bodies, each seen on government pages or in their URLs.
REAL_ORG_CODES = [
    "000014349",  # 国务院办公厅, prefix of www.gov.cn index numbers
    "007280420",  # inside 11441700007280420Y
    "MB0341032",  # inside 11100000MB0341032Y
    "MB0327169",  # inside 11100000MB03271699
]
REAL_USCCS = [
    "11441700007280420Y",  # a Yangjiang (441700) government body, index-number prefix
    "111000000000143498",  # 国务院办公厅 (organisation code 000014349), in a 国办 service id
    "11100000MB0341032Y",  # 国家药品监督管理局, in zwfw.nmpa.gov.cn service item URLs
    "11100000MB03271699",  # 自然资源部, in gjzwfw.www.gov.cn map-review item URLs
]

org_bodies = st.text(alphabet=ORG_BODY_CHARS, min_size=8, max_size=8)
uscc_bodies = st.tuples(
    st.sampled_from("123456789ANY"),
    st.sampled_from("123456789"),
    st.sampled_from(PROVINCES),
    st.text(alphabet=string.digits, min_size=4, max_size=4),
    st.text(alphabet=USCC_CHARS, min_size=9, max_size=9),
).map("".join)


def replace_at(code: str, position: int, ch: str) -> str:
    return code[:position] + ch + code[position + 1 :]


# --- organisation code (GB 11714-1997) ---------------------------------------------------


@pytest.mark.parametrize("code", REAL_ORG_CODES)
def test_real_org_codes_pass(code: str) -> None:
    assert org_code_check_char(code[:8]) == code[8]
    assert org_code_problem(code) is None


@pytest.mark.parametrize(
    ("body", "check"),
    [
        ("00001434", "9"),  # 1*5 + 4*8 + 3*4 + 4*2 = 57; 57 mod 11 = 2; 11 - 2 = 9
        ("00000000", "0"),  # 11 - 0 = 11, written '0'
        ("00000006", "X"),  # 6*2 = 12; 12 mod 11 = 1; 11 - 1 = 10, written 'X'
        ("0000000A", "2"),  # A = 10: 10*2 = 20; 20 mod 11 = 9; 11 - 9 = 2
    ],
)
def test_org_code_check_char_worked_examples(body: str, check: str) -> None:
    assert org_code_check_char(body) == check


@pytest.mark.parametrize(
    "body", ["0000143", "000014349", "0000143a", "００００１４３４", "0000-434"]
)
def test_org_code_check_char_rejects_bad_bodies(body: str) -> None:
    with pytest.raises(ValueError, match="8 digits or capitals"):
        org_code_check_char(body)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("000014343", "check character is '3', should be '9'"),
        ("00001434X", "check character is 'X', should be '9'"),
        ("00001434", "has 8 characters; an organisation code has 9"),
        ("0000143a9", "must be digits or capital letters"),
        ("00001434A", "check character is 'A'; it must be a digit or X"),
        ("００００１４３４９", "full-width characters; write ASCII digits"),
        (" 000014349", "spaces around it"),
    ],
)
def test_org_code_problem_messages(code: str, words: str) -> None:
    problem = org_code_problem(code)
    assert problem is not None
    assert words in problem


@given(org_bodies)
def test_org_code_check_char_verifies(body: str) -> None:
    code = body + org_code_check_char(body)
    assert org_code_problem(code) is None
    # GB 11714 verification form: weighted body sum plus check value is divisible by 11.
    total = sum(ORG_BODY_CHARS.index(ch) * w for ch, w in zip(body, ORG_WEIGHTS, strict=True))
    assert (total + ORG_CHECK_CHARS.index(code[8])) % 11 == 0


@given(org_bodies, st.integers(0, 8), st.data())
def test_org_code_single_substitution(body: str, position: int, data: st.DataObject) -> None:
    code = body + org_code_check_char(body)
    allowed = ORG_CHECK_CHARS if position == 8 else ORG_BODY_CHARS
    new = data.draw(st.sampled_from([ch for ch in allowed if ch != code[position]]))
    detected = org_code_problem(replace_at(code, position, new)) is not None
    if position == 8 or (new.isdigit() and code[position].isdigit()):
        assert detected
    else:
        # Not guaranteed: body values run 0-35 but the sum is taken mod 11, so swapping a
        # character for one whose value differs by 11, 22 or 33 (e.g. '0' <-> 'B') goes unseen.
        # Every other substitution, and every digit-for-digit one, is caught.
        difference = ORG_BODY_CHARS.index(new) - ORG_BODY_CHARS.index(code[position])
        assert detected == (difference % 11 != 0)


def test_org_code_substitution_blind_spot() -> None:
    # '0' -> 'B' (value 11) at any body position keeps the sum mod 11: a known GB 11714 limit.
    assert org_code_problem("B00014349") is None
    assert org_code_problem("0000143F9") is None  # '4' (value 4) -> 'F' (value 15)
    assert org_code_problem("0000143E9") is not None  # 'E' (value 14) is caught


# --- unified social credit code (GB 32100-2015) ------------------------------------------


@pytest.mark.parametrize("code", REAL_USCCS)
def test_real_usccs_pass(code: str) -> None:
    assert uscc_check_char(code[:17]) == code[17]
    assert uscc_problem(code) is None


@pytest.mark.parametrize("code", REAL_USCCS)
def test_real_usccs_hold_a_valid_org_code(code: str) -> None:
    # Characters 9-17 are the body's organisation code (GB 11714), with its own check character.
    assert org_code_problem(code[8:17]) is None


@pytest.mark.parametrize(
    ("body", "check"),
    [
        ("00000000000000000", "0"),  # 31 - 0 = 31, written '0'
        ("10000000000000000", "Y"),  # 31 - 1 = 30, the last character of the alphabet
        ("00000000000000001", "3"),  # weight 28: 31 - 28 = 3
    ],
)
def test_uscc_check_char_worked_examples(body: str, check: str) -> None:
    assert uscc_check_char(body) == check


@pytest.mark.parametrize(
    "body", ["1144170000728042", "11441700007280420Y", "1144170000728042I", ""]
)
def test_uscc_check_char_rejects_bad_bodies(body: str) -> None:
    with pytest.raises(ValueError, match="17 characters"):
        uscc_check_char(body)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("11441700007280420X", "check character is 'X', should be 'Y'"),
        ("11441700007280420", "has 17 characters; a unified social credit code has 18"),
        ("11441700007280420y", "lower-case letters; write capitals"),
        ("11441700007280I20Y", "'I' is not a code character"),
        ("B1441700007280420Y", "registration department 'B' (1st character) is not one of"),
        ("10441700007280420Y", "organisation category '0' (2nd character) is not a digit 1-9"),
        ("1199170000728042Y0", "characters 3-8: administrative division code '991700' does not"),
        ("11A41700007280420Y", "characters 3-8: administrative division code 'A41700' must be 6"),
        ("１１441700007280420Y", "full-width characters; write ASCII digits"),
    ],
)
def test_uscc_problem_messages(code: str, words: str) -> None:
    problem = uscc_problem(code)
    assert problem is not None
    assert words in problem


@given(uscc_bodies)
def test_uscc_check_char_verifies(body: str) -> None:
    code = body + uscc_check_char(body)
    assert uscc_problem(code) is None
    # GB 32100 verification form: with weight 1 for the check character, the sum is 0 mod 31.
    total = sum(USCC_CHARS.index(ch) * w for ch, w in zip(code, (*USCC_WEIGHTS, 1), strict=True))
    assert total % 31 == 0


@given(uscc_bodies, st.integers(0, 17), st.data())
def test_uscc_single_substitution(body: str, position: int, data: st.DataObject) -> None:
    # Always caught: 31 is prime, every weight is 1-30 and values differ by 1-30.
    code = body + uscc_check_char(body)
    new = data.draw(st.sampled_from([ch for ch in USCC_CHARS if ch != code[position]]))
    mutated = replace_at(code, position, new)
    assert uscc_check_char(mutated[:17]) != mutated[17]
    assert uscc_problem(mutated) is not None


# --- index number (索引号) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "year"),
    [
        ("000014349/2006-00166", 2006),  # www.gov.cn, 国务院办公厅
        ("11441700007280420Y/2021-00050", 2021),
        ("111000000000143498/2023-00001", 2023),
        ("000014349/1949-00001", 1949),
        ("000014349/2100-99999", 2100),
    ],
)
def test_good_index_numbers(value: str, year: int) -> None:
    assert index_number_problem(value) is None
    assert index_number_year(value) == year


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("00001434/2006-166", "'00001434/2006-166' is not an index number"),
        ("000014349/06-00166", "'000014349/06-00166' is not an index number"),
        ("000014349-2006-00166", "'000014349-2006-00166' is not an index number"),
        ("000014349/2006/00166", "'000014349/2006/00166' is not an index number"),
        ("", "'' is not an index number"),
        (
            "000014348/2006-00166",
            "organisation code '000014348' fails its check character (GB 11714):"
            " last character should be '9'",
        ),
        (
            "11441700007280420X/2021-00050",
            "unified social credit code '11441700007280420X' fails its check character"
            " (GB 32100): last character should be 'Y'",
        ),
        (
            "00001434A/2006-00166",
            "organisation code '00001434A': check character is 'A'; it must be a digit or X",
        ),
        (
            "B1441700007280420Y/2021-00050",
            "unified social credit code 'B1441700007280420Y': registration department 'B'"
            " (1st character) is not one of 1-9, A, N, Y",
        ),
        ("000014349/1948-00166", "year 1948 is outside 1949-2100"),
        ("000014349/2101-00166", "year 2101 is outside 1949-2100"),
        ("000014349/2006-00000", "serial number 00000 is not valid; serials start at 00001"),
        (
            "11441700007280420y/2021-00050",
            "'11441700007280420y/2021-00050' has lower-case letters; write capitals",
        ),
        (
            "000014349/2006-00166 ",
            "'000014349/2006-00166 ' has spaces around it; remove them",
        ),
    ],
)
def test_index_number_problem_messages(value: str, message: str) -> None:
    assert index_number_problem(value) == message
    assert index_number_year(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "０００014349/2006-00166",
        "000014349／2006-00166",  # full-width slash
        "000014349/２００６-00166",
        "000014349/2006－00166",  # full-width hyphen
    ],
)
def test_index_number_full_width(value: str) -> None:
    problem = index_number_problem(value)
    assert problem == f"{value!r} has full-width characters; write ASCII digits and letters"


@given(uscc_bodies, st.integers(1949, 2100), st.integers(1, 99999))
def test_index_number_from_valid_parts(body: str, year: int, serial: int) -> None:
    value = f"{body}{uscc_check_char(body)}/{year}-{serial:05d}"
    assert index_number_problem(value) is None
    assert index_number_year(value) == year


def test_index_number_expected_example_is_valid() -> None:
    example = INDEX_NUMBER_EXPECTED.rsplit("e.g. ", 1)[1]
    assert example == "000014349/2006-00166"
    assert index_number_problem(example) is None


# --- site code (网站标识码) -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["4300000077", "5101320017", "4400000001", "bm01000001", "bm07000001", "bm29030010"],
)
def test_good_site_codes(value: str) -> None:
    assert site_code_problem(value) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("430000007", "'430000007' has 9 characters; a site code has 10"),
        ("bm070000011", "'bm070000011' has 11 characters; a site code has 10"),
        (
            "9900000001",
            "characters 1-6: administrative division code '990000' does not start with a"
            " province code (GB/T 2260: 11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81, 82)",
        ),
        (
            "1000000001",
            "characters 1-6: administrative division code '100000' does not start with a"
            " province code (GB/T 2260: 11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81, 82)",
        ),
        ("43000000A7", "'43000000A7' is neither 10 digits nor 'bm' and 8 digits"),
        ("BM07000001", "'BM07000001' starts with 'BM'; write 'bm' in lower case"),
        ("bmA7000001", "department 'A7' (characters 3-4) must be digits"),
        ("bm07x00001", "sub-unit 'x0' (characters 5-6) must be digits"),
        ("bm0700000Z", "serial '000Z' (characters 7-10) must be digits"),
        (
            "４３00000077",
            "'４３00000077' has full-width characters; write ASCII digits and letters",
        ),
    ],
)
def test_site_code_problem_messages(value: str, message: str) -> None:
    assert site_code_problem(value) == message


def test_site_code_expected_examples_are_valid() -> None:
    assert "4400000001" in SITE_CODE_EXPECTED
    assert "bm07000001" in SITE_CODE_EXPECTED
    assert site_code_problem("4400000001") is None
    assert site_code_problem("bm07000001") is None


# --- document number (发文字号) -------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "国办发〔2006〕104号",
        "国办发[2006]104号",
        "国办发（2006）104号",
        "国办发(2006)104号",
        "国办发【2006】104号",
        "国办发［2006］104号",
        "国办发﹝2006﹞104号",
        "国办发〔２００６〕１０４号",
        "国办发 〔2006〕 104 号",
        "国办发\u3000〔2006〕104号\u200b",
        "国办发〔2006〕0104号",
        "国办发〔2006]104号",  # mismatched brackets, seen in hand-typed data
    ],
)
def test_doc_number_variants_normalise_alike(value: str) -> None:
    assert normalise_doc_number(value) == "国办发〔2006〕104号"


@pytest.mark.parametrize(
    ("value", "normal"),
    [
        ("国令第707号", "国令第707号"),
        ("国令第０７０７号", "国令第707号"),
        (" 国令 第707号 ", "国令第707号"),
        ("国函〔2020〕100号", "国函〔2020〕100号"),  # zeros inside the serial stay
        ("国办发〔2006〕0号", "国办发〔2006〕0号"),  # a lone zero stays
        ("京政发（试行）", "京政发(试行)"),  # brackets around other text are only NFKC'd
        ("", ""),
        ("  \u3000\t", ""),
    ],
)
def test_doc_number_other_shapes(value: str, normal: str) -> None:
    assert normalise_doc_number(value) == normal


BRACKETS = [("〔", "〕"), ("[", "]"), ("［", "］"), ("(", ")"), ("（", "）"), ("【", "】")]
SPACES = st.sampled_from(["", "", " ", "\u3000", "\t"])


def full_width(digits: str) -> str:
    return "".join(chr(ord(ch) - ord("0") + ord("０")) for ch in digits)


@given(
    st.text(alphabet="国办发函京政粤府令字", min_size=1, max_size=6),
    st.integers(1949, 2100),
    st.integers(1, 9999),
    st.sampled_from(BRACKETS),
    st.lists(SPACES, min_size=4, max_size=4),
    st.booleans(),
    st.integers(0, 2),
)
def test_doc_number_variant_invariance(
    prefix: str,
    year: int,
    serial: int,
    brackets: tuple[str, str],
    spaces: list[str],
    wide: bool,
    zeros: int,
) -> None:
    year_text, serial_text = str(year), "0" * zeros + str(serial)
    if wide:
        year_text, serial_text = full_width(year_text), full_width(serial_text)
    opening, closing = brackets
    variant = (
        f"{prefix}{spaces[0]}{opening}{year_text}{closing}{spaces[1]}"
        f"{serial_text}{spaces[2]}号{spaces[3]}"
    )
    assert normalise_doc_number(variant) == f"{prefix}〔{year}〕{serial}号"


@given(st.text())
def test_doc_number_idempotent(value: str) -> None:
    once = normalise_doc_number(value)
    assert normalise_doc_number(once) == once


@given(st.text(alphabet="国办发〔〕[]()（）【】0０1１2２9 号第\u3000", max_size=30))
def test_doc_number_idempotent_on_doc_like_text(value: str) -> None:
    once = normalise_doc_number(value)
    assert normalise_doc_number(once) == once
    assert not any(ch.isspace() for ch in once)
