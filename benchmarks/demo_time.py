"""The demo's measured time: recorded once from a real run, quoted everywhere from that record.

    python benchmarks/demo_time.py stamp results/demo START_EPOCH    # make demo does this
    python benchmarks/demo_time.py record results/demo docs/measured/demo.json --bench B.json
    python benchmarks/demo_time.py announce docs/measured/demo.json  # the line make demo prints
    make docs                                                        # README and docs from it

`make demo` and `make demo-full` time themselves (`stamp`: wall seconds from before Snakemake
to after the HTML report, the number of jobs from Snakemake's `benchmark:` files, the CPU).
`record` copies such a stamp into `docs/measured/<grid>.json` with the matmul rate of
`semivl bench --quick --out B.json` on the same machine, and the run's `tables.md` beside it
(`docs/measured/<grid>_tables.md`, the numbers docs/demo.md discusses); that file is the one
source of the
demo's time, which the Makefile's announcement and the docs' generated parts (`make docs`,
tools/docgen/measured.py) render. `tests/test_docs.py` fails when a generated part is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from semivl.provenance import cpu_model

REPO = Path(__file__).resolve().parents[1]
MEASURED = REPO / "docs" / "measured"


def stamp(results: Path, start: float) -> dict:
    """Write ``<results>/timing.json`` for a run that started at ``start`` (epoch seconds)."""
    import os

    jobs = len(list((results / "benchmarks").rglob("*.tsv")))
    record = {
        "seconds": round(time.time() - start, 1),
        "jobs": jobs,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    (results / "timing.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def record(results: Path, out: Path, bench: Path) -> dict:
    """Copy ``<results>/timing.json`` to ``out`` with the machine's matmul rate."""
    timing = json.loads((results / "timing.json").read_text())
    rate = json.loads(bench.read_text())["matmul_peak_tflops"] * 1000
    data = {**timing, "matmul_gflops": round(rate)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n")
    tables = results / "tables.md"
    if tables.is_file():  # the run's tables, beside its time: what docs/demo.md discusses
        out.with_name(f"{out.stem}_tables.md").write_bytes(tables.read_bytes())
    return data


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def machine(data: dict) -> str:
    return f"{data['cores']} cores, {data['cpu']}, {data['matmul_gflops']} GFLOP/s fp32 matmul"


def announce(path: Path) -> str:
    """The line `make demo` prints before it starts."""
    if not path.is_file():
        return "(no measured time on record)"
    data = json.loads(path.read_text())
    return (
        f"{data['jobs']} jobs; measured {minutes(data['seconds'])} minutes after installation "
        f"on {machine(data)} ({data['date']}); about twice that on a machine half as fast"
    )


def readme_lines(measured: Path = MEASURED) -> str:
    """The lines on the demo's time that the README and docs/demo.md show (``make docs``)."""
    lines = []
    for name, target in (("demo", "make demo"), ("demo_full", "make demo-full")):
        path = measured / f"{name}.json"
        if not path.is_file():
            lines.append(f"- `{target}`: not measured yet.")
            continue
        data = json.loads(path.read_text())
        lines.append(
            f"- `{target}`: {minutes(data['seconds'])} minutes after installation, "
            f"{data['jobs']} jobs, on {machine(data)} ({data['date']})."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("stamp")
    p.add_argument("results", type=Path)
    p.add_argument("start", type=float)
    p = sub.add_parser("record")
    p.add_argument("results", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--bench", type=Path, required=True, help="semivl bench --quick --out JSON")
    p = sub.add_parser("announce")
    p.add_argument("record", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "stamp":
        data = stamp(args.results, args.start)
        print(f"{args.results}: {minutes(data['seconds'])} minutes, {data['jobs']} jobs")
    elif args.cmd == "record":
        print(json.dumps(record(args.results, args.out, args.bench)))
    else:
        print(announce(args.record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
