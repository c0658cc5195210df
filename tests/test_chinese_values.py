"""The value parsers of the page adapter: dates, issuers, keywords, topics, document numbers."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta, timezone
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from adapters.kit.chinese_values import (
    CHINA,
    TOPIC_CLASSES,
    as_published,
    parse_date,
    parse_doc_number,
    parse_topic,
    parse_when,
    split_issuers,
    split_keywords,
)
from hub.records import Topic

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019年02月15日", date(2019, 2, 15)),
        ("2019年2月5日", date(2019, 2, 5)),
        ("2019-02-15", date(2019, 2, 15)),
        ("2019/2/15", date(2019, 2, 15)),
        ("2019.02.15", date(2019, 2, 15)),
        ("２０１９年０２月１５日", date(2019, 2, 15)),
        (" 2019 年 02 月 15 日 ", date(2019, 2, 15)),
        ("\u30002019年02月15日\u3000", date(2019, 2, 15)),
        ("1981年05月23日", date(1981, 5, 23)),
    ],
)
def test_dates_in_the_forms_pages_write(text: str, expected: date) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2019年02月30日", "2019-02 has no day 30"),
        ("2019年02月29日", "2019-02 has no day 29"),
        ("2019-13-01", "there is no month 13"),
        ("0000-01-01", "there is no year 0000"),
        ("2019年02月", "is not a date"),
        ("二〇一九年二月十五日", "is not a date"),
        ("", "is not a date"),
        ("2019-02-15 10:30", "is not a date"),  # a time belongs to parse_when
    ],
)
def test_impossible_or_unreadable_dates_say_why(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as caught:
        parse_date(text)
    assert "expected a date like 2019年02月15日" in str(caught.value)


def test_leap_day_exists_in_a_leap_year() -> None:
    assert parse_date("2020年02月29日") == date(2020, 2, 29)


@given(st.dates(min_value=date(1949, 1, 1), max_value=date(2100, 12, 31)), st.booleans())
def test_any_real_date_reads_back_in_every_form(day: date, full_width: bool) -> None:
    forms = [
        f"{day.year}年{day.month:02d}月{day.day:02d}日",
        f"{day.year}年{day.month}月{day.day}日",
        day.isoformat(),
        f"{day.year}/{day.month}/{day.day}",
    ]
    for form in forms:
        text = form.translate(FULL_WIDTH) if full_width else form
        assert parse_date(text) == day
        assert parse_when(text) == day


@given(
    st.integers(min_value=1949, max_value=2100),
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=29, max_value=99),
)
def test_days_past_the_end_of_the_month_are_refused(year: int, month: int, day: int) -> None:
    if day <= calendar.monthrange(year, month)[1]:
        assert parse_date(f"{year}年{month:02d}月{day:02d}日") == date(year, month, day)
        return
    with pytest.raises(ValueError, match=f"{year}-{month:02d} has no day {day}"):
        parse_date(f"{year}年{month:02d}月{day:02d}日")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-04-17 14:46:00", datetime(2022, 4, 17, 14, 46, tzinfo=CHINA)),
        ("2022-04-17 10:30", datetime(2022, 4, 17, 10, 30, tzinfo=CHINA)),
        ("2019-01-03-17:30:00", datetime(2019, 1, 3, 17, 30, tzinfo=CHINA)),
        ("2020年08月02日 10时30分", datetime(2020, 8, 2, 10, 30, tzinfo=CHINA)),
        ("2020年08月02日 10时30分15秒", datetime(2020, 8, 2, 10, 30, 15, tzinfo=CHINA)),
        ("2022-04-17 14:46:05.250", datetime(2022, 4, 17, 14, 46, 5, tzinfo=CHINA)),
        ("２０２２－０４－１７　１４：４６", datetime(2022, 4, 17, 14, 46, tzinfo=CHINA)),
        ("2022-04-17T06:46:00Z", datetime(2022, 4, 17, 6, 46, tzinfo=UTC)),
        (
            "2022-04-17T14:46:00+0900",
            datetime(2022, 4, 17, 14, 46, tzinfo=timezone(timedelta(hours=9))),
        ),
        ("2020年08月02日", date(2020, 8, 2)),
    ],
)
def test_times_are_beijing_time_unless_they_say_otherwise(
    text: str, expected: date | datetime
) -> None:
    found = parse_when(text)
    assert found == expected
    assert type(found) is type(expected)
    if isinstance(found, datetime):
        assert found.utcoffset() == expected.utcoffset()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2022-04-17 24:00", "has no such time of day"),
        ("2022-04-17 10:60", "has no such time of day"),
        ("2022-04-17 上午", "is not a date and time"),
        ("2022-02-30 10:00", "2022-02 has no day 30"),
        ("yesterday", "is not a date"),
    ],
)
def test_unreadable_times_say_why(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_when(text)


def test_a_bare_publication_date_is_midnight_beijing_time() -> None:
    published = as_published(date(2019, 2, 15))
    assert published == datetime(2019, 2, 15, 0, 0, tzinfo=CHINA)
    assert published.isoformat() == "2019-02-15T00:00:00+08:00"
    exact = datetime(2022, 4, 17, 14, 46, tzinfo=CHINA)
    assert as_published(exact) is exact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("国务院", ("国务院",)),
        ("国务院办公厅、中央军委办公厅", ("国务院办公厅", "中央军委办公厅")),
        ("国务院、中央军委", ("国务院", "中央军委")),
        ("财政部,税务总局", ("财政部", "税务总局")),
        ("财政部，税务总局；海关总署", ("财政部", "税务总局", "海关总署")),
        ("财政部; 税务总局", ("财政部", "税务总局")),
        ("财政部\u3000税务总局  海关总署", ("财政部", "税务总局", "海关总署")),
        ("国务院、、国务院", ("国务院",)),
        ("", ()),
        ("无", ()),
    ],
)
def test_joint_issuers_split(text: str, expected: tuple[str, ...]) -> None:
    assert split_issuers(text) == expected


@given(st.lists(st.sampled_from(["国务院", "中央军委", "财政部", "税务总局"]), min_size=1))
def test_issuers_keep_page_order_without_repeats(names: list[str]) -> None:
    for separator in ("、", "，", "；", " ", "\u3000", ","):
        assert split_issuers(separator.join(names)) == tuple(dict.fromkeys(names))


def test_keywords_split_on_full_width_spaces_and_keep_marks() -> None:
    assert split_keywords("农业\u3000粮食\u3000应急预案△\u3000函") == (
        "农业",
        "粮食",
        "应急预案△",
        "函",
    )
    assert split_keywords("经济管理　考察　措施　函") == ("经济管理", "考察", "措施", "函")
    assert split_keywords("  ") == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("国发〔2019〕5号", "国发〔2019〕5号"),
        ("  国办发明电〔2018〕15号 ", "国办发明电〔2018〕15号"),
        ("国令第707号", "国令第707号"),
        ("国办发[2006]104号", "国办发[2006]104号"),  # kept as written, not normalised
        ("无", None),
        ("暂无", None),
        (" - ", None),
        ("/", None),
        ("／", None),
        ("", None),
        ("\u3000", None),
    ],
)
def test_doc_numbers_kept_as_written_or_none(text: str, expected: str | None) -> None:
    assert parse_doc_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("财政、金融、审计\\银行", Topic("财政、金融、审计", "银行")),
        ("市场监管、安全生产监管\\工商", Topic("市场监管、安全生产监管", "工商")),
        ("农业、林业、水利\\农业、畜牧业、渔业", Topic("农业、林业、水利", "农业、畜牧业、渔业")),
        ("其他", Topic("其他", None)),
        ("综合政务 \\ 政务公开", Topic("综合政务", "政务公开")),
        ("综合政务＼政务公开", Topic("综合政务", "政务公开")),
        ("综合政务/政务公开", Topic("综合政务", "政务公开")),
        ("综合政务>政务公开", Topic("综合政务", "政务公开")),
        ("综合政务\\", Topic("综合政务", None)),
        ("教育", Topic("科技、教育", "教育")),  # a local class: one part of one gov.cn class
        ("环境保护", Topic("城乡建设、环境保护", "环境保护")),
        ("", None),
    ],
)
def test_topic_class_and_sub_class(text: str, expected: Topic | None) -> None:
    assert parse_topic(text) == expected


@pytest.mark.parametrize("text", ["环保局", "教育\\高等教育", "财政\\税务", "Finance"])
def test_a_topic_outside_the_vocabulary_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a topic class") as caught:
        parse_topic(text)
    assert "one of the 22 classes" in str(caught.value)


def test_topic_classes_are_the_schemas() -> None:
    xsd = resources.files("hub.schemas").joinpath("record.xsd").read_bytes()
    root = etree.fromstring(xsd, etree.XMLParser(resolve_entities=False, no_network=True))
    ns = {"xs": "http://www.w3.org/2001/XMLSchema"}
    values = root.xpath("//xs:simpleType[@name='TopicClass']//xs:enumeration/@value", namespaces=ns)
    assert tuple(values) == TOPIC_CLASSES
    assert len(TOPIC_CLASSES) == 22
