"""The trainer's validation of its final weights, recorded so that ``semivl evaluate`` need not
repeat it.

Training always validates the weights it ends with (the last scheduled evaluation). When that
evaluation ran in one process, the result is exactly what ``semivl evaluate`` computes for
``model.pt``: same weights, same code, same val split, same protocol. The trainer stores it in
``train_summary.json`` under ``final_eval`` with the sha256 of the weights and of the val split
and a fingerprint of the protocol; ``semivl evaluate`` reuses it only when all still match
(``--recompute`` evaluates anyway). With several processes the validation pads its shards, as
upstream's ``DistributedSampler`` does, so the record is not reused and ``evaluate`` recomputes.

This module imports no torch: the reuse path of ``semivl evaluate`` starts in well under a second.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def protocol_fingerprint(recipe) -> str:
    """Hash of what decides a validation result besides the weights: the dataset config, the
    model, the input normalisation and resize (augment) and the evaluation protocol."""
    parts = recipe.to_dict()
    blob = json.dumps(
        {k: parts[k] for k in ("dataset", "model", "augment", "eval")}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def final_eval_record(
    result, iteration: int, processes: int, recipe, val_split: Path, class_definitions: str | None
) -> dict[str, Any]:
    """The ``final_eval`` entry of ``train_summary.json`` (byte-stable: no times or paths)."""
    extra = (
        {} if result.per_mode_accuracy is None else {"per_mode_accuracy": result.per_mode_accuracy}
    )
    return {
        **extra,
        "iter": iteration,
        "miou": result.miou,
        "per_class_iou": result.per_class_iou,
        "num_images": result.num_images,
        "processes": processes,
        "class_definitions": class_definitions,
        "val_split_sha256": file_sha256(val_split),
        "protocol": protocol_fingerprint(recipe),
    }


def reusable_final_eval(
    summary: dict, recipe, val_split: Path, weights: Path
) -> tuple[dict | None, str]:
    """The summary's ``final_eval`` if it stands for ``semivl evaluate`` of ``weights``, else
    ``None``; with the reason either way (printed by the CLI)."""
    record = summary.get("final_eval")
    if summary.get("imported"):
        return None, "an imported upstream checkpoint: this project never validated it"
    if not record:
        return None, "the training summary has no final validation record (older run)"
    if record["iter"] != summary.get("final_iter"):
        return None, "the last validation was not at the final iteration"
    if record["processes"] != 1:
        return None, (f"training validated in {record['processes']} processes (padded shards)")
    if record.get("weights_sha256") != file_sha256(weights):
        return None, f"{weights} is not the file the trainer validated"
    if record["val_split_sha256"] != file_sha256(val_split):
        return None, f"{val_split} changed since training"
    if record["protocol"] != protocol_fingerprint(recipe):
        return None, "the recipe's model, data or evaluation protocol changed since training"
    return record, (
        f"the trainer's validation of these final weights at iteration "
        f"{record['iter']}; --recompute evaluates again"
    )
