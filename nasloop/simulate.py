"""Simulated parallel time on tables: a cost per query and a discrete-event executor.

:class:`CostColumn` makes a table column the cost of a query (``--cost COLUMN --cost-scale X``).
:class:`SimulatedExecutor` runs ``N`` virtual workers: a job submitted at simulated time ``t`` to
the lowest-numbered free worker finishes at ``t + cost``; results come back in order of finishing
time (ties by submission number), so the same seed gives the same simulated history. Predictor fits
and picks take no simulated time: on a table the interesting question is what more workers buy in
evaluation time, and a real fit (seconds) is small next to the trainings the cost column stands for.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable
from typing import Any

from nasloop.errors import ConfigError
from nasloop.types import Evaluation


class CostColumn:
    """A benchmark whose query cost is ``scale`` times its ``column`` (the rest is the wrapped one's).

    Args:
        benchmark: the benchmark to wrap; ``column`` must be one of its metrics.
        column: the metric read as the cost of a query.
        scale: factor turning the column's unit into seconds (or whatever unit the run reports).
    """

    def __init__(self, benchmark: Any, column: str, scale: float = 1.0) -> None:
        if column not in benchmark.metrics:
            label = getattr(benchmark, "label", "the benchmark")
            raise ConfigError(f"cost column {column!r} is not a metric of {label}; "
                              f"available: {', '.join(benchmark.metrics)}")
        check_scale(scale)
        self.__dict__["_inner"] = benchmark
        self.__dict__["cost_column"] = column
        self.__dict__["cost_scale"] = float(scale)

    def query(self, arch: Hashable) -> Evaluation:
        evaluation = self._inner.query(arch)
        value = evaluation.metrics.get(self.cost_column, math.nan)
        return Evaluation(evaluation.metrics, cost=value * self.cost_scale if math.isfinite(value) else 0.0)

    def table(self) -> Any:
        """The wrapped benchmark's full table, if it has one (the cost column changes no metric)."""
        from nasloop.benchmark import table_of

        return table_of(self._inner)

    def __getattr__(self, name: str) -> Any:
        if name == "_inner":  # not set yet (unpickling): no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:  # hooks such as ``progress`` reach the real one
        setattr(self._inner, name, value)


def check_scale(scale: Any) -> float:
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale < math.inf:
        raise ConfigError(f"cost_scale must be a positive finite number, got {scale!r}")
    return float(scale)


class SimulatedExecutor:
    """``n_workers`` virtual workers answering from ``benchmark``, each query taking its cost.

    Args:
        benchmark: answers queries (its ``query(arch).cost`` is the simulated duration).
        n_workers: virtual workers.
    """

    simulated = True

    def __init__(self, benchmark: Any, n_workers: int) -> None:
        self.benchmark = benchmark
        self.n_workers = n_workers
        self.clock = 0.0
        self._free = list(range(n_workers))
        self._events: list[tuple[float, int, int, Any]] = []

    def submit(self, job: Any) -> None:
        from nasloop.async_loop import Outcome

        worker = heapq.heappop(self._free)
        try:
            evaluation, error = self.benchmark.query(job.arch), None
        except Exception as exc:  # a failing evaluation is a failed query, as on a real worker
            evaluation, error = None, last_line(exc)
        finish = self.clock + (evaluation.cost if evaluation is not None else 0.0)
        outcome = Outcome(job=job, evaluation=evaluation, worker=f"sim-{worker}", start=self.clock, finish=finish,
                          error=error)
        heapq.heappush(self._events, (finish, job.number, worker, outcome))

    def wait(self) -> list[Any]:
        finish, _, worker, outcome = heapq.heappop(self._events)
        self.clock = finish
        heapq.heappush(self._free, worker)
        return [outcome]

    def now(self) -> float:
        return self.clock

    def close(self) -> None:
        self._events.clear()


def last_line(exc: BaseException) -> str:
    """``Type: last line of the message`` (what a failed query records), at most 500 characters."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[-1]}"[:500] if lines else type(exc).__name__
