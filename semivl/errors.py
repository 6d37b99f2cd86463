"""Exception types that the CLI catches, in a module that imports nothing heavy."""

from __future__ import annotations


class TrainingStopped(RuntimeError):
    """Training stopped early; ``last.pt`` holds the state to resume from."""
