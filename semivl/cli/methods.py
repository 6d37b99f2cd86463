"""``semivl methods``: the registered training methods and their table entries (no torch)."""

from __future__ import annotations

import argparse


def cmd_methods(args: argparse.Namespace) -> None:
    from semivl.methods import methods
    from semivl.methods.catalog import load_catalog

    catalog = load_catalog()
    registered = methods()
    print("Registered methods (train.method of a recipe):")
    for name, method in sorted(registered.items()):
        print(f"  {name:<12} {method.summary or '-'}")
        print(f"  {'':<12} streams: {', '.join(method.streams)}; declared in {method.origin}")
    print("Table entries (config/methods.yaml; a grid names these recipe folders):")
    for name, entry in catalog.items():
        released = ", released checkpoints" if entry.released else ""
        print(f"  {name:<27} {entry.group:<9} {entry.label}{released}")


def add_methods(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "methods",
        help="the registered training methods and the tables' "
        "method entries (docs/add-a-method.md)",
    )
    p.set_defaults(func=cmd_methods)
