"""Every kind of record shows all of its content: on its portal page (hub.web.pages) and in
its Atom and RSS feed entries (hub.web.feeds.render), laid out as gov.cn lays it out.

The checks walk the record model's dataclass fields generically, so a field added to
``hub.records.model`` is covered without touching this file: each non-empty value must
appear in what a reader sees (text or link addresses), in the words the page uses for it
(``hub.web.kinds.LABELS`` for enumerations, China time for times).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import support.postgres as postgres_fixtures
import test_feeds
from lxml import etree, html
from test_pages import EXAMPLES, fill, get

from hub import records
from hub.inbox import render as inbox_render
from hub.inbox.entries import Item
from hub.records.model import (
    CHINA,
    Attachment,
    Disclosure,
    Interaction,
    Record,
    Relation,
    Service,
)
from hub.store.connection import Connection
from hub.store.feed_log.log import LogEntry
from hub.web import kinds
from hub.web.feeds.render import ATOM, CONTENT, RECORD, atom_fragment, rss_fragment

pg_url = postgres_fixtures.own_pg_url
pg_conn = postgres_fixtures.pg_conn

SKIPPED = {"lines"}  # where each field was in the source: not content


def leaves(value: object, path: str = "") -> Iterator[tuple[str, object]]:
    """Every non-empty leaf of a record, with its dotted field path (tuples flattened)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            if item.name not in SKIPPED:
                name = f"{path}.{item.name}" if path else item.name
                yield from leaves(getattr(value, item.name), name)
    elif isinstance(value, tuple):
        for item in value:
            yield from leaves(item, path)
    elif value is not None and value != "":
        yield path, value


def expected(path: str, value: object) -> list[str]:
    """What a reader must find for a leaf (every string listed must appear)."""
    if path == "attachments.size":
        assert isinstance(value, int)
        return [kinds.human_size(value)]
    if isinstance(value, datetime):
        local = value.astimezone(CHINA)
        return [local.strftime("%Y-%m-%d"), local.strftime("%H:%M")]
    if isinstance(value, date):
        return [value.isoformat()]
    if path in kinds.LABELS:
        return [kinds.label(path, value)]
    return [" ".join(str(value).split())]


def missing(record: Record, shown: str, *, withdrawn_body: bool = True) -> list[str]:
    """The leaves of ``record`` that ``shown`` (text and addresses, spaces squeezed) lacks."""
    lost = []
    for path, value in leaves(record):
        if path == "body":
            if record.withdrawn and not withdrawn_body:
                continue  # a withdrawn record's page says so instead of showing its text
            # Compared without spaces: how a body's paragraphs are indented is not content.
            text = "".join("".join(etree.fromstring(f"<b>{value}</b>").itertext()).split())
            if text[:80] not in "".join(shown.split()):
                lost.append(f"body (looked for {text[:80]!r})")
            continue
        wanted = expected(path, value)
        lost += [f"{path}={value!r} (looked for {w!r})" for w in wanted if w not in shown]
    return lost


def seen(element: etree._Element) -> str:
    """What a reader sees of an element: its text and its links' addresses."""
    text = " ".join("".join(element.itertext()).split())
    return text + " " + " ".join(element.xpath("//@href"))


def examples() -> list[Record]:
    return [records.parse(path.read_bytes(), str(path)) for path in EXAMPLES]


def test_every_example_kind_is_there() -> None:
    assert {r.kind for r in examples()} == set(kinds.KIND_NAMES), "an example of every kind"


def test_every_field_of_every_example_is_on_its_page(pg_conn: Connection, pg_url: str) -> None:
    fill(pg_conn)
    for record in examples():
        page = get(pg_url, f"/records/{record.id}")
        assert page.status == 200, record.id
        article = html.fromstring(page.text).xpath("//article[@class='record']")[0]
        lost = missing(record, seen(article), withdrawn_body=False)
        assert not lost, f"{record.id} page lacks: {lost}"


