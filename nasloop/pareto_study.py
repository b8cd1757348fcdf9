"""Studies of Pareto searches: hypervolume-gap curves, queries to gap thresholds, front plots.

The gap after ``n`` queries is the true front's hypervolume minus that of the front of the first
``n`` results (normalised units, see :mod:`nasloop.pareto`), recomputed from each run's history and
its table, so unfinished runs count too.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasloop.errors import ConfigError
from nasloop.objectives import Goal, build_goal
from nasloop.pareto import TrueFront, front_indices, true_front
from nasloop.study import RunResult, mean_band

# Hypervolume gaps whose first crossing is counted (normalised units: the box from the table's median
# to its ideal point has volume 1).
GAP_THRESHOLDS = (0.2, 0.1, 0.05)


def run_pareto_goal(run: RunResult) -> Goal | None:
    objectives = run.config.get("objectives")
    return build_goal(run.config.get("metric") or "", objectives=objectives) if objectives else None


def _truth(run: RunResult, goal: Goal, cache: dict[Any, tuple[Any, TrueFront | None]]) -> tuple[Any, TrueFront | None]:
    from nasloop.registry import make_benchmark

    key = (run.config.get("space"), str(run.config.get("data")), run.config.get("dataset"), tuple(goal.objectives))
    if key not in cache:
        bench = make_benchmark(run.config["space"], data=run.config.get("data"), dataset=run.config.get("dataset"))
        cache[key] = (bench, true_front(bench, goal))
    return cache[key]


def gap_curve(run: RunResult, goal: Goal, truth: TrueFront, n: int) -> np.ndarray:
    """Hypervolume gap after 1..n queries (a short history repeats its last value)."""
    points: list[np.ndarray] = []
    front: list[int] = []
    out = np.full(n, np.nan)
    for i in range(n):
        if i < len(run.records):
            points.append(goal.signed_vector(run.records[i].metrics))
            cand = front + [len(points) - 1]
            front = [cand[j] for j in front_indices([points[k] for k in cand])]
            hv = truth.scale.hypervolume(np.array([points[k] for k in front]).reshape(len(front), -1))
            out[i] = truth.hypervolume - hv
        else:
            out[i] = out[i - 1] if i else math.nan
    return out


@dataclass
class ParetoSummary:
    """One configuration's hypervolume-gap curve (mean, 95% band) and queries to gap thresholds."""

    label: str
    n_runs: int
    budget: int
    steps: np.ndarray
    gap_mean: np.ndarray
    gap_lo: np.ndarray
    gap_hi: np.ndarray
    hits: dict[float, list[int | None]]
    seconds: list[float]

    def median_queries_to_gap(self, threshold: float) -> float:
        values = sorted(math.inf if h is None else h for h in self.hits[threshold])
        return float(np.median(values)) if values else math.nan

    def to_json(self, at: Sequence[int] = ()) -> dict[str, Any]:
        return {
            "label": self.label, "n_runs": self.n_runs, "budget": self.budget,
            "gap_mean_at": {str(n): float(self.gap_mean[n - 1]) for n in at if n <= self.budget},
            "final_gap_mean": float(self.gap_mean[-1]),
            "median_queries_to_gap": {str(t): (None if math.isinf(m) else m) for t in self.hits
                                      for m in [self.median_queries_to_gap(t)]},
            "hits": {str(t): h for t, h in self.hits.items()},
            "median_seconds": float(np.median(self.seconds)) if self.seconds else None,
        }


def aggregate_pareto(runs: Sequence[RunResult], budget: int | None = None) -> tuple[list[ParetoSummary], Any]:
    """Group Pareto runs by configuration; also returns (benchmark, true front, goal) of the first."""
    cache: dict[Any, tuple[Any, TrueFront | None]] = {}
    groups: dict[str, list[RunResult]] = {}
    for run in runs:
        groups.setdefault(run.label, []).append(run)
    out = []
    first = None
    for label, members in groups.items():
        n = budget or max(int(r.config.get("budget", len(r.records))) for r in members)
        curves = []
        for run in members:
            goal = run_pareto_goal(run)
            bench, truth = _truth(run, goal, cache)
            if truth is None:
                raise ConfigError(f"{run.path}: its benchmark is not a full table, so there is no true front")
            first = first or (bench, truth, goal)
            curves.append(gap_curve(run, goal, truth, n))
        arr = np.array(curves)
        with warnings.catch_warnings():  # one run has no spread: its band is the mean itself
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, lo, hi = mean_band(arr)
        hits = {t: [next((i + 1 for i, g in enumerate(c) if g <= t + 1e-12), None) for c in curves]
                for t in GAP_THRESHOLDS}
        seconds = [float(r.summary.get("timings", {}).get("total_s") or 0.0) for r in members]
        out.append(ParetoSummary(label, len(members), n, np.arange(1, n + 1), mean, lo, hi, hits, seconds))
    return out, first


