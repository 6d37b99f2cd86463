"""Regenerate the README's and the docs' generated parts (``make docs``).

    python tools/make_docs.py           # rewrite every generated part from its source
    python tools/make_docs.py --check   # change nothing; exit 1 and name each stale part

The parts and their sources are listed in ``tools/docgen/sections.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO))

from docgen.blocks import render_file, stale  # noqa: E402
from docgen.sections import PAGES, SECTIONS  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale parts, write nothing")
    args = parser.parse_args(argv)
    files = [REPO / page for page in PAGES()]
    try:  # every page rendered before any is written: a bad marker leaves all pages as they were
        rendered = {path: render_file(path, SECTIONS) for path in files}
        problems = stale(files, SECTIONS) if args.check else []
    except (KeyError, ValueError) as err:
        print(f"make docs: {err.args[0]}", file=sys.stderr)
        return 1
    if args.check:
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print("run `make docs` and commit the result", file=sys.stderr)
            return 1
        print(f"{len(files)} pages: every generated part is up to date")
        return 0
    for path, new in rendered.items():
        if new != path.read_text():
            path.write_text(new)
            print(f"{path.relative_to(REPO)}: rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