def test_service_page_is_a_guide_and_interaction_page_a_question_and_answer(
    pg_conn: Connection, pg_url: str
) -> None:
    fill(pg_conn)
    service = records.parse((EXAMPLES[0].parent / "service.xml").read_bytes())
    doc = html.fromstring(get(pg_url, f"/records/{service.id}").text)
    guide = doc.xpath("//section[contains(@class, 'service')]//table[@class='guide']")[0]
    labels = [" ".join(th.text_content().split()) for th in guide.xpath(".//th")]
    assert labels[:2] == ["事项名称", "是否行政许可"], labels
    for label in ("设定依据", "申请条件", "办理材料", "申请表格", "办理流程", "办理时限"):
        assert label in labels
    assert service.service is not None
    materials = guide.xpath(".//tr[th='办理材料']//ol/li")
    assert [m.text_content() for m in materials] == list(service.service.materials)
    form = service.service.forms[0]
    assert guide.xpath(".//tr[th='申请表格']//a/@href") == [form.href]
    assert "10个工作日" in guide.text_content()

    asked = records.parse((EXAMPLES[0].parent / "interaction.xml").read_bytes())
    doc = html.fromstring(get(pg_url, f"/records/{asked.id}").text)
    qa = doc.xpath("//section[contains(@class, 'interaction')]//dl[@class='qa']")[0]
    terms = [dt.text_content() for dt in qa.xpath("dt")]
    assert terms == ["渠道", "来信内容", "来信时间", "答复内容", "答复单位", "答复时间"]
    assert asked.interaction is not None
    assert qa.xpath("dd")[4].text_content() == asked.interaction.answered_by


def test_attachment_sizes_read_as_people_write_them() -> None:
    assert [kinds.human_size(n) for n in (0, 12, 1023, 1024, 972_800)] == [
        "0 B",
        "12 B",
        "1023 B",
        "1 KB",
        "950 KB",
    ]
    assert kinds.human_size(1_843_200) == "1.8 MB"  # once shown as "1800.0 KB"
    assert kinds.human_size(10 * 1024 * 1024 - 1) == "10 MB"
    assert kinds.human_size(1024 * 1024 - 100) == "1 MB", "not 1024 KB"
    assert kinds.human_size(3 * 1024**3 + 1) == "3 GB"
    with pytest.raises(ValueError, match="negative"):
        kinds.human_size(-1)


def entry_of(record: Record) -> LogEntry:
    now = datetime.now(UTC)
    return LogEntry(
        position=1,
        seq=0,
        id=record.id,
        revision=record.revision,
        path=record.origin.node,
        kind=record.kind,
        topic_class=record.topic.top if record.topic else None,
        issuers=record.issuers,
        lang=record.language,
        withdrawn=record.withdrawn,
        published=record.published,
        updated=record.updated or record.published,
        logged_at=now,
    )


def _readable(element: etree._Element) -> etree._Element:
    """The entry without the record it carries (``gr:record``): what a reader shows."""
    for carried in element.findall(f"{{{RECORD}}}record"):
        element.remove(carried)
    return element


WRAP_ATOM = f'<feed xmlns="{ATOM}" xmlns:at="http://purl.org/atompub/tombstones/1.0"'
WRAP_ATOM += f' xmlns:gr="{RECORD}" xmlns:fh="http://purl.org/syndication/history/1.0">'


