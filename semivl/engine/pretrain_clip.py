"""Contrastive image-caption pretraining of a small open_clip CLIP (``semivl pretrain-clip``).

The demo's stand-in for CLIP's web-scale pretraining: the tiny CLIP of ``config/clip.yaml``
learns from captioned toy scenes (``semivl data captions``) with CLIP's own objective, the
symmetric InfoNCE loss over a batch of image and caption embeddings (open_clip's
``ClipLoss``). It sees image-level captions only, never a mask. The result is an open_clip
checkpoint that ``semivl clip fetch`` loads like any downloaded CLIP file.

``config/pretrain/<name>.yaml`` holds the recipe. Training keeps ``checkpoint.pt`` in the
output folder every ``checkpoint_every`` steps and resumes from it; the finished folder holds
``model.pt`` (the checkpoint), ``log.csv`` (loss, learning rate and logit scale) and
``summary.json``.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from semivl.engine.checkpoint import load_checkpoint, save_atomic, write_json_atomic
from semivl.engine.pretrain_config import (  # noqa: F401 - re-export
    PRETRAIN_DIR,
    CaptionDataConfig,
    PretrainConfig,
    load_pretrain_config,
    pretrain_config_path,
)
from semivl.models.clip_vit import IMAGENET_MEAN, IMAGENET_STD


def load_caption_set(
    root: Path, image_size: int, progress: bool = False
) -> tuple[torch.Tensor, list[str]]:
    """All images of a caption set resized to ``image_size`` (uint8 [N, 3, S, S]) and their
    captions, in ``captions.tsv`` order."""
    from semivl.data.prepare.toy import read_captions

    root = Path(root)
    table = root / "captions.tsv"
    if not table.is_file():
        raise FileNotFoundError(
            f"{table}: missing; generate the scenes with "
            f"`semivl data captions --pretrain <name> --out {root}`"
        )
    captions = read_captions(table)
    images = np.empty((len(captions), image_size, image_size, 3), dtype=np.uint8)
    for index, sample_id in enumerate(
        tqdm(captions, desc="load scenes", unit="img", leave=False, disable=not progress)
    ):
        path = root / "images" / f"{sample_id}.jpg"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: listed in {table} but missing; regenerate the scenes with --force"
            )
        with Image.open(path) as image:
            resized = image.convert("RGB").resize(
                (image_size, image_size), Image.Resampling.BILINEAR
            )
            images[index] = np.asarray(resized)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), list(captions.values())


def tokenize_captions(captions: list[str], context_length: int) -> torch.Tensor:
    """open_clip tokens [N, context_length]; a caption that would be cut is an error."""
    import open_clip

    tokenizer = open_clip.tokenizer._tokenizer
    for caption in captions:
        length = len(tokenizer.encode(caption)) + 2  # start and end tokens
        if length > context_length:
            raise ValueError(
                f"caption {caption!r} has {length} tokens, more than the text "
                f"tower's context_length {context_length}; raise context_length "
                f"in config/clip.yaml or shorten the captions"
            )
    return open_clip.tokenize(captions, context_length=context_length)


def lr_at(cfg: PretrainConfig, step: int) -> float:
    """Linear warm-up to ``lr``, then cosine decay to 0 (open_clip's ``cosine_lr``)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1)
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * progress))


def build_optimizer(model: nn.Module, cfg: PretrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on 1-d parameters (gains, biases), as open_clip trains."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if param.ndim < 2 or "logit_scale" in name else decay).append(param)
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )


IMAGENET_MEAN_T = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
IMAGENET_STD_T = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def make_batch(
    images: torch.Tensor, index: torch.Tensor, flip: torch.Tensor, turns: torch.Tensor | None = None
) -> torch.Tensor:
    """ImageNet-normalised float images, flipped where ``flip`` and rotated by ``turns`` x 90
    degrees (SemiVL feeds the CLIP tower ImageNet statistics on the toy data, so the
    pretraining does the same)."""
    x = images[index].float() / 255.0
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    if turns is not None:
        for k in (1, 2, 3):
            chosen = turns == k
            if chosen.any():
                x[chosen] = torch.rot90(x[chosen], k, dims=(-2, -1))
    return (x - IMAGENET_MEAN_T) / IMAGENET_STD_T


class BatchOrder:
    """Epoch-wise random permutations of the scenes, from a seeded generator."""

    def __init__(self, count: int, batch_size: int, seed: int) -> None:
        if batch_size > count:
            raise ValueError(f"batch_size {batch_size} is larger than the {count} scenes")
        self.count, self.batch_size, self.seed = count, batch_size, seed
        self.per_epoch = count // batch_size

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Indices, flip flags and quarter turns of batch ``step`` (a pure function of the
        step)."""
        epoch, within = divmod(step, self.per_epoch)
        generator = torch.Generator().manual_seed(self.seed * 100003 + epoch)
        order = torch.randperm(self.count, generator=generator)
        flips = torch.rand(self.count, generator=generator) < 0.5
        turns = torch.randint(0, 4, (self.count,), generator=generator)
        chosen = order[within * self.batch_size : (within + 1) * self.batch_size]
        return chosen, flips[chosen], turns[chosen]


def contrastive_loss(model: nn.Module, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric cross-entropy over the batch (open_clip ``ClipLoss``)."""
    import open_clip

    image_features, text_features, logit_scale = model(images, tokens)[:3]
    return open_clip.ClipLoss()(image_features, text_features, logit_scale)


