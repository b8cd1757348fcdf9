"""Scaling measurements (writes JSON): simulated parallel time on NAS-Bench-201, DARTS wall-clock.

``simulated``: NB201 CIFAR-10 (search val_acc, report test_acc), query cost = the ``1080ti_256``
column of latency_ms.csv (a batch-256 forward pass in ms, a training-time proxy), the default
predictor-guided loop, ``--workers N --simulate`` for each N, seeds 0..S-1. Per N: median simulated
time and median queries until the optimum of val_acc arrived (runs that never found it count as
not found: the median is then over all runs with those at infinity), the found share, and the idle
share of worker time (until the last result).

``darts``: the DARTS space with real training on the bundled digits data (the registered DARTS
benchmark: 2 epochs per genotype), random search, ``--workers 2`` (an embedded LocalCluster) against
``--workers 1`` (in process), wall-clock in one process, same seed and budget, with the load average.

Examples:
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/scaling.py simulated --jobs 2 \\
        --out benchmarks/results/scaling-simulated.json
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/scaling.py darts --out benchmarks/results/scaling-darts.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "nb201"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class _OptimumFound(Exception):
    """Raised from the callback: the rest of the run cannot change when the optimum arrived."""


def simulated_run(args: tuple[int, int, int, bool]) -> dict:
    """One simulated run: time and queries until the val_acc optimum, best test_acc, idle share.

    Unless ``full``, the run stops when the optimum arrives: the history up to then is the one of the
    whole run (every stream is seeded; nothing later changes it), so the figures to the optimum are
    exact, and runs that never find it go to the budget. The idle share of worker time is then not
    known (it is zero before the budget's last submission by construction: a pick is immediate), so
    it comes from the ``full`` runs.
    """
    import tempfile

    import torch

    torch.set_num_threads(1)
    from nasloop.history import read_history
    from nasloop.loop import run_search

    workers, seed, budget, full = args
    optimum = _optimum()

    def stop_at_optimum(event) -> None:
        if not full and event.phase == "query" and event.best_value is not None \
                and event.best_value >= optimum - 1e-9:
            raise _OptimumFound

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        summary = None
        try:
            summary = run_search(space="nb201", data=[str(DATA / "cifar10.csv"), str(DATA / "latency_ms.csv")],
                                 budget=budget, seed=seed, workers=workers, simulate=True, cost="1080ti_256",
                                 out=out, callback=stop_at_optimum).summary
        except _OptimumFound:
            pass
        records = read_history(out / "history.jsonl")
    hit = next((r for r in records if r.metrics.get("val_acc", -math.inf) >= optimum - 1e-9), None)
    best = max(records, key=lambda r: r.metrics.get("val_acc", -math.inf))
    par = summary["parallel"] if summary is not None else {}
    return {"workers": workers, "seed": seed, "full": full, "queries_to_optimum": None if hit is None else hit.number,
            "time_to_optimum": None if hit is None else hit.time, "makespan": par.get("makespan"),
            "idle_share": par.get("idle_share"), "best_test_acc": best.metrics["test_acc"],
            "wall_s": round(time.perf_counter() - t0, 2)}


_OPTIMUM: list[float] = []


def _optimum() -> float:
    if not _OPTIMUM:
        from nasloop.registry import make_benchmark

        _OPTIMUM.append(float(make_benchmark("nb201", data=str(DATA / "cifar10.csv")).optimum("val_acc")[0]))
    return _OPTIMUM[0]


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _median(values: list[float | None]) -> float | None:
    """Median with runs that never found the optimum at infinity (None when most never did)."""
    finite = [math.inf if v is None else float(v) for v in values]
    m = statistics.median(finite)
    return None if math.isinf(m) else m


def simulated(args: argparse.Namespace) -> dict:
    # Seeds outermost: a measurement cut short holds every N for the seeds it finished.
    tasks = [(w, s, args.budget, s < args.full_seeds) for s in range(args.seeds) for w in args.workers]
    runs: list[dict] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for i, run in enumerate(pool.map(simulated_run, tasks), start=1):
            runs.append(run)
            log(f"{i}/{len(tasks)} N={run['workers']} seed={run['seed']} queries={run['queries_to_optimum']} "
                f"time={run['time_to_optimum']} ({run['wall_s']} s)")
            # the file holds every finished run at all times: a measurement cut short keeps them
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(_simulated_table(args, runs), indent=2) + "\n")
    return _simulated_table(args, runs)


def _simulated_table(args: argparse.Namespace, runs: list[dict]) -> dict:
    table = []
    for w in args.workers:
        rows = [r for r in runs if r["workers"] == w]
        if not rows:
            continue
        table.append({
            "workers": w, "runs": len(rows),
            "found_share": sum(r["queries_to_optimum"] is not None for r in rows) / len(rows),
            "median_time_to_optimum": _median([r["time_to_optimum"] for r in rows]),
            "median_queries_to_optimum": _median([r["queries_to_optimum"] for r in rows]),
            "mean_idle_share_full_runs": _mean([r["idle_share"] for r in rows if r["full"]]),
            "full_runs": sum(r["full"] for r in rows),
            "median_best_test_acc_to_optimum_or_budget": statistics.median(r["best_test_acc"] for r in rows),
        })
    serial = table[0]
    for row in table:
        t, q = row["median_time_to_optimum"], row["median_queries_to_optimum"]
        row["speedup_vs_first"] = None if t is None or serial["median_time_to_optimum"] is None \
            else round(serial["median_time_to_optimum"] / t, 3)
        row["queries_vs_first"] = None if q is None or serial["median_queries_to_optimum"] is None \
            else round(q / serial["median_queries_to_optimum"], 3)
    return {"measurement": "simulated", "budget": args.budget, "seeds": args.seeds, "cost": "1080ti_256 (ms)",
            "table": table, "runs": runs}


def darts(args: argparse.Namespace) -> dict:
    from nasloop.loop import run_search

    out = {"measurement": "darts", "budget": args.budget, "seed": args.seed, "loadavg_before": os.getloadavg()}
    for workers in (2, 1) if args.workers_first == 2 else (1, 2):
        t0 = time.perf_counter()
        result = run_search(space="darts", predictor=args.predictor, budget=args.budget, seed=args.seed,
                            workers=workers)
        wall = time.perf_counter() - t0
        out[f"workers_{workers}_s"] = round(wall, 2)
        out[f"workers_{workers}_best"] = result.best_value
        out[f"workers_{workers}_evaluate_s"] = result.summary["timings"]["evaluate_s"]
        if "parallel" in result.summary:  # worker time, idle share, and when the first result came back
            out[f"workers_{workers}_parallel"] = result.summary["parallel"]
            out[f"workers_{workers}_first_start_s"] = min(r.extra["start"] for r in result.records)
        log(f"--workers {workers}: {wall:.1f} s, best {result.best_value}")
    out["speedup"] = round(out["workers_1_s"] / out["workers_2_s"], 3)
    out["loadavg_after"] = os.getloadavg()
    out["cpus"] = os.cpu_count()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    sim = sub.add_parser("simulated")
    sim.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 16, 64])
    sim.add_argument("--seeds", type=int, default=25)
    sim.add_argument("--budget", type=int, default=150)
    sim.add_argument("--jobs", type=int, default=1, help="runs at a time (processes)")
    sim.add_argument("--full-seeds", type=int, default=2,
                     help="seeds 0..K-1 run the whole budget (idle share); the others stop at the optimum")
    sim.add_argument("--out", required=True)
    dar = sub.add_parser("darts")
    dar.add_argument("--budget", type=int, default=8)
    dar.add_argument("--seed", type=int, default=0)
    dar.add_argument("--predictor", default="none")
    dar.add_argument("--workers-first", type=int, default=2, choices=(1, 2))
    dar.add_argument("--out", required=True)
    args = parser.parse_args()
    result = simulated(args) if args.what == "simulated" else darts(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {args.out}")
    if "table" in result:
        for row in result["table"]:
            log(json.dumps({k: v for k, v in row.items()}))


if __name__ == "__main__":
    main()
