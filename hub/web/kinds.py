"""What a record says, in the sections a reader sees, for the record page and the feeds.

gov.cn lays out each kind of record its own way: a 办事指南 (service guide) is a
table of 事项名称, 设定依据, 申请条件, 办理材料 …; a 互动交流 (question and
answer) is a 问答 block; every kind has its 公开属性. ``sections`` turns a
``Record`` into those sections once, as rows of labels and values, so that the
page (``record.html``) and the feed entries (``hub.web.feeds.render``) show the
same things. Values are plain text or links: markup is made by whoever renders.

``LABELS`` names the record standard's enumerations in Chinese (docs/records.md);
``human_size`` writes a byte count as people write it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from hub.records.model import CHINA, Interaction, Record, Service
from hub.store.links.queries import OUTGOING

KIND_NAMES = {
    "document": "政策文件",
    "news": "新闻",
    "notice": "通知公告",
    "interpretation": "政策解读",
    "emergency": "应急信息",
    "statistics": "统计数据",
    "profile": "机构概况",
    "service": "办事服务",
    "interaction": "互动交流",
}
VALIDITY = {"in-force": "有效", "amended": "已修改", "repealed": "已废止", "expired": "已失效"}
RELATIONS = OUTGOING  # how a record page names what a record relates to
LANGUAGE_NAMES = {
    "zh-Hans": "简体中文",
    "zh-Hant": "繁体中文",
    "en": "英文",
    "bo": "藏文",
    "ug": "维吾尔文",
    "mn": "蒙古文",
    "ii": "彝文",
    "za": "壮文",
    "ko": "朝鲜文",
}
LABELS: dict[str, dict[str, str]] = {
    "kind": KIND_NAMES,
    "lang": LANGUAGE_NAMES,
    "validity": VALIDITY,
    "disclosure.mode": {
        "proactive": "主动公开",
        "on-request": "依申请公开",
        "withheld": "不予公开",
    },
    "disclosure.audience": {"public": "面向社会", "applicant": "面向申请人"},
    "disclosure.duration": {"permanent": "长期公开", "limited": "限时公开"},
    "urgency": {"routine": "常规", "urgent": "紧急", "emergency": "特急"},
    "status.value": {"active": "有效", "withdrawn": "已撤回"},
    "relations.type": RELATIONS,
    "service.online": {
        "none": "不提供网上办理",
        "info": "网上提供办事信息",
        "download": "网上下载表格",
        "apply": "网上申请",
        "full": "全程网办",
    },
    "service.licensing": {"True": "是", "False": "否"},
    "interaction.channel": {
        "consultation": "咨询",
        "mailbox": "领导信箱",
        "survey": "意见征集",
        "hearing": "听证",
        "interview": "在线访谈",
    },
}
"""The Chinese names of enumerated values, by field path (``disclosure.mode``)."""


@dataclass(frozen=True, slots=True)
class Link:
    href: str
    text: str


Value = str | Link


@dataclass(frozen=True, slots=True)
class Row:
    """One labelled line; ``long`` values are paragraphs (a question, a procedure)."""

    label: str
    values: tuple[Value, ...]
    long: bool = False
    listed: bool = False  # several values shown as a list (办理材料)


@dataclass(frozen=True, slots=True)
class Section:
    id: str  # the HTML id and class: service, interaction, properties
    title: str
    rows: tuple[Row, ...]


def label(path: str, value: object) -> str:
    """An enumerated value's Chinese name (the value itself if it has none)."""
    return LABELS.get(path, {}).get(str(value), str(value))


def when(value: datetime | date | None) -> str:
    """A time as the portal writes it: China time to the minute; a date as it is."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


def human_size(size: int) -> str:
    """A byte count as people write it: ``12 B``, ``950 KB``, ``1.8 MB`` (powers of 1024).

    One decimal below 10 of a unit and none above; a trailing ``.0`` is dropped.
    """
    if size < 0:
        raise ValueError(f"a size cannot be negative: {size}")
    if size < 1024:
        return f"{size} B"
    units = ("KB", "MB", "GB", "TB")
    amount, unit = size / 1024, 0
    while amount >= 1023.5 and unit < len(units) - 1:  # would print as 1024: the next unit
        amount, unit = amount / 1024, unit + 1
    text = f"{amount:.1f}".removesuffix(".0") if amount < 9.95 else f"{amount:.0f}"
    return f"{text} {units[unit]}"


def sections(record: Record, *, table: bool = False) -> list[Section]:
    """The record's sections: its kind's (办事指南, 问答) and its 信息属性.

    ``table`` adds the fields the page shows in its metadata table (索引号, 发文字号 …),
    for readers that have no such table: a feed entry.
    """
    found = []
    if record.service is not None:
        found.append(Section("service", "办事指南", tuple(_service(record.service))))
    if record.interaction is not None:
        found.append(Section("interaction", "问答", tuple(_interaction(record.interaction))))
    if record.attachments and table:
        found.append(Section("attachments", "附件", tuple(_attachments(record))))
    found.append(Section("properties", "信息属性", tuple(_properties(record, table))))
    return [section for section in found if section.rows]


def plain(section: Section) -> str:
    """A section as one line of text (``事项名称：…；办理时限：…``), for a feed's summary."""
    return "；".join(
        f"{row.label}：" + "、".join(v.text if isinstance(v, Link) else v for v in row.values)
        for row in section.rows
    )


