"""Validate-path throughput: bare lxml parse + XSD against ``hub.records.parse``.

Both run in the same process on the same records: variants of the example
records in ``examples/records`` (each with its own id, revision and title, so
nothing can be served from a cache), each confirmed valid before timing. The
govhub path is also run stage by stage, each stage timed on the tree the one
before it just built, to show where the time goes. The loops take turns within
every repeat and the best repeat of each counts.

Target (project issue): the whole validate path reaches at least 40% of the
bare lxml rate.
"""

from __future__ import annotations

import gc
import os
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from time import perf_counter

from lxml import etree

import hub.records
from hub.errors import RecordInvalid
from hub.records import DEFAULT_LIMITS, NS
from hub.records.decode import record_from_element
from hub.records.read import _depth_problems
from hub.records.rules import rule_problems
from hub.records.safe_xml import parse_untrusted
from hub.records.schema import record_schema

TARGET = 0.40  # govhub rate / bare lxml rate, from the project's issue
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "records"
FULL = (2_000, 5)  # records, repeats
QUICK = (500, 3)
BATCH = 50  # records per <records> message: the node relay's limit (hub/outbox/relay.py)

_BODY = f"{{{NS}}}body"
Sample = tuple[bytes, str]  # (record bytes, where)


def run(quick: bool = False) -> None:
    count, repeats = QUICK if quick else FULL
    examples = load_examples(EXAMPLES)
    records = variants(examples, count)
    sizes = [len(data) for data, _ in records]
    print(f"validate: bare lxml parse + XSD vs hub.records.parse, best of {repeats} after warm-up")
    print(f"machine:  {machine()}")
    print(
        f"records:  {count:,} variants of {len(examples)} example(s) in {_shown(EXAMPLES)},"
        f" {sum(sizes) / len(sizes):,.0f} B average ({min(sizes):,}-{max(sizes):,} B)"
    )
    print(f"examples: {', '.join(name for name, _ in examples)}")

    parser = etree.XMLParser()
    validator = record_schema().validator
    for data, where in records:  # the baseline must be doing the same work: valid records
        if not validator.validate(etree.fromstring(data, parser)):
            raise SystemExit(f"{where}: bare lxml finds it invalid: {validator.error_log}")
    batches = as_batches(records, BATCH)
    for data in batches:  # the batch loop must be doing the same work: every record accepted
        if not all(part.record for part in hub.records.parse_parts(data, "batch.xml")):
            raise SystemExit("validate: a record of a batch is refused, fix the bench")

    loops = {
        **path_loops(records, batches, parser, validator),
        "baseline stages": baseline_stages(records, parser, validator),
        "govhub stages": govhub_stages(records),
    }
    best = best_of(loops, repeats)
    base_s, hub_s = best["baseline"][0], best["govhub"][0]
    ratio = base_s / hub_s
    met = "met" if ratio >= TARGET else "NOT met"

    print()
    _paths_table("path", count, base_s, ("govhub: hub.records.parse", hub_s))
    print(f"govhub / baseline: {ratio:.1%} (target: at least {TARGET:.0%}, {met})")
    print()
    base_b, hub_b = best["baseline batches"][0], best["govhub batches"][0]
    title = f"the hub's path: {len(batches)} <records> batches of {BATCH}"
    _paths_table(title, count, base_b, ("govhub: hub.records.parse_parts", hub_b))
    print(f"govhub / baseline on batches: {base_b / hub_b:.1%}")

    print()
    stages = best["govhub stages"]
    total = sum(stages)
    rows = [
        (name, _us(count, seconds), f"{seconds / total:.0%}")
        for name, seconds in zip(GOVHUB_STAGES, stages, strict=True)
    ]
    rows.append(("sum of stages (timed one by one)", _us(count, total), ""))
    rows.append(("whole hub.records.parse (above)", _us(count, hub_s), ""))
    rows += [
        (f"(baseline: {name})", _us(count, seconds), "")
        for name, seconds in zip(BASELINE_STAGES, best["baseline stages"], strict=True)
    ]
    _table(("govhub stage, timed inside the path", "µs/record", "share"), rows)

    top, top_s = max(zip(GOVHUB_STAGES, stages, strict=True), key=lambda pair: pair[1])
    print()
    print(
        f"verdict: govhub validates {count / hub_s:,.0f} records/s, {ratio:.0%} of bare lxml"
        f" ({count / base_s:,.0f}/s); target >= {TARGET:.0%} {met}; biggest stage: {top}"
        f" ({top_s / total:.0%})"
    )


