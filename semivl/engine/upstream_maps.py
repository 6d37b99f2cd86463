"""Upstream parameter names <-> this project's (docs/upstream.md, Checkpoint layouts): the
name rules.

:data:`MAPS` gives, per method, the rules from upstream's module names to this project's, with
the three tensors whose layout differs (the ViT's class token, position table and
projection), the keys upstream's evaluation drops (SemiVL's frozen guidance teacher
``clip_encoder.*``, DINOv2's ``mask_token``) and where a file keeps its weights. The same rules
run backwards (:func:`to_upstream`), which the tests use to fabricate upstream files from this
project's models. Reading and checking a file: :mod:`semivl.engine.upstream_checkpoint`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from semivl.config import ConfigError


class CheckpointMismatch(ConfigError):
    """An upstream checkpoint does not fit the recipe's model (the CLI prints one line)."""


# --------------------------------------------------------------------------------------------
# Name rules
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One name rule: ``upstream`` and ``here`` are key prefixes (ending in ``.``) or, with
    ``exact``, whole keys; ``{n}`` stands for a block index. ``layout`` names a tensor
    conversion of :data:`LAYOUTS`."""

    upstream: str
    here: str
    exact: bool = False
    layout: str | None = None

    def _pattern(self, template: str) -> re.Pattern:
        body = re.escape(template).replace(r"\{n\}", r"(?P<n>\d+)")
        return re.compile(f"^{body}$" if self.exact else f"^{body}")

    def apply(self, key: str, backwards: bool = False) -> str | None:
        """``key`` renamed to the other side, or ``None`` when the rule does not match."""
        source, target = (self.here, self.upstream) if backwards else (self.upstream, self.here)
        match = self._pattern(source).match(key)
        if match is None:
            return None
        head = target.replace("{n}", match.group("n")) if "{n}" in target else target
        return head + key[match.end() :]


def _cls_forward(key: str, t: torch.Tensor) -> torch.Tensor:
    if t.dim() != 3 or tuple(t.shape[:2]) != (1, 1):
        raise CheckpointMismatch(
            f"{key}: expected upstream's class token [1, 1, C], got {list(t.shape)}"
        )
    return t.reshape(-1)


def _pos_forward(key: str, t: torch.Tensor) -> torch.Tensor:
    if t.dim() != 3 or t.shape[0] != 1:
        raise CheckpointMismatch(
            f"{key}: expected upstream's position table [1, 1 + N, C], got {list(t.shape)}"
        )
    return t[0]


def _proj_forward(key: str, t: torch.Tensor) -> torch.Tensor:
    if t.dim() != 4 or tuple(t.shape[2:]) != (1, 1):
        raise CheckpointMismatch(
            f"{key}: expected the 1x1 conv [E, C, 1, 1] of upstream's "
            f"ViT projection, got {list(t.shape)}"
        )
    return t[:, :, 0, 0].t().contiguous()


def _proj_backward(_key: str, t: torch.Tensor) -> torch.Tensor:
    return t.t().contiguous()[:, :, None, None]


# name -> (upstream -> here, here -> upstream)
LAYOUTS: dict[str, tuple[Callable, Callable]] = {
    "cls_token": (_cls_forward, lambda _key, t: t.reshape(1, 1, -1)),
    "pos_embed": (_pos_forward, lambda _key, t: t.unsqueeze(0)),
    "proj": (_proj_forward, _proj_backward),
}


def _up_block(k: int) -> list[Rule]:
    """Upstream ``up{k}`` (ConvTranspose + Sequential(conv, GN, ReLU, conv, GN, ReLU))."""
    up, here = f"decode_head.up{k}.", f"decode_head.ups.{k - 1}."
    return [
        Rule(f"{up}up.", f"{here}up."),
        Rule(f"{up}conv.0.", f"{here}convs.0.0."),
        Rule(f"{up}conv.1.", f"{here}convs.0.1."),
        Rule(f"{up}conv.3.", f"{here}convs.1.0."),
        Rule(f"{up}conv.4.", f"{here}convs.1.1."),
    ]


SEMIVL_RULES: list[Rule] = [
    # MaskCLIP ViT (mmseg names after upstream's convert_clip_weights.py) -> MaskClipViT
    Rule("backbone.cls_token", "backbone.class_embedding", exact=True, layout="cls_token"),
    Rule("backbone.pos_embed", "backbone.positional_embedding", exact=True, layout="pos_embed"),
    Rule("backbone.proj.weight", "backbone.proj", exact=True, layout="proj"),
    Rule("backbone.patch_embed.projection.", "backbone.conv1."),
    Rule("backbone.ln0.", "backbone.ln_pre."),
    Rule("backbone.layers.{n}.ln1.", "backbone.resblocks.{n}.ln_1."),
    Rule("backbone.layers.{n}.ln2.", "backbone.resblocks.{n}.ln_2."),
    Rule("backbone.layers.{n}.attn.attn.", "backbone.resblocks.{n}.attn."),
    Rule("backbone.layers.{n}.ffn.layers.0.0.", "backbone.resblocks.{n}.mlp.c_fc."),
    Rule("backbone.layers.{n}.ffn.layers.1.", "backbone.resblocks.{n}.mlp.c_proj."),
    Rule("backbone.ln1.", "backbone.ln_post."),
    # Language-guided decoder
    Rule("decode_head.conv1.", "decode_head.conv1."),
    Rule("decode_head.aspp.aspp_convs.4.gap.1.", "decode_head.aspp.pool.0."),
    Rule("decode_head.aspp.aspp_convs.4.gap.2.", "decode_head.aspp.pool.1."),
    Rule("decode_head.aspp.aspp_convs.{n}.", "decode_head.aspp.branches.{n}."),
    Rule("decode_head.aspp.project.", "decode_head.aspp.project."),
    Rule("decode_head.layers.{n}.transformer.ln1.", "decode_head.class_layers.{n}.layer.norm1."),
    Rule("decode_head.layers.{n}.transformer.ln2.", "decode_head.class_layers.{n}.layer.norm2."),
    Rule(
        "decode_head.layers.{n}.transformer.attn.attn.",
        "decode_head.class_layers.{n}.layer.self_attn.",
    ),
    Rule(
        "decode_head.layers.{n}.transformer.ffn.layers.0.0.",
        "decode_head.class_layers.{n}.layer.linear1.",
    ),
    Rule(
        "decode_head.layers.{n}.transformer.ffn.layers.1.",
        "decode_head.class_layers.{n}.layer.linear2.",
    ),
    Rule("decode_head.text_proj.", "decode_head.text_proj."),
    Rule("decode_head.skip_proj.", "decode_head.skip_projs."),
    *_up_block(1),
    *_up_block(2),
    Rule("decode_head.head.", "decode_head.cls."),
    # Cityscapes' ResNetV1c stem + layer1 (open-mmlab names on both sides)
    Rule("conv_encoder.", "conv_encoder."),
]

UNIMATCH_RULES: list[Rule] = [
    Rule("backbone.", "backbone."),  # deep-stem ResNet / Xception-65: the same names
    Rule("head.b4.gap.1.", "decoder.aspp.branches.4.proj.0."),
    Rule("head.b4.gap.2.", "decoder.aspp.branches.4.proj.1."),
    Rule("head.b{n}.", "decoder.aspp.branches.{n}."),
    Rule("head.project.", "decoder.aspp.project."),
    Rule("reduce.", "decoder.reduce."),
    Rule("fuse.0.", "decoder.fuse.0.0."),
    Rule("fuse.1.", "decoder.fuse.0.1."),
    Rule("fuse.3.", "decoder.fuse.1.0."),
    Rule("fuse.4.", "decoder.fuse.1.1."),
    Rule("classifier.", "decoder.classifier."),
]


def _v2_head_rules() -> list[Rule]:
    """UniMatch V2's DPT head (``model/semseg/dpt.py``): ``scratch.layer{k}_rn`` and
    ``scratch.refinenet{k}`` (k = 1..4, 1 the shallowest) are list entries k - 1 here."""
    rules = [
        Rule("head.projects.", "head.projects."),
        Rule("head.resize_layers.", "head.resize."),
        Rule("head.scratch.output_conv.", "head.output."),
    ]
    for k in range(1, 5):
        up, here = f"head.scratch.refinenet{k}.", f"head.fusion.{k - 1}."
        rules += [
            Rule(f"head.scratch.layer{k}_rn.", f"head.scratch.{k - 1}."),
            Rule(f"{up}resConfUnit1.", f"{here}res1."),
            Rule(f"{up}resConfUnit2.", f"{here}res2."),
            Rule(f"{up}out_conv.", f"{here}out_conv."),
        ]
    return rules


UNIMATCH_V2_RULES: list[Rule] = [
    # DINOv2 (model/backbone/dinov2.py, block_chunks=0): timm's DINOv2 ViT has the same names
    Rule("backbone.", "backbone."),
    *_v2_head_rules(),
]


# Where a file keeps its weights, first found first: upstream's "model", SemiVL's evaluation's
# "ema_model", a plain "state_dict".
DEFAULT_WEIGHTS_KEYS = ("model", "ema_model", "state_dict")


@dataclass(frozen=True)
class MethodMap:
    """How one upstream codebase's files map to one of this project's models."""

    label: str
    model_name: str  # the registry name of this project's model (recipe model.name)
    rules: list[Rule]
    # Upstream keys containing these are dropped, as upstream's evaluation drops them.
    drop_containing: tuple[str, ...] = ()
    # This project's tensors that upstream never saves: kept from the model as built here.
    from_build: tuple[str, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)
    # Where the weights sit in the file, first found first (``--weights-key`` overrides).
    weights_keys: tuple[str, ...] = DEFAULT_WEIGHTS_KEYS
    # The last layer, whose rows are the classes (for the wrong-dataset hint).
    classifier: str | None = None


MAPS: dict[str, MethodMap] = {
    "semivl": MethodMap(
        "SemiVL",
        "semivl",
        SEMIVL_RULES,
        drop_containing=("clip_encoder",),
        from_build=("text_embeddings", "concept_class"),
        notes={
            "clip_encoder": "the frozen CLIP guidance teacher (upstream's eval.py deletes it too)",
            "text_embeddings": "class text embeddings, built from files upstream and "
            "here, never saved upstream",
        },
    ),
    "unimatch": MethodMap(
        "UniMatch DeepLabV3+",
        "deeplabv3plus",
        UNIMATCH_RULES,
        classifier="decoder.classifier.weight",
    ),
    # unimatch_v2.py saves {'model', 'model_ema', ...}; the EMA teacher is what V2 reports
    # (and what this project's model.pt holds), so it is read first.
    "unimatch_v2": MethodMap(
        "UniMatch V2 DINOv2 + DPT",
        "unimatch_v2",
        UNIMATCH_V2_RULES,
        drop_containing=("mask_token",),
        notes={
            "backbone": "DINOv2's mask token (masked-image pretraining only; unused in "
            "segmentation, absent from timm's ViT)"
        },
        weights_keys=("model_ema", "model", "state_dict"),
        classifier="head.output.2.weight",
    ),
}


def method_map(method: str, model_name: str) -> MethodMap:
    """The map of a recipe's algorithm (``train.method``), checked against its model."""
    if method not in MAPS:
        raise ConfigError(
            f"import-checkpoint maps upstream files of {sorted(MAPS)}, not of {method!r}"
        )
    found = MAPS[method]
    if model_name != found.model_name:
        raise ConfigError(
            f"the {method} recipe builds model {model_name!r}, but upstream "
            f"{found.label} files map to {found.model_name!r} only"
        )
    return found


