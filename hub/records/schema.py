"""The published XML Schema (schemas/record.xsd) and its error messages.

lxml validates on the hot path. When a record is invalid, each libxml2 message
is turned into a ``Problem`` that names the field path, the line, what was
wrong and what would be right; "what would be right" comes from the schema's
own ``<xs:appinfo source="urn:govhub:expected">`` notes, so the contract and the
messages cannot drift apart.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lxml import etree

from hub.errors import Problem
from hub.records.body import explain_body
from hub.records.model import NS

XS = "http://www.w3.org/2001/XMLSchema"
_BODY = f"{{{NS}}}body"
EXPECTED_SOURCE = "urn:govhub:expected"
SCHEMA_FILE = "record.xsd"

_ERROR = re.compile(r"Element '([^']+)'(?:, attribute '([^']+)')?: (.*)", re.S)
_MISSING_ATTRIBUTE = re.compile(r"The attribute '([^']+)' is required but missing")
_EXPECTED_LIST = re.compile(r"Expected is(?: one of)? \(\s*(.*?)\s*\)")
_QNAMES = re.compile(r"\{[^}]*\}")
_VALUE_ERRORS = ("DATATYPE", "FACET", "PATTERN", "ENUMERATION", "LENGTH", "INCLUSIVE")


@dataclass(frozen=True)
class RecordSchema:
    """The compiled schema and the per-field hints taken from it."""

    validator: etree.XMLSchema
    expected: Mapping[str, str]  # "indexNumber", "topic/@class" -> what a valid value looks like

    def problems(self, tree: etree._ElementTree, where: str) -> list[Problem]:
        """Schema problems of ``tree`` (empty when valid)."""
        if self.validator.validate(tree):
            return []
        problems: list[Problem] = []
        explained: set[etree._Element] = set()
        for error in self.validator.error_log:
            body = _enclosing_body(tree, error)
            if body is None:
                problems.append(self._explain(error, tree, where))
            elif body not in explained:
                explained.add(body)
                problems.extend(explain_body(body, where) or [self._explain(error, tree, where)])
        return list(dict.fromkeys(problems))  # libxml2 can report one fault twice (two facets)

    def _explain(self, error: etree._LogEntry, tree: etree._ElementTree, where: str) -> Problem:
        match = _ERROR.match(error.message)
        found = tree.xpath(error.path) if error.path else []
        element = found[0] if found else None
        if match is None or element is None:
            return Problem(where, error.line, "record", _strip_namespaces(error.message))
        attribute, detail = match.group(2), match.group(3).strip()
        path = field_path(element)
        leaf = etree.QName(element).localname
        if "No matching global declaration" in detail:
            qname = etree.QName(element)
            message = f"<{qname.localname}> in namespace {qname.namespace!r} is not a govhub record"
            return Problem(where, error.line, "record", message, f'<record xmlns="{NS}">')
        missing = _MISSING_ATTRIBUTE.match(detail)
        if missing:
            name = missing.group(1)
            hint = self.expected.get(f"{leaf}/@{name}", "")
            return Problem(where, error.line, f"{path}/@{name}", "is required but missing", hint)
        if attribute:
            return self._attribute_problem(where, error, element, path, leaf, attribute, detail)
        if error.type_name == "SCHEMAV_ELEMENT_CONTENT":
            return self._content_problem(where, error.line, path, leaf, detail)
        if any(kind in error.type_name for kind in _VALUE_ERRORS):
            value = element.text or ""
            return Problem(
                where,
                error.line,
                path,
                f"{value!r} is not a valid {_noun(leaf)}",
                self.expected.get(leaf, ""),
            )
        return Problem(
            where, error.line, path, _strip_namespaces(detail), self.expected.get(leaf, "")
        )

    def _attribute_problem(
        self,
        where: str,
        error: etree._LogEntry,
        element: etree._Element,
        path: str,
        leaf: str,
        attribute: str,
        detail: str,
    ) -> Problem:
        key = f"{leaf}/@{attribute}"
        if any(kind in error.type_name for kind in _VALUE_ERRORS):
            value = element.get(attribute, "")
            message = f"{value!r} is not a valid {_noun(leaf)} {_noun(attribute)}"
            return Problem(
                where, error.line, f"{path}/@{attribute}", message, self.expected.get(key, "")
            )
        if "not allowed" in detail:
            known = sorted(k.split("/@")[1] for k in self.expected if k.startswith(f"{leaf}/@"))
            hint = f"one of {', '.join(known)}" if known else "no attributes here"
            return Problem(
                where, error.line, f"{path}/@{attribute}", "attribute is not allowed", hint
            )
        return Problem(where, error.line, f"{path}/@{attribute}", _strip_namespaces(detail))

    def _content_problem(self, where: str, line: int, path: str, leaf: str, detail: str) -> Problem:
        listed = _EXPECTED_LIST.search(detail)
        names = [_element_name(name) for name in listed.group(1).split(",")] if listed else []
        hint = "; ".join(f"{n}: {self.expected[n]}" for n in names if n in self.expected)
        if detail.startswith("Missing child"):
            return Problem(where, line, path, f"missing {' or '.join(names)}", hint)
        message = f"element '{leaf}' is not allowed here"
        if names:
            message += f"; the next element may be {' or '.join(names)}"
        return Problem(where, line, path, message, hint or "the element order of docs/records.md")


def _enclosing_body(tree: etree._ElementTree, error: etree._LogEntry) -> etree._Element | None:
    """The record body that an error lies inside, if any."""
    found = tree.xpath(error.path) if error.path else []
    node = found[0] if found else None
    while node is not None:
        if node.tag == _BODY:
            return node
        node = node.getparent()
    return None


def field_path(element: etree._Element) -> str:
    """``issuers/issuer[2]``-style path of ``element`` below the record root."""
    parts = []
    node = element
    while node is not None and node.getparent() is not None:
        name = etree.QName(node).localname
        parent = node.getparent()
        same = [sibling for sibling in parent if sibling.tag == node.tag]
        parts.append(f"{name}[{same.index(node) + 1}]" if len(same) > 1 else name)
        node = parent
    return "/".join(reversed(parts)) or "record"


_NOUNS = {
    "docNumber": "document number",
    "lang": "language",
    "published": "publication time",
    "updated": "revision time",
    "created": "creation date",
    "asked": "time",
    "answered": "time",
    "at": "time",
    "until": "date",
}


def _noun(name: str) -> str:
    name = name.rpartition("}")[2]
    return _NOUNS.get(name) or re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).lower()


def _element_name(listed: str) -> str:
    """A name from libxml2's list of expected elements, readable."""
    name = listed.strip()
    if name.startswith("##other"):
        return "an extension element (another namespace)"
    if name.endswith("*"):  # a wildcard such as the body's XHTML content
        return "an XHTML element"
    return _QNAMES.sub("", name)


