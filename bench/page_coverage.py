"""page_coverage: what the page adapter reads of government pages it has never seen.

The corpus is ``tests/fixtures/page/<family>/NAME.html`` with ``NAME.expected.json``
beside each page (pages written in the shapes of the CMS families Chinese
government sites run on), and ``tests/fixtures/page/gov-pages/*.expected.json``,
the expectations of the real pages of the shared corpus
(``/work/shared/corpora/gov-pages``, read in place, skipped when absent).

Two measurements:

- **field coverage**: per record field, the pages where the adapter read it
  right over the pages that show it (``python -m bench page_coverage``); run
  the same module with another checkout first on ``PYTHONPATH`` to measure that
  checkout's adapter (docs/adapters/page.md has the before and after);
- **body extractors** (``--extractors``): trafilatura and readability-lxml on
  the pages whose content area is known, their text against that area's text
  (character-bigram recall and precision) and their time per page.

An expectation file holds ``url``, ``record`` (whether the page holds one),
``fields`` (record field -> value as JSON: dates ISO, topic ``class\\sub``,
disclosure an object), ``absent`` (fields that must not be filled),
``warnings`` (fields the adapter must warn about), ``body_contains`` /
``body_excludes`` (text the body must and must not show), ``body_present``,
``issuers_not``, and for list pages ``links`` and ``next``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "page"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "gov-pages"
_ROWS = {"record": "record (detail pages)", "no record": "no record (lists, guides)"}
FIELDS = (
    "record (detail pages)",
    "no record (lists, guides)",
    "kind",
    "title",
    "index_number",
    "local_index_number",
    "issuers",
    "doc_number",
    "topic",
    "keywords",
    "created",
    "published",
    "validity",
    "disclosure",
    "body",
)
_KNOWN_AREAS = "//*[@id='UCAP-CONTENT' or @id='zoom' or contains(@class, 'TRS_Editor') or contains(@class, 'TRS_UEDITOR') or contains(@class, 'pages_content')]"  # noqa: E501


@dataclass(frozen=True, slots=True)
class Case:
    """One page of the corpus and what it should give."""

    name: str
    page: Path
    expected: dict[str, Any]


@dataclass
class Outcome:
    """What the adapter made of one page."""

    record: Any = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


def cases(*, shared: bool = True) -> list[Case]:
    """Every page of the corpus with an expectation; the shared pages only when present."""
    found: list[Case] = []
    for expected_file in sorted(FIXTURES.glob("*/*.expected.json")):
        expected = json.loads(expected_file.read_text(encoding="utf-8"))
        if "shared" in expected:
            if not shared:
                continue
            page = SHARED / expected["shared"]
        else:
            page = expected_file.with_name(expected_file.name.replace(".expected.json", ".html"))
        name = f"{expected_file.parent.name}/{expected_file.name.removesuffix('.expected.json')}"
        found.append(Case(name, page, expected))
    return found


def convert(case: Case) -> Outcome:
    """The page adapter (no selectors) on one page, with the warnings it logged."""
    from adapters.contract import Context, Item
    from adapters.page.adapter import Page, PageAdapter, PageSettings
    from hub.federation.model import Node

    node = Node("bench", "某县人民政府", "county", None, "1301000001", "www.example.gov.cn")
    url = case.expected["url"]
    adapter = PageAdapter(PageSettings(url=url), Context(node, "pages"))
    outcome = Outcome()
    handler = _Collect(outcome.warnings)
    logger = logging.getLogger("adapters")
    logger.addHandler(handler)
    try:
        outcome.record = adapter.convert(Item(url, url, Page(url, case.page.read_bytes())))
    except Exception as exc:  # a page the adapter refuses: counted, shown
        outcome.error = f"{type(exc).__name__}: {exc}"
    finally:
        logger.removeHandler(handler)
    return outcome


def mismatches(case: Case, outcome: Outcome) -> list[str]:
    """What the adapter got wrong on ``case``, one line each; empty when all is right."""
    return [f"{name}: {why}" for name, ok, why in checks(case, outcome) if not ok]


def checks(case: Case, outcome: Outcome) -> Iterator[tuple[str, bool, str]]:
    """``(field, right, why)`` of each field the page shows or must not fill."""
    expected, record = case.expected, outcome.record
    if not expected.get("record", True):
        made = outcome.error or record
        yield "no record", record is None and outcome.error is None, f"made {made}"
        return
    yield "record", record is not None, outcome.error or "no record"
    for name, value in expected.get("fields", {}).items():
        got = _json(getattr(record, name, None))
        yield name, got == value, f"expected {value!r}, got {got!r}"
    for name in expected.get("absent", []):
        got = _json(getattr(record, name, None))
        yield name, got in (None, []), f"expected nothing, got {got!r}"
    if "body_contains" in expected or expected.get("body_present"):
        text = body_text(record.body if record is not None else None)
        missing = [t for t in expected.get("body_contains", []) if t not in text]
        leaked = [t for t in expected.get("body_excludes", []) if t in text]
        ok = bool(text) and not missing and not leaked
        yield "body", ok, f"missing {missing}, leaked {leaked}" if text else "no body"
    for name in expected.get("warnings", []):
        said = any(name in message for message in outcome.warnings)
        yield f"warning {name}", said, f"no warning about {name}: {outcome.warnings}"
    for wrong in expected.get("issuers_not", []):
        kept_out = record is None or wrong not in record.issuers
        yield "issuers", kept_out, f"{wrong!r} leaked into issuers"


def body_text(body: str | None) -> str:
    """The text of a record body (sanitized XHTML), spaces removed."""
    if not body:
        return ""
    root = etree.fromstring(f"<b>{body}</b>".encode())
    return "".join("".join(root.itertext()).split())


def coverage(found: list[Case]) -> dict[str, tuple[int, int]]:
    """Field -> (pages read right, pages that show it), over the record pages of ``found``."""
    counts: dict[str, list[int]] = {}
    for case in found:
        outcome = convert(case)
        for name, ok, _ in checks(case, outcome):
            name = _ROWS.get(name, name.split()[0])
            right, total = counts.setdefault(name, [0, 0])
            counts[name] = [right + int(ok), total + 1]
    order = {name: number for number, name in enumerate(FIELDS)}
    ranked = sorted(counts.items(), key=lambda item: order.get(item[0], len(order)))
    return {name: (right, total) for name, (right, total) in ranked}


def _json(value: Any) -> Any:
    """A record value as the expectation files write it."""
    if value is None or value == ():
        return None if value is None else []
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "top"):  # Topic
        return value.top + (f"\\{value.sub}" if value.sub else "")
    if hasattr(value, "mode"):  # Disclosure
        parts = {"mode": value.mode, "audience": value.audience, "duration": value.duration}
        return {k: v for k, v in parts.items() if v is not None}
    return value


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


# --- body extractors --------------------------------------------------------------------


def _bigrams(text: str) -> Counter[str]:
    text = "".join(text.split())
    return Counter(text[i : i + 2] for i in range(len(text) - 1))


def _trafilatura(html: str) -> str:
    import trafilatura

    return trafilatura.extract(html, include_tables=True, favor_recall=True) or ""


def _readability(html: str) -> str:
    import lxml.html
    from readability import Document

    summary = Document(html).summary(html_partial=True)
    return str(lxml.html.fromstring(summary).text_content()) if summary.strip() else ""


def extractors(found: list[Case]) -> dict[str, tuple[float, float, float, int]]:
    """Extractor -> (bigram recall, precision, ms per page, pages) on pages with a known area."""
    pages: list[tuple[str, str]] = []
    for case in found:
        if not case.expected.get("record", True) or not case.page.is_file():
            continue
        from adapters.page.html import decode_page

        html = decode_page(case.page.read_bytes())
        import lxml.html

        areas = lxml.html.document_fromstring(html).xpath(_KNOWN_AREAS)
        if areas:
            pages.append((html, areas[0].text_content()))
    logging.getLogger("trafilatura").setLevel(logging.ERROR)
    logging.getLogger("readability").setLevel(logging.ERROR)
    results: dict[str, tuple[float, float, float, int]] = {}
    candidates: dict[str, Callable[[str], str]] = {
        "trafilatura": _trafilatura,
        "readability-lxml": _readability,
    }
    for name, extract in candidates.items():
        try:
            extract("<html><body><p>试</p></body></html>")
        except ImportError:
            print(f"{name}: not installed (pip install {name} to compare it)")
            continue
        hit = expected_total = found_total = 0
        started = time.perf_counter()
        for html, area in pages:
            want, got = _bigrams(area), _bigrams(extract(html))
            hit += sum((want & got).values())
            expected_total += sum(want.values())
            found_total += sum(got.values())
        elapsed = (time.perf_counter() - started) * 1000 / max(len(pages), 1)
        results[name] = (
            hit / max(expected_total, 1),
            hit / max(found_total, 1),
            elapsed,
            len(pages),
        )
    return results


def run(quick: bool = False, *, extractors_too: bool = True) -> None:
    found = cases(shared=SHARED.is_dir())
    families = len({case.name.split("/")[0] for case in found})
    print(
        f"page_coverage: {len(found)} pages of {families} families (shared corpus: "
        f"{'read' if SHARED.is_dir() else 'absent'})"
    )
    print(f"{'field':<28}{'right / shown':>15}")
    for name, (right, total) in coverage(found).items():
        print(f"{name:<28}{right:>7} / {total:<6}")
    wrong = [(case.name, mismatches(case, convert(case))) for case in found]
    for name, lines in wrong:
        for line in lines:
            print(f"  {name}: {line}")
    if extractors_too and not quick:
        print(f"\n{'extractor':<18}{'recall':>8}{'precision':>11}{'ms/page':>9}{'pages':>7}")
        for name, (recall, precision, ms, pages) in extractors(found).items():
            print(f"{name:<18}{recall:>8.3f}{precision:>11.3f}{ms:>9.1f}{pages:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fields", "--quick", action="store_true", help="field coverage only")
    args = parser.parse_args()
    run(extractors_too=not args.fields)


if __name__ == "__main__":
    main()
