"""Training methods: a registry (:mod:`semivl.methods.registry`) and this package's methods.

Each method is one torch-free declaration (:class:`Method`) in a module of its own here; its
step, loss hooks and state are named by import path and loaded only to train. Installed
packages add methods through the entry-point group ``semivl.methods`` (docs/add-a-method.md;
``baselines/fixmatch`` is the worked example).
"""

from semivl.methods.registry import (
    ENTRY_POINT_GROUP,
    STREAM_KINDS,
    Method,
    build_args,
    get_method,
    method_names,
    methods,
    register_method,
    resolve,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "STREAM_KINDS",
    "Method",
    "build_args",
    "get_method",
    "method_names",
    "methods",
    "register_method",
    "resolve",
]
