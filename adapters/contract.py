"""What an adapter is: a name, settings, an async fetch since a cursor, a conversion.

An adapter turns what a legacy system already has (a feed, web pages, an export,
a database table, a folder of files) into standard disclosure records::

    fetch(cursor) ──► Item, Item, Failure, Item, …      (source-shaped, never raises per item)
    convert(item) ──► Record | None                    (None: this item holds no record)

The harvester (``hub.harvest.harvester``) drives both: it keeps the cursor, counts,
assigns revisions by content hash and feeds the records through the node's
pipeline. An adapter keeps no state of its own between runs; what it must
remember goes into the cursor (``Item.cursor``), which the harvester stores
after the item's record is committed.

A third-party adapter is a class with these members, registered in the
``govhub.adapters`` entry-point group (docs/adapters.md).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from hub.federation import Node
from hub.records import Origin, Record

if TYPE_CHECKING:
    from adapters.kit.http import HttpClient


@dataclass(frozen=True, slots=True)
class Item:
    """One source-shaped item, as ``fetch`` found it.

    ``key`` identifies the item in its source for life (a URL, a row key, a
    file name): the same key always becomes the same record id. ``where`` says
    where the item came from in messages (``https://…/a.html``, ``export.csv:12``).
    ``cursor`` is the source position after this item, or ``None`` to keep the
    previous one.
    """

    key: str
    where: str
    data: Any
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    """One item the source could not deliver; the fetch goes on with the next."""

    where: str
    message: str
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """What an adapter knows of its surroundings: whose source it reads, and how."""

    node: Node
    source: str
    http: HttpClient | None = None
    root: str = "."  # relative paths in settings are taken from here (the project root)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def record_id(self, key: str) -> str:
        """The record id for a source key: ``urn:govhub:{node}:{local}``.

        A key that is already a safe local id is used as it is; any other key
        (a URL, a Chinese file name) becomes ``h`` and 32 hex digits of its SHA-256.
        """
        return f"urn:govhub:{self.node.id}:{local_id(key)}"

    def record(self, key: str, *, title: str, published: datetime, **fields: Any) -> Record:
        """A record of this node built from a source key and its fields.

        ``id`` and ``origin`` come from the node; ``revision`` is 1 and the
        harvester raises it when the content changes; ``issuers`` default to the
        node's legal name. Every other field is ``Record``'s own.
        """
        fields.setdefault("kind", "news")
        fields.setdefault("issuers", (self.node.name,))
        return Record(
            id=self.record_id(key),
            revision=1,
            origin=Origin(self.node.id, self.node.site_code),
            title=title,
            published=published,
            **fields,
        )


_SAFE_LOCAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~\-]{0,127}")


def local_id(key: str) -> str:
    """A local id for a source key (the part after ``urn:govhub:{node}:``)."""
    if _SAFE_LOCAL.fullmatch(key):
        return key
    return "h" + hashlib.sha256(key.encode()).hexdigest()[:32]


class Adapter(Protocol):
    """The contract every adapter meets (built-in or installed with pip).

    ``name`` is how ``nodes.toml`` names it (``adapter = "feed"``). ``Settings``
    is a dataclass whose fields are the source's keys in ``nodes.toml``: their
    annotations (``str``, ``int``, ``float``, ``bool``, ``list[str]``,
    ``dict[str, str]``, optionally ``| None``) and defaults say what is allowed,
    and ``adapters.settings.read_settings`` checks them at start-up. A field's
    ``metadata["help"]`` is shown in errors and in ``govhub adapter check``.

    ``sample`` names the setting that ``govhub adapter check ADAPTER FILE`` fills
    with the sample file: a ``path`` setting gets the file's path; a ``url``
    setting gets the address of the file served on a loopback HTTP server.
    """

    name: ClassVar[str]
    Settings: ClassVar[type]
    sample: ClassVar[str]

    def __init__(self, settings: Any, context: Context) -> None: ...

    def fetch(self, cursor: str | None) -> AsyncIterator[Item | Failure]:
        """Items since ``cursor`` (``None``: from the start), oldest first."""
        ...

    def convert(self, item: Item) -> Record | None:
        """The record for one item, or ``None`` when the item holds no record.

        Raises ``hub.errors.InputError`` (or ``ValueError``) when the item is
        unusable; the harvester reports it against ``item.where`` and goes on.
        """
        ...
