"""govhub benchmarks: ``./dev bench [NAME...] [--quick]`` (see bench/README.md).

A benchmark measures and reports; it never asserts on timings.
"""

from __future__ import annotations

# name -> module in this package; each module has ``run(quick: bool) -> None``.
BENCHMARKS: dict[str, str] = {
    "validate": "bench.validate",
    "review": "bench.review",
    "pipeline": "bench.pipeline",
    "feeds": "bench.feeds",
    "feed_serve": "bench.feed_serve",
    "harvest": "bench.harvest",
    "search": "bench.search",
    "page_coverage": "bench.page_coverage",
}
