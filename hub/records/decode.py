"""XML → model: build a ``Record`` from a schema-valid record tree.

The tree has passed the XSD, so its structure is known; what can still fail is
a value that XSD accepts but Python cannot hold (``24:00:00``, year 0), which is
reported as a ``Problem`` like every other error.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from lxml import etree

from hub.errors import Problem, RecordInvalid
from hub.records.model import (
    NS,
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

_P = f"{{{NS}}}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_P_LENGTH = len(_P)


Reader = Callable[[etree._Element, str], Any]  # (element, where) -> the field's value


def record_from_element(root: etree._Element, where: str) -> Record:
    """The ``Record`` that a schema-valid ``<record>`` element describes."""
    lines = {"record": root.sourceline}
    values: dict[str, Any] = {"kind": _token(root.get("kind")), "lang": root.get(_XML_LANG)}
    extensions = []
    for element in root:
        spec = _FIELDS.get(element.tag)
        if spec is None:
            if element.tag.__class__ is str:  # not a comment or processing instruction
                extensions.append(_c14n(element))  # the schema let it in: another namespace
            continue
        name, field, read = spec
        lines[name] = element.sourceline
        values[field] = element.text if read is None else read(element, where)
    values["extensions"] = tuple(extensions)
    values["lines"] = lines
    return _new_record(values)


def _slot_writers() -> tuple[tuple[str, Callable[[Record, Any], None], Any], ...]:
    writers = []
    for spec in dataclasses.fields(Record):
        default = None if spec.default is dataclasses.MISSING else spec.default
        writers.append((spec.name, getattr(Record, spec.name).__set__, default))
    return tuple(writers)


_WRITERS = _slot_writers()


def _new_record(values: dict[str, Any]) -> Record:
    """``Record(**values)`` for the price of a third.

    A frozen dataclass's ``__init__`` sets each of its 29 fields through
    ``object.__setattr__``; on the hot path that was a tenth of the whole parse.
    Writing the slots directly gives the same immutable object: every field is
    set (from ``values`` or the field's default), exactly as ``__init__`` would.
    """
    record = object.__new__(Record)
    for name, write, default in _WRITERS:
        write(record, values.get(name, default))
    return record


def _date(value: str | None, element: etree._Element, field: str, where: str) -> date:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError as exc:
        raise _not_real(field, element, exc, where) from None


def _datetime(value: str | None, element: etree._Element, field: str, where: str) -> datetime:
    try:
        return datetime.fromisoformat((value or "").strip())
    except ValueError as exc:
        raise _not_real(field, element, exc, where) from None


def _not_real(field: str, element: etree._Element, exc: ValueError, where: str) -> RecordInvalid:
    return RecordInvalid([Problem(where, element.sourceline, field, f"not a real date: {exc}")])


def _c14n(element: etree._Element) -> str:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False).decode()


def _token(value: str | None) -> str:
    """xs:token values compare after whitespace collapsing; keep them collapsed."""
    return " ".join((value or "").split())


def _maybe_token(value: str | None) -> str | None:
    return None if value is None else _token(value)


def _maybe_token_text(element: etree._Element, where: str) -> str | None:
    return _maybe_token(element.text)


def _revision(element: etree._Element, where: str) -> int:
    return int(element.text or "0")


# Origins, topics, disclosures and statuses repeat from record to record (one origin
# per site, a few dozen topics), and they are immutable: each distinct one is built
# once and shared, which spares the construction and the memory.
_SHARED = functools.lru_cache(maxsize=4096)


def _origin(element: etree._Element, where: str) -> Origin:
    return _shared_origin(element.get("node"), element.get("site"))


@_SHARED
def _shared_origin(node: str, site: str) -> Origin:
    return Origin(node, site)


def _topic(element: etree._Element, where: str) -> Topic:
    return _shared_topic(element.get("class"), element.get("sub"))


@_SHARED
def _shared_topic(top: str, sub: str | None) -> Topic:
    return Topic(top, sub)


def _texts(element: etree._Element, where: str) -> tuple[str, ...]:
    return tuple([child.text or "" for child in element if child.tag.__class__ is str])


def _created(element: etree._Element, where: str) -> date:
    return _date(element.text, element, "created", where)


def _published(element: etree._Element, where: str) -> datetime:
    return _datetime(element.text, element, "published", where)


def _updated(element: etree._Element, where: str) -> datetime:
    return _datetime(element.text, element, "updated", where)


def _disclosure(element: etree._Element, where: str) -> Disclosure:
    get = element.get
    try:
        return _shared_disclosure(get("mode"), get("audience"), get("duration"), get("until"))
    except ValueError as exc:
        raise _not_real("disclosure/@until", element, exc, where) from None


@_SHARED
def _shared_disclosure(
    mode: str, audience: str | None, duration: str | None, until: str | None
) -> Disclosure:
    return Disclosure(
        _token(mode),
        _maybe_token(audience),
        _maybe_token(duration),
        date.fromisoformat(until.strip()) if until else None,
    )


def _body(element: etree._Element, where: str) -> str:
    # The whitespace between a body's block elements means nothing (the content is
    # element-only): drop it, then serialise the body once and keep what is inside.
    element.text = None
    for child in element:
        child.tail = None
    text = etree.tostring(element, encoding="unicode")
    start = text.index(">") + 1
    if text.find("xmlns:", 0, start) != -1:
        # A prefix declared above the body: serialise each child on its own so
        # that every one carries the declarations it uses.
        return "".join(_c14n(child) for child in element)
    return text[start : text.rindex("</")]


def _link(element: etree._Element, where: str) -> str:
    return _token(element.get("href"))


def _attachments(element: etree._Element, where: str) -> tuple[Attachment, ...]:
    items = []
    for child in element.iterchildren(f"{_P}attachment"):
        size = child.get("size")
        items.append(
            Attachment(
                _token(child.get("href")),
                child.text or "",
                child.get("type"),
                int(size) if size is not None else None,
                child.get("sha256"),
            )
        )
    return tuple(items)


def _relations(element: etree._Element, where: str) -> tuple[Relation, ...]:
    return tuple(
        [
            Relation(_token(child.get("type")), child.get("ref"), child.get("docNumber"))
            for child in element.iterchildren(f"{_P}relation")
        ]
    )


def _status(element: etree._Element, where: str) -> Status:
    try:
        return _shared_status(element.text, element.get("reason"), element.get("at"))
    except ValueError as exc:
        raise _not_real("status/@at", element, exc, where) from None


@_SHARED
def _shared_status(value: str | None, reason: str | None, at: str | None) -> Status:
    return Status(_token(value), reason, datetime.fromisoformat(at.strip()) if at else None)


def _service(element: etree._Element, where: str) -> Service:
    fields: dict[str, Any] = {}
    for child in element:
        name = child.tag[_P_LENGTH:]
        if name == "materials":
            fields["materials"] = _texts(child, where)
        elif name == "forms":
            fields["forms"] = tuple(
                Form(_token(form.get("href")), form.text or "") for form in child
            )
        elif name == "timeLimit":
            fields["time_limit"] = int(child.text or "0")
        else:
            fields[name] = child.text
    licensing = element.get("licensing")
    return Service(
        **fields,
        online=_maybe_token(element.get("online")),
        licensing=None if licensing is None else licensing.strip() in ("true", "1"),
    )


def _interaction(element: etree._Element, where: str) -> Interaction:
    fields: dict[str, Any] = {}
    for child in element:
        name = child.tag[_P_LENGTH:]
        if name in ("asked", "answered"):
            fields[name] = _datetime(child.text, child, f"interaction/{name}", where)
        elif name == "answeredBy":
            fields["answered_by"] = child.text
        else:
            fields[name] = child.text
    return Interaction(_token(element.get("channel")), **fields)


# Each element of the record namespace: (its name, the model field, how to read it).
# ``None`` reads the element's text as written.
_READERS: tuple[tuple[str, str, Reader | None], ...] = (
    ("id", "id", None),
    ("revision", "revision", _revision),
    ("origin", "origin", _origin),
    ("indexNumber", "index_number", None),
    ("localIndexNumber", "local_index_number", _maybe_token_text),
    ("title", "title", None),
    ("issuers", "issuers", _texts),
    ("docNumber", "doc_number", None),
    ("topic", "topic", _topic),
    ("genre", "genre", None),
    ("keywords", "keywords", _texts),
    ("created", "created", _created),
    ("published", "published", _published),
    ("updated", "updated", _updated),
    ("validity", "validity", _maybe_token_text),
    ("disclosure", "disclosure", _disclosure),
    ("summary", "summary", None),
    ("body", "body", _body),
    ("link", "link", _link),
    ("attachments", "attachments", _attachments),
    ("relations", "relations", _relations),
    ("urgency", "urgency", _maybe_token_text),
    ("status", "status", _status),
    ("service", "service", _service),
    ("interaction", "interaction", _interaction),
)
_FIELDS = {f"{_P}{name}": (name, field, read) for name, field, read in _READERS}
