"""Pareto fronts and hypervolumes of a multi-objective search (through ``moocore``).

Points are in the *signed* space of :class:`nasloop.objectives.Goal` (every objective maximised).
Hypervolumes are measured after normalising each objective: the reference point is the table's
*median* of every objective and the ideal point its best value, so the box between them has volume 1
and a hypervolume is the share of it the front dominates. The median rather than the worst value
keeps a few extreme cells (a latency ten times the typical one, a 10 % accuracy) from stretching the
box until every front fills almost all of it (docs/decisions.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasloop.benchmark import table_of
from nasloop.objectives import Goal


def nondominated(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``points`` (maximised) that no other row dominates (duplicates kept)."""
    import moocore

    points = np.asarray(points, dtype=np.float64)
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(points, maximise=True, keep_weakly=True), dtype=bool)


@dataclass(frozen=True)
class Scale:
    """Maps signed objective values to [0, 1] per objective: 0 at the reference point, 1 at the ideal."""

    low: np.ndarray  # the reference point (the table's median signed value of each objective)
    high: np.ndarray  # the ideal point (best signed value of each objective)

    def normalise(self, points: np.ndarray) -> np.ndarray:
        span = np.where(self.high > self.low, self.high - self.low, 1.0)
        return (np.asarray(points, dtype=np.float64) - self.low) / span

    def hypervolume(self, points: np.ndarray) -> float:
        """Normalised hypervolume dominated by ``points`` (signed) with respect to the reference point."""
        import moocore

        pts = self.normalise(points)
        pts = pts[np.all(np.isfinite(pts), axis=1) & np.all(pts > 0, axis=1)] if len(pts) else pts
        if len(pts) == 0:
            return 0.0
        return float(moocore.hypervolume(pts, ref=np.zeros(pts.shape[1]), maximise=True))

    def to_json(self, goal: Goal) -> dict[str, Any]:
        """Reference and ideal points in the metrics' own units."""
        signs = np.array([o.sign for o in goal.objectives])
        return {"reference_point": dict(zip([o.metric for o in goal.objectives], (signs * self.low).tolist())),
                "ideal_point": dict(zip([o.metric for o in goal.objectives], (signs * self.high).tolist()))}


def table_points(bench: Any, goal: Goal) -> tuple[np.ndarray, list[Any]] | None:
    """Signed objective values of every cell of a table with all of them finite (None: no table)."""
    table = table_of(bench)
    if table is None:
        return None
    cols = np.column_stack([o.sign * table.values(o.metric) for o in goal.objectives])
    keep = np.all(np.isfinite(cols), axis=1)
    return cols[keep], [a for a, k in zip(table.archs, keep) if k]


@dataclass(frozen=True)
class TrueFront:
    """A table's scale, its true front (signed points and cells) and that front's hypervolume."""

    scale: Scale
    points: np.ndarray
    archs: list[Any]
    hypervolume: float


def true_front(bench: Any, goal: Goal) -> TrueFront | None:
    """The Pareto front of every cell of a table (``None`` when the benchmark is not a full table)."""
    found = table_points(bench, goal)
    if found is None or len(found[0]) == 0:
        return None
    points, archs = found
    scale = Scale(np.median(points, axis=0), points.max(axis=0))
    mask = nondominated(points)
    front_points = points[mask]
    return TrueFront(scale, front_points, [a for a, m in zip(archs, mask) if m], scale.hypervolume(front_points))


def improvement(scale: Scale, front: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Hypervolume each candidate (signed) adds to ``front``; a dominated candidate gets minus its
    additive-epsilon distance to the front (normalised units), so the nearest ones rank first."""
    cand = np.asarray(candidates, dtype=np.float64)
    if cand.ndim == 2 and cand.shape[1] == 2:
        return _improvement_2d(scale, np.asarray(front, dtype=np.float64).reshape(-1, 2), cand)
    base = scale.hypervolume(front) if len(front) else 0.0
    out = np.empty(len(cand))
    norm_front = scale.normalise(front) if len(front) else np.zeros((0, cand.shape[1]))
    norm_cand = scale.normalise(cand)
    for i, point in enumerate(cand):
        if not np.all(np.isfinite(point)):
            out[i] = -np.inf
            continue
        gain = scale.hypervolume(np.vstack([front, point[None, :]])) - base if len(front) else \
            scale.hypervolume(point[None, :])
        if gain > 1e-15:
            out[i] = gain
        elif len(norm_front):
            # how far the point must move in every objective to leave the front's dominated region
            out[i] = -float(np.min(np.max(norm_front - norm_cand[i], axis=1)))
        else:
            out[i] = -float(np.max(-norm_cand[i]))
    return out


def _improvement_2d(scale: Scale, front: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """:func:`improvement` for two objectives, vectorised over the candidates.

    The gain of ``p`` is its box ``[0, p]`` minus the part of it the front already dominates, which is
    the staircase area of the front points clipped to ``p`` (clipping keeps the front's order).
    """
    c = scale.normalise(cand)
    f = scale.normalise(front)
    f = f[np.all(np.isfinite(f), axis=1)]
    f = f[np.lexsort((-f[:, 1], f[:, 0]))] if len(f) else f  # x ascending, y descending
    box = np.clip(c[:, 0], 0, None) * np.clip(c[:, 1], 0, None)
    if len(f):
        x = np.clip(np.minimum(f[None, :, 0], c[:, :1]), 0, None)
        y = np.clip(np.minimum(f[None, :, 1], c[:, 1:]), 0, None)
        # staircase of a non-dominated set sorted by x: each point adds the strip from the previous x
        covered = np.sum(np.diff(x, axis=1, prepend=0.0) * np.maximum.accumulate(y[:, ::-1], axis=1)[:, ::-1],
                         axis=1)
        gain = box - covered
        eps = -np.min(np.max(f[None, :, :] - c[:, None, :], axis=2), axis=1)
    else:
        gain, eps = box, -np.max(-c, axis=1)
    out = np.where(gain > 1e-15, gain, eps)
    return np.where(np.all(np.isfinite(c), axis=1), out, -np.inf)


def front_indices(points: Sequence[Sequence[float]]) -> list[int]:
    """Positions of the non-dominated rows (signed, maximised), in input order."""
    arr = np.asarray(points, dtype=np.float64)
    if len(arr) == 0:
        return []
    finite = np.all(np.isfinite(arr), axis=1)
    idx = np.flatnonzero(finite)
    mask = nondominated(arr[finite])
    return [int(i) for i in idx[mask]]
