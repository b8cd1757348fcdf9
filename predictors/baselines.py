"""Baselines that show what the transformers buy: an MLP and a random forest on one-hot cell
encodings, and a GIN in plain torch.

The cell encoding of a graph padded to ``N`` nodes over ``V`` op types is the flattened one-hot op
matrix (N·V) followed by the flattened adjacency (N·N). On NAS-Bench-201's ``"full"`` graphs (8 fixed
nodes) that is exactly the one-hot encoding of the six edge ops plus a constant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasloop.errors import ConfigError
from nasloop.predictor import validate_training_data
from nasloop.types import ArchGraph
from predictors.base import PresetPredictor
from predictors.graphs import GraphBatch
from predictors.training import Dropout, TorchPredictor, TrainConfig

MIN_NODES = 8  # the flat encodings leave room for at least this many nodes


def _init_linears(module: nn.Module, generator: torch.Generator | None) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu", generator=generator)
            nn.init.zeros_(m.bias)


def flat_encoding(batch: GraphBatch, n_ops: int, n_nodes: int) -> torch.Tensor:
    """One-hot ops and adjacency of a padded batch, flattened to (B, n_nodes·n_ops + n_nodes²)."""
    n = batch.ops.shape[1]
    onehot = F.one_hot(batch.ops, n_ops).float() * batch.mask[..., None]  # (B, n, V)
    onehot = F.pad(onehot, (0, 0, 0, n_nodes - n))  # (B, N, V)
    adj = F.pad(batch.adj, (0, n_nodes - n, 0, n_nodes - n))  # (B, N, N)
    return torch.cat([onehot.flatten(1), adj.flatten(1)], dim=1)


# --- MLP ------------------------------------------------------------------------------------------
@dataclass
class MLPConfig:
    hidden: int = 128  # width of each hidden layer
    n_layers: int = 3  # hidden layers
    dropout: float = 0.0
    positive_output: bool = False  # softplus output (latency)
    n_ops: int = 0  # set from the data
    n_nodes: int = 0  # set from the data


class MLP(nn.Module):
    def __init__(self, cfg: MLPConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        width = cfg.n_nodes * cfg.n_ops + cfg.n_nodes**2
        for _ in range(cfg.n_layers):
            layers += [nn.Linear(width, cfg.hidden), nn.ReLU(), Dropout(cfg.dropout)]
            width = cfg.hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        _init_linears(self, generator)

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        out = self.net(flat_encoding(batch, self.cfg.n_ops, self.cfg.n_nodes)).squeeze(-1)  # (B,)
        return F.softplus(out + 1.0) if self.cfg.positive_output else out


def _baseline_train(preset: str, latency: bool) -> TrainConfig:
    epochs = 1000 if preset == "paper" else 100
    return TrainConfig(epochs=epochs, min_steps=300, max_steps=None if preset == "paper" else 2000, batch_size=32,
                       lr=1e-3, ema_decay=None, lambda_rank=0.2, lambda_cons=0.0, warmup_frac=0.05,
                       n_threads=None if preset == "paper" else 1)


class MLPPredictor(TorchPredictor):
    """An MLP on the flat one-hot cell encoding (graph kind ``"full"``). Same training loop,
    losses and options as the transformers (see :class:`~predictors.training.TorchPredictor`)."""

    ModelConfig = MLPConfig
    graph_kind = "full"

    def _preset(self, preset: str, target: str) -> tuple[MLPConfig, TrainConfig]:
        return MLPConfig(positive_output=target == "latency"), _baseline_train(preset, target == "latency")

    def _capacity(self, cfg: Any, n_ops: int, max_nodes: int) -> tuple[int, int]:
        return n_ops, max(MIN_NODES, max_nodes)

    def _build_model(self, cfg: MLPConfig, n_ops: int, max_nodes: int, generator: torch.Generator) -> MLP:
        cfg.n_ops, cfg.n_nodes = n_ops, max_nodes
        return MLP(cfg, generator)


# --- GIN --------------------------------------------------------------------------------------------
@dataclass
class GINConfig:
    hidden: int = 64  # node state width
    n_layers: int = 3  # GIN layers
    dropout: float = 0.0
    positive_output: bool = False  # softplus output (latency)
    n_ops: int = 0  # set from the data


class GINLayer(nn.Module):
    """h_i ← MLP((1 + ε) h_i + Σ_{j ∈ N(i)} h_j), neighbours in both edge directions."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.eps = nn.Parameter(torch.zeros(1))
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
        self.norm = nn.LayerNorm(width)

    def forward(self, h: torch.Tensor, adj: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        agg = (1 + self.eps) * h + adj @ h  # (B, N, H)
        return F.relu(self.norm(self.mlp(agg))) * mask[..., None]


class GIN(nn.Module):
    def __init__(self, cfg: GINConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Linear(cfg.n_ops, cfg.hidden)
        self.layers = nn.ModuleList(GINLayer(cfg.hidden) for _ in range(cfg.n_layers))
        self.head = nn.Sequential(nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(), Dropout(cfg.dropout),
                                  nn.Linear(cfg.hidden, 1))
        _init_linears(self, generator)

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        mask = batch.mask
        h = self.embed(F.one_hot(batch.ops, self.cfg.n_ops).float()) * mask[..., None]  # (B, N, H)
        adj = ((batch.adj + batch.adj.transpose(1, 2)) > 0).to(h.dtype)  # (B, N, N)
        for layer in self.layers:
            h = layer(h, adj, mask)
        out = self.head(h.sum(dim=1)).squeeze(-1)  # (B,) sum readout over real nodes
        return F.softplus(out + 1.0) if self.cfg.positive_output else out


class GINPredictor(TorchPredictor):
    """A graph isomorphism network (sum aggregation, sum readout) in plain torch (graph kind ``"full"``)."""

    ModelConfig = GINConfig
    graph_kind = "full"

    def _preset(self, preset: str, target: str) -> tuple[GINConfig, TrainConfig]:
        return GINConfig(positive_output=target == "latency"), _baseline_train(preset, target == "latency")

    def _capacity(self, cfg: Any, n_ops: int, max_nodes: int) -> tuple[int, int]:
        return n_ops, 2**31  # message passing takes graphs of any size

    def _build_model(self, cfg: GINConfig, n_ops: int, max_nodes: int, generator: torch.Generator) -> GIN:
        cfg.n_ops = n_ops
        return GIN(cfg, generator)


# --- random forest -----------------------------------------------------------------------------------
class RandomForestPredictor(PresetPredictor):
    """scikit-learn's random forest on the flat one-hot cell encoding (graph kind ``"full"``).

    ``predict_dist`` gives the mean and spread of the trees. For latency targets the forest fits
    ``log(y)`` (relative errors) and predicts ``exp`` of the tree mean.

    Args:
        preset: ``"fast"`` (200 trees) or ``"paper"`` (1000 trees).
        seed: the forest's ``random_state``.
        target: ``"accuracy"`` or ``"latency"``.
        n_estimators: trees (None: the preset's).
        warm_start: accepted for interface parity; a forest always refits (it takes about a second).
        n_jobs: scikit-learn's parallelism (1 keeps the 2-core machine free for other work).
        config: other options of scikit-learn's ``RandomForestRegressor``.
        callback: called once as ``callback(1, 1)`` when a fit is done.

    Example:
        >>> from nasloop.registry import make_predictor
        >>> rf = make_predictor("rf", seed=0)
    """

    graph_kind = "full"

    def __init__(self, *, preset: str = "fast", seed: int = 0, target: str = "accuracy",
                 n_estimators: int | None = None, warm_start: bool = False, n_jobs: int = 1,
                 callback: Callable[[int, int], None] | None = None, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(preset=preset, seed=seed, target=target, warm_start=warm_start, config=config,
                         callback=callback)
        self.n_estimators = n_estimators
        self.n_jobs = n_jobs

    def _features(self, graphs: Sequence[ArchGraph]) -> np.ndarray:
        return flat_encoding(self._encoder().encode(graphs), *self.capacity_).numpy()

    def validate(self) -> None:
        """Check preset, target, tree count and forest options now (``ConfigError``), not at the first fit."""
        from sklearn.ensemble import RandomForestRegressor

        self._check_preset_and_target()
        n = self.n_estimators
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ConfigError(f"n_estimators must be a positive integer, got {n!r}")
        unknown = sorted(set(self.config or {}) - set(RandomForestRegressor().get_params()))
        if unknown:
            raise ConfigError(f"RandomForestPredictor config has unknown keys {unknown}")

    def fit(self, graphs: Sequence[ArchGraph], y: Sequence[float]) -> RandomForestPredictor:
        from sklearn.ensemble import RandomForestRegressor

        y_arr = validate_training_data(graphs, y)
        self.validate()
        if self.target == "latency" and np.any(y_arr <= 0):
            raise ConfigError("target='latency' needs positive values; got values <= 0")
        graphs = list(graphs)
        n_ops, max_nodes = self._needs(graphs)
        self.capacity_ = (n_ops, max(MIN_NODES, max_nodes))
        n_trees = self.n_estimators or (1000 if self.preset == "paper" else 200)
        options = {"n_estimators": n_trees, "random_state": int(self.seed), "n_jobs": self.n_jobs,
                   **dict(self.config or {})}
        try:
            forest = RandomForestRegressor(**options)
        except TypeError as exc:
            raise ConfigError(f"RandomForestPredictor config: {exc}") from None
        target = np.log(y_arr) if self.target == "latency" else y_arr
        self.forest_ = forest.fit(self._features(graphs), target)
        if self.callback is not None:
            self.callback(1, 1)
        return self

    def predict_dist(self, graphs: Sequence[ArchGraph]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over the trees (in target units)."""
        self._check_fitted("forest_")
        graphs = list(graphs)
        if not graphs:
            return np.zeros(0), np.zeros(0)
        self._check_capacity(graphs)
        x = self._features(graphs)
        per_tree = np.stack([tree.predict(x) for tree in self.forest_.estimators_])  # (T, n)
        if self.target == "latency":
            per_tree = np.exp(per_tree)
            return np.exp(np.log(per_tree).mean(axis=0)), per_tree.std(axis=0)
        return per_tree.mean(axis=0), per_tree.std(axis=0)

    def predict(self, graphs: Sequence[ArchGraph]) -> np.ndarray:
        self._check_fitted("forest_")
        graphs = list(graphs)
        if not graphs:
            return np.zeros(0)
        self._check_capacity(graphs)
        pred = self.forest_.predict(self._features(graphs))
        return np.exp(pred) if self.target == "latency" else pred
