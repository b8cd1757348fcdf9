"""Search-efficiency studies: aggregate many run directories into curves and tables.

A *configuration* is one (strategy, predictor, options) combination; it has one run per seed. For
each configuration we compute, against the number of true queries:

* the incumbent's search metric (best so far) and its report metric — mean and a 95% confidence band
  over seeds (Student t interval of the mean);
* the number of queries until the benchmark's optimum of the search metric was first queried
  (median over seeds, runs that never found it count as "not found"), and the share of runs that
  found it;
* time spent (wall-clock and the part spent fitting the predictor).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nasloop.errors import DataError
from nasloop.types import Record


@dataclass(frozen=True)
class RunResult:
    """One run directory, read back: its configuration and its history of true queries."""

    path: Path
    config: dict[str, Any]
    records: tuple[Record, ...]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        label = str(self.config.get("label") or config_label(self.config))
        workers = (self.config.get("execution") or {}).get("workers")
        # runs of one configuration on different worker counts are different curves
        return label if workers in (None, 1) or "workers" in label else f"{label}, {workers} workers"


def config_label(config: dict[str, Any]) -> str:
    """Human-readable name of a configuration: ``strategy + predictor``."""
    predictor = config.get("predictor") or "none"
    strategy = config.get("strategy", "?")
    label = strategy if predictor == "none" else f"{strategy} + {predictor}"
    workers = (config.get("execution") or {}).get("workers")
    return label if workers in (None, 1) else f"{label}, {workers} workers"


def load_run(path: str | Path) -> RunResult:
    """Read ``config.json``, ``history.jsonl`` and (if present) ``summary.json`` of a run directory."""
    path = Path(path)
    config_file, history_file = path / "config.json", path / "history.jsonl"
    if not config_file.is_file() or not history_file.exists():
        raise DataError(f"{str(path)!r} is not a nasloop run directory (needs config.json and history.jsonl)")
    config = json.loads(config_file.read_text())
    records = []
    lines = history_file.read_text().splitlines()
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(Record.from_json(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            # A run killed mid-write may leave a torn last line; anything earlier is corruption.
            if line_no == len(lines):
                break
            raise DataError(f"{history_file}: line {line_no} is not a history record") from None
    summary_file = path / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    return RunResult(path, config, tuple(records), summary)


def find_runs(paths: Iterable[str | Path]) -> list[RunResult]:
    """Every run directory given, or found below the given study directories (sorted by path).

    Runs of a study take their configuration label from the study's ``study.json``.
    """
    runs: list[RunResult] = []
    for p in paths:
        p = Path(p)
        if (p / "config.json").is_file() and (p / "history.jsonl").exists():
            runs.append(load_run(p))
            continue
        found = sorted(c.parent for c in p.rglob("config.json") if (c.parent / "history.jsonl").exists())
        if not found:
            raise DataError(f"no run directories (config.json + history.jsonl) under {str(p)!r}")
        labels = _study_labels(p)
        for f in found:
            run = load_run(f)
            label = labels.get(f.relative_to(p).parts[0]) if f != p else None
            if label:
                run = RunResult(run.path, {**run.config, "label": label}, run.records, run.summary)
            runs.append(run)
    return runs


def _study_labels(study_dir: Path) -> dict[str, str]:
    """Configuration folder → label, from ``study.json`` when the folder is a study."""
    spec_file = study_dir / "study.json"
    if not spec_file.is_file():
        return {}
    spec = json.loads(spec_file.read_text())
    return {c["folder"]: c["label"] for c in spec.get("configs", []) if "folder" in c and "label" in c}


def run_goal(config: dict[str, Any]) -> tuple[bool, Callable[[Record], bool]]:
    """Whether a run maximised its metric, and which of its results were feasible (config.json)."""
    from nasloop.objectives import Constraint

    constraints = [Constraint.parse(c) for c in config.get("constraints") or []]
    return (config.get("direction") or "max") == "max", lambda r: all(c.holds(r.metrics) for c in constraints)


def incumbent_curves(
    records: Sequence[Record], metric: str, report: str, n: int, *, maximize: bool = True,
    feasible: Callable[[Record], bool] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Best-so-far search metric and the report metric of that incumbent after 1..n queries.

    Only ``feasible`` results can become the incumbent. Positions past the end of a short history
    repeat the last value (the run stopped there).
    """
    best = np.full(n, np.nan)
    rep = np.full(n, np.nan)
    cur_best, cur_rep = -math.inf if maximize else math.inf, math.nan
    sign = 1.0 if maximize else -1.0
    for i in range(n):
        if i < len(records):
            value = records[i].metrics.get(metric)
            if value is not None and sign * value > sign * cur_best and (feasible is None or feasible(records[i])):
                cur_best, cur_rep = value, records[i].metrics.get(report, math.nan)
        best[i], rep[i] = (cur_best if math.isfinite(cur_best) else math.nan), cur_rep
    return best, rep


