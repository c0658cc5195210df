"""One batch's items converted and checked: the per-item work of a harvest, wherever it runs.

``convert_items`` takes each item through the adapter's ``convert``, then
encodes the record and its content hash and runs validation, the origin check
and the confidentiality review (``check_record``, the pipeline's stateless
stages). A worker process runs it on the batches sent to it
(``hub.harvest.workers``), the main process on the rest, with the same
results. An item that fails is that item's ``error``; the batch goes on.
``describe_error`` words an exception as such a problem's message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapters.contract import Adapter, Item
from hub.errors import HubError, InputError
from hub.federation import Node
from hub.outbox.pipeline import Checked, check_record
from hub.records import Record
from hub.records.safe_xml import Limits
from hub.review import Reviewer


@dataclass(frozen=True, slots=True)
class Converted:
    """One item after ``convert_items``, in the order of the batch.

    ``error`` set: the item could not be converted or encoded (its message).
    Otherwise ``record`` is the adapter's record, or ``None`` when the item holds
    none; ``checked`` its document through the pipeline's stateless stages.
    """

    record: Record | None = None
    checked: Checked | None = None
    error: str | None = None


def convert_items(
    adapter: Adapter,
    items: Sequence[Item],
    source: str,
    *,
    node: Node,
    reviewer: Reviewer,
    limits: Limits,
) -> list[Converted]:
    """Convert, encode and check each item; an item's failure is that item's ``error``."""
    converted: list[Converted] = []
    for item in items:
        try:
            record = adapter.convert(item)
            if record is not None and not isinstance(record, Record):
                raise TypeError(f"convert returned {type(record).__name__}, not a Record or None")
        except Exception as exc:  # any error of one item's conversion is that item's problem
            converted.append(Converted(error=describe_error(exc, item.where)))
            continue
        if record is None:
            converted.append(Converted())
            continue
        label = document_label(source, item.where)
        try:
            checked = check_record(record, label, node=node, reviewer=reviewer, limits=limits)
        except Exception as exc:  # a record the encoder cannot write: that item's problem
            converted.append(Converted(record, error=describe_error(exc)))
            continue
        converted.append(Converted(record, checked))
    return converted


def document_label(source: str, where: str) -> str:
    """How a record document of one item is named in problems and the refused table."""
    return f"[{source}] {where}"


def describe_error(exc: BaseException, where: str | None = None) -> str:
    """An exception as a problem's message; an ``InputError``'s problems without the item's
    own location (the message is shown with it)."""
    if isinstance(exc, InputError):
        return "; ".join(_without(str(p), where) for p in exc.problems)
    text = str(exc).strip()
    if isinstance(exc, HubError | ValueError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _without(text: str, where: str | None) -> str:
    return text.removeprefix(f"{where}: ") if where else text
