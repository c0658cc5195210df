"""Property: any valid record survives to_xml → parse exactly, and its
canonical form and content hash are functions of its value alone."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub import records
from hub.codes import org_code_check_char
from hub.records import (
    Attachment,
    Disclosure,
    Form,
    Interaction,
    Origin,
    Record,
    Relation,
    Service,
    Status,
    Topic,
)

EXAMPLES = Path(__file__).parent.parent / "examples" / "records"
TOPICS = ("综合政务", "卫生、体育", "城乡建设、环境保护", "其他")
GENRES = ("意见", "通知", "决定", "函", "其他")

# XML text: no control characters, no surrogates, no CR (XML turns CR LF into LF).
xml_char = st.characters(
    blacklist_categories=("Cc", "Cs", "Co", "Cn"),
    blacklist_characters="\ufffe\uffff",
)
text = st.text(xml_char | st.sampled_from(" \n\t　"), min_size=0, max_size=30).map(
    lambda s: s + "字"
)  # never blank
maybe_text = st.none() | text
slug = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)
local = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,20}", fullmatch=True)
offsets = st.integers(-12 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.builds(
    lambda d, t, tz: datetime.combine(d, t, tz),
    st.dates(date(1990, 1, 1), date(2090, 12, 31)),
    st.times(time(0, 0), time(23, 59, 59, 999999)),
    offsets,
)
urls = st.from_regex(r"https://www\.[a-z]{2,8}\.gov\.cn/[a-z0-9/_.-]{0,20}", fullmatch=True)
org_body = st.from_regex(r"[0-9A-Z]{8}", fullmatch=True)
site_codes = st.sampled_from(["bm01000001", "4400000001", "4401040001", "1304260001"])


@st.composite
def services(draw: st.DrawFn) -> Service:
    return Service(
        name=draw(text),
        basis=draw(maybe_text),
        conditions=draw(maybe_text),
        materials=tuple(draw(st.lists(text, max_size=3))),
        procedure=draw(maybe_text),
        time_limit=draw(st.none() | st.integers(0, 3650)),
        fee=draw(maybe_text),
        forms=tuple(draw(st.lists(st.builds(Form, urls, text), max_size=2))),
        online=draw(st.none() | st.sampled_from(["none", "info", "download", "apply", "full"])),
        licensing=draw(st.none() | st.booleans()),
    )


@st.composite
def interactions(draw: st.DrawFn) -> Interaction:
    asked = draw(st.none() | moments)
    answered = draw(st.none() | moments)
    if asked and answered and answered < asked:
        asked, answered = answered, asked
    answer = draw(text) if answered else draw(maybe_text)
    channel = draw(st.sampled_from(["consultation", "mailbox", "survey", "hearing", "interview"]))
    return Interaction(channel, draw(text), asked, answer, answered, draw(maybe_text))


@st.composite
def valid_records(draw: st.DrawFn) -> Record:
    kind = draw(st.sampled_from(records.KINDS))
    node = draw(slug)
    published = draw(moments)
    created = draw(st.none() | st.dates(date(1980, 1, 1), published.date()))
    updated = draw(
        st.none() | st.timedeltas(timedelta(0), timedelta(days=900)).map(lambda d: published + d)
    )
    index_number = None
    if draw(st.booleans()):
        body = draw(org_body)
        year = draw(st.sampled_from([published.year] + ([created.year] if created else [])))
        serial = draw(st.integers(1, 99999))
        index_number = f"{body}{org_code_check_char(body)}/{year}-{serial:05d}"
    withdrawn = draw(st.booleans())
    status = (
        draw(
            st.none()
            | st.just(Status("active"))
            | st.builds(Status, st.just("withdrawn"), text, moments)
        )
        if not withdrawn
        else Status("withdrawn", draw(text), draw(moments))
    )
    duration = draw(st.none() | st.sampled_from(["permanent", "limited"]))
    until = draw(st.none() | st.dates()) if duration == "limited" else None
    disclosure = draw(
        st.none()
        | st.builds(
            Disclosure,
            st.sampled_from(["proactive", "on-request", "withheld"]),
            st.none() | st.sampled_from(["public", "applicant"]),
            st.just(duration),
            st.just(until),
        )
    )
    body = draw(
        st.none()
        | st.lists(text, min_size=1, max_size=3).map(
            lambda ps: "".join(
                f'<p xmlns="http://www.w3.org/1999/xhtml">{_escape(p)}</p>' for p in ps
            )
        )
    )
    relation = st.builds(
        Relation,
        st.sampled_from(
            ["interprets", "implements", "republishes", "amends", "repeals", "replies-to"]
        ),
        st.builds(lambda n, loc: f"urn:govhub:{n}:{loc}-r", slug, local),
        st.none() | text,
    )
    return Record(
        kind=kind,
        id=f"urn:govhub:{node}:{draw(local)}",
        revision=draw(st.integers(1, 2**31 - 1)),
        origin=Origin(node, draw(site_codes)),
        title=draw(text),
        issuers=tuple(draw(st.lists(text, min_size=1, max_size=3))),
        published=published,
        lang=draw(st.none() | st.sampled_from(records.LANGUAGES)),
        index_number=index_number,
        doc_number=draw(maybe_text),
        topic=draw(st.none() | st.builds(Topic, st.sampled_from(TOPICS), maybe_text)),
        genre=draw(st.none() | st.sampled_from(GENRES)),
        keywords=tuple(draw(st.lists(text, max_size=3))),
        created=created,
        updated=updated,
        validity=draw(st.none() | st.sampled_from(["in-force", "amended", "repealed", "expired"])),
        disclosure=disclosure,
        summary=draw(maybe_text),
        body=body,
        link=draw(st.none() | urls),
        attachments=tuple(
            draw(
                st.lists(
                    st.builds(
                        Attachment,
                        urls,
                        text,
                        st.none() | st.just("application/pdf"),
                        st.none() | st.integers(0, 10**9),
                        st.none() | st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
                    ),
                    max_size=2,
                )
            )
        ),
        relations=tuple(draw(st.lists(relation, max_size=2))),
        urgency=draw(st.none() | st.sampled_from(["routine", "urgent", "emergency"])),
        status=status,
        service=draw(services()) if kind == "service" else None,
        interaction=draw(interactions()) if kind == "interaction" else None,
    )


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


common = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@common
@given(valid_records())
def test_round_trip_is_exact(record: Record) -> None:
    assert records.parse(record.to_xml()) == record
    assert records.parse(record.to_xml(pretty=False)) == record


@common
@given(valid_records())
def test_canonical_form_and_hash_depend_only_on_the_value(record: Record) -> None:
    again = records.parse(record.to_xml(pretty=False))
    assert again.canonical() == record.canonical()
    assert again.content_hash() == record.content_hash()
    bumped = dataclasses.replace(record, revision=record.revision % (2**31 - 1) + 1)
    assert bumped.content_hash() == record.content_hash()


@common
@given(valid_records(), text)
def test_a_changed_title_changes_the_hash(record: Record, suffix: str) -> None:
    changed = dataclasses.replace(record, title=record.title + suffix)
    assert changed.content_hash() != record.content_hash()


@common
@given(valid_records())
def test_xml_and_hash_equals_to_xml_and_content_hash(record: Record) -> None:
    """The hub's one-tree shortcut gives exactly the two separate results."""
    assert record.xml_and_hash() == (record.to_xml(pretty=False), record.content_hash())


@common
@given(valid_records())
def test_encode_checked_gives_what_to_xml_and_parse_give(record: Record) -> None:
    encoded = records.encode_checked(record)
    assert encoded.problems == ()
    assert (encoded.data, encoded.content_hash) == (
        record.to_xml(pretty=False),
        record.content_hash(),
    )


@pytest.mark.parametrize(
    "change",
    [
        {"title": "  "},  # the schema: blank
        {"index_number": "000014348/2006-00166"},  # a rule: the check character
        {"created": date(2100, 1, 1)},  # a rule: published before created
        {"id": "urn:govhub:other:x1"},  # a rule: the id names another node
    ],
)
def test_encode_checked_refuses_what_parse_refuses(change: dict[str, object]) -> None:
    record = records.parse((EXAMPLES / "document.xml").read_bytes())
    broken = dataclasses.replace(record, **change)  # type: ignore[arg-type]
    found = records.encode_checked(broken).problems
    expected = records.problems(broken.to_xml(pretty=False))
    assert found and [(p.field, p.message) for p in found] == [
        (p.field, p.message) for p in expected
    ]