def test_every_field_of_every_example_is_in_its_feed_entries() -> None:
    for record in examples():
        xml = record.to_xml().decode()
        fragment = atom_fragment(entry_of(record), xml, "http://portal.test", "Hans")
        feed = etree.fromstring(WRAP_ATOM.encode() + fragment + b"</feed>")
        entry = _readable(feed[0])
        if record.withdrawn:  # a tombstone: the reason and the time say enough
            assert record.status is not None and record.status.reason in seen(entry)
            continue
        lost = missing(record, seen(entry))
        assert not lost, f"{record.id} Atom entry lacks: {lost}"
        assert entry.findtext(f"{{{ATOM}}}summary"), f"{record.id}: a summary"

        fragment = rss_fragment(entry_of(record), xml, "http://portal.test", "Hans")
        wrap = f'<rss xmlns:content="{CONTENT}" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        wrap += f' xmlns:gr="{RECORD}">'
        item = _readable(etree.fromstring(wrap.encode() + fragment + b"</rss>")[0])
        article = html.fromstring(item.findtext(f"{{{CONTENT}}}encoded") or "<div/>")
        shown = seen(item) + " " + seen(article)
        lost = missing(record, shown)
        assert not lost, f"{record.id} RSS item lacks: {lost}"
        assert item.findtext("description"), f"{record.id}: a description"


def test_service_and_interaction_entries_carry_a_summary_from_their_section() -> None:
    for name in ("service.xml", "interaction.xml"):
        record = records.parse((EXAMPLES[0].parent / name).read_bytes())
        assert record.summary is None and record.body is None, "the case of issue #12"
        fragment = atom_fragment(entry_of(record), record.to_xml().decode(), "http://p", "Hans")
        entry = etree.fromstring(WRAP_ATOM.encode() + fragment + b"</feed>")[0]
        summary = entry.findtext(f"{{{ATOM}}}summary") or ""
        if record.service is not None:
            assert summary.startswith(f"事项名称：{record.service.name}；"), summary
        else:
            assert record.interaction is not None
            channel = kinds.label("interaction.channel", record.interaction.channel)
            assert summary.startswith(f"渠道：{channel}；来信内容："), summary
        content = entry.find(f"{{{ATOM}}}content")
        assert content is not None and content.get("type") == "xhtml"


def test_feeds_list_entries_by_publication_newest_first(pg_url: str, pg_conn: Connection) -> None:
    """Stored 2022, 2023, 2020, 2021 (the log's order): listed 2023, 2022, 2021, 2020, on the
    subscription document and on a complete archive page alike."""
    years = (2022, 2023, 2020, 2021, 2019, 2024)
    made = [
        test_feeds.make(n, "gz", published=datetime(year, 3, 1, 9, tzinfo=CHINA))
        for n, year in enumerate(years, 1)
    ]
    for record in made:  # one at a time: the log's order is the store's
        test_feeds.store(pg_conn, record)
    order = {r.id: r.published for r in made}

    async def scenario(client: test_feeds.Client, portal: object) -> None:
        for address in ("/nodes/gz/own.atom", "/nodes/gz/own.rss", "/nodes/gz/own.atom?page=0"):
            listed = test_feeds.ids_in(await test_feeds.get(client, address))
            assert listed, address
            times = [order[i] for i in listed]
            assert times == sorted(times, reverse=True), (address, times)
        archive = test_feeds.ids_in(await test_feeds.get(client, "/nodes/gz/own.atom?page=0"))
        current = test_feeds.ids_in(await test_feeds.get(client, "/nodes/gz/own.atom"))
        assert len(archive) == 4 and set(archive) | set(current) == set(order), "none lost"

    test_feeds.serve(pg_url, scenario, page_size=4)


