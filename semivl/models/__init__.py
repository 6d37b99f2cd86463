"""Model registry and builders."""

from semivl.models.registry import MODELS, build_model, register_model

__all__ = ["MODELS", "build_model", "register_model"]
