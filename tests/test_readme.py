"""Every shell command in the pages' code blocks runs as written, and every link resolves.

The pages are ``README.md``, every ``docs/*.md``, ``config/README.md`` and
``benchmarks/README.md`` (``pages()``; a new page under ``docs/`` is picked up by itself).
Each command of their ```bash blocks is matched by the first rule of ``RULES`` and then
checked as the rule says:

* ``run``: executed as written, in page order, in a copy of the repository (later commands
  read what earlier ones wrote; each page gets its own copy);
* ``dry``: Snakemake with ``-n`` added, in the same copy. DVC's own ``--dry`` still reads
  the outputs of the stages it would run first, and fails on a fresh checkout (no
  ``data/pascal`` yet), so ``dvc repro`` is checked with ``dvc status`` of the same targets,
  which resolves every stage, its params and vars, and ``dvc exp run -S file:key=value``
  with ``dvc status`` and a look that ``key`` exists in ``file``;
* ``parse``: ``semivl``'s own parser reads the arguments (subcommand, flags, types, required
  options), without running the step, for steps that need data or hours this test has not;
* ``help``: the tool answers ``--help`` for the same subcommand (tools that need a remote);
* ``syntax``: ``bash -n`` (a script that needs a GPU);
* ``ci``: run by ``.ci/run`` itself (``make demo``, ``make test``, ``make lint``), or by a
  named end-to-end test (the Snakemake report needs finished runs);
* ``skip``: a line that changes the interactive shell (tmux, source), with the reason.

A command that no rule matches fails the test: add a rule, so that nothing in the pages goes
unchecked. ``commands_per_page()`` returns the count of commands per page and mode as a
table (``python tests/test_readme.py`` prints it; so does the fast test, with ``-s``).

The link check (``link_problems()``) reads every Markdown link outside code: a relative target
must be a file or folder of the checkout (tracked, or untracked and not ignored) inside the
repository, a ``#anchor`` must be a heading of the target page (GitHub's slugs), and an
absolute link must be ``https://`` to a public host.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import os
import re
import shlex
import shutil
import subprocess
import sys
import unicodedata
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from conftest import REPO

BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}

MODES = ("run", "dry", "parse", "help", "syntax", "ci", "skip")


def pages(root: Path = REPO) -> list[str]:
    """The pages whose commands and links are checked, relative to ``root``."""
    docs = sorted(p.relative_to(root).as_posix() for p in (root / "docs").glob("*.md"))
    return [
        page
        for page in ["README.md", *docs, "config/README.md", "benchmarks/README.md"]
        if (root / page).is_file()
    ]


# (pattern on the command, mode, why). The first match wins.
RULES: list[tuple[str, str, str]] = [
    # docs/add-a-method.md
    (r"^pip install .*-e \.$", "ci", "make setup installs the repository (its entry points)"),
    (r"^make setup$", "ci", ".ci/run runs make setup first, in a clean clone"),
    (
        r"^make docs$",
        "ci",
        "tests/test_docs.py renders every generated part as make docs does and fails while "
        "one is stale (in a copy, make would first build a new .venv)",
    ),
    (r"^pip (install|uninstall) .*my.method", "skip", "an example package that is not here"),
    (r"^python -c ", "run", ""),
    (r"^pytest ", "ci", "make test runs the whole suite"),
    (
        r"^make (demo|demo-quick|test|test-fast|lint)$",
        "ci",
        ".ci/run runs make demo-quick, make lint, make test; make demo is the same DAG",
    ),
    (
        r"^make (demo-full|sweep)$",
        "ci",
        "hours of CPU; tests/test_sweep.py runs the sweep's code end to end on a small toy, "
        "test_workflow runs the same DAG as demo-full on a reduced grid",
    ),
    (r"^semivl sweep .*--render-only", "run", ""),
    (r"^python benchmarks/demo_time\.py (readme|announce)\b", "run", ""),
    (r"^python benchmarks/demo_stages\.py ", "ci", "needs a finished demo (benchmark files)"),
    (r"^tmux ", "skip", "starts an interactive terminal multiplexer"),
    (r"^source \.venv/bin/activate$", "skip", "changes the interactive shell"),
    (r"^export ", "run", ""),
    (r"^semivl data prepare toy$", "run", ""),
    (r"^semivl splits toy ", "run", ""),
    (r"^semivl weights fetch --grid config/demo\.yaml$", "run", ""),
    (r"^semivl model-summary ", "run", ""),
    (
        r"^semivl plan .* --bench 'benchmarks/results/<gpu>\.json'$",
        "parse",
        "<gpu> stands for the bench file that benchmarks/gpu.sh writes on the reader's GPU",
    ),
    (r"^semivl plan ", "run", ""),
    (r"^semivl methods$", "run", ""),
    (r"^semivl grid expand", "run", ""),
    (r"^semivl aggregate .*--allow-incomplete", "run", ""),
    (r"^semivl table --metrics partial/", "run", ""),
    # "Your own dataset": scaffolded from the toy's files (prepared above), in seconds.
    (r"^semivl (dataset new|data check|data prepare|splits) mytoy\b", "run", ""),
    (r"^semivl ", "parse", "needs prepared data, trained runs, network or minutes"),
    (r"^torchrun .* -m semivl\.cli ", "parse", "needs several processes and a dataset"),
    (r"^bash benchmarks/gpu\.sh$", "syntax", "needs a GPU"),
    # benchmarks/README.md, docs/cluster.md: the acceptance check, [OUT] its output folder.
    (
        r"^bash benchmarks/gpu_check\.sh( [\w./-]+)?$",
        "syntax",
        "needs a GPU; tests/test_gpu_check.py runs its reduced CPU mode",
    ),
    (
        r"^snakemake --report ",
        "ci",
        "needs finished runs: make demo and "
        "tests/test_workflow.py::test_snakemake_end_to_end write the report",
    ),
    (r"^snakemake ", "dry", ""),
    (r"^dvc (repro|exp run)\b", "dry", ""),
    (r"^dvc (exp show|remote add)\b", "run", ""),
    (r"^dvc (push|pull)\b", "help", "needs a remote that holds data"),
]


def readme_commands(text: str) -> list[str]:
    """The shell commands of a page's ```bash blocks (indented ones too, as in a list item):
    continuation lines joined, comments cut."""
    commands = []
    for block in re.findall(
        r"^[ \t]*```bash[ \t]*\n(.*?)^[ \t]*```[ \t]*$", text, flags=re.S | re.M
    ):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


def rule_for(command: str, page: str = "README.md") -> tuple[str, str]:
    for pattern, mode, why in RULES:
        if re.search(pattern, command):
            return mode, why
    raise AssertionError(
        f"{page}: command {command!r} is checked by no rule of tests/test_readme.py: add one"
    )


def page_modes(root: Path = REPO) -> dict[str, list[tuple[str, str | None]]]:
    """Each page's commands with the mode of their rule (None: no rule matches)."""
    result: dict[str, list[tuple[str, str | None]]] = {}
    for page in pages(root):
        rows: list[tuple[str, str | None]] = []
        for command in readme_commands((root / page).read_text()):
            try:
                mode: str | None = rule_for(command, page)[0]
            except AssertionError:
                mode = None
            rows.append((command, mode))
        result[page] = rows
    return result