def test_inbox_feeds_write_china_time_to_the_second_and_a_chinese_subtitle() -> None:
    node = test_feeds.FEDERATION.node("gz")
    utc_with_micros = datetime(2024, 5, 1, 1, 2, 3, 456789, tzinfo=UTC)
    item = Item(
        seq=1,
        record_id="urn:govhub:gz:t001",
        revision=1,
        kind="notice",
        topic=None,
        origin="gd",
        from_path="cn.gd",
        routing_key="cn.gd.notice",
        via="push",
        received_at=utc_with_micros,
        title="关于做好环境监测工作的通知",
        link=None,
        issuers=("广东省人民政府",),
        published=utc_with_micros,
        updated=None,
        summary=None,
        withdrawn=False,
        withdrawn_reason=None,
        body=b"<record/>",
    )
    atom = etree.fromstring(
        inbox_render.atom_bytes(node, [item], "http://n/inbox.atom", utc_with_micros)
    )
    times = atom.xpath("//a:updated/text() | //a:published/text()", namespaces={"a": ATOM})
    assert times and set(times) == {"2024-05-01T09:02:03+08:00"}, times
    subtitle = atom.findtext(f"{{{ATOM}}}subtitle") or ""
    assert subtitle.startswith(f"{node.name}收到的上级推送与订阅信息"), subtitle
    rss = etree.fromstring(
        inbox_render.rss_bytes(node, [item], "http://n/inbox.rss", utc_with_micros)
    )
    assert rss.findtext("channel/item/pubDate") == "Wed, 01 May 2024 09:02:03 +0800"
    assert (rss.findtext("channel/description") or "") == subtitle
    listed = json.loads(
        inbox_render.json_bytes(node, [item], "http://n/inbox.json", utc_with_micros)
    )
    assert listed["updated"] == listed["records"][0]["published"] == "2024-05-01T09:02:03+08:00"


def filled_in(kind: str) -> Record:
    """A record of ``kind`` with every optional field of the model given (edge values
    included: 0 working days, not a licence, an attachment of 0 bytes), checked by the
    record standard on its way through XML."""
    base = records.parse((EXAMPLES[0].parent / "service.xml").read_bytes())
    at = datetime(2023, 6, 5, 14, 30, tzinfo=CHINA)
    record = dataclasses.replace(
        base,
        kind=kind,
        id=f"urn:govhub:yx:full-{kind}",
        lang="en",
        index_number=None,
        local_index_number="YX-BS-2023-7",
        doc_number="越市监〔2023〕5号",
        genre="通知",
        keywords=("食品", "许可"),
        created=date(2023, 6, 1),
        published=datetime(2023, 6, 2, 9, tzinfo=CHINA),
        updated=at,
        validity="amended",
        disclosure=Disclosure("on-request", "applicant", "limited", date(2025, 12, 31)),
        summary="一段摘要",
        body='<p xmlns="http://www.w3.org/1999/xhtml">正文第一段</p>',
        attachments=(
            Attachment(
                "https://www.yuexiu.gov.cn/a.pdf", "附件一", "application/pdf", 0, "ab" * 32
            ),
            Attachment("https://www.yuexiu.gov.cn/b.xlsx", "附件二", None, 1_887_437),
        ),
        relations=(Relation("amends", "urn:govhub:yx:other-1", "越市监〔2020〕1号"),),
        urgency="urgent",
        service=Service(
            "事项甲", time_limit=0, licensing=False, online="download", fee="按标准收取"
        )
        if kind == "service"
        else None,
        interaction=Interaction(
            "consultation", "请问如何办理？", at, "请携带身份证。", at, "越秀区政务服务中心"
        )
        if kind == "interaction"
        else None,
        extensions=('<x:meta xmlns:x="urn:example:gd">扩展值</x:meta>',),
    )
    return records.parse(record.to_xml())


def test_every_field_of_a_filled_in_record_is_shown(pg_conn: Connection, pg_url: str) -> None:
    full = [filled_in("service"), filled_in("interaction")]
    fill(pg_conn, *full)
    for record in full:
        page = get(pg_url, f"/records/{record.id}")
        assert page.status == 200, record.id
        article = html.fromstring(page.text).xpath("//article[@class='record']")[0]
        assert not missing(record, seen(article)), record.id
        assert "0 B" in seen(article) and "1.8 MB" in seen(article)
        traditional = get(pg_url, f"/records/{record.id}?lang=zh-Hant")
        assert traditional.status == 200 and "信息屬性" in traditional.text
        xml = record.to_xml().decode()
        entry = _readable(
            etree.fromstring(
                WRAP_ATOM.encode()
                + atom_fragment(entry_of(record), xml, "http://portal.test", "Hans")
                + b"</feed>"
            )[0]
        )
        assert not missing(record, seen(entry)), record.id
