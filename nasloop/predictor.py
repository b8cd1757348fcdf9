"""The Predictor contract (scikit-learn style).

``__init__`` only stores arguments; ``fit(graphs, y)`` learns (and may warm-start from its previous
weights); ``predict(graphs)`` returns one score per graph. Learned state ends in ``_``. Models that
can estimate uncertainty (ensembles, forests) override ``predict_dist``.

Every predictor's constructor takes the keywords ``preset`` and ``seed``. The options a caller (the
search loop, ``nasloop predictor eval``) may add are listed in :data:`CALLER_OPTIONS`; a predictor
class declares the ones its constructor takes in ``caller_options``, and callers pass exactly those
(:func:`offer`). A class that declares nothing gets none of them.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from nasloop.errors import ConfigError, ContractError, NotFittedError
from nasloop.types import ArchGraph

# The options a caller may pass to a predictor's constructor besides ``preset`` and ``seed``, and what
# each means. A predictor declares those it takes in ``Predictor.caller_options``.
CALLER_OPTIONS: dict[str, str] = {
    "target": "the target kind, 'accuracy' or 'latency' (predictor eval passes the column's kind)",
    "warm_start": "a later fit may continue from the previous one (the search loop refits every round)",
    "max_fit_steps": "the caller's cap on optimiser steps per fit (the search loop's max_fit_steps)",
    "fit_budget": "optimiser steps per new result of a warm-started refit (the search loop's fit_budget)",
    "fit_schedule": "'standalone' (a fit on its own) or 'loop' (the short, capped refits of the search loop, "
                    "which passes it with max_fit_steps)",
    "callback": "callback(done, total) during fit (progress bars)",
    "fit_threads": "torch CPU threads of each fit (predictor eval --fit-threads)",
    "predict_threads": "torch CPU threads while scoring: a number, or 'auto' for the idle cores (predictor eval)",
}


class Predictor(ABC):
    """Base class of every performance predictor.

    Class attributes:
        graph_kind: which graph conversion of the space the model was designed for
            (NN-Former: ``"pruned"``, NAR-Former V2: ``"full"``); spaces fall back to their default.
        caller_options: the :data:`CALLER_OPTIONS` this class's constructor takes; callers pass
            these and no others (default: none).
        supports_snapshots: the class implements :meth:`snapshot_state` / :meth:`restore_state`, so
            a run directory keeps the fitted predictor and a resumed run loads it instead of refitting
            (default: no; such predictors are refitted on resume, with the same result).
    """

    graph_kind: ClassVar[str | None] = None
    caller_options: ClassVar[frozenset[str]] = frozenset()
    supports_snapshots: ClassVar[bool] = False

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

    # --- optional capability: snapshots (declared by supports_snapshots; default: absent) -----------
    def snapshot_state(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The fitted state as named tensors and JSON settings, for run snapshots; ``None`` (the
        default) when the predictor has none to offer: a resumed run then refits it."""
        return None

    def restore_state(self, tensors: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        """Load a :meth:`snapshot_state` into this unfitted predictor of the same parameters."""
        raise NotImplementedError(f"{type(self).__name__} keeps no snapshots")

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


def declared_options(factory: Any) -> frozenset[str]:
    """The caller options ``factory`` declares: a Predictor subclass's ``caller_options``; nothing for
    any other factory (a plug-in function or a class outside the Predictor hierarchy)."""
    if isinstance(factory, type) and issubclass(factory, Predictor):
        unknown = factory.caller_options - CALLER_OPTIONS.keys()
        if unknown:
            raise ContractError(f"{factory.__name__}.caller_options names {sorted(unknown)}, which no caller "
                                f"passes; known: {sorted(CALLER_OPTIONS)}")
        return factory.caller_options
    return frozenset()


def offer(factory: Any, offered: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``offered`` (caller options) that ``factory`` declares; what a caller passes it."""
    declared = declared_options(factory)
    return {name: value for name, value in offered.items() if name in declared}
