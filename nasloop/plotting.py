"""Matplotlib figures: search-efficiency curves, queries-to-optimum box plots, predictor scatter.

Every function writes one file (PNG by default, SVG when the path ends in ``.svg``) and returns
its path. The Agg backend is used, so no display is needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nasloop.study import ConfigSummary, RunResult


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _metric_label(name: str) -> str:
    """Axis label with units: accuracies are percentages, latencies milliseconds."""
    if "acc" in name:
        return f"{name} (%)"
    if name.endswith("_ms") or name in {"latency"}:
        return f"{name} (ms)"
    return name


def plot_curves(
    summaries: Sequence[ConfigSummary],
    path: str | Path,
    *,
    report: str,
    optimum: float | None = None,
    log_x: bool = False,
    title: str | None = None,
) -> Path:
    """Report metric of the incumbent vs true queries: mean line and 95% band per configuration."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for s in summaries:
        (line,) = ax.plot(s.steps, s.report_mean, label=f"{s.label} (n={s.n_runs})", linewidth=1.8)
        ax.fill_between(s.steps, s.report_lo, s.report_hi, color=line.get_color(), alpha=0.2, linewidth=0)
    if optimum is not None:
        ax.axhline(optimum, color="black", linestyle="--", linewidth=1, label=f"optimum ({optimum:.2f})")
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("true evaluations (unique queries)")
    ax.set_ylabel(f"incumbent {_metric_label(report)}")
    lows = [np.nanmin(s.report_lo[len(s.steps) // 10 :]) for s in summaries if len(s.steps)]
    if lows and optimum is not None and all(math.isfinite(v) for v in lows):
        ax.set_ylim(min(lows) - 0.1 * (optimum - min(lows) + 1e-9), optimum + 0.25 * (optimum - min(lows) + 1e-9))
    ax.set_title(title or "Search efficiency (mean and 95% confidence band over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def plot_time_curves(runs: Sequence[RunResult], path: str | Path, *, metric: str, report: str,
                     optimum: float | None = None, simulated: bool = False, log_x: bool = False) -> Path:
    """Report metric of the incumbent vs time (``record.time``; simulated time for --simulate runs)."""
    from nasloop.study import time_curves

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.label] = counts.get(run.label, 0) + 1
    lows = []
    for label, grid, mean, lo, hi in time_curves(runs, metric, report, log_x=log_x):
        (line,) = ax.plot(grid, mean, label=f"{label} (n={counts[label]})", linewidth=1.8)
        ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        if np.isfinite(lo).any():
            lows.append(float(np.nanmin(lo[len(lo) // 10 :])) if np.isfinite(lo[len(lo) // 10 :]).any() else math.nan)
    if optimum is not None:
        ax.axhline(optimum, color="black", linestyle="--", linewidth=1, label=f"optimum ({optimum:.2f})")
        lows = [v for v in lows if math.isfinite(v)]
        if lows:
            span = optimum - min(lows) + 1e-9
            ax.set_ylim(min(lows) - 0.1 * span, optimum + 0.25 * span)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("simulated time (cost units)" if simulated else "wall-clock time (s)")
    ax.set_ylabel(f"incumbent {_metric_label(report)}")
    ax.set_title("Incumbent against time (mean and 95% confidence band over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def plot_queries_to_optimum(summaries: Sequence[ConfigSummary], path: str | Path, *, title: str | None = None) -> Path:
    """Box plot of queries until the optimum was found; runs that never found it are drawn at the budget."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    data = [[h if h is not None else s.budget for h in s.hits] for s in summaries]
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(summaries) + 1), [s.label for s in summaries], rotation=20, ha="right", fontsize=8)
    for i, s in enumerate(summaries, start=1):
        ax.annotate(f"found {100 * s.found_share:.0f}%", (i, s.budget), textcoords="offset points",
                    xytext=(0, 4), ha="center", fontsize=7)
    ax.set_ylabel("true evaluations until the optimum (queries)")
    ax.set_title(title or "Queries to the optimum (not found = drawn at the budget)")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return _save(fig, path)


def plot_run_scatter(run: RunResult, path: str | Path, *, metric: str) -> Path:
    """Predicted (at the time of choice) vs true search metric of a predictor-guided run."""
    plt = _pyplot()
    pairs = [(r.predicted_mean, r.metrics.get(metric), r.round) for r in run.records
             if r.predicted_mean is not None and r.metrics.get(metric) is not None]
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    if pairs:
        pred, true, rounds = map(np.asarray, zip(*pairs))
        sc = ax.scatter(true, pred, c=rounds, cmap="viridis", s=14)
        fig.colorbar(sc, ax=ax, label="search round")
        lo, hi = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], color="grey", linestyle=":", linewidth=1)
        if len(pairs) > 2:
            from scipy.stats import kendalltau

            ax.set_title(f"{run.label}: Kendall τ = {kendalltau(true, pred).statistic:.3f} (n={len(pairs)})")
    else:
        ax.text(0.5, 0.5, "no predicted values in this run\n(predictor = none)", ha="center", va="center")
        ax.set_title(run.label)
    ax.set_xlabel(f"true {_metric_label(metric)}")
    ax.set_ylabel(f"predicted {_metric_label(metric)}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_predicted_vs_true(true: np.ndarray, pred: np.ndarray, path: str | Path, *, title: str, target: str) -> Path:
    """Scatter of predictions against true values over a test set (``nasloop predictor eval``)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    ax.scatter(true, pred, s=3, alpha=0.3)
    lo, hi = float(np.nanmin([true.min(), pred.min()])), float(np.nanmax([true.max(), pred.max()]))
    ax.plot([lo, hi], [lo, hi], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel(f"true {_metric_label(target)}")
    ax.set_ylabel(f"predicted {_metric_label(target)}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix not in (".png", ".svg"):
        path = path.with_suffix(".png")
    fig.savefig(path)
    _pyplot().close(fig)
    return path
