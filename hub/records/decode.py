"""XML → model: build a ``Record`` from a schema-valid record tree.

The tree has passed the XSD, so its structure is known; what can still fail is
a value that XSD accepts but Python cannot hold (``24:00:00``, year 0), which is
reported as a ``Problem`` like every other error.
"""

from __future__ import annotations

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


class _Reader:
    """Collects field values and source lines while walking one record."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.lines: dict[str, int] = {}

    def fail(self, field: str, element: etree._Element, exc: ValueError) -> RecordInvalid:
        return RecordInvalid(
            [Problem(self.where, element.sourceline, field, f"not a real date: {exc}")]
        )

    def date(self, value: str | None, element: etree._Element, field: str) -> date:
        try:
            return date.fromisoformat((value or "").strip())
        except ValueError as exc:
            raise self.fail(field, element, exc) from None

    def datetime(self, value: str | None, element: etree._Element, field: str) -> datetime:
        try:
            return datetime.fromisoformat((value or "").strip())
        except ValueError as exc:
            raise self.fail(field, element, exc) from None


def record_from_element(root: etree._Element, where: str) -> Record:
    """The ``Record`` that a schema-valid ``<record>`` element describes."""
    reader = _Reader(where)
    reader.lines["record"] = root.sourceline
    values: dict[str, Any] = {"kind": _token(root.get("kind")), "lang": root.get(_XML_LANG)}
    extensions = []
    for element in root:
        tag = element.tag
        if not isinstance(tag, str):
            continue
        if not tag.startswith(_P):
            extensions.append(_c14n(element))
            continue
        name = tag[len(_P) :]
        reader.lines[name] = element.sourceline
        _FIELDS[name](reader, element, values)
    values["extensions"] = tuple(extensions)
    return Record(**values, lines=reader.lines)


def _c14n(element: etree._Element) -> str:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False).decode()


def _texts(element: etree._Element) -> tuple[str, ...]:
    return tuple(child.text or "" for child in element if isinstance(child.tag, str))


def _token(value: str | None) -> str:
    """xs:token values compare after whitespace collapsing; keep them collapsed."""
    return " ".join((value or "").split())


def _maybe_token(value: str | None) -> str | None:
    return None if value is None else _token(value)


def _set_token(name: str) -> Callable[[_Reader, etree._Element, dict[str, Any]], None]:
    def read(reader: _Reader, element: etree._Element, values: dict[str, Any]) -> None:
        values[name] = _maybe_token(element.text)

    return read


def _set(name: str) -> Callable[[_Reader, etree._Element, dict[str, Any]], None]:
    def read(reader: _Reader, element: etree._Element, values: dict[str, Any]) -> None:
        values[name] = element.text

    return read


def _revision(reader: _Reader, element: etree._Element, values: dict[str, Any]) -> None:
    values["revision"] = int(element.text or "0")


def _origin(reader: _Reader, element: etree._Element, values: dict[str, Any]) -> None:
    values["origin"] = Origin(element.get("node"), element.get("site"))


def _issuers(reader: _Reader, element: etree._Element, values: dict[str, Any]) -> None:
    values["issuers"] = _texts(element)


def _topic(reader: _Reader, element: etree._Element, values: dict[str, Any]) -> None:
    values["topic"] = Topic(element.get("class"), element.get("sub"))


def _keywords(reader: _Reader, element: etree._Element, values: dict[str, Any]) -> None:
    values["keywords"] = _texts(element)


def _created(reader: _Reader, element: etree._Element, values: dict[str, Any]) -> None:
    values["created"] = reader.date(element.text, element, "created")


def _published(reader: _Reader, element: etree._Element, values: dict[str, Any]) -> None:
    values["published"] = reader.datetime(element.text, element, "published")


def _updated(reader: _Reader, element: etree._Element, values: dict[str, Any]) -> None:
    values["updated"] = reader.datetime(element.text, element, "updated")


def _disclosure(reader: _Reader, element: etree._Element, values: dict[str, Any]) -> None:
    until = element.get("until")
    values["disclosure"] = Disclosure(
        _token(element.get("mode")),
        _maybe_token(element.get("audience")),
        _maybe_token(element.get("duration")),
        reader.date(until, element, "disclosure/@until") if until else None,
    )


def _body(reader: _Reader, element: etree._Element, values: dict[str, Any]) -> None:
    values["body"] = "\n".join(_c14n(child) for child in element if isinstance(child.tag, str))


def _link(reader: _Reader, element: etree._Element, values: dict[str, Any]) -> None:
    values["link"] = _token(element.get("href"))


def _attachments(reader: _Reader, element: etree._Element, values: dict[str, Any]) -> None:
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


def _relations(reader: _Reader, element: etree._Element, values: dict[str, Any]) -> None:
    values["relations"] = tuple(
        Relation(_token(child.get("type")), child.get("ref"), child.get("docNumber"))
        for child in element.iterchildren(f"{_P}relation")
    )


def _status(reader: _Reader, element: etree._Element, values: dict[str, Any]) -> None:
    at = element.get("at")
    values["status"] = Status(
        _token(element.text),
        element.get("reason"),
        reader.datetime(at, element, "status/@at") if at else None,
    )


def _service(reader: _Reader, element: etree._Element, values: dict[str, Any]) -> None:
    fields: dict[str, Any] = {}
    for child in element:
        name = etree.QName(child).localname
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


def _interaction(reader: _Reader, element: etree._Element, values: dict[str, Any]) -> None:
    fields: dict[str, Any] = {}
    for child in element:
        name = etree.QName(child).localname
        if name in ("asked", "answered"):
            fields[name] = reader.datetime(child.text, child, f"interaction/{name}")
        elif name == "answeredBy":
            fields["answered_by"] = child.text
        else:
            fields[name] = child.text
    values["interaction"] = Interaction(_token(element.get("channel")), **fields)


_FIELDS: dict[str, Callable[[_Reader, etree._Element, dict[str, Any]], None]] = {
    "id": _set("id"),
    "revision": _revision,
    "origin": _origin,
    "indexNumber": _set("index_number"),
    "title": _set("title"),
    "issuers": _issuers,
    "docNumber": _set("doc_number"),
    "topic": _topic,
    "genre": _set("genre"),
    "keywords": _keywords,
    "created": _created,
    "published": _published,
    "updated": _updated,
    "validity": _set_token("validity"),
    "disclosure": _disclosure,
    "summary": _set("summary"),
    "body": _body,
    "link": _link,
    "attachments": _attachments,
    "relations": _relations,
    "urgency": _set_token("urgency"),
    "status": _status,
    "service": _service,
    "interaction": _interaction,
}