def commands_per_page(root: Path = REPO) -> str:
    """A Markdown table: per page, how many commands it has and how each is checked."""
    columns = [*MODES, "no rule"]
    header = ["page", "commands", *columns]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    totals = [0] * (len(columns) + 1)
    for page, rows in page_modes(root).items():
        modes = [mode or "no rule" for _, mode in rows]
        counts = [len(modes), *(modes.count(column) for column in columns)]
        totals = [t + c for t, c in zip(totals, counts, strict=True)]
        lines.append("| " + " | ".join([page, *map(str, counts)]) + " |")
    lines.append("| " + " | ".join(["all", *map(str, totals)]) + " |")
    return "\n".join(lines)


def _copy_repository(dest: Path) -> Path:
    """The checkout's tracked and untracked (not ignored) files, as a fresh git repository."""
    for name in _checkout_files(REPO):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"],
    ):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)
    return dest


def _checkout_files(root: Path) -> list[str]:
    """The tracked and untracked (not ignored) files of the checkout at ``root``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    )
    return [name for name in listed.stdout.decode().split("\0") if name]


def _dry(words: list[str], root: Path, page: str) -> list[str]:
    if words[0] == "snakemake":
        return words if "-n" in words else [*words, "-n"]
    if words[1] == "repro":
        return ["dvc", "status", *words[2:]]
    # dvc exp run -S file:key=value ...: the parameter must exist where -S points.
    import yaml

    for flag, value in zip(words, words[1:], strict=False):
        if flag in ("-S", "--set-param"):
            file, assignment = value.split(":", 1)
            node = yaml.safe_load((root / file).read_text())
            for key in assignment.split("=", 1)[0].split("."):
                assert isinstance(node, dict) and key in node, (
                    f"{page}: command {shlex.join(words)!r}: {file} has no key {assignment!r}"
                )
                node = node[key]
    return ["dvc", "status"]


def _parse_semivl(words: list[str], page: str = "README.md") -> None:
    from semivl.cli import build_parser

    if words[0] == "torchrun":
        words = ["semivl", *words[words.index("semivl.cli") + 1 :]]
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args = build_parser().parse_args(words[1:])
    except SystemExit as exit_:
        why = stderr.getvalue().strip().splitlines()[-1:] or [""]
        raise AssertionError(
            f"{page}: semivl cannot parse {shlex.join(words)!r}: {why[0]}"
        ) from exit_
    assert callable(args.func)


def check_command(command: str, root: Path, page: str = "README.md") -> str:
    """Check one command of ``page`` as its rule says; returns the mode used."""
    mode, _ = rule_for(command, page)
    words = shlex.split(command)
    if mode in ("ci", "skip"):
        return mode
    if mode == "parse":
        _parse_semivl(words, page)
        return mode
    if mode == "run":
        argv = ["bash", "-c", command]
    elif mode == "dry":
        argv = _dry(words, root, page)
    elif mode == "help":
        argv = [*words[:2], "--help"]
    else:  # syntax
        argv = ["bash", "-n", words[1]]
    proc = subprocess.run(argv, cwd=root, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f"{page}: command {command!r} (checked as {shlex.join(argv)}) "
        f"failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    )
    return mode


# ---- links -------------------------------------------------------------------------------

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})(.*)$")
_SHELL_FENCES = {"sh", "shell", "zsh", "console", "shell-session", "shellsession", "terminal"}


def _fenced_blanked(text: str) -> str:
    """``text`` with every fenced code block's lines emptied (line numbers kept)."""
    out, fence = [], None
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            out.append("")
        elif fence is not None:
            if (
                match
                and match.group(1)[0] == fence[0]
                and len(match.group(1)) >= len(fence)
                and not match.group(2).strip()
            ):
                fence = None
            out.append("")
        else:
            out.append(line)
    return "\n".join(out)


