"""``semivl plan``'s process layout: which cells run on fewer processes than upstream, what
that changes, and how many GPUs (and nodes) restore upstream's layout.

A recipe's ``resources.gpus`` is upstream's GPU count, one process per GPU. A cluster with
``cluster.max_gpus_per_job`` below it runs fewer processes; the trainer keeps the global batch
by gradient accumulation, so the optimiser step is upstream's, but batch norm (where the model
has it: the DeepLabV3+ baselines on ResNet/Xception, the ViT DeepLabV3+ head of the ablations,
SemiVL's Cityscapes conv encoder; SemiVL's CLIP ViT and VLG decoder have LayerNorm only)
normalises over one process's micro-batch instead of SyncBN over every GPU's images
(docs/deviations.md).
"""

from __future__ import annotations

from semivl.config import ModelConfig, Recipe
from semivl.launch import node_layout

# Models built from modules with BatchNorm2d (semivl.models.registry); semivl has it only in
# the optional conv encoder (ResNetV1cStem), tiny_fcn has none.
_BATCH_NORM_MODELS = {"deeplabv3plus", "vit_deeplabv3plus"}
_PLAIN_MODELS = {"tiny_fcn"}


def has_batch_norm(model: ModelConfig) -> bool | None:
    """Whether the model has batch norm layers (None: a model this table does not know)."""
    if model.name in _BATCH_NORM_MODELS:
        return True
    if model.name == "semivl":
        return bool(model.args.get("conv_encoder", False))
    if model.name in _PLAIN_MODELS:
        return False
    return None


def process_layout(recipe: Recipe, gpus: int, max_gpus_per_node: int | None) -> dict:
    """A plan row's layout: the job's nodes, upstream's GPU count and the nodes x GPUs that
    would run it, the micro-batch and whether the model has batch norm."""
    nodes, per_node = node_layout(gpus, max_gpus_per_node)
    upstream = recipe.resources.gpus
    upstream_nodes, upstream_per_node = node_layout(upstream, max_gpus_per_node)
    return {
        "nodes": nodes,
        "gpus_per_node": per_node,
        "recipe_gpus": upstream,
        "upstream_nodes": upstream_nodes,
        "upstream_gpus_per_node": upstream_per_node,
        "images_per_process": recipe.train.batch_size,
        "batch_norm": has_batch_norm(recipe.model),
    }


def _cells(rows: list[dict]) -> str:
    """``unimatch on pascal 92, 183; supervised on coco 232``."""
    splits: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        entry = splits.setdefault((r["method"], r["dataset"]), [])
        if r["split"] not in entry:
            entry.append(r["split"])
    return "; ".join(
        f"{method} on {dataset} {', '.join(names)}" for (method, dataset), names in splits.items()
    )


def _n(count: int, word: str) -> str:
    """``1 GPU``, ``2 GPUs``; ``1 process``, ``2 processes``."""
    plural = word + ("es" if word.endswith("s") else "s")
    return f"{count} {word if count == 1 else plural}"


def _where(nodes: int, per_node: int) -> str:
    if nodes == 1:
        return "on one node"
    return f"on {nodes} nodes x {_n(per_node, 'GPU')}"


def layout_warnings(rows: list[dict]) -> list[str]:
    """Lines for ``semivl plan``: cells on fewer processes than upstream (what that changes,
    and the GPUs and nodes that restore upstream's layout) and the jobs spanning nodes."""
    rows = [r for r in rows if "recipe_gpus" in r]
    fewer = [r for r in rows if r["gpus"] < r["recipe_gpus"]]
    lines: list[str] = []
    if fewer:
        lines += [
            "",
            f"Warning: {sum(r['runs'] for r in fewer)} runs train on fewer processes "
            "than upstream (cluster.max_gpus_per_job). The global batch is kept by "
            "gradient accumulation, so the optimiser step is upstream's; batch norm, "
            "where a model has it, then normalises over one process's micro-batch "
            "instead of SyncBN over every GPU's images (docs/deviations.md).",
        ]
        groups: dict[tuple, list[dict]] = {}
        for r in fewer:
            key = (
                r["gpus"],
                r["recipe_gpus"],
                r["accumulation"],
                r["images_per_process"],
                r["batch_norm"],
                r["upstream_nodes"],
                r["upstream_gpus_per_node"],
            )
            groups.setdefault(key, []).append(r)
        for (gpus, upstream, steps, images, bn, nodes, per_node), group in groups.items():
            if bn:
                effect = (
                    f"batch norm sees {_n(images, 'image')} per process instead of "
                    f"{upstream} x {images} synchronised"
                )
            elif bn is False:
                effect = (
                    "no batch norm in the model: the step is upstream's up to "
                    "floating-point summation order"
                )
            else:
                effect = "whether the model has batch norm is not known"
            lines.append(
                f"- {_cells(group)}: {_n(gpus, 'process')} x "
                f"{_n(steps, 'accumulation step')} instead of upstream's "
                f"{_n(upstream, 'GPU')} "
                f"({effect}). Upstream's layout: {upstream} GPUs "
                f"{_where(nodes, per_node)} (cluster.max_gpus_per_job: null or "
                f">= {upstream})."
            )
    spanning = [r for r in rows if r.get("nodes", 1) > 1]
    if spanning:
        layouts = sorted({(r["nodes"], r["gpus_per_node"]) for r in spanning})
        lines += [
            "",
            f"{sum(r['runs'] for r in spanning)} runs span several nodes "
            f"(cluster.max_gpus_per_node): "
            + ", ".join(f"{n} nodes x {_n(g, 'GPU')}" for n, g in layouts)
            + "; one torchrun per node, c10d rendezvous on the first.",
        ]
    return lines