def queries_to_optimum(records: Sequence[Record], metric: str, optimum: float, *, tol: float = 1e-9,
                       maximize: bool = True, feasible: Callable[[Record], bool] | None = None) -> int | None:
    """1-based number of the first (feasible) query that reached ``optimum`` in ``metric``; None if never."""
    sign = 1.0 if maximize else -1.0
    for i, r in enumerate(records, start=1):
        value = r.metrics.get(metric)
        if value is not None and sign * value >= sign * optimum - tol and (feasible is None or feasible(r)):
            return i
    return None


def mean_band(values: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and the ``confidence`` t-interval of the mean over axis 0 (runs × steps)."""
    from scipy.stats import t as student_t

    values = np.asarray(values, dtype=float)
    n = np.sum(np.isfinite(values), axis=0)
    import warnings

    # One run (or one finite value at a step) has no spread: its band is the mean itself, no warning.
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=0)
        sem = np.nanstd(values, axis=0, ddof=1) / np.sqrt(n)
        half = np.where(n > 1, student_t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1)) * sem, 0.0)
    return mean, mean - half, mean + half


@dataclass
class ConfigSummary:
    """Aggregated results of one configuration over its seeds."""

    label: str
    n_runs: int
    budget: int
    steps: np.ndarray
    search_mean: np.ndarray
    search_lo: np.ndarray
    search_hi: np.ndarray
    report_mean: np.ndarray
    report_lo: np.ndarray
    report_hi: np.ndarray
    hits: list[int | None]
    seconds: list[float]
    fit_seconds: list[float]
    # Time (record.time: wall-clock, or simulated for --simulate runs) when the optimum arrived.
    time_hits: list[float | None] = field(default_factory=list)

    @property
    def found_share(self) -> float:
        return sum(h is not None for h in self.hits) / max(len(self.hits), 1)

    @property
    def median_queries_to_optimum(self) -> float:
        """Median with never-found runs counted as infinitely late (inf if half or more never found)."""
        values = sorted(math.inf if h is None else h for h in self.hits)
        return float(np.median(values)) if values else math.nan

    @property
    def median_time_to_optimum(self) -> float:
        """As :attr:`median_queries_to_optimum`, in the runs' time (simulated for --simulate runs)."""
        values = sorted(math.inf if t is None else t for t in self.time_hits)
        return float(np.median(values)) if values else math.nan

    def report_at(self, n_queries: int) -> float:
        return float(self.report_mean[min(n_queries, self.budget) - 1])

    def to_json(self, at: Sequence[int] = ()) -> dict[str, Any]:
        med = self.median_queries_to_optimum
        return {
            "label": self.label,
            "n_runs": self.n_runs,
            "budget": self.budget,
            "median_queries_to_optimum": None if math.isinf(med) else med,
            "found_share": self.found_share,
            "report_mean_at": {str(n): self.report_at(n) for n in at if n <= self.budget},
            "final_report_mean": float(self.report_mean[-1]),
            "final_search_mean": float(self.search_mean[-1]),
            "median_seconds": float(np.median(self.seconds)) if self.seconds else None,
            "median_fit_seconds": float(np.median(self.fit_seconds)) if self.fit_seconds else None,
            "hits": self.hits,
            "median_time_to_optimum": None if not math.isfinite(self.median_time_to_optimum)
            else self.median_time_to_optimum,
            "time_hits": self.time_hits,
        }


def aggregate(
    runs: Sequence[RunResult], *, metric: str, report: str, optimum: float, budget: int | None = None
) -> list[ConfigSummary]:
    """Group runs by configuration label and aggregate each group (labels in first-seen order)."""
    groups: dict[str, list[RunResult]] = {}
    for run in runs:
        groups.setdefault(run.label, []).append(run)
    out = []
    for label, members in groups.items():
        n = budget or max(int(r.config.get("budget", len(r.records))) for r in members)
        goals = [run_goal(r.config) for r in members]
        curves = [incumbent_curves(r.records, metric, report, n, maximize=g[0], feasible=g[1])
                  for r, g in zip(members, goals)]
        s_mean, s_lo, s_hi = mean_band(np.array([c[0] for c in curves]))
        r_mean, r_lo, r_hi = mean_band(np.array([c[1] for c in curves]))
        out.append(ConfigSummary(
            label=label, n_runs=len(members), budget=n, steps=np.arange(1, n + 1),
            search_mean=s_mean, search_lo=s_lo, search_hi=s_hi,
            report_mean=r_mean, report_lo=r_lo, report_hi=r_hi,
            hits=[queries_to_optimum(r.records, metric, optimum, maximize=g[0], feasible=g[1])
                  for r, g in zip(members, goals)],
            seconds=[_timing(r, "total_s") for r in members],
            fit_seconds=[_timing(r, "fit_s") for r in members],
            time_hits=[time_to_optimum(r.records, metric, optimum) for r in members],
        ))
    return out


def time_to_optimum(records: Sequence[Record], metric: str, optimum: float, *, tol: float = 1e-9) -> float | None:
    """The ``time`` of the first record that reached ``optimum`` (simulated time for simulated runs)."""
    hit = queries_to_optimum(records, metric, optimum, tol=tol)
    return None if hit is None else float(records[hit - 1].time)


def time_curves(runs: Sequence[RunResult], metric: str, report: str, *, log_x: bool = False,
                n_points: int = 200) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per configuration: a time grid and the mean (95% band) of the incumbent's ``report`` value
    at each time (``record.time``: simulated for simulated runs), from when all its runs have a
    result to its last result."""
    groups: dict[str, list[RunResult]] = {}
    for run in runs:
        groups.setdefault(run.label, []).append(run)
    times = [float(r.time) for run in runs for r in run.records]
    end, first = max(times, default=0.0), min((t for t in times if t > 0), default=1.0)
    # log-spaced from the first result: the runs of many workers end long before those of few
    grid = np.geomspace(first, end, n_points) if log_x and end > first else np.linspace(0.0, end, n_points)
    out = []
    for label, members in groups.items():
        own_end = max((float(r.time) for run in members for r in run.records), default=0.0)
        rows = []
        for run in members:
            recs = sorted(run.records, key=lambda r: r.time)
            times = np.array([r.time for r in recs])
            _, rep = incumbent_curves(recs, metric, report, len(recs))
            idx = np.searchsorted(times, grid, side="right") - 1
            rows.append(np.where(idx >= 0, rep[np.maximum(idx, 0)], np.nan))
        mean, lo, hi = mean_band(np.array(rows))
        # from the time every run has a result (a mean over the few early ones jumps) to the last one
        own_start = max((min((float(r.time) for r in run.records), default=0.0) for run in members), default=0.0)
        keep = (grid >= own_start) & (grid <= own_end)
        out.append((label, grid[keep], mean[keep], lo[keep], hi[keep]))
    return out


def markdown_table(summaries: Sequence[ConfigSummary], *, at: Sequence[int] = (50, 100)) -> str:
    """One row per configuration: queries to optimum, found share, report mean at given budgets, time."""
    at = [a for a in at if any(a <= s.budget for s in summaries)]
    head = ["configuration", "runs", "median queries to optimum", "found optimum",
            *[f"report mean @{a}" for a in at], "median time (s)", "median fit time (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        med = s.median_queries_to_optimum
        cells = [s.label, str(s.n_runs), f"> {s.budget}" if math.isinf(med) else f"{med:g}",
                 f"{100 * s.found_share:.0f}%",
                 *[f"{s.report_at(a):.2f}" if a <= s.budget else "–" for a in at],
                 f"{np.median(s.seconds):.1f}" if s.seconds else "–",
                 f"{np.median(s.fit_seconds):.1f}" if s.fit_seconds else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(summaries: Sequence[ConfigSummary], path: str | Path) -> Path:
    """Long-format curves: configuration, queries, search/report mean and band."""
    path = Path(path)
    with open(path, "w") as fh:
        fh.write("configuration,queries,search_mean,search_lo,search_hi,report_mean,report_lo,report_hi\n")
        for s in summaries:
            for i, step in enumerate(s.steps):
                vals = (s.search_mean[i], s.search_lo[i], s.search_hi[i],
                        s.report_mean[i], s.report_lo[i], s.report_hi[i])
                fh.write(f"{s.label},{step}," + ",".join(f"{v:.6g}" for v in vals) + "\n")
    return path


def _timing(run: RunResult, key: str) -> float:
    """A timing from ``summary.json`` (``timings.total_s`` / ``timings.fit_s``); 0 when unfinished."""
    value = run.summary.get("timings", {}).get(key)
    if value is None and key == "total_s" and run.records:
        return float(run.records[-1].time)
    return float(value or 0.0)
