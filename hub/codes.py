"""Check and normalise the identifiers used on Chinese government websites.

- organisation code (组织机构代码), GB 11714-1997: 8 body characters and a check character;
- unified social credit code (统一社会信用代码, USCC), GB 32100-2015: 18 characters;
- index number (索引号) of a disclosed document: ``前段码/后段码``, the publishing body's
  organisation code or USCC, then ``/YYYY-NNNNN``;
- site code (网站标识码) of a government website: a GB/T 2260 division code and a serial,
  or ``bm`` and a department, sub-unit and serial;
- document number (发文字号): only normalised, real data is too varied to reject.

Everything here is a pure function. ``*_problem`` functions return ``None`` for a good value
and otherwise one short message saying what is wrong; callers add where it was found.
Codes are checked strictly: ASCII only, capitals, no surrounding spaces.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# GB 11714-1997: body characters are digits and capital letters, valued 0-9 and A=10 .. Z=35.
_ORG_VALUES = {ch: value for value, ch in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")}
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_CHECK_CHARS = "0123456789X"  # indexed by (11 - sum mod 11) mod 11, so 11 -> '0', 10 -> 'X'

# GB 32100-2015: 31 characters (no I, O, S, V, Z), valued by position in this string.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUES = {ch: value for value, ch in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_DEPARTMENTS = "123456789ANY"  # registration department (登记管理部门码)
_USCC_CATEGORIES = "123456789"  # organisation category (机构类别码)
_NATIONAL_DIVISION = "100000"  # division code of bodies registered nationally (11100000...)

# GB/T 2260: the first two digits of an administrative division code name the province.
_PROVINCES_TEXT = "11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81, 82"
_PROVINCES = frozenset(
    f"{number:02d}"
    for number in (
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        71,
        81,
        82,
    )
)

_ORG_BODY = re.compile(r"[0-9A-Z]{8}")
_DIGITS = re.compile(r"[0-9]+")
_INDEX_NUMBER = re.compile(
    r"(?P<prefix>[0-9A-Z]{9}|[0-9A-Z]{18})/(?P<year>[0-9]{4})-(?P<serial>[0-9]{5})"
)
_INDEX_YEARS = range(1949, 2101)
_INVISIBLE = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]+")
_YEAR_IN_BRACKETS = re.compile(r"[\[(【〔〖]([0-9]{4})[\])】〕〗]")
_SERIAL_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9]+号)")

INDEX_NUMBER_EXPECTED = (
    "ORGCODE/YYYY-NNNNN, ORGCODE a 9-character organisation code or 18-character unified"
    " social credit code, e.g. 000014349/2006-00166"
)
SITE_CODE_EXPECTED = "6-digit division code + 4 digits (4400000001) or bm + 8 digits (bm07000001)"


def org_code_check_char(first8: str) -> str:
    """Return the check character C9 for the 8-character body of an organisation code.

    GB 11714-1997: C9 = 11 - (sum of value * weight mod 11) with weights 3, 7, 9, 10, 5, 8, 4, 2;
    a result of 10 is written 'X' and 11 is written '0'.
    """
    if not _ORG_BODY.fullmatch(first8):
        raise ValueError(f"organisation code body must be 8 digits or capitals, not {first8!r}")
    total = sum(_ORG_VALUES[ch] * weight for ch, weight in zip(first8, _ORG_WEIGHTS, strict=True))
    return _ORG_CHECK_CHARS[(11 - total % 11) % 11]


def uscc_check_char(first17: str) -> str:
    """Return the check character C18 for the first 17 characters of a credit code.

    GB 32100-2015: C18 = 31 - (sum of value * weight mod 31), where 31 is written '0' and
    values and the result are positions in the alphabet 0-9A-Y without I, O, S, V, Z.
    """
    if len(first17) != 17 or any(ch not in _USCC_VALUES for ch in first17):
        raise ValueError(
            f"credit code body must be 17 characters of {_USCC_ALPHABET}, not {first17!r}"
        )
    total = sum(_USCC_VALUES[ch] * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def org_code_problem(code: str) -> str | None:
    """Say what is wrong with a 9-character organisation code (GB 11714-1997), or None."""
    if problem := _org_code_shape_problem(code):
        return problem
    expected = org_code_check_char(code[:8])
    if code[8] != expected:
        return f"check character is {code[8]!r}, should be {expected!r}"
    return None


def uscc_problem(code: str) -> str | None:
    """Say what is wrong with an 18-character unified social credit code (GB 32100-2015), or None.

    Checked: department (1st character: 1-9, A, N, Y), category (2nd: 1-9), GB/T 2260 division
    (3rd-8th), subject identifier (9th-17th: any code character) and check character (18th).
    """
    if problem := _uscc_shape_problem(code):
        return problem
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        return f"check character is {code[17]!r}, should be {expected!r}"
    return None


def index_number_problem(value: str) -> str | None:
    """Say what is wrong with an index number (索引号), or None.

    Shape: organisation code (GB 11714) or credit code (GB 32100) whose check character must
    verify, '/', a year from 1949 to 2100, '-', a 5-digit serial from 00001.
    """
    if problem := _character_problem(value):
        return problem
    match = _INDEX_NUMBER.fullmatch(value)
    if match is None:
        if _INDEX_NUMBER.fullmatch(value.upper()):
            return f"{value!r} has lower-case letters; write capitals"
        return f"{value!r} is not an index number"
    if problem := _index_prefix_problem(match["prefix"]):
        return problem
    if int(match["year"]) not in _INDEX_YEARS:
        return f"year {match['year']} is outside 1949-2100"
    if match["serial"] == "00000":
        return "serial number 00000 is not valid; serials start at 00001"
    return None


def standard_index_number(value: str) -> str | None:
    """An index number as the standard writes it, if ``value`` is one once full-width forms
    are folded (NFKC) and spaces dropped (``０００１４３４９／2006-00166``); else None."""
    folded = _INVISIBLE.sub("", unicodedata.normalize("NFKC", value))
    return folded if index_number_problem(folded) is None else None


def index_number_year(value: str) -> int | None:
    """Return the year of a valid index number (索引号), or None if it has any problem."""
    if index_number_problem(value) is not None:
        return None
    return int(value.split("/")[1][:4])


@functools.lru_cache(maxsize=4096)  # one code per site: it repeats in every record
def site_code_problem(value: str) -> str | None:
    """Say what is wrong with a website site code (网站标识码), or None.

    Either a 6-digit GB/T 2260 administrative division code and a 4-digit serial, or 'bm',
    a 2-digit department, a 2-digit sub-unit and a 4-digit serial.
    """
    if problem := _character_problem(value):
        return problem
    if len(value) != 10:
        return f"{value!r} has {len(value)} characters; a site code has 10"
    if value[:2].lower() == "bm":
        return _department_site_code_problem(value)
    if not _DIGITS.fullmatch(value):
        return f"{value!r} is neither 10 digits nor 'bm' and 8 digits"
    if problem := _division_problem(value[:6], national_allowed=False):
        return f"characters 1-6: {problem}"
    return None


def normalise_doc_number(value: str) -> str:
    """Return the normal form of a document number (发文字号), e.g. '国办发〔2006〕104号'.

    NFKC makes digits ASCII and full-width brackets half-width; then all spaces go, any
    bracket pair around a 4-digit year becomes 〔〕, and the serial before 号 loses its
    leading zeros. Text without a year ('国令第707号') keeps its shape.
    """
    text = unicodedata.normalize("NFKC", value)
    # NFKC again: taking spaces out can put a combining mark next to a letter it composes with.
    text = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))
    text = _YEAR_IN_BRACKETS.sub(r"〔\1〕", text)
    return _SERIAL_LEADING_ZEROS.sub("", text)


def _character_problem(value: str) -> str | None:
    """Full-width characters or surrounding spaces, the usual faults of copied codes."""
    if not value.isascii() and any(unicodedata.east_asian_width(ch) == "F" for ch in value):
        return f"{value!r} has full-width characters; write ASCII digits and letters"
    if value != value.strip():
        return f"{value!r} has spaces around it; remove them"
    return None


def _org_code_shape_problem(code: str) -> str | None:
    """Everything GB 11714-1997 asks of an organisation code except the check character."""
    if problem := _character_problem(code):
        return problem
    if len(code) != 9:
        return f"{code!r} has {len(code)} characters; an organisation code has 9"
    if not _ORG_BODY.fullmatch(code[:8]):
        return f"characters 1-8 of {code!r} must be digits or capital letters"
    if code[8] not in _ORG_CHECK_CHARS:
        return f"check character is {code[8]!r}; it must be a digit or X"
    return None


def _uscc_shape_problem(code: str) -> str | None:
    """Everything GB 32100-2015 asks of a credit code except the check character."""
    if problem := _character_problem(code):
        return problem
    if len(code) != 18:
        return f"{code!r} has {len(code)} characters; a unified social credit code has 18"
    if code != code.upper():
        return f"{code!r} has lower-case letters; write capitals"
    if bad := [ch for ch in code if ch not in _USCC_VALUES]:
        return f"{bad[0]!r} is not a code character (0-9, capitals except I, O, S, V, Z)"
    if code[0] not in _USCC_DEPARTMENTS:
        return f"registration department {code[0]!r} (1st character) is not one of 1-9, A, N, Y"
    if code[1] not in _USCC_CATEGORIES:
        return f"organisation category {code[1]!r} (2nd character) is not a digit 1-9"
    if problem := _division_problem(code[2:8], national_allowed=True):
        return f"characters 3-8: {problem}"
    return None


def _division_problem(division: str, *, national_allowed: bool) -> str | None:
    """Problem with a 6-digit administrative division code (GB/T 2260), or None."""
    if not (len(division) == 6 and _DIGITS.fullmatch(division)):
        return f"administrative division code {division!r} must be 6 digits"
    if national_allowed and division == _NATIONAL_DIVISION:
        return None
    if division[:2] not in _PROVINCES:
        return (
            f"administrative division code {division!r} does not start with a province code"
            f" (GB/T 2260: {_PROVINCES_TEXT})"
        )
    return None


@functools.lru_cache(maxsize=4096)  # one code per agency: it repeats in every record
def _index_prefix_problem(prefix: str) -> str | None:
    """The organisation code or credit code at the front of an index number, fully checked."""
    if len(prefix) == 9:
        name, standard = "organisation code", "GB 11714"
        shape = _org_code_shape_problem(prefix)
        expected = "" if shape else org_code_check_char(prefix[:8])
    else:
        name, standard = "unified social credit code", "GB 32100"
        shape = _uscc_shape_problem(prefix)
        expected = "" if shape else uscc_check_char(prefix[:17])
    if shape:
        return f"{name} {prefix!r}: {shape}"
    if prefix[-1] != expected:
        return (
            f"{name} {prefix!r} fails its check character ({standard}):"
            f" last character should be {expected!r}"
        )
    return None


def _department_site_code_problem(value: str) -> str | None:
    """A 'bm' site code: department, sub-unit and serial must all be digits."""
    if not value.startswith("bm"):
        return f"{value!r} starts with {value[:2]!r}; write 'bm' in lower case"
    for name, start, end in (("department", 2, 4), ("sub-unit", 4, 6), ("serial", 6, 10)):
        if not _DIGITS.fullmatch(value[start:end]):
            return f"{name} {value[start:end]!r} (characters {start + 1}-{end}) must be digits"
    return None
