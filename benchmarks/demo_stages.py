"""Where a Snakemake run's time went: sums its `benchmark:` files by stage.

    python benchmarks/demo_stages.py results/demo            # markdown table on stdout
    python benchmarks/demo_stages.py results/demo --by-job train

Every rule with a `benchmark:` directive writes `<results>/benchmarks/<stage>/<job>.tsv`
(Snakemake's columns: `s` wall seconds, `cpu_time` CPU seconds, ...). The stage is the folder
name; `--by-job STAGE` lists that stage's jobs instead, grouped by the job name without its
seed (e.g. `toy_6_unimatch`). docs/performance.md quotes this script's tables.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import defaultdict
from pathlib import Path


def read_benchmarks(results: Path) -> list[tuple[str, str, float, float]]:
    """(stage, job, wall s, CPU s) for every benchmark file under ``results/benchmarks``."""
    root = results / "benchmarks"
    if not root.is_dir():
        raise SystemExit(f"{root}: no such folder; run the workflow first (make demo)")
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        with path.open() as handle:
            record = next(csv.DictReader(handle, delimiter="\t"), None)
        if record is None:
            raise SystemExit(f"{path}: empty benchmark file")
        stage = path.relative_to(root).parts[0]
        rows.append((stage, path.stem, float(record["s"]), float(record["cpu_time"])))
    return rows


def table(groups: dict[str, list[tuple[float, float]]], label: str) -> str:
    lines = [f"| {label} | jobs | wall s | CPU s |", "|---|---:|---:|---:|"]
    for name, items in groups.items():
        wall, cpu = sum(w for w, _ in items), sum(c for _, c in items)
        lines.append(f"| {name} | {len(items)} | {wall:.0f} | {cpu:.0f} |")
    every = [item for items in groups.values() for item in items]
    lines.append(
        f"| all | {len(every)} | {sum(w for w, _ in every):.0f} | {sum(c for _, c in every):.0f} |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="the workflow's results folder")
    parser.add_argument("--by-job", metavar="STAGE", help="list one stage's jobs (seeds merged)")
    args = parser.parse_args(argv)
    rows = read_benchmarks(args.results)
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for stage, job, wall, cpu in rows:
        if args.by_job is None:
            groups[stage].append((wall, cpu))
        elif stage == args.by_job:
            groups[re.sub(r"_seed\d+$", "", job)].append((wall, cpu))
    if not groups:
        raise SystemExit(f"no benchmark files for stage {args.by_job!r}")
    print(table(dict(sorted(groups.items())), args.by_job or "stage"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
