"""Model registry and builders."""

from semivl.models.registry import MODELS, build_model, load_backbone_weights, register_model

__all__ = ["MODELS", "build_model", "load_backbone_weights", "register_model"]
