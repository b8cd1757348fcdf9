"""The Predictor contract (scikit-learn style).

``__init__`` only stores arguments; ``fit(graphs, y)`` learns (and may warm-start from its previous
weights); ``predict(graphs)`` returns one score per graph. Learned state ends in ``_``. Models that
can estimate uncertainty (ensembles, forests) override ``predict_dist``.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from nasloop.errors import ConfigError, NotFittedError
from nasloop.types import ArchGraph


class Predictor(ABC):
    """Base class of every performance predictor.

    Class attributes:
        graph_kind: which graph conversion of the space the model was designed for
            (NN-Former: ``"pruned"``, NAR-Former V2: ``"full"``); spaces fall back to their default.
    """

    graph_kind: ClassVar[str | None] = None

    @abstractmethod
    def fit(self, graphs: Sequence[ArchGraph], y: Sequence[float]) -> Predictor:
        """Learn from graphs and their true target values; returns ``self``."""

    @abstractmethod
    def predict(self, graphs: Sequence[ArchGraph]) -> np.ndarray:
        """One predicted value per graph, shape (n,)."""

    def predict_dist(self, graphs: Sequence[ArchGraph]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted mean and standard deviation; the default has no uncertainty (std 0)."""
        mean = self.predict(graphs)
        return mean, np.zeros_like(mean)

    # --- scikit-learn-style parameter access -------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self" and sig.parameters[p].kind != inspect.Parameter.VAR_KEYWORD]

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Predictor:
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise ConfigError(f"{type(self).__name__} has no parameter {key!r}; valid: {sorted(valid)}")
            setattr(self, key, value)
        return self

    def _check_fitted(self, attribute: str) -> None:
        if not hasattr(self, attribute):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(graphs, y) first")


def validate_training_data(graphs: Sequence[ArchGraph], y: Sequence[float]) -> np.ndarray:
    """Common input checks for ``fit``; returns ``y`` as a float64 array."""
    y_arr = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(graphs) != len(y_arr):
        raise ConfigError(f"fit got {len(graphs)} graphs but {len(y_arr)} targets; they must match")
    if len(graphs) < 2:
        raise ConfigError(f"fit needs at least 2 training graphs, got {len(graphs)}")
    if not np.all(np.isfinite(y_arr)):
        raise ConfigError("fit targets contain NaN or infinite values; drop those architectures first")
    return y_arr
