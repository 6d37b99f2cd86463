"""What a person watching a run sees: plain lines in a log file instead of a redrawn bar, and
TensorBoard event files (`tensorboard --logdir results/`)."""

from __future__ import annotations

import io

import pytest
from test_trainer import _spec

from semivl.engine.progress import TrainingProgress
from semivl.engine.trainer import TrainingStopped, train


def test_a_log_file_gets_a_line_every_few_minutes_not_every_iteration(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    clock = iter([0.0, 10.0, 200.0, 400.0, 450.0, 1000.0])
    monkeypatch.setattr("semivl.engine.progress.time.perf_counter", lambda: next(clock))
    watch = TrainingProgress("train unimatch", total=100, start=0, enabled=True)
    for it in (1, 2, 3, 4):  # at 10, 200, 400 and 450 s
        watch.step(it)
    watch.close()
    lines = err.getvalue().splitlines()
    assert lines == ["train unimatch: iteration 3/100 (3.0%), 133.33 s/it, 3.6 h left"]


def test_training_writes_tensorboard_events_and_no_bar_into_a_log(
    toy_root, config_dir, tmp_path, capfd
):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    with pytest.raises(TrainingStopped):
        train(_spec(toy_root, config_dir, out), stop_after_steps=7, log_every=1)
    train(_spec(toy_root, config_dir, out), log_every=1)  # resumes at 7
    err = capfd.readouterr().err
    assert "\r" not in err and "it/s" not in err  # no tqdm redraws in a log file
    assert "train supervised: iteration 12/12 (100.0%)" in err
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"train/loss", "train/lr", "val/miou"} <= set(tags)
    steps = [e.step for e in events.Scalars("train/loss")]
    assert sorted(set(steps)) == list(range(1, 13))
    assert [e.step for e in events.Scalars("val/miou")] == [6, 12]
