"""Error types. Messages are instructions: what was expected, what came, how to fix it.

Every error a user can trigger derives from :class:`NasloopError`; the CLI turns those into one
line on stderr and exit code 2.
"""

from __future__ import annotations


class NasloopError(Exception):
    """Base class of every error caused by bad input (exit code 2 on the CLI)."""


class InvalidArchitectureError(NasloopError, ValueError):
    """An architecture string, parameter set or value does not belong to the space."""


class UnknownNameError(NasloopError, KeyError):
    """A space, benchmark, strategy, predictor, metric or dataset name is not known."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(NasloopError, ValueError):
    """A data file is missing, unreadable or malformed."""


class ConfigError(NasloopError, ValueError):
    """Options conflict or are out of range (e.g. a non-positive budget)."""


class NotFittedError(NasloopError, AttributeError):
    """``predict`` was called before ``fit`` (mirrors scikit-learn's error of the same name)."""


class ContractError(NasloopError, TypeError):
    """A plug-in (space, strategy, predictor) breaks its contract; the message says what to fix."""