def load_examples(folder: Path) -> list[tuple[str, bytes]]:
    """The example records in ``folder`` that are valid now (others are being written)."""
    examples = []
    for path in sorted(folder.glob("*.xml")):
        try:
            data = path.read_bytes()
            hub.records.parse(data, path.name)
        except (OSError, RecordInvalid) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"validate: skipping {path.name}: {first}", file=sys.stderr)
            continue
        examples.append((path.name, data))
    if not examples:
        raise SystemExit(f"validate: no valid example records in {folder}")
    return examples


def variants(examples: Sequence[tuple[str, bytes]], count: int) -> list[Sample]:
    """``count`` distinct valid records: examples with a new id, revision and title suffix."""
    plain = etree.XMLParser()  # keeps comments and layout, like a record from a node
    records = []
    for index in range(count):
        name, data = examples[index % len(examples)]
        root = etree.fromstring(data, plain)
        record_id, revision, title = (
            root.find(f"{{{NS}}}{tag}") for tag in ("id", "revision", "title")
        )
        if record_id is None or revision is None or title is None:
            raise SystemExit(f"validate: {name} has no id, revision or title")
        prefix, local = (record_id.text or "").strip().rsplit(":", 1)
        record_id.text = f"{prefix}:{local[:120]}-{index:06d}"  # local part: 128 characters at most
        revision.text = str(1 + index % 97)
        title.text = f"{title.text or ''}（第{index + 1}稿）"
        variant = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        where = f"{Path(name).stem}#{index}.xml"
        try:
            hub.records.parse(variant, where)
        except RecordInvalid as exc:
            raise SystemExit(f"validate: a variant is not valid, fix the bench:\n{exc}") from None
        records.append((variant, where))
    return records


def path_loops(
    records: Sequence[Sample],
    batches: Sequence[bytes],
    parser: etree.XMLParser,
    validator: etree.XMLSchema,
) -> dict[str, Callable[[], list[float]]]:
    """Both paths on single-record documents, and on the same records in batches."""

    def baseline() -> list[float]:
        start = perf_counter()
        for data, _ in records:
            validator.validate(etree.fromstring(data, parser))
        return [perf_counter() - start]

    def govhub() -> list[float]:
        start = perf_counter()
        for data, where in records:
            hub.records.parse(data, where)
        return [perf_counter() - start]

    def baseline_batches() -> list[float]:
        start = perf_counter()
        for data in batches:
            validator.validate(etree.fromstring(data, parser))
        return [perf_counter() - start]

    def govhub_batches() -> list[float]:
        start = perf_counter()
        for data in batches:
            hub.records.parse_parts(data, "batch.xml")
        return [perf_counter() - start]

    return {
        "baseline": baseline,
        "govhub": govhub,
        "baseline batches": baseline_batches,
        "govhub batches": govhub_batches,
    }


def as_batches(records: Sequence[Sample], size: int) -> list[bytes]:
    """The records as ``<records>`` documents of ``size``, as a node's relay sends them."""
    batches = []
    for start in range(0, len(records), size):
        batch = etree.Element(f"{{{NS}}}records", nsmap={None: NS})
        batch.extend(etree.fromstring(data) for data, _ in records[start : start + size])
        batches.append(etree.tostring(batch, xml_declaration=True, encoding="UTF-8"))
    return batches


