"""The Benchmark contract (the oracle) and a table-backed implementation.

A benchmark is pure: ``query(arch)`` answers with an :class:`Evaluation` and keeps no budget; the
loop's :class:`~nasloop.budget.Budget` decides what may be asked.
"""

from __future__ import annotations

import csv
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np

from nasloop.errors import DataError, InvalidArchitectureError, UnknownNameError
from nasloop.space import SearchSpace
from nasloop.types import Evaluation


class Benchmark(ABC):
    """Answers true metrics for architectures of one space.

    Attributes:
        space: the search space the benchmark's architectures belong to.
        label: an honest, human-readable description of the data source (printed in outputs).
    """

    space: SearchSpace
    label: str = "benchmark"

    @property
    @abstractmethod
    def metrics(self) -> tuple[str, ...]:
        """Names of the metrics that ``query`` returns."""

    @abstractmethod
    def query(self, arch: Hashable) -> Evaluation:
        """True metrics (and cost) of ``arch``."""

    def check_metric(self, metric: str) -> str:
        """Return ``metric`` or raise ``UnknownNameError`` listing the available ones."""
        if metric not in self.metrics:
            raise UnknownNameError(
                f"metric {metric!r} is not in {self.label}; available: {', '.join(self.metrics)}"
            )
        return metric

    def optimum(self, metric: str, *, maximize: bool = True) -> tuple[float, Hashable] | None:
        """Best value of ``metric`` and its architecture, when the benchmark knows it (tables do)."""
        return None


class TabularBenchmark(Benchmark):
    """A benchmark backed by a full table: one row per architecture, one column per metric.

    Args:
        space: the space the rows belong to.
        archs: one architecture per row.
        columns: metric name → values aligned with ``archs`` (NaN marks a missing value).
        label: description of the data source.
        cost_column: optional column used as the simulated cost of a query (e.g. train seconds).
        indices: optional official index per row (shown by ``nasloop data info``).
    """

    def __init__(
        self,
        space: SearchSpace,
        archs: Sequence[Hashable],
        columns: Mapping[str, Sequence[float]],
        *,
        label: str,
        cost_column: str | None = None,
        indices: Sequence[int] | None = None,
    ) -> None:
        self.space = space
        self.label = label
        self.archs = list(archs)
        self.columns = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
        for name, values in self.columns.items():
            if len(values) != len(self.archs):
                raise ValueError(f"column {name!r} has {len(values)} values for {len(self.archs)} rows")
        self.indices = list(indices) if indices is not None else list(range(len(self.archs)))
        self.cost_column = cost_column
        self._row = {arch: i for i, arch in enumerate(self.archs)}
        self._metric_names = tuple(self.columns)

    def __len__(self) -> int:
        return len(self.archs)

    @property
    def metrics(self) -> tuple[str, ...]:
        return self._metric_names

    def row_of(self, arch: Hashable) -> int:
        try:
            return self._row[arch]
        except (KeyError, TypeError):
            raise InvalidArchitectureError(
                f"{arch!r} is not in {self.label} ({len(self)} architectures)"
            ) from None

    def query(self, arch: Hashable) -> Evaluation:
        row = self.row_of(arch)
        metrics = {k: v[row] for k, v in self.columns.items() if np.isfinite(v[row])}
        cost = self.columns[self.cost_column][row] if self.cost_column else 0.0
        return Evaluation(metrics, cost=cost if np.isfinite(cost) else 0.0)

    def values(self, metric: str) -> np.ndarray:
        """The column of ``metric`` aligned with ``self.archs``."""
        return self.columns[self.check_metric(metric)]

    def optimum(self, metric: str, *, maximize: bool = True) -> tuple[float, Hashable]:
        values = self.values(metric)
        row = int(np.nanargmax(values) if maximize else np.nanargmin(values))
        return float(values[row]), self.archs[row]


def read_csv_table(path: str | Path) -> tuple[list[str] | None, list[list[str]]]:
    """Header and rows of a CSV table (``None`` header for an empty file); ``DataError`` if unreadable."""
    try:
        with open(path, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            return header, list(reader)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read table {str(path)!r}: {exc}") from None
