import pandas as pd
import pytest

from semivl.report.figures import plot_miou_vs_labels
from semivl.report.tables import format_cell, render_tables


def _frame():
    rows = []
    for split, n, base in (("6", 6, 40.0), ("24", 24, 50.0)):
        for seed, delta in enumerate((-1.0, 1.0)):
            rows.append({"dataset": "toy", "split": split, "num_labeled": n,
                         "method": "supervised", "seed": seed, "miou": base + delta,
                         "miou_best": base + delta + 0.5, "best_iter": 10, "final_iter": 10})
    return pd.DataFrame(rows)


def test_format_cell():
    assert format_cell(pd.Series([40.0, 42.0])) == "41.0 ± 1.4 (2)"
    assert format_cell(pd.Series([40.0])) == "40.0 (1)"


def test_render_tables_layout():
    text = render_tables(_frame(), "Demo")
    assert "| method | 6 | 24 |" in text
    assert "| Supervised (labelled only) | 40.0 ± 1.4 (2) | 50.0 ± 1.4 (2) |" in text
    assert "| Supervised (labelled only) | 40.5 ± 1.4 (2) | 50.5 ± 1.4 (2) |" in text


def test_plot_writes_png(tmp_path):
    out = plot_miou_vs_labels(_frame(), tmp_path / "figures" / "miou_vs_labels.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["miou_vs_labels.png"]


def test_plot_is_byte_stable(tmp_path):
    a = plot_miou_vs_labels(_frame(), tmp_path / "a.png").read_bytes()
    b = plot_miou_vs_labels(_frame(), tmp_path / "b.png").read_bytes()
    assert a == b
    with pytest.raises(KeyError):
        plot_miou_vs_labels(_frame().drop(columns=["method"]), tmp_path / "c.png")


def test_incomplete_grid_reports_failed_and_not_run_cells(tmp_path, repo):
    import json

    import yaml

    from semivl.grid import load_grid
    from semivl.report.aggregate import collect_grid, collect_metrics

    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(yaml.safe_dump({
        "results_dir": str(tmp_path / "results"), "config_dir": str(repo / "config"),
        "grid": {"datasets": ["toy"], "splits": [{"dataset": "toy", "split": "6"}],
                 "methods": ["supervised", "unimatch"], "seeds": [0, 1]}}))
    grid = load_grid(grid_file)
    for seed, miou in ((0, 40.0), (1, 42.0)):
        run = grid.run_dir("toy", "6", "supervised", seed)
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({
            "dataset": "toy", "split": "6", "num_labeled": 6, "method": "supervised",
            "seed": seed, "miou": miou, "miou_best": miou, "best_iter": 5, "final_iter": 5}))
    failed = grid.run_dir("toy", "6", "unimatch", 0)
    failed.mkdir(parents=True)
    (failed / "attempts.jsonl").write_text(json.dumps({"outcome": "error", "wall_s": 3.0,
                                                       "gpus": 0, "gpu_hours": 0.0}) + "\n")
    with pytest.raises(FileNotFoundError, match="2 run"):
        collect_grid(grid)
    frame = collect_grid(grid, allow_incomplete=True)
    assert list(frame["status"]) == ["ok", "ok", "failed", "not run"]
    text = render_tables(frame, "Demo")
    assert "| Supervised (labelled only) | 41.0 ± 1.4 (2) |" in text
    assert "| UniMatch | 1 failed; 1 not run |" in text
    assert "- toy 6 UniMatch seed 0: failed (training error (1 attempts))" in text
    assert "- toy 6 UniMatch seed 1: not run" in text
    assert "status" in collect_metrics([grid.run_dir("toy", "6", "supervised", 0) /
                                        "metrics.json"])
