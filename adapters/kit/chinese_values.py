"""Reading the values Chinese government pages show: dates, issuers, topic classes, numbers.

Pages write the same value many ways (``2019年02月15日``, ``2019-02-15``,
``２０１９年２月１５日``, ``2022-04-17 10:30:00``; ``国务院办公厅、中央军委办公厅``;
``财政、金融、审计\\银行``; ``文号：无``), so every parser here first folds
full-width forms to ASCII (NFKC) and then accepts one shape only. A value that
looks like the field but is wrong (``2019年02月30日``) raises ``ValueError``
saying what is wrong and what would be right; the adapter adds where it was.

Every function is pure. Times without an offset are Beijing time (+08:00):
Chinese government sites publish in China Standard Time and write no offset.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone

from hub.records.model import CHINA, Topic

# schemas/record.xsd, simple type TopicClass (tests/test_chinese_values.py keeps them equal).
TOPIC_CLASSES = (
    "国务院组织机构",
    "综合政务",
    "国民经济管理、国有资产监管",
    "财政、金融、审计",
    "国土资源、能源",
    "农业、林业、水利",
    "工业、交通",
    "商贸、海关、旅游",
    "市场监管、安全生产监管",
    "城乡建设、环境保护",
    "科技、教育",
    "文化、广电、新闻出版",
    "卫生、体育",
    "人口与计划生育、妇女儿童工作",
    "劳动、人事、监察",
    "公安、安全、司法",
    "民政、扶贫、救灾",
    "民族、宗教",
    "对外事务",
    "港澳台侨工作",
    "国防",
    "其他",
)


def _class_of_part() -> dict[str, str]:
    """Each word that is a part of exactly one top class, to that class: 教育 → 科技、教育."""
    owners: dict[str, list[str]] = {}
    for name in TOPIC_CLASSES:
        for part in name.split("、"):
            owners.setdefault(part, []).append(name)
    return {part: names[0] for part, names in owners.items() if len(names) == 1}


_CLASS_OF_PART = _class_of_part()

DATE_EXPECTED = "a date like 2019年02月15日 or 2019-02-15"
TIME_EXPECTED = "a date like 2019-02-15, optionally with a time: 2022-04-17 10:30:00"
TOPIC_EXPECTED = "one of the 22 classes of www.gov.cn, e.g. 综合政务\\政务公开 (docs/records.md)"

# Written where a page has no value: 文号：无 / 暂无 / - / /.
NO_VALUE = frozenset({"无", "暂无", "空", "-", "--", "—", "——", "/", "\\", "－", "／"})

_DATE = re.compile(r"(\d{4})\s*(?:年|-|/|\.)\s*(\d{1,2})\s*(?:月|-|/|\.)\s*(\d{1,2})\s*日?")
_TIME = re.compile(
    r"(?:T|\s+|-)?(\d{1,2})\s*[:时]\s*(\d{1,2})"
    r"\s*(?:分\s*(?:(\d{1,2})\s*秒)?|:\s*(\d{1,2})(?:\.\d{1,6})?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?"
)
# 2022年1月5日 星期三, 2022-01-05（周三）: the weekday pages add says nothing more.
_WEEKDAY = re.compile(r"\s*[(（]?\s*(?:星期|周|礼拜)[一二三四五六日天]\s*[)）]?\s*")
_LIST_SEPARATORS = re.compile(r"[、,，;；\s]+")
_TOPIC_SEPARATORS = re.compile(r"\s*[\\/>]\s*")
_SPACES = re.compile(r"[ \t\r\n\f\v\xa0\u3000]+")


def fold(text: str) -> str:
    """``text`` with full-width forms folded (NFKC) and its spaces collapsed and trimmed.

    NFKC turns ``２０１９`` into ``2019``, ``：`` into ``:`` and U+3000 into a
    space; Chinese characters and ``、`` are left as they are.
    """
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def parse_date(text: str) -> date:
    """The calendar date of ``2019年02月15日``, ``2019-2-15``, ``2019/02/15``, ``2019.02.15``.

    Nothing but the date may be there (a time belongs to ``parse_when``).
    """
    value = fold(text)
    match = _DATE.fullmatch(value)
    if match is None:
        raise ValueError(f"{text.strip()!r} is not a date (expected {DATE_EXPECTED})")
    return _real_date(text, *match.groups())


def parse_when(text: str) -> date | datetime:
    """A date, or a timezone-aware time when the text has one (+08:00 unless it says otherwise).

    Accepts ``2022-04-17 10:30:00``, ``2022-04-17 10:30``, ``2020年08月02日 10时30分``,
    ``2022年1月5日 星期三 10:12`` (a weekday is ignored),
    ``2019-01-03-17:30:00`` (www.gov.cn's ``firstpublishedtime``) and ISO 8601
    with an offset (``2022-04-17T10:30:00+08:00``).
    """
    value = _WEEKDAY.sub(" ", fold(text)).strip()
    match = _DATE.match(value)
    if match is None:
        raise ValueError(f"{text.strip()!r} is not a date (expected {TIME_EXPECTED})")
    day = _real_date(text, *match.groups())
    rest = value[match.end() :]
    if not rest.strip():
        return day
    clock = _TIME.fullmatch(rest)
    if clock is None:
        raise ValueError(f"{text.strip()!r} is not a date and time (expected {TIME_EXPECTED})")
    hour, minute, seconds, second, offset = clock.groups()
    second = second or seconds
    if int(hour) > 23 or int(minute) > 59 or int(second or 0) > 59:
        raise ValueError(f"{text.strip()!r} has no such time of day (expected {TIME_EXPECTED})")
    zone = CHINA if offset is None else _zone(offset)
    return datetime(
        day.year, day.month, day.day, int(hour), int(minute), int(second or 0), tzinfo=zone
    )


def as_published(value: date | datetime) -> datetime:
    """A publication time: a bare date becomes midnight Beijing time of that day."""
    if isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day, tzinfo=CHINA)


def split_issuers(text: str) -> tuple[str, ...]:
    """The organs of ``国务院办公厅、中央军委办公厅`` (also ``,`` ``，`` ``；`` and spaces).

    Repeats are dropped, the page's order is kept; an empty or ``无`` value gives ``()``.
    """
    return _split(text)


def split_keywords(text: str) -> tuple[str, ...]:
    """The words of a 主题词 value: ``经济管理　考察　措施　函`` → four keywords.

    Each word is kept as written (``应急预案△`` keeps the mark gov.cn uses for a
    word outside the official thesaurus).
    """
    return _split(text)


def parse_doc_number(text: str) -> str | None:
    """A 发文字号 as written (trimmed), or ``None`` for ``无``, ``暂无``, ``-``, ``/`` or blank.

    The number is not normalised here: the record keeps it as written and
    ``hub.codes.normalise_doc_number`` compares it.
    """
    value = _SPACES.sub(" ", text).strip()
    if not value or fold(value) in NO_VALUE or value in NO_VALUE:
        return None
    return value


def parse_topic(text: str) -> Topic | None:
    """The record topic of a 主题分类 value: ``财政、金融、审计\\银行`` → class and sub-class.

    The class must be one of the 22 top classes of www.gov.cn; a local class
    that is one part of exactly one of them is read as that class with the
    page's word as sub-class (``教育`` → ``科技、教育``, sub ``教育``), because
    local sites often show only the narrower word. ``ValueError`` otherwise.
    ``None`` for an empty value. ``\\``, ``/`` and ``>`` separate class and sub.
    """
    value = _SPACES.sub("", text).replace("＼", "\\").replace("／", "/").replace("＞", ">")
    if not value or value in NO_VALUE:
        return None
    parts = _TOPIC_SEPARATORS.split(value, maxsplit=1)
    top = parts[0].replace(",", "、").replace("，", "、")
    sub = parts[1] if len(parts) > 1 and parts[1] else None
    if top in TOPIC_CLASSES:
        return Topic(top, sub)
    if sub is None and top in _CLASS_OF_PART:
        return Topic(_CLASS_OF_PART[top], top)
    raise ValueError(f"主题分类 {text.strip()!r} is not a topic class (expected {TOPIC_EXPECTED})")


def _split(text: str) -> tuple[str, ...]:
    words = (word.strip() for word in _LIST_SEPARATORS.split(text))
    kept = [word for word in words if word and word not in NO_VALUE]
    return tuple(dict.fromkeys(kept))


def _real_date(text: str, year: str, month: str, day: str) -> date:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        if int(year) < 1:
            wrong = f"there is no year {year}"
        elif not 1 <= int(month) <= 12:
            wrong = f"there is no month {int(month)}"
        else:
            wrong = f"{int(year)}-{int(month):02d} has no day {int(day)}"
        raise ValueError(
            f"{text.strip()!r} is not a real date: {wrong} (expected {DATE_EXPECTED})"
        ) from None


def _zone(offset: str) -> timezone:
    if offset == "Z":
        return UTC
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueError(f"offset {offset!r} is not a time zone offset (expected +08:00)")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


# The values 政府信息公开 pages write for 有效性, 公开方式, 公开范围 and 公开时限, to the
# schema's terms (schemas/record.xsd: Validity and the Disclosure attributes).
VALIDITY_TERMS = {
    "in-force": ("有效", "现行有效", "生效", "在效", "继续有效", "有效中", "现行", "是"),
    "amended": ("已修改", "修改", "已修订", "修订", "部分修改", "已被修改", "已修正", "修正"),
    "repealed": ("废止", "已废止", "已被废止", "宣布废止", "全文废止", "作废", "已作废"),
    "expired": ("失效", "已失效", "自然失效", "宣布失效", "过期", "已过期", "否", "无效"),
}
MODE_TERMS = {
    "proactive": ("主动公开", "主动"),
    "on-request": ("依申请公开", "依申请", "申请公开"),
    "withheld": ("不予公开", "不公开", "非公开"),
}
AUDIENCE_TERMS = {
    "public": ("面向社会", "全社会", "社会", "面向全社会", "社会公众", "公众", "全文公开"),
    "applicant": ("面向申请人", "申请人", "仅申请人"),
}
DURATION_TERMS = {
    "permanent": ("长期公开", "长期", "永久", "永久公开"),
    "limited": ("限时公开", "限期公开", "限时", "阶段性公开"),
}


def parse_term(text: str, terms: Mapping[str, tuple[str, ...]], what: str) -> str | None:
    """The schema term a page's word stands for (``现行有效`` → ``in-force``), or None
    for an empty or ``无`` value; ``ValueError`` naming the words known otherwise.

    Spaces, brackets and a trailing full stop are ignored (``【有效】``, ``已废止。``).
    """
    value = re.sub(r"[\s\[\]【】()（）。.]+", "", fold(text))
    if not value or value in NO_VALUE:
        return None
    for term, words in terms.items():
        if value in words:
            return term
    known = "; ".join(f"{'、'.join(words[:3])} → {term}" for term, words in terms.items())
    raise ValueError(f"{what} {text.strip()!r} is not a known value (expected {known})")
