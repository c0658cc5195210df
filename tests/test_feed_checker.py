"""The feed checker against the W3C feed validator's own test cases.

Each case in ../shared/corpora/feedvalidator is a feed with a comment that says
what the validator reports for it (``Expect: MissingElement{parent:feed,element:id}``,
``Expect: !Error`` for a valid feed). For every case whose expected event class
the checker covers, the checker must report that class (or a subclass, as the
validator's harness accepts) with the same parameters; for every valid case
(``!Error``) it must report no error at all; and for ``!X`` it must not report X.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.feed_check import COVERED, Event, check_feed, in_scope

CORPUS = Path(__file__).parents[2] / "shared" / "corpora" / "feedvalidator"
EXPECT = re.compile(rb"<!--\s*Description:\s*(.*?)\s*Expect:\s*(!?)(\w*)(?:{(.*?)})?\s*-->", re.S)
FOLDERS = ("atom", "rss20", "rss", "ext", "xml")


@dataclass(frozen=True)
class Case:
    path: Path
    negated: bool
    kind: str
    params: dict[str, str]


def _classes() -> tuple[dict[str, set[str]], dict[str, str]]:
    """Each event class with its ancestors (itself included), and each one's severity."""
    ancestors: dict[str, set[str]] = {}
    severity: dict[str, str] = {}
    for line in (CORPUS / "event-classes.tsv").read_text("utf-8").splitlines()[2:]:
        name, level, chain = line.split("\t")
        ancestors[name] = {name, *(c.strip() for c in chain.split(">"))}
        severity[name] = level
    return ancestors, severity


def _cases() -> list[Case]:
    if not CORPUS.is_dir():
        return []
    found = []
    for folder in FOLDERS:
        for path in sorted((CORPUS / folder).rglob("*.xml")):
            match = EXPECT.search(path.read_bytes())
            if match is None:
                continue
            params = {}
            if match.group(4):
                for pair in match.group(4).decode().split(","):
                    key, _, value = pair.partition(":")
                    params[key.strip()] = value.strip()
            found.append(Case(path, bool(match.group(2)), match.group(3).decode(), params))
    return found


CASES = _cases()
FORMATS = (b"<feed", b"<rss")  # Atom 1.0 and RSS 2.0: RSS 1.0 (RDF) and others are not ours
POSITIVE = [
    c
    for c in CASES
    if not c.negated
    and c.kind != "SAXError"
    and in_scope(c.kind, c.params)
    and any(f in c.path.read_bytes() for f in FORMATS)
    and (c.path.parts[-3] != "ext" or c.path.parts[-2] == "fh")  # of extensions, only RFC 5005
]
VALID = [c for c in CASES if c.negated and (c.kind == "Error" or c.kind in COVERED)]


def _id(case: Case) -> str:
    return str(case.path.relative_to(CORPUS))


def _require_corpus() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the feed validator corpus is not at {CORPUS} (../shared/corpora)")


def _matches(event: Event, case: Case, ancestors: dict[str, set[str]]) -> bool:
    if case.kind not in ancestors.get(event.kind, {event.kind}):
        return False
    return all(event.params.get(key) == value for key, value in case.params.items())


@pytest.mark.parametrize("case", POSITIVE or [None], ids=_id if POSITIVE else None)
def test_the_checker_reports_what_the_validator_expects(case: Case | None) -> None:
    _require_corpus()
    assert case is not None
    ancestors, _ = _classes()
    events = check_feed(case.path.read_bytes())
    assert any(_matches(e, case, ancestors) for e in events), (case.kind, case.params, events)


@pytest.mark.parametrize("case", VALID or [None], ids=_id if VALID else None)
def test_the_checker_reports_nothing_the_validator_does_not(case: Case | None) -> None:
    _require_corpus()
    assert case is not None
    ancestors, severity = _classes()
    events = check_feed(case.path.read_bytes())
    if case.kind == "Error":  # a valid feed: no error (warnings are allowed)
        wrong = [e for e in events if severity.get(e.kind) == "Error"]
    else:
        wrong = [e for e in events if _matches(e, case, ancestors)]
    assert wrong == [], wrong


def test_the_corpus_exercises_every_rule() -> None:
    _require_corpus()
    covered = {c.kind for c in POSITIVE}
    assert covered >= set(COVERED) - {"SAXError", "IncorrectDOW"}, set(COVERED) - covered
    assert len(POSITIVE) >= 150 and len(VALID) >= 150
