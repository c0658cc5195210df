"""The typed record model: what a disclosure record says, as Python values.

A ``Record`` is immutable and compares by value. XML in and out lives in
``decode`` and ``encode``; the rules that XSD cannot express live in ``rules``.
Optional fields that the XML leaves out are ``None`` (or an empty tuple), so a
record survives parse → to_xml → parse unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from hub.codes import normalise_doc_number

NS = "urn:govhub:record:1"
XHTML_NS = "http://www.w3.org/1999/xhtml"
CHINA = timezone(timedelta(hours=8))
"""China Standard Time (UTC+8), the offset the records and their sites write times in."""
DEFAULT_LANGUAGE = "zh-Hans"
LANGUAGES = ("zh-Hans", "zh-Hant", "en", "bo", "ug", "mn", "ii", "za", "ko")

KINDS = (
    "document",
    "news",
    "notice",
    "interpretation",
    "emergency",
    "statistics",
    "profile",
    "service",
    "interaction",
)


@dataclass(frozen=True, slots=True)
class Origin:
    node: str
    site: str


@dataclass(frozen=True, slots=True)
class Topic:
    top: str  # the XML attribute is @class
    sub: str | None = None


@dataclass(frozen=True, slots=True)
class Disclosure:
    mode: str
    audience: str | None = None
    duration: str | None = None
    until: date | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    href: str
    name: str
    type: str | None = None
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Relation:
    type: str
    ref: str | None = None
    doc_number: str | None = None


@dataclass(frozen=True, slots=True)
class Status:
    value: str  # active | withdrawn
    reason: str | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Form:
    href: str
    name: str


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    basis: str | None = None
    conditions: str | None = None
    materials: tuple[str, ...] = ()
    procedure: str | None = None
    time_limit: int | None = None  # working days
    fee: str | None = None
    forms: tuple[Form, ...] = ()
    online: str | None = None
    licensing: bool | None = None


@dataclass(frozen=True, slots=True)
class Interaction:
    channel: str
    question: str
    asked: datetime | None = None
    answer: str | None = None
    answered: datetime | None = None
    answered_by: str | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """One disclosure record (field order follows schemas/record.xsd)."""

    kind: str
    id: str
    revision: int
    origin: Origin
    title: str
    issuers: tuple[str, ...]
    published: datetime
    lang: str | None = None
    index_number: str | None = None
    # A 索引号 in the site's own form (not ORGCODE/YYYY-NNNNN): kept as written, unchecked.
    local_index_number: str | None = None
    doc_number: str | None = None
    topic: Topic | None = None
    genre: str | None = None
    keywords: tuple[str, ...] = ()
    created: date | None = None
    updated: datetime | None = None
    validity: str | None = None
    disclosure: Disclosure | None = None
    summary: str | None = None
    # Sanitized XHTML: the body's elements, exclusive-C14N serialized, nothing between them.
    body: str | None = None
    link: str | None = None
    attachments: tuple[Attachment, ...] = ()
    relations: tuple[Relation, ...] = ()
    urgency: str | None = None
    status: Status | None = None
    service: Service | None = None
    interaction: Interaction | None = None
    extensions: tuple[str, ...] = ()  # elements of other namespaces, exclusive-C14N serialized
    # Where each field was in the source (field path -> line); not part of the value.
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False, hash=False)

    @property
    def node(self) -> str:
        """The node id that the record id names (``urn:govhub:{node}:{local}``)."""
        return self.id.split(":", 3)[2]

    @property
    def local_id(self) -> str:
        return self.id.split(":", 3)[3]

    @property
    def language(self) -> str:
        return self.lang or DEFAULT_LANGUAGE

    @property
    def doc_number_normalised(self) -> str | None:
        """The document number in normal form: 〔〕 brackets, ASCII digits, no spaces."""
        return normalise_doc_number(self.doc_number) if self.doc_number else None

    @property
    def withdrawn(self) -> bool:
        return self.status is not None and self.status.value == "withdrawn"

    def to_xml(self, *, pretty: bool = True) -> bytes:
        """The record as a standalone UTF-8 XML document."""
        from hub.records.encode import record_to_bytes

        return record_to_bytes(self, pretty=pretty)

    def canonical(self) -> bytes:
        """Canonical XML (C14N 1.0) of the record: equal records give equal bytes."""
        from hub.records.encode import record_to_canonical

        return record_to_canonical(self)

    def content_hash(self) -> str:
        """SHA-256 (hex) of the canonical form, leaving out ``revision`` and ``updated``.

        Two revisions with the same content hash alike, which is how a source
        that re-sends an unchanged item is recognised.
        """
        bare = dataclasses.replace(self, revision=1, updated=None)
        return hashlib.sha256(bare.canonical()).hexdigest()

    def xml_and_hash(self) -> tuple[bytes, str]:
        """``to_xml(pretty=False)`` and ``content_hash()`` together, for the price of one."""
        from hub.records.encode import record_to_bytes_and_hash

        return record_to_bytes_and_hash(self)
