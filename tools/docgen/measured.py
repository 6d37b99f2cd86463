"""Parts rendered from the measured records in docs/measured/ (written by
``benchmarks/demo_time.py record``)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _demo_time_module():
    spec = importlib.util.spec_from_file_location("demo_time", REPO / "benchmarks/demo_time.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def demo_time() -> str:
    """The demo's measured time, jobs and machine, per demo target."""
    return _demo_time_module().readme_lines()


def _labels() -> dict[str, str]:
    import yaml

    methods = yaml.safe_load((REPO / "config" / "methods.yaml").read_text())["methods"]
    return {name: entry["label"] for name, entry in methods.items()}


def demo_grid(grid_file: str) -> str:
    """What a demo grid trains: its blocks, with the run count (from the grid file itself)."""
    from semivl.grid import load_grid

    grid = load_grid(REPO / grid_file)
    labels = _labels()
    lines = []
    for block in grid.blocks:
        methods = ", ".join(labels.get(m, m) for m in block.methods)
        names = [c.split for c in block.splits]
        splits = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        lines.append(
            f"- {methods}: {splits} labelled images, seeds {', '.join(map(str, block.seeds))} "
            f"({len(block.methods) * len(block.splits) * len(block.seeds)} runs)"
        )
    if grid.report.zero_shot:
        lines.append("- the zero-shot row: the pretrained tiny CLIP's dense labels, no training")
    lines.append(f"- in all {len(grid.runs())} training runs, on `cluster.device: cpu`")
    return "\n".join(lines)


def demo_main() -> str:
    return demo_grid("config/demo.yaml")


def demo_full() -> str:
    return demo_grid("config/demo_full.yaml")


VERDICTS = ("holds", "does not hold", "inconclusive")


def _findings(tables: Path) -> list[str]:
    text = tables.read_text()
    part = text.split("### Does this reproduce the paper's findings?", 1)[1]
    part = part.split("\n#", 1)[0]
    return [line for line in part.splitlines() if line.startswith("- ")]


def demo_findings() -> str:
    """The recorded demo's findings (docs/measured/demo_tables.md), counted by verdict."""
    findings = _findings(REPO / "docs" / "measured" / "demo_tables.md")
    counts = {v: sum(f": {v} (" in f for f in findings) for v in VERDICTS}
    assert sum(counts.values()) == len(findings), "a finding without a known verdict"
    record = json.loads((REPO / "docs" / "measured" / "demo.json").read_text())
    head = (
        f"On the recorded demo ({record['date']}, `docs/measured/demo_tables.md`), `tables.md` "
        f"checks {len(findings)} findings: {counts['holds']} hold, "
        f"{counts['does not hold']} do not hold and {counts['inconclusive']} are inconclusive."
    )
    return "\n".join([head, "", *findings])


def demo_findings_count() -> str:
    """One sentence: how many findings the recorded demo checks, by verdict."""
    return demo_findings().split("\n", 1)[0]