def _rows(*rows: tuple[str, Iterable[Value | None] | Value | None, bool]) -> list[Row]:
    kept = []
    for name, values, long in rows:
        items = [values] if isinstance(values, str | Link) or values is None else list(values)
        present = tuple(v for v in items if v)
        if present:
            kept.append(Row(name, present, long=long, listed=len(items) > 1))
    return kept


def _service(service: Service) -> list[Row]:
    forms = [Link(form.href, form.name) for form in service.forms]
    licensing = None if service.licensing is None else label("service.licensing", service.licensing)
    rows = _rows(
        ("事项名称", service.name, False),
        ("是否行政许可", licensing, False),
        ("设定依据", service.basis, True),
        ("申请条件", service.conditions, True),
        ("办理材料", service.materials, False),
        ("申请表格", forms, False),
        ("办理流程", service.procedure, True),
        (
            "办理时限",
            f"{service.time_limit}个工作日" if service.time_limit is not None else None,
            False,
        ),
        ("收费标准", service.fee, True),
        ("网上办理", label("service.online", service.online) if service.online else None, False),
    )
    # 办理材料 is a list even when it has one item, as the 办事指南 writes it.
    return [
        Row(r.label, r.values, r.long, listed=True) if r.label == "办理材料" else r for r in rows
    ]


def _interaction(asked: Interaction) -> list[Row]:
    return _rows(
        ("渠道", label("interaction.channel", asked.channel), False),
        ("来信内容", asked.question, True),
        ("来信时间", when(asked.asked), False),
        ("答复内容", asked.answer, True),
        ("答复单位", asked.answered_by, False),
        ("答复时间", when(asked.answered), False),
    )


def _attachments(record: Record) -> list[Row]:
    rows = []
    for attachment in record.attachments:
        about = "，".join(
            part
            for part in (
                human_size(attachment.size) if attachment.size is not None else None,
                attachment.type,
                f"SHA-256 {attachment.sha256}" if attachment.sha256 else None,
            )
            if part
        )
        values: tuple[Value, ...] = (Link(attachment.href, attachment.name),)
        rows.append(Row("附件", values + ((f"（{about}）",) if about else ())))
    return rows


def _properties(record: Record, table: bool) -> list[Row]:
    disclosure = record.disclosure
    status = record.status
    topic = record.topic
    rows: list[tuple[str, Iterable[Value | None] | Value | None, bool]] = []
    if table:
        rows += [
            ("索引号", record.index_number or record.local_index_number, False),
            (
                "主题分类",
                "\\".join(filter(None, (topic.top, topic.sub))) if topic else None,
                False,
            ),
            ("发文机关", "、".join(record.issuers), False),
            ("成文日期", when(record.created), False),
            ("发文字号", record.doc_number, False),
            ("发布日期", when(record.published), False),
            ("有效性", label("validity", record.validity) if record.validity else None, False),
            ("原文链接", Link(record.link, record.link) if record.link else None, False),
        ]
    else:
        rows += [("发布时间", when(record.published), False)]
    rows += [
        ("信息类别", label("kind", record.kind), False),
        ("体裁", record.genre, False),
        ("关键词", "、".join(record.keywords), False),
        ("更新时间", when(record.updated), False),
        ("紧急程度", label("urgency", record.urgency) if record.urgency else None, False),
        (
            "语言",
            label("lang", record.lang) if record.lang else None,
            False,
        ),
    ]
    if disclosure is not None:
        duration = label("disclosure.duration", disclosure.duration) if disclosure.duration else ""
        if disclosure.until:
            duration += f"（至{disclosure.until.isoformat()}）"
        rows += [
            ("公开方式", label("disclosure.mode", disclosure.mode), False),
            (
                "公开范围",
                label("disclosure.audience", disclosure.audience) if disclosure.audience else None,
                False,
            ),
            ("公开时限", duration, False),
        ]
    if status is not None:
        said = label("status.value", status.value)
        if status.at:
            said += f"（{when(status.at)}）"
        rows += [("状态", said, False), ("撤回原因", status.reason, True)]
    relations = [
        RELATIONS.get(r.type, r.type)
        + "："
        + "　".join(part for part in (r.doc_number, r.ref) if part)
        for r in record.relations
    ]
    rows += [
        ("关联", relations, False),
        ("信息来源网站", f"网站标识码 {record.origin.site}（节点 {record.origin.node}）", False),
        ("记录标识", f"{record.id}（第{record.revision}版）", False),
        ("扩展数据", record.extensions, True),
    ]
    return _rows(*rows)