def markdown_table(summaries: Sequence[ParetoSummary], at: Sequence[int] = (50, 100)) -> str:
    at = [a for a in at if any(a <= s.budget for s in summaries)]
    head = ["configuration", "runs", *[f"mean HV gap @{a}" for a in at],
            *[f"median queries to gap <= {t:g}" for t in GAP_THRESHOLDS], "median time (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        cells = [s.label, str(s.n_runs), *[f"{s.gap_mean[a - 1]:.4f}" if a <= s.budget else "–" for a in at]]
        for t in GAP_THRESHOLDS:
            med = s.median_queries_to_gap(t)
            cells.append(f"> {s.budget}" if math.isinf(med) else f"{med:g}")
        cells.append(f"{np.median(s.seconds):.1f}" if s.seconds else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_gap_curves(summaries: Sequence[ParetoSummary], path: str | Path, *, log_x: bool = False) -> Path:
    from nasloop.plotting import _pyplot, _save

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for s in summaries:
        ax.plot(s.steps, s.gap_mean, label=f"{s.label} (n={s.n_runs})")
        ax.fill_between(s.steps, s.gap_lo, s.gap_hi, alpha=0.2)
    ax.set_xlabel("true queries")
    ax.set_ylabel("hypervolume gap to the true front")
    ax.set_yscale("log")
    if log_x:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_front(run: RunResult, goal: Goal, truth: TrueFront, space: Any, path: str | Path) -> Path:
    """Found front against the true front of a two-objective run (first objective on the y axis)."""
    from nasloop.plotting import _pyplot, _save

    plt = _pyplot()
    signs = np.array([o.sign for o in goal.objectives])
    names = [o.metric for o in goal.objectives]
    queried = np.array([[r.metrics.get(n, math.nan) for n in names] for r in run.records])
    front = queried[front_indices(queried * signs)]
    true = truth.points * signs
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.scatter(queried[:, 1], queried[:, 0], s=8, color="0.7", label="queried")
    order = np.argsort(true[:, 1])
    ax.step(true[order, 1], true[order, 0], where="post", color="k", lw=1, label="true front")
    order = np.argsort(front[:, 1])
    ax.step(front[order, 1], front[order, 0], where="post", color="tab:red", lw=1)
    ax.plot(front[order, 1], front[order, 0], "o", color="tab:red", ms=4, label="found front")
    ref = truth.scale.low * signs  # the hypervolume counts only what lies beyond the reference point
    ax.axhline(ref[0], color="0.5", ls="--", lw=0.8)
    ax.axvline(ref[1], color="0.5", ls="--", lw=0.8, label="reference point (table median)")
    if np.all(queried[:, 1] > 0) and np.all(true[:, 1] > 0):
        ax.set_xscale("log")
    ax.set_xlabel(str(goal.objectives[1]))
    ax.set_ylabel(str(goal.objectives[0]))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def render_pareto(runs: list[RunResult], out_dir: Path, *, fmt: str = "png", log_x: bool = False) -> dict[str, Any]:
    """Figures and summaries of Pareto runs (``nasloop plot`` / ``compare``)."""
    goals = {tuple(r.config.get("objectives") or ()) for r in runs}
    if len(goals) != 1 or not next(iter(goals)):
        raise ConfigError(f"the runs have different objectives {sorted(goals)}; plot them separately")
    summaries, (bench, truth, goal) = aggregate_pareto(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [plot_gap_curves(summaries, out_dir / f"hv_gap.{fmt}", log_x=log_x)]
    if len(runs) == 1 and len(goal.objectives) == 2:
        files.append(plot_front(runs[0], goal, truth, bench.space, out_dir / f"front.{fmt}"))
    return {"pareto": True, "objectives": [str(o) for o in goal.objectives], "summaries": summaries,
            "true_hypervolume": truth.hypervolume, "files": [str(f) for f in files]}
