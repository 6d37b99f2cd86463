"""Checksum pins written by parallel jobs into one lock file are all kept."""

from __future__ import annotations

import multiprocessing

from semivl.lockfile import pin, read_lock


def _pin_many(path: str, worker: int) -> None:
    for i in range(15):
        pin(path, f"w{worker}_{i}", f"{worker:02d}{i:062d}", "parallel test files")


def test_parallel_pins_into_one_file_lose_nothing(tmp_path):
    path = tmp_path / "config" / "weights.lock.yaml"
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_pin_many, args=(str(path), w)) for w in range(6)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    lock = read_lock(path)
    assert len(lock) == 6 * 15
    assert lock["w3_7"] == f"03{7:062d}"
    assert path.read_text().startswith("# sha256 of parallel test files")
