"""Instruction counts of the validate path, for a figure that load on the machine
cannot move: run under callgrind, once per mode, and subtract the ``none`` run.

    for m in none bare govhub; do
        valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
            .venv/bin/python bench/validate_instructions.py $m 2>&1 | grep Collected
    done

(bare - none) / RECORDS and (govhub - none) / RECORDS are the instructions per
record of bare lxml parse + XSD and of ``hub.records.parse``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lxml import etree

import hub.records
from hub.records.schema import record_schema

ROUNDS = 20
EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples" / "records").glob("*.xml"))


def main(mode: str) -> None:
    datas = [path.read_bytes() for path in EXAMPLES]
    validator, parser = record_schema().validator, etree.XMLParser()
    for data in datas:  # warm both paths up in every mode, so only the loop differs
        hub.records.parse(data)
        validator.validate(etree.fromstring(data, parser))
    for _ in range(ROUNDS):
        for data in datas:
            if mode == "bare":
                validator.validate(etree.fromstring(data, parser))
            elif mode == "govhub":
                hub.records.parse(data)
    print(f"{mode}: {ROUNDS * len(datas)} records")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "none")
