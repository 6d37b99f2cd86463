"""The docs' numbers have one source: `make docs` (tools/make_docs.py) renders every generated
part from it, and this test fails while a part is stale, a marker is broken, or a section is
generated but shown nowhere. Also: the README's length and map, LICENSE and CITATION.cff."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))

from docgen.blocks import parts, render_file, stale, wrap  # noqa: E402
from docgen.sections import PAGES, SECTIONS  # noqa: E402


def test_every_generated_part_is_up_to_date():
    files = [REPO / page for page in PAGES()]
    problems = stale(files, SECTIONS)
    assert not problems, "\n".join(problems) + "\nrun `make docs` and commit the result"
    shown = {p.name for path in files for p in parts(path)}
    assert shown == set(SECTIONS)


def test_the_check_command_passes():
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "make_docs.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert "every generated part is up to date" in proc.stdout


def test_a_planted_edit_in_a_generated_part_fails(tmp_path):
    """Edit a number inside the README's generated demo time, as a person might by hand."""
    readme = tmp_path / "README.md"
    text = (REPO / "README.md").read_text()
    body = next(p.body for p in parts(REPO / "README.md") if p.name == "demo-time")
    planted = re.sub(r"\d+\.\d minutes", "9.9 minutes", body, count=1)
    assert planted != body
    readme.write_text(text.replace(body, planted))
    problems = [p for p in stale([readme], SECTIONS) if p.startswith(str(readme))]
    assert problems == [f"{readme}: out of date: demo-time"]
    # make docs puts the measured number back.
    assert render_file(readme, SECTIONS) == text


def test_a_changed_source_makes_the_part_stale(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"intro\n\n{wrap('count', '3 runs')}\n\noutro\n")
    assert stale([page], {"count": lambda: "3 runs"}) == []
    assert stale([page], {"count": lambda: "4 runs"}) == [f"{page}: out of date: count"]
    assert "4 runs" in render_file(page, {"count": lambda: "4 runs"})
    assert stale([page], {"count": lambda: "3 runs", "unused": lambda: "x"}) == [
        "section 'unused' is generated but no page shows it"
    ]


def test_broken_markers_fail_with_the_file_name(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(wrap("nope", "x"))
    with pytest.raises(KeyError, match=r"page\.md: unknown generated part 'nope'"):
        render_file(page, {"count": lambda: "1"})
    opened = wrap("count", "x").rsplit("\n", 1)[0]
    page.write_text(opened + "\n")
    with pytest.raises(ValueError, match=r"page\.md: generated part\(s\) \['count'\] have no"):
        render_file(page, {"count": lambda: "1"})


def test_the_readme_is_short_and_maps_every_page():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 250, "the README grows: move detail into a docs page"
    linked = set(re.findall(r"\]\((docs/[a-z-]+\.md)[#)]", readme))
    pages = {f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")}
    assert pages <= linked, f"docs pages missing from the README's map: {sorted(pages - linked)}"
    assert "config/README.md" in readme


def test_licence_and_citation():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"]["text"] == "Apache-2.0"
    licence = (REPO / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "Apache-2.0"
    assert cff["title"] and cff["authors"] and cff["message"]
    titles = " ".join(ref["title"] for ref in cff["references"])
    for paper in ("SemiVL", "Revisiting Weak-to-Strong Consistency", "UniMatch V2"):
        assert paper in titles
    readme = (REPO / "README.md").read_text()
    for key in ("hoyer2024semivl", "yang2023unimatch", "yang2025unimatchv2"):
        assert key in readme


def test_docs_pages_are_discovered():
    pages = PAGES()
    assert pages[0] == "README.md" and "config/README.md" in pages
    assert all((REPO / p).is_file() for p in pages)
    assert not any(p.startswith("docs/measured") or p.startswith("docs/sweeps") for p in pages)
    assert Path(REPO / "tools" / "make_docs.py").is_file()
