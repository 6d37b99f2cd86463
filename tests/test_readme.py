"""Every shell command in the README's code blocks runs as written.

Each command is matched by the first rule of ``RULES`` and then checked as the rule says:

* ``run``: executed as written, in README order, in a copy of the repository (later commands
  read what earlier ones wrote);
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

A README command that no rule matches fails the test: add a rule, so that nothing in the README
goes unchecked.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}

# (pattern on the command, mode, why). The first match wins.
RULES: list[tuple[str, str, str]] = [
    # docs/add-a-method.md
    (r"^pip install .*-e \.$", "ci", "make setup installs the repository (its entry points)"),
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
    """The shell commands of the ```bash blocks: continuation lines joined, comments cut."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


def rule_for(command: str) -> tuple[str, str]:
    for pattern, mode, why in RULES:
        if re.search(pattern, command):
            return mode, why
    raise AssertionError(
        f"README command {command!r} is checked by no rule of tests/test_readme.py: add one"
    )


def _copy_repository(dest: Path) -> Path:
    """The checkout's tracked and untracked (not ignored) files, as a fresh git repository."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    for name in listed.stdout.decode().split("\0"):
        if name and (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"],
    ):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)
    return dest


def _dry(words: list[str], root: Path) -> list[str]:
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
                    f"README command {shlex.join(words)!r}: {file} has no key {assignment!r}"
                )
                node = node[key]
    return ["dvc", "status"]


def _parse_semivl(words: list[str]) -> None:
    from semivl.cli import build_parser

    if words[0] == "torchrun":
        words = ["semivl", *words[words.index("semivl.cli") + 1 :]]
    try:
        args = build_parser().parse_args(words[1:])
    except SystemExit as exit_:
        raise AssertionError(f"semivl cannot parse {shlex.join(words)!r}") from exit_
    assert callable(args.func)


def check_command(command: str, root: Path) -> str:
    """Check one README command as its rule says; returns the mode used."""
    mode, _ = rule_for(command)
    words = shlex.split(command)
    if mode in ("ci", "skip"):
        return mode
    if mode == "parse":
        _parse_semivl(words)
        return mode
    if mode == "run":
        argv = ["bash", "-c", command]
    elif mode == "dry":
        argv = _dry(words, root)
    elif mode == "help":
        argv = [*words[:2], "--help"]
    else:  # syntax
        argv = ["bash", "-n", words[1]]
    proc = subprocess.run(argv, cwd=root, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f"README command {command!r} (checked as {shlex.join(argv)}) "
        f"failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    )
    return mode


def test_readme_commands_are_extracted():
    commands = readme_commands((REPO / "README.md").read_text())
    assert "make demo" in commands and len(commands) > 30
    # Continuation lines are joined, comments dropped.
    assert any(c.startswith("semivl train --dataset toy") and c.endswith("seed0") for c in commands)
    assert not any("#" in c for c in commands)


def test_a_broken_command_fails(tmp_path):
    """The check itself can fail: the README's former `--configfile` line is caught."""
    root = _copy_repository(tmp_path / "repo")
    with pytest.raises(AssertionError, match="FileNotFoundError|does not exist|not found"):
        check_command("snakemake --cores 2 --configfile config/demo.yaml all", root)
    with pytest.raises(AssertionError, match="cannot parse"):
        check_command("semivl train --dataset toy --no-such-flag", root)
    with pytest.raises(AssertionError, match="has no key"):
        check_command("dvc exp run -S config/recipes/supervised/toy.yaml:optim.nope=1", root)
    with pytest.raises(AssertionError, match="no rule"):
        check_command("rm -rf data", root)


# Pages whose commands are checked like the README's.
DOCS = ["docs/add-a-method.md"]


@pytest.mark.slow
def test_every_docs_command_runs(tmp_path):
    root = _copy_repository(tmp_path / "repo")
    for page in DOCS:
        commands = readme_commands((root / page).read_text())
        assert commands, page
        modes = [check_command(command, root) for command in commands]
        assert "run" in modes, page


@pytest.mark.slow
def test_every_readme_command_runs(tmp_path):
    root = _copy_repository(tmp_path / "repo")
    commands = readme_commands((root / "README.md").read_text())
    modes = [check_command(command, root) for command in commands]
    assert modes.count("run") >= 8 and modes.count("dry") >= 5