@dataclass
class PretrainResult:
    steps: int
    first_loss: float
    final_loss: float
    seconds: float


def pretrain_clip(
    cfg: PretrainConfig,
    name: str,
    config_dir: Path,
    data: Path,
    out: Path,
    progress: bool = True,
    stop_after_steps: int | None = None,
) -> PretrainResult:
    """Pretrain ``cfg.clip``'s architecture on the scenes in ``data``; write into ``out``.

    Resumes from ``out/checkpoint.pt`` when it exists and was written for the same recipe.
    ``stop_after_steps`` ends early (tests of resuming); ``model.pt`` is written only at the
    end.
    """
    from semivl.models.clip_source import build_clip, clip_source

    source = clip_source(cfg.clip, config_dir)
    clip_side = source.model_cfg["vision_cfg"]["image_size"]
    if cfg.image_size != clip_side:
        from semivl.config import ConfigError

        raise ConfigError(
            f"{pretrain_config_path(name, config_dir)}: pretrain.image_size is "
            f"{cfg.image_size}, but config/clip.yaml: {cfg.clip} takes "
            f"{clip_side}-pixel images; set image_size (and data.side) to "
            f"{clip_side}"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = build_clip(source)
    images, captions = load_caption_set(data, cfg.image_size, progress)
    tokens = tokenize_captions(captions, model.context_length)
    optimizer = build_optimizer(model, cfg)
    order = BatchOrder(len(captions), cfg.batch_size, cfg.seed)
    record = {"name": name, "config": asdict(cfg)}
    state_path, log_path = out / "checkpoint.pt", out / "log.csv"
    start, history, seconds = 0, [], 0.0
    if state_path.is_file():
        state = load_checkpoint(state_path)
        if state.get("record") == record:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start, history, seconds = state["step"], state["history"], state["seconds"]
            print(f"resuming {name} from {state_path} at step {start}")
        else:  # an interrupted pretraining of another recipe: of no use to this one
            print(f"{state_path}: written for another pretraining recipe; starting afresh")

    def save_state(step: int, elapsed: float) -> None:
        save_atomic(
            {
                "record": record,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "step": step,
                "history": history,
                "seconds": elapsed,
            },
            state_path,
        )

    model.train()
    tic = time.monotonic()
    end = cfg.steps if stop_after_steps is None else min(cfg.steps, stop_after_steps)
    bar = tqdm(
        range(start, end),
        desc=f"pretrain {name}",
        unit="step",
        disable=not progress,
        initial=start,
        total=cfg.steps,
    )
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(cfg, step)
        index, flip, turns = order.batch(step)
        if cfg.augment == "none":
            flip = torch.zeros_like(flip)
        loss = contrastive_loss(
            model,
            make_batch(images, index, flip, turns if cfg.augment == "dihedral" else None),
            tokens[index],
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # CLIP clamps the learned temperature at 100
            model.logit_scale.clamp_(0, math.log(100))
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            history.append(
                {
                    "step": step,
                    "loss": round(loss.item(), 5),
                    "lr": lr_at(cfg, step),
                    "logit_scale": round(model.logit_scale.exp().item(), 4),
                }
            )
            bar.set_postfix(loss=f"{loss.item():.3f}")
        done = step + 1
        if done % cfg.checkpoint_every == 0 and done < cfg.steps:
            save_state(done, seconds + time.monotonic() - tic)
    seconds += time.monotonic() - tic
    if stop_after_steps is not None and end < cfg.steps:
        save_state(end, seconds)
        return PretrainResult(end, history[0]["loss"], history[-1]["loss"], seconds)
    _write_log(log_path, history)
    result = PretrainResult(cfg.steps, history[0]["loss"], history[-1]["loss"], seconds)
    write_json_atomic(
        {
            **record,
            "num_scenes": len(captions),
            "first_loss": result.first_loss,
            "final_loss": result.final_loss,
            "seconds": round(seconds, 1),
        },
        out / "summary.json",
    )
    # open_clip's checkpoint format: the state_dict under "state_dict".
    save_atomic(
        {"state_dict": model.state_dict(), "pretrain": json.dumps(record)}, out / "model.pt"
    )
    state_path.unlink(missing_ok=True)
    return result


def _write_log(path: Path, history: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["step", "loss", "lr", "logit_scale"])
        writer.writeheader()
        writer.writerows(history)
    tmp.replace(path)
