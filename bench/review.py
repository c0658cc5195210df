"""Review throughput by size of the sensitive-term list, against a naive term search.

The records are the example records in ``examples/records`` (parsed once with
``hub.records.parse``), reviewed over and over with a default policy plus 0,
100, 1,000 and 10,000 generated Chinese terms. Per size it reports:

- the whole ``Reviewer.review`` (body text, folding, markings, terms, personal
  data), in records/s and µs/record, and the findings per record;
- the term matching alone (``TermMatcher.find`` on each field's folded text);
- the naive baseline on the same folded texts: ``any(term in text for term in
  terms)``, which only answers yes or no (the matcher lists every occurrence).

Terms are 2-4 characters drawn from the 3,755 level-1 characters of GB 2312
(seeded, none occurring in the examples), plus five phrases that do occur in the
examples, so every non-empty list also finds something. The loops take turns
within every repeat and the best repeat of each counts.

Target (project issue): 10,000 terms cost well under 2× the 100-term time.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import hub.records
from bench.validate import _table, best_of, load_examples, machine
from hub.records import Record
from hub.review import Reviewer, ReviewPolicy, body_text
from hub.review.terms import TermMatcher
from hub.review.text import compact, fold

TARGET = 2.0  # 10,000-term time / 100-term time, from the project's issue
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "records"
SIZES = (0, 100, 1_000, 10_000)
FULL = (50, 5, 5)  # passes over the examples (review and matcher), naive passes, repeats
QUICK = (10, 1, 3)
PLANTED = ("执法全过程", "防汛", "化学武器", "地区生产总值", "森林草原")  # occur in the examples


def run(quick: bool = False) -> None:
    passes, naive_passes, repeats = QUICK if quick else FULL
    examples = [hub.records.parse(data, name) for name, data in load_examples(EXAMPLES)]
    texts = [[compact(fold(text)) for text in field_texts(record)] for record in examples]
    print(f"review:   hub.review.Reviewer by number of terms, best of {repeats} after warm-up")
    print(f"machine:  {machine()}")
    characters = sum(len(text) for record in texts for text in record) / len(examples)
    print(
        f"records:  the {len(examples)} examples in examples/records/, {characters:,.0f} characters"
        f" of title, summary and body text per record, reviewed {passes}× (naive: {naive_passes}×)"
    )

    counts = (passes, naive_passes, repeats)
    measured = {size: measure(size, examples, texts, counts) for size in SIZES}
    rows = [
        (
            f"{size:,}",
            f"{m.build_ms:,.1f}",
            f"{1e6 / m.review_us:,.0f}",
            f"{m.review_us:,.1f}",
            f"{m.findings:.2f}",
            f"{m.match_us:,.1f}",
            f"{m.naive_us:,.1f}",
            f"{m.naive_us / m.match_us:,.1f}×",
        )
        for size, m in measured.items()
    ]
    print()
    header: tuple[str, ...] = ("terms", "build ms", "records/s", "µs/record", "findings/record")
    header += ("terms µs/record", "naive µs/record", "naive/terms")
    _table(header, rows)
    small, large = measured[100], measured[10_000]
    ratio = large.review_us / small.review_us
    met = "met" if ratio < TARGET else "NOT met"
    print()
    print(
        f"verdict: 10,000 terms cost {ratio:.2f}× the 100-term review (target under {TARGET:.0f}×,"
        f" {met}); term matching alone {large.match_us / small.match_us:.2f}×, the naive"
        f" search {large.naive_us / small.naive_us:.0f}×"
    )


@dataclass(frozen=True, slots=True)
class Measured:
    build_ms: float  # Reviewer(policy): folding the terms and building the matcher
    review_us: float  # per record
    findings: float  # per record
    match_us: float  # per record
    naive_us: float  # per record


def measure(
    size: int,
    examples: list[Record],
    texts: list[list[str]],
    counts: tuple[int, int, int],
) -> Measured:
    """Time the review, the matcher and the naive search with ``size`` generated terms.

    ``counts``: passes over the examples, passes for the naive search, repeats.
    """
    passes, naive_passes, repeats = counts
    terms = generated_terms(size, texts)
    started = perf_counter()
    reviewer = Reviewer(ReviewPolicy(terms))
    build_ms = (perf_counter() - started) * 1e3
    folded = [compact(fold(term)) for term in terms]
    matcher = TermMatcher(folded)
    check(matcher, folded, texts, size)
    loops = {
        "review": _loop(lambda: [reviewer.review(r) for r in examples], passes),
        "matcher": _loop(lambda: [matcher.find(t) for r in texts for t in r], passes),
        "naive": _loop(
            lambda: [any(term in t for term in folded) for r in texts for t in r], naive_passes
        ),
    }
    best = best_of(loops, repeats)
    count = len(examples)
    return Measured(
        build_ms=build_ms,
        review_us=best["review"][0] / (count * passes) * 1e6,
        findings=sum(len(reviewer.review(r)) for r in examples) / count,
        match_us=best["matcher"][0] / (count * passes) * 1e6,
        naive_us=best["naive"][0] / (count * naive_passes) * 1e6,
    )


def field_texts(record: Record) -> list[str]:
    """The texts a review reads: title, summary, body text."""
    texts = [record.title, record.summary or ""]
    texts.append(body_text(record.body) if record.body else "")
    return [text for text in texts if text]


def generated_terms(count: int, texts: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """``count`` distinct terms: random GB 2312 level-1 words, and PLANTED at random places."""
    if not count:
        return ()
    pool = [
        bytes((high, low)).decode("gb2312")
        for high in range(0xB0, 0xD8)
        for low in range(0xA1, 0xFA if high == 0xD7 else 0xFF)  # row 0xD7 ends at 0xF9
    ]
    rnd = random.Random(count)
    everything = "\n".join(text for record in texts for text in record)
    terms: dict[str, None] = {}
    while len(terms) < count - len(PLANTED):
        term = "".join(rnd.choices(pool, k=rnd.choice((2, 2, 3, 3, 4))))
        if term not in everything:
            terms[term] = None
    generated = list(terms)
    for phrase in PLANTED:
        generated.insert(rnd.randrange(len(generated) + 1), phrase)
    return tuple(generated)


def check(matcher: TermMatcher, terms: list[str], texts: list[list[str]], size: int) -> None:
    """The matcher and the naive search agree on every text before anything is timed."""
    for record in texts:
        for text in record:
            if bool(matcher.find(text)) != any(term in text for term in terms):
                raise SystemExit(f"review: matcher and naive search disagree ({size} terms)")


def _loop(body: Callable[[], object], passes: int) -> Callable[[], list[float]]:
    def loop() -> list[float]:
        started = perf_counter()
        for _ in range(passes):
            body()
        return [perf_counter() - started]

    return loop
