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
