"""The predictor evaluation protocol of the NN-Former and NAR-Former V2 papers.

Train on ``N`` cells drawn at random with the seed, test on the whole table (training cells
included), repeat over seeds. Accuracy targets report Kendall's tau (scipy ``kendalltau``, τ-b) and
Spearman's rho; latency targets report MAPE and Acc(10%) (share of cells within 10% relative error).

This module imports no torch: predictors are created through the registry only when evaluated.

Example:
    >>> from nasloop.registry import make_benchmark
    >>> bench = make_benchmark("nb201", data="../shared/data/nb201/cifar10.csv")  # doctest: +SKIP
    >>> result = evaluate(bench, "val_acc", ["rf"], [156], n_seeds=3)  # doctest: +SKIP
    >>> result["summary"][0]["kendall_tau"]["mean"]  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nasloop.errors import ConfigError
from nasloop.registry import resolve

log = logging.getLogger(__name__)

KINDS = ("accuracy", "latency")

# Published NAS-Bench-201 Kendall's tau (CIFAR-10, train on N, test on all 15,625), as quoted in the
# NN-Former paper (CVPR 2025), Table 2.
REFERENCE_TAU: dict[tuple[str, int], float] = {
    ("nnformer", 156): 0.804,
    ("nnformer", 1563): 0.890,
    ("narformer2", 156): 0.752,
    ("narformer2", 1563): 0.888,
}
REFERENCE_SOURCE = "NN-Former (CVPR 2025) Table 2, NAS-Bench-201, train N / test all 15,625"


def infer_kind(column: str, label: str = "") -> str:
    """``"latency"`` for latency-like columns or tables, else ``"accuracy"``."""
    text = f"{column} {label}".lower()
    return "latency" if ("latency" in text or "_ms" in text or column.lower().endswith("ms")) else "accuracy"


def sample_train(n_total: int, n: int, seed: int) -> np.ndarray:
    """Row indices of ``n`` distinct training cells drawn with ``seed`` (the same for every predictor)."""
    if not 2 <= n <= n_total:
        raise ConfigError(f"train size must be between 2 and {n_total} (the table's rows), got {n}")
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n, replace=False))


def compute_metrics(pred: np.ndarray, true: np.ndarray, kind: str) -> dict[str, float]:
    """Kendall's tau and Spearman's rho always; MAPE and Acc(10%) (in %) for latency."""
    from scipy.stats import kendalltau, spearmanr

    pred, true = np.asarray(pred, dtype=float), np.asarray(true, dtype=float)
    out = {
        "kendall_tau": float(kendalltau(pred, true).statistic),
        "spearman": float(spearmanr(pred, true).statistic),
    }
    if kind == "latency":
        rel = np.abs(pred - true) / np.abs(true)
        out["mape"] = float(100.0 * rel.mean())
        out["acc10"] = float(100.0 * (rel <= 0.10).mean())
    return out


def _mean_std(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}


def _make(name: str, *, preset: str, seed: int, kind: str, options: dict[str, Any],
          callback: Callable[[int, int], None] | None, fit_threads: int | None = None) -> Any:
    """The predictor ``name`` with the user's ``options`` and the caller options its class declares:
    the target kind, the progress callback, and threads (scoring on the cores the machine leaves
    idle: scores do not depend on the thread count, unlike a fit's, and scoring every cell is what
    this command times, docs/predictors.md)."""
    from nasloop.predictor import declared_options, offer
    from nasloop.registry import build

    factory = resolve("predictors", name)
    if kind == "latency" and "target" not in declared_options(factory):
        raise ConfigError(f"predictor {name!r} has no target= option, so it cannot be trained for latency")
    offered = {"target": kind, "callback": callback, "predict_threads": "auto", "fit_threads": fit_threads}
    wanted = {k: v for k, v in offer(factory, offered).items() if v is not None}
    return build("predictors", name, factory, preset=preset, seed=seed, **{**wanted, **options})


def evaluate(
    bench: Any,
    column: str,
    predictors: Sequence[str],
    train_sizes: Sequence[int],
    *,
    n_seeds: int = 3,
    preset: str = "fast",
    kind: str | None = None,
    options: dict[str, Any] | None = None,
    on_start: Callable[[str, int, int], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    fit_threads: int | None = None,
    predictor_options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run the protocol on a table benchmark and return a JSON-ready result.

    Args:
        bench: a table benchmark (``.archs``, ``.values(column)``, ``.space``).
        column: the target column (any numeric column, e.g. ``val_acc`` or a latency device).
        predictors: registry names (or ``module:Class``).
        train_sizes: training-set sizes ``N``; cells are drawn with each seed ``0..n_seeds-1``.
        preset: predictor preset (``fast`` or ``paper``).
        kind: ``"accuracy"`` or ``"latency"`` (None: inferred from the column and table names).
        options: extra keyword options for every predictor (e.g. ``{"n_members": 3}``).
        predictor_options: extra keyword options of one predictor by name, instead of ``options``
            (e.g. ``{"prior": {"prior": "priors/latency"}}`` for an adapted prior).
        on_start: called as ``on_start(predictor, n, seed)`` before each fit (progress bars).
        on_step: passed to the predictors as their training ``callback(done, total)``.
        fit_threads: torch threads for each fit of the torch predictors (None: the preset's, one
            for ``fast``). Fits on different thread counts differ in the last digits; scoring always
            takes the cores the machine leaves idle, which changes no score.

    Timings: ``fit_s`` and ``predict_s`` are wall-clock seconds, ``fit_cpu_s`` the process CPU seconds
    of the fit (steadier than wall-clock on a shared machine; up to threads × wall-clock).

    Returns:
        ``{"setting": ..., "runs": [...], "summary": [...], "scatter": {...}}``; ``runs`` has one entry
        per (predictor, N, seed) with metrics and timings, ``summary`` one per (predictor, N) with
        mean ± std over seeds and the published reference, ``scatter`` the first seed's predictions.
    """
    from nasloop.benchmark import TabularBenchmark

    if not isinstance(bench, TabularBenchmark):
        raise ConfigError("predictor eval needs a table benchmark (a TabularBenchmark: .archs and .values(metric))")
    if n_seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {n_seeds}")
    if fit_threads is not None and (isinstance(fit_threads, bool) or not isinstance(fit_threads, int)
                                    or fit_threads < 1):
        raise ConfigError(f"--fit-threads must be a positive integer, got {fit_threads!r}")
    if not predictors or not train_sizes:
        raise ConfigError("give at least one --predictor and one --train-size")
    kind = kind or infer_kind(column, getattr(bench, "label", ""))
    if kind not in KINDS:
        raise ConfigError(f"unknown target kind {kind!r}; expected one of {KINDS}")
    y_all = np.asarray(bench.values(column), dtype=float)
    finite = np.flatnonzero(np.isfinite(y_all))
    if len(finite) < 3:
        raise ConfigError(f"column {column!r} has fewer than 3 finite values")
    if kind == "latency" and np.any(y_all[finite] <= 0):
        raise ConfigError(f"column {column!r} has values <= 0; latency targets must be positive")
    archs = [bench.archs[i] for i in finite]
    y = y_all[finite]
    space = bench.space
    graphs_by_kind: dict[str | None, list] = {}
    runs: list[dict[str, Any]] = []
    scatter: dict[str, Any] = {}
    for name in predictors:
        for n in train_sizes:
            for seed in range(n_seeds):
                train_idx = sample_train(len(archs), int(n), seed)
                if on_start is not None:
                    on_start(name, int(n), seed)
                own = (predictor_options or {}).get(name)
                predictor = _make(name, preset=preset, seed=seed, kind=kind,
                                  options=dict(own if own is not None else options or {}),
                                  callback=on_step, fit_threads=fit_threads)
                graph_kind = getattr(predictor, "graph_kind", None)
                if graph_kind not in graphs_by_kind:
                    graphs_by_kind[graph_kind] = _graphs(space, archs, graph_kind)
                graphs = graphs_by_kind[graph_kind]
                start, cpu = time.perf_counter(), time.process_time()
                predictor.fit([graphs[i] for i in train_idx], y[train_idx])
                fit_s, fit_cpu_s = time.perf_counter() - start, time.process_time() - cpu
                start = time.perf_counter()
                pred = np.asarray(predictor.predict(graphs), dtype=float)
                predict_s = time.perf_counter() - start
                metrics = compute_metrics(pred, y, kind)
                runs.append({"predictor": name, "train_size": int(n), "seed": seed, **metrics,
                             "fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "predict_s": predict_s, "n_test": len(y)})
                log.info("%s N=%d seed=%d: %s fit %.1fs", name, n, seed, metrics, fit_s)
                if seed == 0:
                    scatter[f"{name}@{n}"] = {"pred": pred.tolist(), "train_idx": train_idx.tolist()}
    summary = summarize(runs, kind)
    setting = {
        "space": getattr(space, "name", type(space).__name__),
        "data": getattr(bench, "label", ""),
        "target": column,
        "kind": kind,
        "preset": preset,
        "predictors": list(predictors),
        "train_sizes": [int(n) for n in train_sizes],
        "seeds": list(range(n_seeds)),
        "n_test": len(y),
        "options": dict(options or {}),
        "predictor_options": dict(predictor_options or {}),
        "fit_threads": fit_threads,
        "reference_source": REFERENCE_SOURCE,
    }
    return {"setting": setting, "runs": runs, "summary": summary, "scatter": scatter, "true": y.tolist()}


def _graphs(space: Any, archs: Sequence[Any], graph_kind: str | None) -> list[Any]:
    from nasloop.space import graphs_for

    return graphs_for(space, archs, graph_kind)


def summarize(runs: Sequence[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Mean ± std over seeds per (predictor, N), with the published reference tau beside ours."""
    keys = ["kendall_tau", "spearman"] + (["mape", "acc10"] if kind == "latency" else [])
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["predictor"], run["train_size"]), []).append(run)
    out = []
    for (name, n), group in groups.items():
        row: dict[str, Any] = {"predictor": name, "train_size": n, "n_seeds": len(group)}
        for key in [*keys, "fit_s", "fit_cpu_s", "predict_s"]:
            row[key] = _mean_std([r[key] for r in group])
        row["reference_tau"] = REFERENCE_TAU.get((name, n)) if kind == "accuracy" else None
        out.append(row)
    return out


def format_table(result: dict[str, Any]) -> str:
    """The summary as a fixed-width text table (one line per predictor and train size)."""
    kind = result["setting"]["kind"]
    if kind == "latency":
        header = (f"{'predictor':<12} {'N':>6} {'MAPE %':>14} {'Acc(10%) %':>14} {'tau':>14} {'Spearman':>14} "
                  f"{'fit s':>8} {'pred s':>7}")
    else:
        header = (f"{'predictor':<12} {'N':>6} {'Kendall tau':>15} {'Spearman':>15} {'paper tau':>9} "
                  f"{'fit s':>8} {'pred s':>7}")
    lines = [header, "-" * len(header)]

    def ms(d: dict[str, float], digits: int) -> str:
        return f"{d['mean']:.{digits}f} ± {d['std']:.{digits}f}"

    for row in result["summary"]:
        if kind == "latency":
            lines.append(f"{row['predictor']:<12} {row['train_size']:>6} {ms(row['mape'], 2):>14} "
                         f"{ms(row['acc10'], 1):>14} {ms(row['kendall_tau'], 3):>14} {ms(row['spearman'], 3):>14} "
                         f"{row['fit_s']['mean']:>8.1f} {row['predict_s']['mean']:>7.2f}")
        else:
            ref = row["reference_tau"]
            lines.append(f"{row['predictor']:<12} {row['train_size']:>6} {ms(row['kendall_tau'], 4):>15} "
                         f"{ms(row['spearman'], 4):>15} {(f'{ref:.3f}' if ref is not None else '-'):>9} "
                         f"{row['fit_s']['mean']:>8.1f} {row['predict_s']['mean']:>7.2f}")
    s = result["setting"]
    threads = f" ({s['fit_threads']} threads a fit)" if s.get("fit_threads") else ""
    lines.append(f"target {s['target']} ({s['kind']}), preset {s['preset']}{threads}, seeds {len(s['seeds'])}, "
                 f"test on all {s['n_test']:,} cells; paper tau: {REFERENCE_SOURCE}")
    if s.get("data"):
        lines.append(f"data: {s['data']}")
    return "\n".join(lines)


def write_outputs(result: dict[str, Any], out_dir: str | Path, *, stem: str = "predictor_eval") -> list[Path]:
    """Write ``<stem>.json`` (summary and runs), ``<stem>.csv`` (one row per run) and
    ``<stem>_scatter.png`` (predicted vs true, first seed) into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.json", out / f"{stem}.csv", out / f"{stem}_scatter.png"]
    slim = {k: v for k, v in result.items() if k not in ("scatter", "true")}
    paths[0].write_text(json.dumps(slim, indent=2) + "\n")
    runs = result["runs"]
    if runs:
        fields = list(runs[0])
        with open(paths[1], "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(runs)
    plot_scatter(result, paths[2])
    return paths


def plot_scatter(result: dict[str, Any], path: str | Path) -> None:
    """Predicted vs true for each (predictor, N) of the first seed, training cells highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(result["scatter"].items())
    if not panels:
        return
    true = np.asarray(result["true"])
    setting = result["setting"]
    unit = "ms" if setting["kind"] == "latency" else ""
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.0 * rows), squeeze=False)
    metric_of = {(r["predictor"], r["train_size"]): r for r in result["runs"] if r["seed"] == 0}
    for ax, (key, data) in zip(axes.flat, panels):
        pred = np.asarray(data["pred"])
        train = np.zeros(len(true), dtype=bool)
        train[data["train_idx"]] = True
        ax.scatter(true[~train], pred[~train], s=2, alpha=0.3, label="test cells", rasterized=True)
        ax.scatter(true[train], pred[train], s=6, alpha=0.8, color="tab:orange", label="training cells")
        lo, hi = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.8, label="y = x")
        name, n = key.rsplit("@", 1)
        run = metric_of.get((name, int(n)), {})
        extra = f"MAPE {run['mape']:.2f}%" if setting["kind"] == "latency" else f"τ {run.get('kendall_tau', 0):.3f}"
        ax.set_title(f"{name}, N={n} (seed 0): {extra}")
        ax.set_xlabel(f"true {setting['target']}" + (f" ({unit})" if unit else ""))
        ax.set_ylabel(f"predicted {setting['target']}" + (f" ({unit})" if unit else ""))
        ax.legend(loc="upper left", fontsize=7, markerscale=3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