GOVHUB_STAGES = (
    "safe parse (parse_untrusted)",
    "XSD (RecordSchema.problems)",
    "decode (record_from_element)",
    "depth limits (body, extensions)",
    "rules (rule_problems)",
    "free tree and record",
)
BASELINE_STAGES = ("lxml fromstring", "XMLSchema.validate", "free tree")


def govhub_stages(records: Sequence[Sample]) -> Callable[[], list[float]]:
    """A loop doing what ``hub.records.parse`` does (hub/records/__init__.py), stage by stage.

    Each stage runs on the tree the previous one just built, as in the real path; the
    records are valid, so the ``if problems: raise`` branches are left out.
    """
    limits = DEFAULT_LIMITS

    def loop() -> list[float]:
        spent = [0.0] * len(GOVHUB_STAGES)
        for data, where in records:
            t0 = perf_counter()
            tree = parse_untrusted(data, where, limits)
            t1 = perf_counter()
            record_schema().problems(tree, where)
            t2 = perf_counter()
            root = tree.getroot()
            record = record_from_element(root, where)
            t3 = perf_counter()
            _depth_problems(record, root, where, limits.max_depth)
            t4 = perf_counter()
            rule_problems(record, where)
            t5 = perf_counter()
            del tree, root, record
            t6 = perf_counter()
            for index, (begin, end) in enumerate(
                ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t5, t6))
            ):
                spent[index] += end - begin
        return spent

    return loop


def baseline_stages(
    records: Sequence[Sample], parser: etree.XMLParser, validator: etree.XMLSchema
) -> Callable[[], list[float]]:
    """The baseline loop, parse and validate timed apart."""

    def loop() -> list[float]:
        spent = [0.0] * len(BASELINE_STAGES)
        for data, _ in records:
            t0 = perf_counter()
            root = etree.fromstring(data, parser)
            t1 = perf_counter()
            validator.validate(root)
            t2 = perf_counter()
            del root
            t3 = perf_counter()
            spent[0] += t1 - t0
            spent[1] += t2 - t1
            spent[2] += t3 - t2
        return spent

    return loop


def best_of(loops: dict[str, Callable[[], list[float]]], repeats: int) -> dict[str, list[float]]:
    """Each loop's fastest run (by total time) after a warm-up run.

    The loops take turns in every repeat, so a busy moment of a shared machine
    slows one repeat of each rather than every repeat of one.
    """
    for loop in loops.values():
        loop()  # warm-up
    best: dict[str, list[float]] = {}
    for _ in range(repeats):
        for name, loop in loops.items():
            gc.collect()
            spent = loop()
            if name not in best or sum(spent) < sum(best[name]):
                best[name] = spent
    return best


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = f" ({line.split(':', 1)[1].strip()})"
                break
    except OSError:
        pass
    libxml2 = ".".join(map(str, etree.LIBXML_VERSION))
    compiled = ".".join(map(str, etree.LIBXML_COMPILED_VERSION))
    return (
        f"{os.cpu_count()} CPUs{cpu}, {platform.system()} {platform.machine()};"
        f" {platform.python_implementation()} {platform.python_version()};"
        f" lxml {etree.__version__}, libxml2 {libxml2} (compiled against {compiled})"
    )


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}"


def _us(count: int, seconds: float) -> str:
    return f"{seconds / count * 1e6:,.1f}"


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _paths_table(title: str, count: int, baseline: float, govhub: tuple[str, float]) -> None:
    name, seconds = govhub
    _table(
        (title, "records/s", "µs/record"),
        [
            (
                "baseline: lxml fromstring + XMLSchema.validate",
                _rate(count, baseline),
                _us(count, baseline),
            ),
            (name, _rate(count, seconds), _us(count, seconds)),
        ],
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells).rstrip())
