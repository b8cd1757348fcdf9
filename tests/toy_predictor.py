"""A tiny, fast, deterministic predictor for loop tests: bootstrap ridge regressions on one-hot ops.

Importable as the plug-in ``tests.toy_predictor:ToyRidge`` (the registry's ``module:Class`` form),
so subprocess tests can name it on the command line.
"""

from __future__ import annotations

import numpy as np

from nasloop.predictor import Predictor, validate_training_data


class ToyRidge(Predictor):
    """Mean and spread of ``n_members`` ridge fits on bootstrap resamples; one-hot op features."""

    graph_kind = "full"

    def __init__(self, *, preset: str = "fast", seed: int = 0, n_members: int = 3, alpha: float = 1.0,
                 warm_start: bool = True) -> None:
        self.preset = preset
        self.seed = seed
        self.n_members = n_members
        self.alpha = alpha
        self.warm_start = warm_start

    def _features(self, graphs) -> np.ndarray:
        width = len(graphs[0].vocab)
        x = np.zeros((len(graphs), max(g.n_nodes for g in graphs) * width + 1))
        for row, g in enumerate(graphs):
            for node, op in enumerate(g.ops):
                x[row, node * width + op] = 1.0
        x[:, -1] = 1.0
        return x

    def fit(self, graphs, y):
        y = validate_training_data(graphs, y)
        if not hasattr(self, "rng_"):
            self.rng_ = np.random.default_rng(self.seed)
        self.n_fits_ = getattr(self, "n_fits_", 0) + 1  # state that carries across fits, like warm start
        x = self._features(graphs)
        self.width_ = x.shape[1]
        self.coef_ = []
        for _ in range(self.n_members):
            idx = self.rng_.integers(len(y), size=len(y))
            a = x[idx].T @ x[idx] + self.alpha * np.eye(x.shape[1])
            self.coef_.append(np.linalg.solve(a, x[idx].T @ y[idx]))
        return self

    def predict_dist(self, graphs):
        self._check_fitted("coef_")
        x = self._features(graphs)
        preds = np.stack([x @ c for c in self.coef_])
        return preds.mean(axis=0), preds.std(axis=0)

    def predict(self, graphs):
        return self.predict_dist(graphs)[0]


class UnpicklableToy(ToyRidge):
    """ToyRidge holding a lambda: run directories get no predictor snapshot, resume refits instead."""

    def fit(self, graphs, y):
        self.hook_ = lambda: None
        return super().fit(graphs, y)
