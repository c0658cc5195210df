"""The published schema is a sound XSD 1.0 contract: a second, independent
validator (xmlschema, pure Python) reads it and agrees with lxml (libxml2)
on valid and invalid records, so systems using either get the same answers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from lxml import etree

from hub.records.schema import record_schema, schema_path

EXAMPLES = Path(__file__).parent.parent / "examples" / "records"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
DOCUMENT = (EXAMPLES / "document.xml").read_text(encoding="utf-8")

BROKEN = {
    "revision-zero": ("<revision>1</revision>", "<revision>0</revision>"),
    "index-shape": ("000014349/2018-00226", "00001434/2006-166"),
    "topic-class": ('class="综合政务"', 'class="综合"'),
    "genre": ("<genre>意见</genre>", "<genre>指示</genre>"),
    "order": ("<status>active</status>", "<status>active</status><genre>意见</genre>"),
    "site": ('site="bm01000001"', 'site="BM01000001"'),
    "published-offset": ("2019-01-03T17:30:00+08:00", "2019-01-03T17:30:00"),
    "created-zone": ("<created>2018-12-05</created>", "<created>2018-12-05+08:00</created>"),
    "link-scheme": ('href="http://www.gov.cn/', 'href="ftp://www.gov.cn/'),
    "unknown-element": ("<urgency>", "<priority>high</priority><urgency>"),
    "blank-title": (
        "<title>国务院办公厅关于全面推行行政执法公示制度执法全过程记录制度重大执法决定法制审核制度的指导意见</title>",
        "<title> \t </title>",
    ),
}


@pytest.fixture(scope="module")
def second_validator() -> xmlschema.XMLSchema10:
    return xmlschema.XMLSchema10(str(schema_path()))


def lxml_valid(data: bytes) -> bool:
    return bool(record_schema().validator.validate(etree.fromstring(data).getroottree()))


def test_schema_is_valid_xsd_with_documentation_everywhere(
    second_validator: xmlschema.XMLSchema10,
) -> None:
    assert second_validator.version == "1"
    # Every named element and attribute of record.xsd carries Chinese and English docs,
    # except the one attribute documented by its element (a form's href).
    doc = etree.parse(str(schema_path()))
    xs = "{http://www.w3.org/2001/XMLSchema}"
    undocumented = []
    for declaration in doc.iter(f"{xs}element", f"{xs}attribute"):
        if declaration.tag == f"{xs}element" and declaration.get("ref"):
            continue  # a reference; documented where the element is declared
        name = declaration.get("name") or declaration.get("ref")
        languages = {
            d.get("{http://www.w3.org/XML/1998/namespace}lang")
            for d in declaration.iterfind(f"{xs}annotation/{xs}documentation")
        }
        if not {"zh-Hans", "en"} <= languages:
            undocumented.append(name)
    assert undocumented == ["href"], undocumented


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.xml")), ids=lambda p: p.name)
def test_both_validators_accept_every_example(
    path: Path, second_validator: xmlschema.XMLSchema10
) -> None:
    data = path.read_bytes()
    assert lxml_valid(data)
    assert second_validator.is_valid(etree.fromstring(data))


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_both_validators_refuse_broken_records(
    case: str, second_validator: xmlschema.XMLSchema10
) -> None:
    old, new = BROKEN[case]
    assert old in DOCUMENT
    data = DOCUMENT.replace(old, new, 1).encode()
    assert not lxml_valid(data), case
    assert not second_validator.is_valid(etree.fromstring(data)), case


def test_body_profile_in_code_matches_the_schema() -> None:
    """hub/records/body.py explains refusals with the same lists the schema enforces."""
    from hub.records import body

    xs = "{http://www.w3.org/2001/XMLSchema}"
    profile = etree.parse(str(schema_path().with_name("xhtml-body.xsd"))).getroot()
    declared = {e.get("name"): e for e in profile.iterfind(f"{xs}element")}
    assert set(declared) == body.ELEMENTS
    common = {a.get("name") for a in profile.find(f"{xs}attributeGroup").iterfind(f"{xs}attribute")}
    assert common | {"{http://www.w3.org/XML/1998/namespace}lang"} == body.GLOBAL_ATTRIBUTES | {
        None
    }
    for name, element in declared.items():
        own = {a.get("name") for a in element.iter(f"{xs}attribute")}
        assert own == set(body.ELEMENT_ATTRIBUTES.get(name, ())), name
        urls = {
            a.get("name") for a in element.iter(f"{xs}attribute") if a.get("type") == "h:SafeUrl"
        }
        assert urls == own & body.URL_ATTRIBUTES, name


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://www.gov.cn/", True),
        ("HTTP://WWW.GOV.CN/", True),
        ("mailto:ban@gov.cn", True),
        ("/zhengce/a:b", True),
        ("?q=a:b", True),
        ("#top", True),
        ("javascript:alert(1)", False),
        (" jav\tascript:alert(1)", False),
        ("java\u200bscript:alert(1)", False),
        ("data:text/html;base64,PHNjcmlwdD4=", False),
        ("vbscript:x", False),
    ],
)
def test_url_rule_agrees_between_code_and_schema(url: str, safe: bool) -> None:
    from hub.records.body import url_is_safe

    link = f'<a xmlns="http://www.w3.org/1999/xhtml" href="{url}">x</a>'
    data = DOCUMENT.replace(
        "<body>", f"<body><p xmlns='http://www.w3.org/1999/xhtml'>{link}</p>", 1
    )
    assert url_is_safe(url) is safe
    assert lxml_valid(data.encode()) is safe


def schema_fields(schema: xmlschema.XMLSchema10) -> dict[str, bool]:
    """Every element and attribute a record may hold, named as docs/records.md names them
    (``issuers/issuer``, ``attachment/@href``), and whether the schema requires it."""
    found = {"record": True}

    def walk(element: Any, path: str | None) -> None:
        for name, attribute in element.attributes.items():
            local = "xml:lang" if name == XML_LANG else name
            found[f"{element.local_name}/@{local}"] = attribute.use == "required"
        if not element.type.has_complex_content():
            return
        for child in element.type.content.iter_elements():
            if getattr(child, "local_name", None) is None:
                continue  # the extension point (xs:any)
            child_path = child.local_name if path is None else f"{path}/{child.local_name}"
            found[child_path] = child.min_occurs > 0
            walk(child, child_path)

    walk(schema.elements["record"], None)
    return found


def documented_fields() -> dict[str, str]:
    """The element reference of docs/records.md: each row's name and its *required* cell."""
    text = (Path(__file__).parent.parent / "docs" / "records.md").read_text(encoding="utf-8")
    section = text.split("## Element reference", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \|", section, flags=re.M)
    return {name: required.strip() for name, required in rows if name[0].islower()}


def test_the_docs_describe_every_element_and_attribute_as_the_schema_does(
    second_validator: xmlschema.XMLSchema10,
) -> None:
    """xmlschema reads the schema's components, which lxml does not expose: every element
    and attribute is in docs/records.md's element reference, and nothing else is."""
    schema, documented = schema_fields(second_validator), documented_fields()
    assert sorted(set(schema) - set(documented)) == [], "in the schema, not in the docs"
    assert sorted(set(documented) - set(schema)) == [], "in the docs, not in the schema"
    for name, required in schema.items():
        cell = documented[name]
        if required:
            assert cell.startswith(("yes", "1..n", "root")), f"{name}: the schema requires it"
        else:
            assert cell.startswith(("no", "only when", "on `kind=")), f"{name} is optional"
