"""What a search optimises: metric directions (``val_acc:max``, ``pixel3:min``) and constraints
(``pixel3<=8.5``).

The engine maximises one *signed* value, ``sign · metric`` (``sign`` is -1 for a minimised metric),
so everything that ranks (best cell, strategies, predictor targets, acquisition) handles both
directions in one place. Summaries, curves and regrets turn signed values back into the metric.

Default direction (:func:`default_direction`): a metric is minimised when its name says it is a cost
(:data:`COST_WORDS` inside it, a ``_ms`` / ``_s`` suffix, a ``params`` / ``flops`` / ``size`` prefix)
or it is one of the HW-NAS-Bench device columns (:data:`DEVICE_COLUMNS`); every other metric is
maximised. ``name:max`` / ``name:min`` overrides the rule.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasloop.benchmark import table_of
from nasloop.errors import ConfigError

DIRECTIONS = ("max", "min")
# Latency columns of the HW-NAS-Bench table (data/nb201/latency_ms.csv): milliseconds per device.
DEVICE_COLUMNS = frozenset({
    "1080ti_1", "1080ti_32", "1080ti_256", "2080ti_1", "2080ti_32", "2080ti_256", "titanxp_1", "titanxp_32",
    "titanxp_256", "gold_6226", "silver_4114", "raspi4", "pixel3", "eyeriss", "fpga", "samsung_s7",
})
COST_WORDS = ("latency", "energy", "loss", "error", "time", "cost")
COST_PREFIXES = ("params", "flops", "size")
COST_SUFFIXES = ("_ms", "_s")


def default_direction(metric: str) -> str:
    """``"min"`` for names known to be costs (latency, time, size, error), else ``"max"``.

    Example:
        >>> default_direction("val_acc"), default_direction("pixel3"), default_direction("params_mb")
        ('max', 'min', 'min')
    """
    name = metric.lower()
    if name in DEVICE_COLUMNS or any(w in name for w in COST_WORDS) or name.startswith(COST_PREFIXES) \
            or name.endswith(COST_SUFFIXES):
        return "min"
    return "max"


@dataclass(frozen=True)
class Objective:
    """A metric and whether larger (``max``) or smaller (``min``) is better."""

    metric: str
    direction: str = "max"

    @property
    def sign(self) -> float:
        return 1.0 if self.direction == "max" else -1.0

    def signed(self, metrics: Mapping[str, float]) -> float:
        """``sign · metric`` (NaN when the metric is missing): larger is always better."""
        value = metrics.get(self.metric)
        return math.nan if value is None else self.sign * float(value)

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "max" else a < b

    def __str__(self) -> str:
        return f"{self.metric}:{self.direction}"

    @classmethod
    def parse(cls, text: str) -> Objective:
        """``"name"`` (direction by :func:`default_direction`), ``"name:max"`` or ``"name:min"``."""
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"a metric must be a name, optionally with :max or :min, got {text!r}")
        name, _, direction = text.strip().rpartition(":") if ":" in text else (text.strip(), "", "")
        name = name.strip()
        direction = direction.strip().lower() or default_direction(name)
        if not name or direction not in DIRECTIONS:
            raise ConfigError(f"bad metric {text!r}: write name, name:max or name:min")
        return cls(name, direction)


_CONSTRAINT = re.compile(r"^\s*([^<>=\s]+)\s*(<=|>=)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Constraint:
    """``metric <= bound`` or ``metric >= bound`` on a benchmark metric."""

    metric: str
    op: str
    bound: float

    def holds(self, metrics: Mapping[str, float]) -> bool:
        """Whether the result satisfies the constraint (a missing value does not)."""
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(float(value)):
            return False
        return float(value) <= self.bound if self.op == "<=" else float(value) >= self.bound

    def mask(self, values: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return (values <= self.bound) if self.op == "<=" else (values >= self.bound)

    def probability(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """P(constraint holds) for predictions N(mean, std²); a step at the bound where std is 0."""
        from scipy.stats import norm

        mean = np.asarray(mean, dtype=np.float64)
        std = np.nan_to_num(np.asarray(std, dtype=np.float64))
        margin = (self.bound - mean) if self.op == "<=" else (mean - self.bound)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(std > 0, margin / np.where(std > 0, std, 1.0), np.sign(margin) * np.inf)
        p = norm.cdf(z)
        return np.where(np.isfinite(mean), np.where(margin == 0, np.maximum(p, 0.5), p), 0.0)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """``"pixel3<=8.5"`` or ``"params_mb>=0.5"``."""
        match = _CONSTRAINT.match(text) if isinstance(text, str) else None
        if match is None:
            raise ConfigError(f"bad constraint {text!r}: write metric<=number or metric>=number")
        try:
            bound = float(match.group(3))
        except ValueError:
            raise ConfigError(f"bad constraint {text!r}: {match.group(3)!r} is not a number") from None
        if not math.isfinite(bound):
            raise ConfigError(f"bad constraint {text!r}: the bound must be finite")
        return cls(match.group(1), match.group(2), bound)


@dataclass(frozen=True)
class Goal:
    """The objectives (one, or two to three for a Pareto search) and the constraints of a run."""

    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()

    @property
    def primary(self) -> Objective:
        return self.objectives[0]

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    def signed(self, metrics: Mapping[str, float]) -> float:
        return self.primary.signed(metrics)

    def signed_vector(self, metrics: Mapping[str, float]) -> np.ndarray:
        return np.array([o.signed(metrics) for o in self.objectives])

    def feasible(self, metrics: Mapping[str, float]) -> bool:
        return all(c.holds(metrics) for c in self.constraints)

    def columns(self) -> list[str]:
        """Every metric the goal reads, objectives first."""
        return list(dict.fromkeys([o.metric for o in self.objectives] + [c.metric for c in self.constraints]))

    def to_json(self) -> dict[str, Any]:
        return {"objectives": [str(o) for o in self.objectives], "constraints": [str(c) for c in self.constraints]}


def build_goal(metric: str, *, direction: str | None = None, objectives: Sequence[str] | None = None,
               constraints: Sequence[str] | None = None, metrics: Sequence[str] = ()) -> Goal:
    """The goal of a run, every name checked against the benchmark's ``metrics`` (when given).

    ``objectives`` (two or three ``name[:dir]``) make a Pareto search; otherwise ``metric`` with
    ``direction`` (``None``: :func:`default_direction`) is the one objective.
    """
    if objectives:
        objs = tuple(Objective.parse(t) for t in objectives)
        if not 2 <= len(objs) <= 3:
            raise ConfigError(f"a multi-objective search takes 2 or 3 objectives, got {len(objs)}")
        if len({o.metric for o in objs}) < len(objs):
            raise ConfigError(f"objectives repeat a metric: {', '.join(map(str, objs))}")
        if constraints:
            raise ConfigError("constraints are not supported together with several objectives; drop --constraint "
                              "or search one objective")
    else:
        if direction is not None and direction not in DIRECTIONS:
            raise ConfigError(f"direction must be max or min, got {direction!r}")
        objs = (Objective(metric, direction or default_direction(metric)),)
    cons = tuple(Constraint.parse(t) for t in (constraints or ()))
    if metrics:
        for name in [o.metric for o in objs] + [c.metric for c in cons]:
            if name not in metrics:
                raise ConfigError(f"metric {name!r} is not in the benchmark; available: {', '.join(metrics)}")
    return Goal(objs, cons)


def split_metric(text: str | None) -> tuple[str | None, str | None]:
    """``"pixel3:min"`` → ``("pixel3", "min")``; ``"val_acc"`` → ``("val_acc", None)``."""
    if text is None or ":" not in text:
        return text, None
    obj = Objective.parse(text)
    return obj.metric, obj.direction


def feasible_mask(bench: Any, goal: Goal) -> np.ndarray | None:
    """Which rows of a table satisfy every constraint (``None`` if the benchmark is no table)."""
    table = table_of(bench)
    if table is None:
        return None
    mask = np.ones(len(table.archs), dtype=bool)
    for c in goal.constraints:
        mask &= c.mask(table.values(c.metric))
    return mask


def table_optimum(bench: Any, goal: Goal, metric: str, direction: str) -> tuple[float, Hashable] | None:
    """Best ``metric`` value (in ``direction``) over the table's feasible cells, and its cell."""
    if not goal.constraints:
        found = bench.optimum(metric, maximize=direction == "max")
        return None if found is None else (float(found[0]), found[1])
    mask, table = feasible_mask(bench, goal), table_of(bench)
    if mask is None or table is None:
        return None
    values = np.where(mask, table.values(metric), np.nan)
    if not np.isfinite(values).any():
        return None
    row = int(np.nanargmax(values) if direction == "max" else np.nanargmin(values))
    return float(values[row]), table.archs[row]