# --------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------


@dataclass
class Converted:
    """An upstream state_dict in this project's names, with what did not map."""

    state: dict[str, torch.Tensor]
    origin: dict[str, str]  # here key -> upstream key
    dropped: list[str]
    unmapped: list[str]  # upstream keys no rule renames


def _rename(key: str, rules: list[Rule], backwards: bool) -> tuple[str, Rule] | None:
    for rule in rules:
        renamed = rule.apply(key, backwards)
        if renamed is not None:
            return renamed, rule
    return None


def to_project(state: dict[str, torch.Tensor], method: str) -> Converted:
    """Rename (and re-lay) an upstream state_dict, without ``module.``, to this project's."""
    mapping = MAPS[method]
    out, origin, dropped, unmapped = {}, {}, [], []
    for key, tensor in state.items():
        if any(part in key for part in mapping.drop_containing):
            dropped.append(key)
            continue
        found = _rename(key, mapping.rules, backwards=False)
        if found is None:
            unmapped.append(key)
            continue
        here, rule = found
        if rule.layout is not None:
            tensor = LAYOUTS[rule.layout][0](key, tensor)
        out[here], origin[here] = tensor, key
    return Converted(out, origin, sorted(dropped), sorted(unmapped))


def to_upstream(state: dict[str, torch.Tensor], method: str) -> dict[str, torch.Tensor]:
    """This project's state_dict in upstream's names and layouts (no ``module.`` prefix);
    tensors upstream never saves (text embeddings) are left out. Raises on a key no rule
    covers."""
    mapping = MAPS[method]
    out = {}
    for key, tensor in state.items():
        if key in mapping.from_build:
            continue
        found = _rename(key, mapping.rules, backwards=True)
        if found is None:
            raise KeyError(f"{key}: no upstream name in the {method} map")
        upstream, rule = found
        out[upstream] = LAYOUTS[rule.layout][1](key, tensor) if rule.layout is not None else tensor
    return out


def upstream_file(
    model_state: dict[str, torch.Tensor],
    method: str,
    *,
    epoch: int = 79,
    extra: dict[str, torch.Tensor] | None = None,
    weights_key: str = "model",
) -> dict:
    """What an upstream trainer saves for ``model_state``: the DDP (``module.``) state_dict
    under ``weights_key`` with ``optimizer`` and ``epoch`` (``extra``: further upstream keys,
    e.g. ``clip_encoder.*``)."""
    weights = {**to_upstream(model_state, method), **(extra or {})}
    return {
        weights_key: {f"module.{k}": v for k, v in weights.items()},
        "optimizer": {},
        "epoch": epoch,
    }
