"""Personal data: resident ID numbers and mainland mobile numbers, found and masked.

Both patterns run on the folded text (full-width digits are ASCII digits there)
and never match inside a longer run of digits.

- **ID number** (居民身份证号码, GB 11643-1999): a 6-digit division code whose
  first two digits name a province (GB/T 2260, plus 81-83 for the residence
  permits of Hong Kong, Macao and Taiwan residents, which use the same number),
  an 8-digit birth date that is a real calendar day from 1800 to today, a
  3-digit sequence and the check character ``'10X98765432'[sum % 11]`` (weights
  7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2). Both ``X`` and ``x``
  are accepted, and one space or hyphen between the 6-8-4 groups.
- **Mobile number**: 11 digits starting ``1[3-9]``, written whole or as 3-4-4
  groups split by spaces or hyphens, optionally after ``+86``, ``0086`` or
  ``(+86)``. A number followed by a unit of quantity (元, 万, 亿, 吨, 人, %, …)
  is an amount, not a phone number.

A finding shows the number masked: its first 3 and last 2 digits (or ``X``) are
kept, every other digit becomes ``*``; separators stay as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARACTERS = "10X98765432"
PROVINCES = frozenset(
    f"{number:02d}"
    for number in (
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        *(71, 81, 82, 83),
    )
)
AMOUNT_UNITS = "元角分万亿千百吨斤公里米人户个件次台辆条份%‰"

_SEP = "[ -]?"
# Each pattern starts with a character class, which lets the regex engine skip ahead fast;
# the "not after a digit" test comes right after the first character for the same reason.
_ID = re.compile(
    rf"(?P<division>[1-8](?<![0-9][0-9])[0-9]{{5}}){_SEP}(?P<birth>1[89][0-9]{{6}}|20[0-9]{{6}})"
    rf"{_SEP}(?P<rest>[0-9]{{3}}[0-9x])(?![0-9])"
)
_MOBILE = re.compile(rf"1[3-9][0-9](?:{_SEP}[0-9]{{4}}){{2}}")
_COUNTRY_CODE = re.compile(r"(?:(?<![0-9+])(?:\+|00)86|\(\+?86\))[ -]?\Z")
_AFTER_MOBILE = re.compile(rf"[0-9.]| ?[{AMOUNT_UNITS}]")


def id_check_character(first17: str) -> str:
    """The check character of an ID number's first 17 digits (GB 11643-1999)."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError(f"an ID number body is 17 ASCII digits, not {first17!r}")
    total = sum(int(digit) * weight for digit, weight in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARACTERS[total % 11]


def id_numbers(text: str, today: date) -> Iterator[tuple[int, int]]:
    """The spans of the valid ID numbers in folded ``text``."""
    for match in _ID.finditer(text):
        division, birth, rest = match.group("division", "birth", "rest")
        if division[:2] not in PROVINCES:
            continue
        try:
            born = date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
        except ValueError:
            continue
        if born <= today and id_check_character(division + birth + rest[:3]) == rest[3].upper():
            yield match.span()


def mobile_numbers(text: str) -> Iterator[tuple[int, int]]:
    """The spans of the mobile numbers (without a country code) in folded ``text``."""
    for match in _MOBILE.finditer(text):
        start, end = match.span()
        glued = start > 0 and text[start - 1] in "0123456789."
        if glued and not _COUNTRY_CODE.search(text, max(0, start - 7), start):
            continue  # inside a longer number, and not after +86 or 0086
        if not _AFTER_MOBILE.match(text, end):
            yield start, end


def mask(number: str) -> str:
    """``number`` with all but its first 3 and last 2 digits (or X) replaced by ``*``."""
    positions = [i for i, char in enumerate(number) if char.isdigit() or char in "xXｘＸ"]
    hidden = set(positions[3:-2])
    return "".join("*" if i in hidden else char for i, char in enumerate(number))