def _blank(match: re.Match) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def _prose(text: str) -> str:
    """``text`` without code blocks, inline code and HTML comments: each replaced by spaces
    of the same length, so that offsets still give line numbers."""
    text = _fenced_blanked(text)
    text = re.sub(r"<!--.*?-->", _blank, text, flags=re.S)
    # A code span: a run of backticks, then anything but a blank line, then the same run.
    return re.sub(r"(?<!`)(`+)(?!`)(?:[^\n]|\n(?![ \t]*\n))+?(?<!`)\1(?!`)", _blank, text)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: the rendered text lowercased, punctuation and
    symbols dropped (letters, digits, ``-``, ``_`` and spaces stay), each space a ``-``."""
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\([^)]*\)", r"\1", heading)  # links: text
    text = re.sub(r"<[^>]+>", "", text)  # HTML tags
    text = re.sub(r"(?<![\w])_{1,2}([^_]+)_{1,2}(?![\w])", r"\1", text)  # _emphasis_
    return "".join(
        "-" if ch == " " else ch
        for ch in text.strip().lower()
        if ch in " -_" or unicodedata.category(ch)[0] in "LNM"
    )


@cache
def anchors(path: Path) -> frozenset[str]:
    """The anchors of a Markdown file: its headings' slugs (``-1``, ``-2`` for repeats) and
    explicit HTML ``id``/``name`` attributes."""
    text = _fenced_blanked(path.read_text())
    text = re.sub(r"<!--.*?-->", _blank, text, flags=re.S)
    headings = [
        match.group(2)
        for match in re.finditer(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$", text, re.M)
    ]
    # Setext headings: a text line underlined with === or ---.
    headings += re.findall(r"^ {0,3}(\S[^\n]*)\n {0,3}(?:=+|-+)[ \t]*$", text, re.M)
    found: set[str] = set()
    seen: dict[str, int] = {}
    for heading in headings:
        slug = github_slug(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    found.update(re.findall(r"""\b(?:id|name)\s*=\s*["']([^"']+)["']""", text))
    return frozenset(found)


_LINK_PATTERNS = [
    # [text](target "title") and ![alt](target); the text may wrap lines.
    re.compile(
        r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(?P<t><[^>\n]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)"
        r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)"
    ),
    # [label]: target (a reference definition)
    re.compile(r"^ {0,3}\[[^\]\n]+\]:[ \t]*(?P<t><[^>\n]*>|\S+)", re.M),
    # <https://...> (an autolink)
    re.compile(r"<(?P<t>[A-Za-z][A-Za-z0-9+.-]*:[^\s<>]+)>"),
    # <a href="..."> and <img src="...">
    re.compile(r"""\b(?:href|src)\s*=\s*["'](?P<t>[^"']*)["']"""),
    # a bare URL in the prose (GitHub links it)
    re.compile(r"(?<![\w(<\[\"'=/])(?P<t>(?:https?|ftp|file)://[^\s<>()\[\]\"'`]+)"),
]


def page_links(page: str, root: Path = REPO) -> list[tuple[int, str]]:
    """The (line, target) of every link of ``page`` outside code, in page order."""
    text = _prose((root / page).read_text())
    found = set()
    for pattern in _LINK_PATTERNS:
        for match in pattern.finditer(text):
            target = match.group("t").strip()
            if target.startswith("<") and target.endswith(">"):
                target = target[1:-1]
            if pattern is _LINK_PATTERNS[-1]:  # a bare URL ends before a sentence's stop
                target = target.rstrip(".,;:!?")
            line = text.count("\n", 0, match.start("t")) + 1
            found.add((line, target))
    return sorted(found)


def _public_https(target: str) -> str | None:
    """Why an absolute link is refused, or None."""
    parts = urlsplit(target)
    if parts.scheme.lower() != "https":
        return f"scheme {parts.scheme or '//'!r}: only https:// links"
    host = (parts.hostname or "").lower()
    if not host:
        return "no host"
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return f"host {host!r} is not public"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not address.is_global:
        return f"host {host!r} is not a public address"
    return None


def link_problems(root: Path = REPO, link_pages: list[str] | None = None) -> list[str]:
    """``page:line: target: why`` for every link of the pages that does not resolve."""
    files = set(_checkout_files(root))
    folders = {parent.as_posix() for name in files for parent in Path(name).parents}
    problems = []
    for page in link_pages if link_pages is not None else pages(root):
        for line, target in page_links(page, root):
            where = f"{page}:{line}: {target}"
            if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//", target):
                why = _public_https(target)
                if why:
                    problems.append(f"{where}: {why}")
                continue
            path, _, anchor = target.partition("#")
            path = unquote(path.split("?", 1)[0])
            if not path:
                dest = root / page
            elif path.startswith("/"):  # GitHub: relative to the repository's root
                dest = root / path.lstrip("/")
            else:
                dest = (root / page).parent / path
            rel = os.path.relpath(os.path.normpath(dest), root)
            real = Path(os.path.realpath(dest))
            if rel == ".." or rel.startswith("../") or not real.is_relative_to(root.resolve()):
                problems.append(f"{where}: outside the repository")
                continue
            rel = Path(rel).as_posix()
            if not dest.exists():
                problems.append(f"{where}: no such file or folder")
                continue
            if rel not in files and rel not in folders:
                problems.append(f"{where}: not in the checkout (ignored or generated)")
                continue
            if not anchor:
                continue
            anchor = unquote(anchor)
            if dest.is_file() and dest.suffix.lower() in (".md", ".markdown"):
                if anchor not in anchors(dest):
                    problems.append(f"{where}: {rel} has no heading with anchor #{anchor}")
            elif not (dest.is_file() and re.fullmatch(r"L\d+(C\d+)?(-L\d+(C\d+)?)?", anchor)):
                problems.append(f"{where}: anchor #{anchor} on a file that has no headings")
    return problems


# ---- tests -------------------------------------------------------------------------------


def test_readme_commands_are_extracted():
    assert "make demo" in readme_commands((REPO / "README.md").read_text())
    # Continuation lines are joined, comments dropped, other languages' blocks ignored.
    text = (
        "```bash\nsemivl train --dataset toy \\\n    --seed 0  # a comment\n# alone\n```\n"
        "```yaml\nkey: value\n```\n"
    )
    assert readme_commands(text) == ["semivl train --dataset toy --seed 0"]
    # A block indented in a list item counts too.
    assert readme_commands("1. Run\n\n   ```bash\n   semivl methods  # list\n   ```\n") == [
        "semivl methods"
    ]


def test_every_page_is_covered():
    """README.md, every docs/*.md and the folder READMEs; shell blocks are all ```bash."""
    listed = pages()
    assert listed[0] == "README.md" and "docs/add-a-method.md" in listed
    assert {p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md")} <= set(listed)
    other_shells = [
        f"{page}:{number}: ```{match.group(2).strip()}"
        for page in listed
        for number, line in enumerate((REPO / page).read_text().splitlines(), 1)
        if (match := _FENCE.match(line)) and match.group(2).strip().lower() in _SHELL_FENCES
    ]
    assert not other_shells, (
        "shell commands outside ```bash blocks go unchecked; write them as ```bash:\n"
        + "\n".join(other_shells)
    )


def test_every_page_command_has_a_rule_and_parses(record_property):
    """Fast: each command of each page matches a rule, and the parse-mode ones parse."""
    table = commands_per_page()
    print(f"\ncommands per page and mode:\n{table}")
    record_property("commands_per_page", table)
    problems = []
    for page, rows in page_modes().items():
        for command, mode in rows:
            try:
                if mode is None:
                    rule_for(command, page)
                elif mode == "parse":
                    _parse_semivl(shlex.split(command), page)
            except AssertionError as error:
                problems.append(str(error))
    assert not problems, "\n".join(problems)
    # Most commands really run: the README moved its walk-throughs to docs/, so count them all.
    modes = [mode for rows in page_modes().values() for _, mode in rows]
    assert modes.count("run") >= 8 and modes.count("dry") >= 5, table


def test_a_broken_command_fails(tmp_path):
    """The check itself can fail: the README's former `--configfile` line is caught."""
    root = _copy_repository(tmp_path / "repo")
    with pytest.raises(AssertionError, match="FileNotFoundError|does not exist|not found"):
        check_command("snakemake --cores 2 --configfile config/demo.yaml all", root)
    with pytest.raises(AssertionError, match="cannot parse"):
        check_command("semivl train --dataset toy --no-such-flag", root)
    # docs/checkpoints.md's former line: evaluate without --data-root and --splits-dir.
    with pytest.raises(AssertionError, match="docs/checkpoints.md: semivl cannot parse"):
        check_command(
            "semivl evaluate --dataset pascal --split 92 --method semivl "
            "--run-dir results/released/pascal/92/semivl",
            root,
            "docs/checkpoints.md",
        )
    with pytest.raises(AssertionError, match="has no key"):
        check_command("dvc exp run -S config/recipes/supervised/toy.yaml:optim.nope=1", root)
    with pytest.raises(AssertionError, match="no rule"):
        check_command("rm -rf data", root)


def test_github_slugs():
    assert (
        github_slug("Released checkpoints, evaluated here") == "released-checkpoints-evaluated-here"
    )
    assert github_slug("`semivl evaluate` does not repeat work") == (
        "semivl-evaluate-does-not-repeat-work"
    )
    assert github_slug("Speed options (`train.speed`; the defaults)") == (
        "speed-options-trainspeed-the-defaults"
    )
    assert github_slug("Δ released − published") == "δ-released--published"
    assert github_slug("See [upstream](upstream.md) and _this_") == "see-upstream-and-this"


def test_a_broken_link_is_found(tmp_path):
    """The link check itself can fail, for each kind of problem."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / ".gitignore").write_text("data/\n")
    (tmp_path / "data" / "x.txt").write_text("ignored\n")
    (tmp_path / "docs" / "b.md").write_text("# B page\n\n## Two words\n\nText.\n")
    (tmp_path / "docs" / "a.md").write_text(
        "# A\n\n"
        "[good](b.md#two-words) [self](#a) [root](../README.md) [folder](../docs)\n"
        "[gone](missing.md) [bad anchor](b.md#three-words)\n"
        "[out](../../shared/x.md) [ignored](../data/x.txt)\n"
        "[plain](http://example.com) [local](https://localhost:8080/x) [lan](https://10.0.0.1/)\n"
        "see https://github.com/google-research/semivl. `[code](nope.md)`\n\n"
        "```bash\n[in a block](nope.md)\n```\n"
        "[wrapped\ntext](nope2.md)\n"
    )
    (tmp_path / "README.md").write_text("# Root\n\n[a](docs/a.md#a) <file:///etc/passwd>\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    problems = link_problems(tmp_path, ["README.md", "docs/a.md"])
    text = "\n".join(problems)
    for expected in (
        "README.md:3: file:///etc/passwd: scheme 'file'",
        "docs/a.md:4: missing.md: no such file",
        "docs/a.md:4: b.md#three-words: docs/b.md has no heading with anchor #three-words",
        "docs/a.md:5: ../../shared/x.md: outside the repository",
        "docs/a.md:5: ../data/x.txt: not in the checkout",
        "docs/a.md:6: http://example.com: scheme 'http'",
        "docs/a.md:6: https://localhost:8080/x: host 'localhost'",
        "docs/a.md:6: https://10.0.0.1/: host '10.0.0.1' is not a public address",
        "docs/a.md:13: nope2.md: no such file",
    ):
        assert expected in text, f"{expected!r} not in:\n{text}"
    assert len(problems) == 9, text


def test_every_link_resolves():
    """Fast: the pages' links point into the checkout, at headings that exist, or to public
    https:// hosts."""
    problems = link_problems()
    assert not problems, "broken links:\n" + "\n".join(problems)


# Pages whose commands are checked like the README's (the README has its own test below).
DOCS = [page for page in pages() if page != "README.md"]


@pytest.mark.slow
@pytest.mark.parametrize("page", DOCS)
def test_every_docs_command_runs(tmp_path, page):
    commands = readme_commands((REPO / page).read_text())
    modes = [rule_for(command, page)[0] for command in commands]
    # Only a page with a command to execute needs its own copy of the checkout.
    needs_copy = any(mode not in ("ci", "skip", "parse") for mode in modes)
    root = _copy_repository(tmp_path / "repo") if needs_copy else REPO
    assert [check_command(command, root, page) for command in commands] == modes


@pytest.mark.slow
def test_every_readme_command_runs(tmp_path):
    root = _copy_repository(tmp_path / "repo")
    commands = readme_commands((root / "README.md").read_text())
    modes = [check_command(command, root) for command in commands]
    assert "run" in modes and "dry" in modes


if __name__ == "__main__":
    print(commands_per_page())
