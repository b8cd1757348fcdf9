"""Helpers for plug-in authors: turn a plain evaluation function into a :class:`~nasloop.benchmark.Benchmark`.

Example:
    >>> from nasloop.plugins import FunctionBenchmark
    >>> def evaluate(arch):
    ...     return {"score": float(sum(arch))}
    >>> bench = FunctionBenchmark(my_space, evaluate, label="toy")  # doctest: +SKIP
    >>> bench.query((1, 2)).metrics["score"]  # doctest: +SKIP
    3.0
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from nasloop.benchmark import Benchmark
from nasloop.errors import ContractError
from nasloop.space import SearchSpace
from nasloop.types import Evaluation

EvalFn = Callable[[Any], Mapping[str, float] | tuple[Mapping[str, float], float]]


class FunctionBenchmark(Benchmark):
    """A benchmark whose answers come from ``fn(arch)``.

    Args:
        space: the space whose architectures ``fn`` accepts.
        fn: ``arch -> {metric: value}``, or ``arch -> ({metric: value}, cost)``. Without a cost, the
            cost of a query is the wall-clock seconds ``fn`` took.
        label: an honest description of what ``fn`` measures (printed in outputs).
        metrics: the metric names ``fn`` returns; when omitted, they are learnt from the first answer.

    Every answer is checked: a non-mapping, a missing metric or a non-finite value raises
    :class:`~nasloop.errors.ContractError` saying which.
    """

    def __init__(self, space: SearchSpace, fn: EvalFn, *, label: str,
                 metrics: Sequence[str] | None = None) -> None:
        if not callable(fn):
            raise ContractError(f"FunctionBenchmark needs a callable arch -> metrics, got {type(fn).__name__}")
        self.space = space
        self.fn = fn
        self.label = label
        self._metrics: tuple[str, ...] | None = tuple(metrics) if metrics is not None else None

    @property
    def metrics(self) -> tuple[str, ...]:
        """Declared metric names, else those of the first answer (empty before the first query)."""
        return self._metrics or ()

    def check_metric(self, metric: str) -> str:
        if self._metrics is None:  # not declared: trust the name until the first answer shows the metrics
            return metric
        return super().check_metric(metric)

    def query(self, arch: Hashable) -> Evaluation:
        start = time.perf_counter()
        answer = self.fn(arch)
        elapsed = time.perf_counter() - start
        name = getattr(self.fn, "__name__", "fn")
        cost = elapsed
        if isinstance(answer, tuple):
            if len(answer) != 2:
                raise ContractError(f"{name} returned a tuple of {len(answer)}; return metrics or (metrics, cost)")
            answer, cost = answer
        if not isinstance(answer, Mapping) or not answer:
            raise ContractError(f"{name} must return a non-empty dict of metric -> float, got {type(answer).__name__}")
        try:
            metrics = {str(k): float(v) for k, v in answer.items()}
            cost = float(cost)
        except (TypeError, ValueError):
            raise ContractError(f"{name} returned non-numeric values: {dict(answer)!r}") from None
        bad = [k for k, v in metrics.items() if not math.isfinite(v)]
        if bad:
            raise ContractError(f"{name} returned non-finite values for {bad}; return finite floats")
        if self._metrics is None:
            self._metrics = tuple(metrics)
        missing = [m for m in self._metrics if m not in metrics]
        if missing:
            raise ContractError(f"{name} did not return {missing} this time; return the same metrics every call")
        return Evaluation(metrics, cost=cost)
