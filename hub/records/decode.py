"""XML → model: build a ``Record`` from a schema-valid record tree.

The tree has passed the XSD, so its structure is known; what can still fail is
a value that XSD accepts but Python cannot hold (``24:00:00``, year 0), which is
reported as a ``Problem`` like every other error.
"""

from __future__ import annotations

import dataclasses
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


Reader = Callable[[etree._Element, dict[str, Any], str], None]

# Elements whose value is their text as written, and the model field for each.
_TEXT_FIELDS = {
    "id": "id",
    "indexNumber": "index_number",
    "title": "title",
    "docNumber": "doc_number",
    "genre": "genre",
    "summary": "summary",
}
_P_LENGTH = len(_P)


def record_from_element(root: etree._Element, where: str) -> Record:
    """The ``Record`` that a schema-valid ``<record>`` element describes."""
    lines = {"record": root.sourceline}
    values: dict[str, Any] = {"kind": _token(root.get("kind")), "lang": root.get(_XML_LANG)}
    extensions = []
    for element in root:
        tag = element.tag
        if tag.__class__ is not str:  # a comment or processing instruction
            continue
        if tag[:_P_LENGTH] != _P:
            extensions.append(_c14n(element))
            continue
        name = tag[_P_LENGTH:]
        lines[name] = element.sourceline
        field = _TEXT_FIELDS.get(name)
        if field is not None:
            values[field] = element.text
        else:
            _READERS[name](element, values, where)
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


def _texts(element: etree._Element) -> tuple[str, ...]:
    return tuple(child.text or "" for child in element if isinstance(child.tag, str))


def _token(value: str | None) -> str:
    """xs:token values compare after whitespace collapsing; keep them collapsed."""
    return " ".join((value or "").split())


def _maybe_token(value: str | None) -> str | None:
    return None if value is None else _token(value)


def _validity(element: etree._Element, values: dict[str, Any], where: str) -> None:
    values["validity"] = _maybe_token(element.text)


def _urgency(element: etree._Element, values: dict[str, Any], where: str) -> None:
    values["urgency"] = _maybe_token(element.text)


def _revision(element: etree._Element, values: dict[str, Any], where: str) -> None:
    values["revision"] = int(element.text or "0")


def _origin(element: etree._Element, values: dict[str, Any], where: str) -> None:
    values["origin"] = Origin(element.get("node"), element.get("site"))


def _issuers(element: etree._Element, values: dict[str, Any], where: str) -> None:
    values["issuers"] = _texts(element)


def _topic(element: etree._Element, values: dict[str, Any], where: str) -> None:
    values["topic"] = Topic(element.get("class"), element.get("sub"))


def _keywords(element: etree._Element, values: dict[str, Any], where: str) -> None:
    values["keywords"] = _texts(element)


def _created(element: etree._Element, values: dict[str, Any], where: str) -> None:
    values["created"] = _date(element.text, element, "created", where)


def _published(element: etree._Element, values: dict[str, Any], where: str) -> None:
    values["published"] = _datetime(element.text, element, "published", where)


def _updated(element: etree._Element, values: dict[str, Any], where: str) -> None:
    values["updated"] = _datetime(element.text, element, "updated", where)


def _disclosure(element: etree._Element, values: dict[str, Any], where: str) -> None:
    until = element.get("until")
    values["disclosure"] = Disclosure(
        _token(element.get("mode")),
        _maybe_token(element.get("audience")),
        _maybe_token(element.get("duration")),
        _date(until, element, "disclosure/@until", where) if until else None,
    )


def _body(element: etree._Element, values: dict[str, Any], where: str) -> None:
    # The whitespace between a body's block elements means nothing (the content is
    # element-only): drop it, then serialise the body once and keep what is inside.
    element.text = None
    for child in element:
        child.tail = None
    text = etree.tostring(element, encoding="unicode")
    start = text.index(">") + 1
    if "xmlns:" in text[:start]:
        # A prefix declared above the body: serialise each child on its own so
        # that every one carries the declarations it uses.
        values["body"] = "".join(_c14n(child) for child in element)
    else:
        values["body"] = text[start : text.rindex("</")]


def _link(element: etree._Element, values: dict[str, Any], where: str) -> None:
    values["link"] = _token(element.get("href"))


def _attachments(element: etree._Element, values: dict[str, Any], where: str) -> None:
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
    values["attachments"] = tuple(items)


def _relations(element: etree._Element, values: dict[str, Any], where: str) -> None:
    values["relations"] = tuple(
        Relation(_token(child.get("type")), child.get("ref"), child.get("docNumber"))
        for child in element.iterchildren(f"{_P}relation")
    )


def _status(element: etree._Element, values: dict[str, Any], where: str) -> None:
    at = element.get("at")
    values["status"] = Status(
        _token(element.text),
        element.get("reason"),
        _datetime(at, element, "status/@at", where) if at else None,
    )


def _service(element: etree._Element, values: dict[str, Any], where: str) -> None:
    fields: dict[str, Any] = {}
    for child in element:
        name = child.tag[_P_LENGTH:]
        if name == "materials":
            fields["materials"] = _texts(child)
        elif name == "forms":
            fields["forms"] = tuple(
                Form(_token(form.get("href")), form.text or "") for form in child
            )
        elif name == "timeLimit":
            fields["time_limit"] = int(child.text or "0")
        else:
            fields[name] = child.text
    licensing = element.get("licensing")
    values["service"] = Service(
        **fields,
        online=_maybe_token(element.get("online")),
        licensing=None if licensing is None else licensing.strip() in ("true", "1"),
    )


def _interaction(element: etree._Element, values: dict[str, Any], where: str) -> None:
    fields: dict[str, Any] = {}
    for child in element:
        name = child.tag[_P_LENGTH:]
        if name in ("asked", "answered"):
            fields[name] = _datetime(child.text, child, f"interaction/{name}", where)
        elif name == "answeredBy":
            fields["answered_by"] = child.text
        else:
            fields[name] = child.text
    values["interaction"] = Interaction(_token(element.get("channel")), **fields)


_READERS: dict[str, Reader] = {
    "revision": _revision,
    "origin": _origin,
    "issuers": _issuers,
    "topic": _topic,
    "keywords": _keywords,
    "created": _created,
    "published": _published,
    "updated": _updated,
    "validity": _validity,
    "disclosure": _disclosure,
    "body": _body,
    "link": _link,
    "attachments": _attachments,
    "relations": _relations,
    "urgency": _urgency,
    "status": _status,
    "service": _service,
    "interaction": _interaction,
}
