import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "demo_stages.py"
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _load():
    spec = importlib.util.spec_from_file_location("demo_stages", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench(path: Path, wall: float, cpu: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{wall}\t0:00:01\t1\t1\t1\t1\t0\t0\t90\t{cpu}\n")


def test_sums_benchmark_files_by_stage_and_job(tmp_path, capsys):
    for seed, (wall, cpu) in enumerate([(10, 8), (12, 9)]):
        _bench(tmp_path / "benchmarks" / "train" / f"toy_6_unimatch_seed{seed}.tsv", wall, cpu)
    _bench(tmp_path / "benchmarks" / "train" / "toy_6_supervised_seed0.tsv", 5, 4)
    _bench(tmp_path / "benchmarks" / "pretrain" / "tiny_clip_toy.tsv", 100, 98)
    stages = _load()
    assert stages.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| pretrain | 1 | 100 | 98 |" in out
    assert "| train | 3 | 27 | 21 |" in out and "| all | 4 | 127 |" in out
    assert stages.main([str(tmp_path), "--by-job", "train"]) == 0
    out = capsys.readouterr().out
    assert "| toy_6_unimatch | 2 | 22 | 17 |" in out and "| toy_6_supervised | 1 | 5 | 4 |" in out


def test_a_missing_results_folder_says_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match="run the workflow first"):
        _load().main([str(tmp_path / "nothing")])
