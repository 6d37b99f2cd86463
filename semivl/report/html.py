"""``tables.html``: tables.md rendered as one self-contained page (for Snakemake's report and
browsers), with Python-Markdown's ``tables`` extension and a small inline stylesheet."""

from __future__ import annotations

import html

import markdown

STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f2f2f2; }
td:not(:first-child), th:not(:first-child) { text-align: right; white-space: nowrap; }
tr:nth-child(even) td { background: #fafafa; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def render_html(markdown_text: str, title: str = "Results") -> str:
    """A complete HTML page of ``markdown_text`` (deterministic: no dates, no scripts)."""
    body = markdown.markdown(markdown_text, extensions=["tables"], output_format="html")
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )
