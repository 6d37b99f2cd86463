"""The method registry: every training algorithm declares itself once, as a :class:`Method`.

A method is found by name (``train.method`` of a recipe). Declarations are torch-free, so that
grids and recipes are validated without importing torch; the declaration names its step, loss
hooks and state as ``"module:attribute"`` strings, imported only when a run trains.

Where methods come from: the entry-point group ``semivl.methods`` of every installed
distribution and of this repository's ``pyproject.toml`` (its own methods and the FixMatch
plug-in; :mod:`semivl.entry_points`), so a method installed from another package
(``pip install -e my_method/``) is found without editing this repository.
Tests and notebooks may also call :func:`register_method` directly.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from semivl.entry_points import group_entries
from semivl.errors import ConfigError

ENTRY_POINT_GROUP = "semivl.methods"

# The kinds of data stream a method may read, each one loader over the run's split files:
#   labeled    (image, mask) from the labelled split, augmented for training;
#   unlabeled  (weak view, strong view 1, strong view 2, ignore mask, CutMix box 1, box 2)
#              from the unlabelled split, the ignore mask 255 on padding;
#   mix        the same from the unlabelled split, drawn independently: the CutMix partner.
# An epoch is one pass over the unlabelled split when a method reads it, else over the labelled.
STREAM_KINDS = ("labeled", "unlabeled", "mix")


@dataclass(frozen=True)
class Method:
    """One training algorithm, as the trainer, ``semivl bench`` and ``semivl plan`` use it.

    Attributes:
        name: the ``train.method`` value of its recipes.
        step: ``"module:function"``; called as ``step(model, batch, criterion, cfg, device,
            iteration, total_iters, hooks, state)`` with ``batch`` one tuple entry per stream
            (in ``streams`` order); returns ``(loss, logs)``, the loss a scalar tensor and
            ``logs`` a dict with exactly the keys ``log_fields``.
        streams: the data streams it reads (:data:`STREAM_KINDS`), ``labeled`` first.
        log_fields: the values its step returns for ``log.csv`` and TensorBoard.
        args: a frozen dataclass of its own recipe arguments (``train.args``), validated like
            every recipe section; ``None``: it has none (and recipes may not give any).
        loss_hooks: ``"module:function"`` building extra loss terms, called as
            ``build(recipe, model, context)`` and returning a list of hooks; ``None``: none.
        sections: optional recipe sections it reads besides the common ones (``guidance``).
        train_keys: shared ``train`` keys of :data:`semivl.config.OPTIONAL_TRAIN_KEYS` that
            it reads (``ema_momentum``); only those appear in its config dump.
        state: ``"module:Class"`` of state kept across steps (a teacher), built as
            ``Class(model, cfg)``; see :class:`MethodStateProtocol` for what it provides.
        tf32: what its upstream ran on Ampere+ GPUs: (TF32 matmuls, TF32 cuDNN convolutions,
            where that comes from), the ``train.speed.tf32: upstream`` setting.
        summary: one line for ``semivl methods`` and error messages.
    """

    name: str
    step: str
    streams: tuple[str, ...]
    log_fields: tuple[str, ...] = ()
    args: type | None = None
    loss_hooks: str | None = None
    sections: tuple[str, ...] = ()
    train_keys: tuple[str, ...] = ()
    state: str | None = None
    tf32: tuple[bool, bool, str] = (
        False,
        True,
        "upstream: PyTorch >= 1.12 defaults: matmul fp32, cuDNN TF32",
    )
    summary: str = ""
    origin: str = field(default="", compare=False)  # the entry point or caller that added it

    def __post_init__(self) -> None:
        where = f"method {self.name!r}"
        if not self.streams or self.streams[0] != "labeled":
            raise ValueError(f"{where}: streams must start with 'labeled', got {self.streams}")
        unknown = [s for s in self.streams if s not in STREAM_KINDS]
        if unknown or len(set(self.streams)) != len(self.streams):
            raise ValueError(
                f"{where}: streams must be distinct entries of {STREAM_KINDS}, got {self.streams}"
            )
        for attr in ("step", "loss_hooks", "state"):
            value = getattr(self, attr)
            if value is not None and ":" not in value:
                raise ValueError(f"{where}: {attr} must be 'module:attribute', got {value!r}")
        if self.args is not None and not dataclasses.is_dataclass(self.args):
            raise ValueError(f"{where}: args must be a dataclass, got {self.args!r}")

    @property
    def reads_unlabeled(self) -> bool:
        """Whether an epoch is a pass over the unlabelled split (semi-supervised)."""
        return "unlabeled" in self.streams

    def load(self, attr: str) -> Any:
        """The object named by ``step``, ``loss_hooks`` or ``state`` (imported now)."""
        return resolve(getattr(self, attr), f"method {self.name!r} {attr}")


class MethodStateProtocol:
    """What a method's ``state`` class provides (documentation; duck-typed).

    ``__init__(model, cfg)``: built once, after the model's initial weights are loaded.
    ``after_step(model, iteration)``: called after every optimiser step with the plain model.
    ``state_dict()`` / ``load_state_dict(d)``: saved in and restored from ``last.pt``.
    ``reported``: the module the run reports (validated, ``best.pt``, ``model.pt``) instead
    of the trained one; the trained one is then validated too and reported under ``*_student``
    keys and ``model_student.pt``. ``None``: the trained model is reported.
    """


_METHODS: dict[str, Method] = {}
_loaded = False


def resolve(dotted: str, what: str = "object") -> Any:
    """Import ``"module:attribute"``; a failure names ``what`` and the string."""
    module_name, _, attr = dotted.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"{what}: cannot import {dotted!r}: {err}") from err
    return obj


def register_method(method: Method, origin: str = "register_method") -> Method:
    """Add ``method`` to the registry; a second method of the same name is an error."""
    if not isinstance(method, Method):
        raise TypeError(f"{origin}: expected a semivl.methods.Method, got {method!r}")
    known = _METHODS.get(method.name)
    if known is not None and known != method:
        raise ConfigError(
            f"method {method.name!r} is registered twice: by {known.origin} and "
            f"by {origin}; uninstall one of them"
        )
    _METHODS[method.name] = dataclasses.replace(method, origin=origin)
    return method


def _load_entry_points() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name, value, origin in group_entries(ENTRY_POINT_GROUP):
        method = resolve(value, origin)
        if not isinstance(method, Method) or method.name != name:
            raise ConfigError(
                f"{origin} = {value}: expected a semivl.methods.Method named "
                f"{name!r}, got {method!r}"
            )
        register_method(method, origin)


def methods() -> dict[str, Method]:
    """Every registered method by name (entry points loaded on first call)."""
    _load_entry_points()
    return dict(_METHODS)


def method_names() -> list[str]:
    """The registered method names, sorted."""
    return sorted(methods())


def get_method(name: str) -> Method:
    """The method ``name``; an unknown name lists the known ones and says how to add one."""
    found = methods().get(name)
    if found is None:
        raise ConfigError(
            f"train.method: expected one of {method_names()}, got {name!r} "
            f"(methods register in the entry-point group {ENTRY_POINT_GROUP}; "
            f"README, 'Add your own method')"
        )
    return found


def build_args(method: Method, data: Any, path: str, build: Callable[[type, Any, str], Any]) -> Any:
    """The method's typed ``train.args`` from ``data`` (``None`` when it declares none);
    ``build`` is the typed-YAML builder, so errors name the key as everywhere else."""
    if method.args is None:
        if data:
            raise ConfigError(f"{path}: method {method.name!r} takes no arguments; remove it")
        return None
    return build(method.args, data or {}, path)
