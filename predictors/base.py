"""What the built-in predictors share (the torch models and the forest): their common options,
the preset and target checks, the capacity a fitted model can represent, and the graph encoder cache.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from nasloop.errors import ConfigError
from nasloop.predictor import Predictor
from nasloop.types import ArchGraph
from predictors.graphs import GraphEncoder, n_op_types

TARGETS = ("accuracy", "latency")
PRESETS = ("fast", "paper")


class PresetPredictor(Predictor):
    """Base of the built-in predictors.

    Args:
        preset: ``"fast"`` (CPU default, tuned for a 2-core machine) or ``"paper"`` (the papers' sizes
            and schedules).
        seed: seeds everything random in a fit.
        target: ``"accuracy"`` or ``"latency"`` (positive targets, relative errors).
        warm_start: a later ``fit`` may continue from the previous one.
        config: overrides of the model's settings (the subclass says which keys it takes).
        callback: called as ``callback(done, total)`` during ``fit`` (progress bars).

    A fitted model sets ``capacity_``: the (op vocabulary, node count) it can represent.
    """

    caller_options: ClassVar[frozenset[str]] = frozenset({"target", "warm_start", "callback"})

    def __init__(self, *, preset: str = "fast", seed: int = 0, target: str = "accuracy", warm_start: bool = False,
                 config: Mapping[str, Any] | None = None,
                 callback: Callable[[int, int], None] | None = None) -> None:
        self.preset = preset
        self.seed = seed
        self.target = target
        self.warm_start = warm_start
        self.config = config
        self.callback = callback

    def _check_preset_and_target(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r}; expected one of {PRESETS}")
        if self.target not in TARGETS:
            raise ConfigError(f"unknown target {self.target!r}; expected one of {TARGETS}")

    def _encoder(self) -> GraphEncoder:
        """The graph encoder, whose cache of encoded graphs lives as long as the predictor."""
        if self.__dict__.get("_graph_encoder") is None:
            self._graph_encoder = GraphEncoder()
        return self._graph_encoder

    @staticmethod
    def _needs(graphs: Sequence[ArchGraph]) -> tuple[int, int]:
        """(op vocabulary, node count) that ``graphs`` need."""
        return n_op_types(graphs), max(g.n_nodes for g in graphs)

    def _check_capacity(self, graphs: Sequence[ArchGraph]) -> None:
        n_ops, max_nodes = self._needs(graphs)
        if n_ops > self.capacity_[0] or max_nodes > self.capacity_[1]:
            raise ConfigError(
                f"{type(self).__name__} was fitted for at most {self.capacity_[0]} op types and "
                f"{self.capacity_[1]} nodes, got graphs needing {n_ops} and {max_nodes}; refit on such graphs"
            )
