"""benchmarks/gpu_check.sh in its reduced CPU mode: it starts, writes its rows as it goes, and
runs on a Python that has only PyTorch and its own requirements plus the wheel bundle (as on a
bare GPU machine without network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
WHEELS = REPO / "benchmarks" / "wheels"
# What a GPU machine's preinstalled PyTorch brings (torch, torchvision and their requirements),
# and pip: every other import must come from the wheel bundle or this checkout.
MACHINE = (
    "torch",
    "torchgen",
    "functorch",
    "torchvision",
    "numpy",
    "PIL",
    "triton",
    "sympy",
    "mpmath",
    "filelock",
    "typing_extensions",
    "networkx",
    "jinja2",
    "markupsafe",
    "fsspec",
    "nvidia",
    "cuda",
    "cuda_pathfinder",
    "pip",
)


def _run(out: Path, python: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHON": python,
        "GPU_CHECK_DEVICE": "cpu",
        "OMP_NUM_THREADS": "1",
        **(extra_env or {}),
    }
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        ["bash", str(SCRIPT), str(out)], capture_output=True, text=True, env=env, timeout=900
    )


def _check_outputs(out: Path, proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "torch" in (out / "versions.txt").read_text()
    env = json.loads((out / "env.json").read_text())
    assert env["device"]["type"] == "cpu" and env["torch"]
    result = json.loads((out / "acceptance.json").read_text())
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    # Every registered method with a toy recipe (FixMatch, the plug-in, too), in two
    # precisions: the registry works from the source tree on a bare Python.
    methods = ("supervised", "fixmatch", "unimatch", "semivl", "unimatch_v2")
    assert result["reduced"] and len(rows) == len(result["rows"]) == 2 * len(methods)
    assert {(r["method"], r["precision"]) for r in rows} == {
        (m, p) for m in methods for p in ("default", "bf16")
    }
    for row in rows:
        assert "error" not in row, row
        assert row["s_per_iter"] > 0 and row["precision_settings"]["tf32_conv"] is True
        if row["precision"] == "default":
            assert row["evaluation"]["images_per_s"] > 0
    assert "| semivl/toy | bf16 |" in (out / "summary.md").read_text()
    return result


@pytest.mark.slow
def test_gpu_check_starts_in_its_reduced_cpu_mode(tmp_path):
    _check_outputs(tmp_path / "out", _run(tmp_path / "out", sys.executable))


def _bare_python(tmp_path: Path) -> Path:
    """An interpreter that sees only the MACHINE packages of this environment: the project's
    Python without its site-packages (-S), with links to those packages on its path."""
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    base = tmp_path / "machine-site"
    base.mkdir()
    for entry in site.iterdir():
        name = entry.name.split("-")[0].split(".")[0].lower()
        wanted = {m.lower() for m in MACHINE} | {"pillow"}
        if name in wanted or entry.name.split(".libs")[0].lower() in wanted:
            (base / entry.name).symlink_to(entry)
    wrapper = tmp_path / "python"
    wrapper.write_text(
        f'#!/bin/sh\nPYTHONPATH="${{PYTHONPATH:+$PYTHONPATH:}}{base}" '
        f'exec {sys.executable} -S "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


@pytest.mark.slow
@pytest.mark.skipif(
    not (WHEELS / "requirements.txt").is_file(),
    reason="no wheel bundle (build it: bash benchmarks/gpu_wheels.sh)",
)
def test_gpu_check_needs_nothing_but_pytorch_and_the_wheel_bundle(tmp_path):
    python = _bare_python(tmp_path)
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import torch, numpy\ntry:\n import timm\nexcept ImportError: print('bare')",
        ],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert probe.stdout.strip() == "bare", probe.stderr  # torch yes, timm no: a bare machine
    out = tmp_path / "out"
    _check_outputs(out, _run(out, str(python)))
    size = sum(f.stat().st_size for f in WHEELS.glob("*.whl")) / 2**20
    print(f"wheel bundle: {len(list(WHEELS.glob('*.whl')))} wheels, {size:.1f} MiB")
    assert size < 64
