"""Every generated part of the docs, by name, with the one source it is rendered from.

Add a part: write a function that returns its Markdown from its source (a measured record, a
config file, the CLI's parser; never a number typed in), register it in :data:`SECTIONS`, and
put its markers in a page (``docgen.blocks``). ``make docs`` then writes it and
``tests/test_docs.py`` fails while it is stale.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from docgen import measured, tables
from docgen.cli_reference import cli_reference
from docgen.grid_reference import grid_keys
from docgen.recipe_reference import recipe_keys

REPO = Path(__file__).resolve().parents[2]


def PAGES() -> list[str]:  # noqa: N802 (a constant computed on use)
    """The pages that may hold generated parts: the README, docs/*.md and config/README.md."""
    pages = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
    if (REPO / "config" / "README.md").is_file():
        pages.append("config/README.md")
    return pages


SECTIONS: dict[str, Callable[[], str]] = {
    "demo-time": measured.demo_time,
    "demo-grid": measured.demo_main,
    "demo-full-grid": measured.demo_full,
    "demo-findings": measured.demo_findings,
    "demo-findings-count": measured.demo_findings_count,
    "published-targets": tables.published_targets,
    "grid-costs": tables.grid_costs,
    "benchmark-cost": tables.benchmark_cost,
    "datasets": tables.datasets_table,
    "recipe-resources": tables.recipe_resources,
    "methods-table": tables.methods_table,
    "one-cell-cost": tables.one_cell_cost,
    "cli-reference": cli_reference,
    "grid-keys": grid_keys,
    "recipe-keys": recipe_keys,
}
