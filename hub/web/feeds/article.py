"""The article a feed entry shows besides its body: the record's sections (``hub.web.kinds``)
as XHTML, laid out as the record page lays them out (a table per section, the 问答 a
definition list), so that a feed reader shows a real article for every kind of record."""

from __future__ import annotations

from lxml import etree

from hub.records.model import XHTML_NS
from hub.web import kinds


def _text(parent: etree._Element, tag: str, value: str) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.text = value
    return element


def section_elements(sections: list[kinds.Section]) -> list[etree._Element]:
    """The record's sections (``hub.web.kinds``) as XHTML: a heading and a table each,
    the 问答 a definition list, as the record page shows them."""
    made = []
    for section in sections:
        heading = etree.Element(f"{{{XHTML_NS}}}h2")
        heading.text = section.title
        made.append(heading)
        if section.id == "interaction":
            block = etree.Element(f"{{{XHTML_NS}}}dl", {"class": "qa"})
            for row in section.rows:
                _text(block, f"{{{XHTML_NS}}}dt", row.label)
                _cell(etree.SubElement(block, f"{{{XHTML_NS}}}dd"), row)
        else:
            block = etree.Element(f"{{{XHTML_NS}}}table", {"class": section.id, "border": "1"})
            for row in section.rows:
                line = etree.SubElement(block, f"{{{XHTML_NS}}}tr")
                _text(line, f"{{{XHTML_NS}}}th", row.label).set("scope", "row")
                _cell(etree.SubElement(line, f"{{{XHTML_NS}}}td"), row)
        made.append(block)
    return made


def _cell(cell: etree._Element, row: kinds.Row) -> None:
    if row.listed:
        holder = etree.SubElement(cell, f"{{{XHTML_NS}}}ol")
        for value in row.values:
            _value(etree.SubElement(holder, f"{{{XHTML_NS}}}li"), value)
        return
    for value in row.values:
        _value(etree.SubElement(cell, f"{{{XHTML_NS}}}p") if row.long else cell, value)


def _value(parent: etree._Element, value: kinds.Value) -> None:
    if isinstance(value, kinds.Link):
        _text(parent, f"{{{XHTML_NS}}}a", value.text).set("href", value.href)
    elif len(parent):
        parent[-1].tail = (parent[-1].tail or "") + "；" + value
    else:
        parent.text = (parent.text + "；" if parent.text else "") + value
