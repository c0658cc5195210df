"""Model → XML: write a ``Record`` as a standard record document.

Output is deterministic (fixed element order, fixed namespace prefixes), so the
canonical form and the content hash depend only on the record's values.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime

from lxml import etree

from hub.records.model import NS, Record, Service

_P = f"{{{NS}}}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_FRAGMENT_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def record_to_element(record: Record) -> etree._Element:
    """The record as an lxml element (root ``record`` in the govhub namespace)."""
    root = etree.Element(f"{_P}record", nsmap={None: NS})
    root.set("kind", record.kind)
    if record.lang is not None:
        root.set(_XML_LANG, record.lang)
    _text(root, "id", record.id)
    _text(root, "revision", str(record.revision))
    _empty(root, "origin", node=record.origin.node, site=record.origin.site)
    _text(root, "indexNumber", record.index_number)
    _text(root, "localIndexNumber", record.local_index_number)
    _text(root, "title", record.title)
    _list(root, "issuers", "issuer", record.issuers)
    _text(root, "docNumber", record.doc_number)
    if record.topic is not None:
        _empty(root, "topic", **{"class": record.topic.top, "sub": record.topic.sub})
    _text(root, "genre", record.genre)
    _list(root, "keywords", "keyword", record.keywords)
    _text(root, "created", _iso(record.created))
    _text(root, "published", _iso(record.published))
    _text(root, "updated", _iso(record.updated))
    _text(root, "validity", record.validity)
    _disclosure(root, record)
    _text(root, "summary", record.summary)
    if record.body is not None:
        _body(root, record.body)
    if record.link is not None:
        _empty(root, "link", href=record.link)
    _attachments(root, record)
    _relations(root, record)
    _text(root, "urgency", record.urgency)
    if record.status is not None:
        s = record.status
        _text(root, "status", s.value, reason=s.reason, at=_iso(s.at))
    if record.service is not None:
        _service(root, record.service)
    _interaction(root, record)
    for extension in record.extensions:
        root.append(etree.fromstring(extension, _FRAGMENT_PARSER))
    return root


def record_to_bytes(record: Record, *, pretty: bool = True) -> bytes:
    root = record_to_element(record)
    if pretty:
        _indent(root, 0)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8") + (b"\n" if pretty else b"")


def record_to_canonical(record: Record) -> bytes:
    return etree.tostring(record_to_element(record), method="c14n")


def record_to_bytes_and_hash(record: Record) -> tuple[bytes, str]:
    """``to_xml(pretty=False)`` and ``content_hash()`` from one element tree.

    The hash is taken over the canonical form with revision 1 and no
    ``updated``: the same tree, edited after it was written out, instead of a
    second tree built from a copy of the record.
    """
    root = record_to_element(record)
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return data, content_hash_of(root)


def content_hash_of(root: etree._Element) -> str:
    """The content hash of a record tree written by ``record_to_element``.

    Edits ``root`` (revision 1, no ``updated``): use it last.
    """
    root.find(f"{_P}revision").text = "1"
    updated = root.find(f"{_P}updated")
    if updated is not None:
        root.remove(updated)
    return hashlib.sha256(etree.tostring(root, method="c14n")).hexdigest()


def _disclosure(root: etree._Element, record: Record) -> None:
    d = record.disclosure
    if d is not None:
        until = _iso(d.until)
        _empty(
            root, "disclosure", mode=d.mode, audience=d.audience, duration=d.duration, until=until
        )


def _attachments(root: etree._Element, record: Record) -> None:
    if record.attachments:
        parent = etree.SubElement(root, f"{_P}attachments")
        for a in record.attachments:
            size = None if a.size is None else str(a.size)
            _text(
                parent, "attachment", a.name, href=a.href, type=a.type, size=size, sha256=a.sha256
            )


def _relations(root: etree._Element, record: Record) -> None:
    if record.relations:
        parent = etree.SubElement(root, f"{_P}relations")
        for r in record.relations:
            _empty(parent, "relation", type=r.type, ref=r.ref, docNumber=r.doc_number)


def _interaction(root: etree._Element, record: Record) -> None:
    i = record.interaction
    if i is not None:
        parent = _empty(root, "interaction", channel=i.channel)
        _text(parent, "question", i.question)
        _text(parent, "asked", _iso(i.asked))
        _text(parent, "answer", i.answer)
        _text(parent, "answered", _iso(i.answered))
        _text(parent, "answeredBy", i.answered_by)


def _service(root: etree._Element, service: Service) -> None:
    licensing = None if service.licensing is None else str(service.licensing).lower()
    parent = _empty(root, "service", online=service.online, licensing=licensing)
    _text(parent, "name", service.name)
    _text(parent, "basis", service.basis)
    _text(parent, "conditions", service.conditions)
    _list(parent, "materials", "material", service.materials)
    _text(parent, "procedure", service.procedure)
    _text(parent, "timeLimit", None if service.time_limit is None else str(service.time_limit))
    _text(parent, "fee", service.fee)
    if service.forms:
        forms = etree.SubElement(parent, f"{_P}forms")
        for form in service.forms:
            _text(forms, "form", form.name, href=form.href)


def _body(root: etree._Element, body: str) -> None:
    wrapper = etree.fromstring(f'<body xmlns="{NS}">{body}</body>'.encode(), _FRAGMENT_PARSER)
    element = etree.SubElement(root, f"{_P}body")
    element.extend(list(wrapper))


def _indent(element: etree._Element, level: int) -> None:
    """Indent the record's own structure; never touch body or extension content,
    whose whitespace is part of the text."""
    children = [child for child in element if isinstance(child.tag, str)]
    if not children:
        return
    inner = "\n" + "  " * (level + 1)
    element.text = inner
    for child in children:
        child.tail = inner
        if child.tag.startswith(_P) and child.tag != f"{_P}body":
            _indent(child, level + 1)
        elif child.tag == f"{_P}body":
            _indent_flat(child, level + 1)
    children[-1].tail = "\n" + "  " * level


def _indent_flat(element: etree._Element, level: int) -> None:
    children = list(element)
    inner = "\n" + "  " * (level + 1)
    element.text = inner
    for child in children:
        child.tail = inner
    if children:
        children[-1].tail = "\n" + "  " * level


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _attrs(element: etree._Element, attributes: dict[str, str | None]) -> None:
    for name, value in attributes.items():
        if value is not None:
            element.set(name, value)


def _text(
    parent: etree._Element, name: str, value: str | None, **attributes: str | None
) -> etree._Element | None:
    if value is None:
        return None
    element = etree.SubElement(parent, f"{_P}{name}")
    element.text = value
    _attrs(element, attributes)
    return element


def _empty(parent: etree._Element, name: str, **attributes: str | None) -> etree._Element:
    element = etree.SubElement(parent, f"{_P}{name}")
    _attrs(element, attributes)
    return element


def _list(parent: etree._Element, name: str, item: str, values: tuple[str, ...]) -> None:
    if values:
        element = etree.SubElement(parent, f"{_P}{name}")
        for value in values:
            _text(element, item, value)