class ColumnModels:
    """One predictor per extra column (constraint columns, further objectives), fitted on the same
    training sets as the main predictor, with their own graphs.

    Args:
        space: the search space (graphs are built per predictor's ``graph_kind``).
        models: column → unfitted predictor (trained on the raw column: latency targets are positive).
    """

    def __init__(self, space: Any, models: Mapping[str, Any]) -> None:
        self.space = space
        self.models = dict(models)
        self.fits_done = 0
        self.graphs: dict[tuple[str | None, Hashable], Any] = {}

    def _graphs(self, model: Any, archs: Sequence[Hashable]) -> list[Any]:
        from nasloop.space import graph_for

        kind = getattr(model, "graph_kind", None)
        out = []
        for a in archs:
            g = self.graphs.get((kind, a))
            if g is None:
                g = self.graphs[(kind, a)] = graph_for(self.space, a, kind)
            out.append(g)
        return out

    def ensure(self, fit_plan: Sequence[int], train: Sequence[Any]) -> None:
        """Make the fits of ``fit_plan`` not done yet, each on the first ``n`` records of ``train``."""
        for i in range(self.fits_done, len(fit_plan)):
            rows = train[: fit_plan[i]]
            for column, model in self.models.items():
                keep = [r for r in rows if math.isfinite(float(r.metrics.get(column, math.nan)))]
                archs = [self.space.from_str(r.arch) for r in keep]
                model.fit(self._graphs(model, archs), np.array([float(r.metrics[column]) for r in keep]))
            self.fits_done = i + 1

    def predict(self, column: str, archs: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray]:
        model = self.models[column]
        mean, std = model.predict_dist(self._graphs(model, archs))
        return np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)

    def feasibility(self, goal: Goal, archs: Sequence[Hashable]) -> np.ndarray:
        """Predicted probability that each architecture meets every constraint (independent columns)."""
        p = np.ones(len(archs))
        for c in goal.constraints:
            mean, std = self.predict(c.metric, archs)
            p *= c.probability(mean, std)
        return p


def weigh_by_feasibility(mean: np.ndarray, std: np.ndarray, p_feasible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Acquisition inputs of a constrained search: predicted objective × probability of feasibility.

    The signed objective is measured from the worst prediction of the candidates (so it is >= 0 and
    the product ranks the same whatever the metric's offset or sign); the spread scales alike, so UCB
    and Thompson sampling act on the weighted objective.
    """
    finite = np.isfinite(mean)
    floor = float(np.min(mean[finite])) if finite.any() else 0.0
    return (mean - floor) * p_feasible, std * p_feasible
