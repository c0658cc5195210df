"""``python -m bench [NAME...] [--quick]``: run the named benchmarks (default: all)."""

from __future__ import annotations

import argparse
import importlib
import sys

from bench import BENCHMARKS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--quick", action="store_true", help="fewer records and repeats")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})")
    for index, name in enumerate(args.names or BENCHMARKS):
        if index:
            print()
        importlib.import_module(BENCHMARKS[name]).run(quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
