"""Model registry and builders.

The registry (and with it torch) loads on first use, so that the torch-free modules of this
package (``clip_config``) can be read by the workflow and the CLI without it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MODELS", "build_model", "load_backbone_weights", "register_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from semivl.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
