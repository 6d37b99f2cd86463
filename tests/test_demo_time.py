"""The demo's time has one source (docs/measured/<grid>.json): the docs' generated parts
(``make docs``) and the Makefile's announcement render it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from conftest import REPO

SCRIPT = REPO / "benchmarks" / "demo_time.py"


def _module():
    spec = importlib.util.spec_from_file_location("demo_time", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_record_holds_what_the_docs_render():
    """The README's and docs/demo.md's lines come from this record (tests/test_docs.py checks
    that they are up to date)."""
    record = json.loads((REPO / "docs" / "measured" / "demo.json").read_text())
    assert {"seconds", "jobs", "cpu", "cores", "date", "matmul_gflops"} <= set(record)


def test_stamp_record_and_announce(tmp_path):
    demo_time = _module()
    results = tmp_path / "results"
    (results / "benchmarks" / "train").mkdir(parents=True)
    for name in ("a", "b", "c"):
        (results / "benchmarks" / "train" / f"{name}.tsv").write_text("s\tcpu_time\n1\t1\n")
    stamped = demo_time.stamp(results, start=0.0)
    assert stamped["jobs"] == 3 and stamped["seconds"] > 0
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"matmul_peak_tflops": 0.1854}))
    out = tmp_path / "measured" / "demo.json"
    data = demo_time.record(results, out, bench)
    assert data["matmul_gflops"] == 185 and json.loads(out.read_text()) == data
    line = demo_time.announce(out)
    assert line.startswith("3 jobs; measured ") and "185 GFLOP/s" in line
    assert demo_time.announce(Path(tmp_path / "missing.json")) == "(no measured time on record)"
    block = demo_time.readme_lines(tmp_path / "measured")
    assert "`make demo`: " in block and "`make demo-full`: not measured yet." in block
