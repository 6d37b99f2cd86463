"""Exception types that the CLI catches, in a module that imports nothing heavy."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the file or key and what to do."""


class TrainingStopped(RuntimeError):
    """Training stopped early; ``last.pt`` holds the state to resume from."""
