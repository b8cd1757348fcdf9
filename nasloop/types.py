"""Immutable values that flow between the parts: graphs, evaluations and history records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ArchGraph:
    """A node-op DAG: the only view of an architecture that predictors see.

    Attributes:
        ops: op id of every node, in topological order; ids index ``vocab``.
        edges: directed edges ``(i, j)`` meaning node ``i`` feeds node ``j`` (``i < j`` is not
            required, but graphs must be acyclic).
        vocab: op names, ``vocab[k]`` is the name of op id ``k`` (shared by all graphs of a space).
        features: optional extra per-node features (one tuple of floats per node).

    Example:
        >>> g = ArchGraph(ops=(0, 1, 2), edges=((0, 1), (1, 2)), vocab=("input", "conv", "output"))
        >>> g.adjacency().sum()
        2
    """

    ops: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]
    vocab: tuple[str, ...] = ()
    features: tuple[tuple[float, ...], ...] | None = None

    @property
    def n_nodes(self) -> int:
        return len(self.ops)

    def adjacency(self) -> np.ndarray:
        """Dense 0/1 adjacency ``A`` with ``A[i, j] = 1`` for an edge i→j, shape (n, n)."""
        a = np.zeros((self.n_nodes, self.n_nodes), dtype=np.float32)
        for i, j in self.edges:
            a[i, j] = 1.0
        return a

    def op_names(self) -> tuple[str, ...]:
        return tuple(self.vocab[o] for o in self.ops) if self.vocab else tuple(map(str, self.ops))


def _frozen_metrics(metrics: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType({str(k): float(v) for k, v in sorted(metrics.items())})


@dataclass(frozen=True)
class Evaluation:
    """What a benchmark answers for one architecture.

    Attributes:
        metrics: metric name → value (e.g. ``{"val_acc": 91.2, "test_acc": 93.9}``).
        cost: simulated or real cost of obtaining it, in seconds (0 when unknown).
    """

    metrics: Mapping[str, float]
    cost: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", _frozen_metrics(self.metrics))
        object.__setattr__(self, "cost", float(self.cost))


@dataclass(frozen=True)
class Record:
    """One true query in a run's history (one line of ``history.jsonl``).

    Attributes:
        number: 1-based count of unique true queries.
        round: search round in which the architecture was chosen (0 = warm-up).
        arch: the space's canonical string of the architecture.
        metrics: the benchmark's answer.
        cost: cost of this query; ``cum_cost`` is the running total.
        predicted_mean / predicted_std: the predictor's score when it chose this arch, if any.
        time: wall-clock seconds since the run started when the result arrived.
    """

    number: int
    round: int
    arch: str
    metrics: Mapping[str, float]
    cost: float = 0.0
    cum_cost: float = 0.0
    predicted_mean: float | None = None
    predicted_std: float | None = None
    time: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", _frozen_metrics(self.metrics))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "round": self.round,
            "arch": self.arch,
            "metrics": dict(self.metrics),
            "cost": self.cost,
            "cum_cost": self.cum_cost,
            "predicted_mean": self.predicted_mean,
            "predicted_std": self.predicted_std,
            "time": self.time,
            **({"extra": dict(self.extra)} if self.extra else {}),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Record:
        return cls(
            number=int(d["number"]),
            round=int(d["round"]),
            arch=str(d["arch"]),
            metrics=d["metrics"],
            cost=float(d.get("cost", 0.0)),
            cum_cost=float(d.get("cum_cost", 0.0)),
            predicted_mean=d.get("predicted_mean"),
            predicted_std=d.get("predicted_std"),
            time=float(d.get("time", 0.0)),
            extra=d.get("extra", {}),
        )
