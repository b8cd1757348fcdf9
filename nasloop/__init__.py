"""nasloop: neural architecture search with a learned predictor in the loop.

Importing this package is cheap and never imports torch; models load when first used. The four
base classes a plug-in implements are exported here: :class:`SearchSpace`, :class:`Benchmark`,
:class:`Predictor` and :class:`Strategy`.

Example:
    >>> import nasloop
    >>> nasloop.__version__  # doctest: +SKIP
    '0.1.0'
"""

from __future__ import annotations

from typing import Any

from nasloop.benchmark import Benchmark
from nasloop.errors import (
    ConfigError,
    ContractError,
    DataError,
    InvalidArchitectureError,
    NasloopError,
    NotFittedError,
    UnknownNameError,
)
from nasloop.predictor import Predictor
from nasloop.space import SearchSpace
from nasloop.strategies.base import Strategy
from nasloop.types import ArchGraph, Evaluation, Record

__version__ = "0.1.0"

__all__ = [
    "ArchGraph",
    "Benchmark",
    "ConfigError",
    "ContractError",
    "DataError",
    "Evaluation",
    "InvalidArchitectureError",
    "NasloopError",
    "NotFittedError",
    "Predictor",
    "Record",
    "RunSpec",
    "SearchSpace",
    "Strategy",
    "UnknownNameError",
    "__version__",
    "resume_search",
    "run_search",
]


def __getattr__(name: str) -> Any:
    # The loop pulls in numpy, scipy and maybe optuna; load it on first use only.
    if name in ("run_search", "resume_search"):
        from nasloop import loop

        return getattr(loop, name)
    if name == "RunSpec":
        from nasloop.runspec import RunSpec

        return RunSpec
    raise AttributeError(f"module 'nasloop' has no attribute {name!r}")