def _strip_namespaces(message: str) -> str:
    return _QNAMES.sub("", message).replace("Element ", "element ").strip()


@functools.cache
def record_schema() -> RecordSchema:
    """The record schema, compiled once per process (no network access, ever)."""
    with resources.as_file(resources.files("hub.schemas") / SCHEMA_FILE) as path:
        document = _load(Path(path))
        validator = etree.XMLSchema(document)
    return RecordSchema(validator, _expected_hints(document))


def schema_path() -> Path:
    """Where the installed schema file is (for tools and docs)."""
    with resources.as_file(resources.files("hub.schemas") / SCHEMA_FILE) as path:
        return Path(path)


@functools.cache
def topic_classes() -> tuple[str, ...]:
    """The 22 top classes of 主题分类, as the published schema lists them (type ``TopicClass``)."""
    values = _load(schema_path()).xpath(
        "//xs:simpleType[@name='TopicClass']//xs:enumeration/@value", namespaces={"xs": XS}
    )
    return tuple(str(value) for value in values)


def _load(path: Path) -> etree._ElementTree:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    return etree.parse(str(path), parser)


def _expected_hints(document: etree._ElementTree) -> dict[str, str]:
    """Map element names and ``element/@attribute`` keys to their appinfo hints."""
    owner_of_type = {"Record": "record"}
    for element in document.iter(f"{{{XS}}}element"):
        if element.get("name") and element.get("type", "").startswith("r:"):
            owner_of_type.setdefault(element.get("type")[2:], element.get("name"))
    hints: dict[str, str] = {}
    for declaration in document.iter(f"{{{XS}}}element", f"{{{XS}}}attribute"):
        appinfo = declaration.find(
            f"{{{XS}}}annotation/{{{XS}}}appinfo[@source='{EXPECTED_SOURCE}']"
        )
        if appinfo is None:
            continue
        name = declaration.get("name") or declaration.get("ref", "")
        if declaration.tag == f"{{{XS}}}element":
            hints[name] = appinfo.text or ""
            continue
        owner = _attribute_owner(declaration, owner_of_type)
        hints[f"{owner}/@{name.removeprefix('xml:')}"] = appinfo.text or ""
    return hints


def _attribute_owner(attribute: etree._Element, owner_of_type: Mapping[str, str]) -> str:
    node = attribute.getparent()
    while node is not None:
        if node.tag == f"{{{XS}}}complexType":
            if node.get("name"):
                return owner_of_type.get(node.get("name"), node.get("name"))
            return node.getparent().get("name", "")
        node = node.getparent()
    return ""


__all__ = ["NS", "RecordSchema", "field_path", "record_schema", "schema_path"]
