"""Hardware-aware search on NAS-Bench-201 CIFAR-10 + HW-NAS-Bench latencies (writes JSON).

Parts:
    constrained  search val_acc (report test_acc) subject to ``pixel3 <= median(pixel3)``, budget 150:
                 the default predictor-guided loop (nnformer, constraint column by rf) against
                 constrained regularized evolution (no predictor); queries until the best feasible
                 cell of the table was queried, regrets.
    pareto       objectives val_acc:max and DEVICE:min, budget 100: predictor-guided (rf per
                 objective, hypervolume improvement, --n-local 0) against Optuna random, NSGA-II and
                 MOTPE; hypervolume gap after every query.
    walltime     one 100-query two-objective run against the single-objective default (nnformer),
                 one after the other in this process.
    figures      hypervolume-gap curves (mean, 95% band) of the pareto results, as PNGs under docs/.

Examples:
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/hardware_aware.py constrained --seeds 25 --jobs 2
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/hardware_aware.py pareto --device pixel3 --seeds 25 --jobs 2
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/hardware_aware.py constrained --side-predictor nnformer --seeds 10
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/hardware_aware.py walltime
    python benchmarks/hardware_aware.py figures
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nasloop.loop import run_search  # noqa: E402
from nasloop.search_config import SearchConfig  # noqa: E402

DATA = [str(ROOT.parent / "shared" / "data" / "nb201" / "cifar10.csv"),
        str(ROOT.parent / "shared" / "data" / "nb201" / "latency_ms.csv")]
RESULTS = ROOT / "benchmarks" / "results"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pixel3_median() -> float:
    from nasloop.registry import make_benchmark

    return float(np.median(make_benchmark("nb201", data=DATA).values("pixel3")))


# --- one run each (top-level functions: they run in worker processes) -------------------------------
def constrained_run(method: str, seed: int, bound: float, side: str | None = None) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    options = {"ours": {"strategy": "random", "predictor": "nnformer", "side_predictor": side},
               "evolution": {"strategy": "evolution", "predictor": None}}[method]
    result = run_search(space="nb201", data=DATA, constraints=[f"pixel3<={bound}"], budget=150, seed=seed, **options)
    s = result.summary
    target = s["optimum"]["val_acc"]["arch"]
    hit = next((r.number for r in result.records if r.arch == target), None)
    return {"method": method, "seed": seed, "queries_to_best_feasible": hit, "search_regret": s["search_regret"],
            "regret": s["regret"], "n_infeasible": s["n_infeasible"], "total_s": s["timings"]["total_s"]}


def pareto_run(method: str, seed: int, device: str, budget: int = 100) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    if method == "ours":
        options: dict[str, Any] = {"strategy": "random", "predictor": "rf", "search": SearchConfig(n_local=0)}
    else:
        options = {"strategy": method, "predictor": None}
    result = run_search(space="nb201", data=DATA, objectives=["val_acc:max", f"{device}:min"], budget=budget, seed=seed,
                        **options)
    s = result.summary
    gaps = [round(s["true_hypervolume"] - v, 6) for v in s["hv_curve"]]
    return {"method": method, "seed": seed, "device": device, "hv_gap": s["hv_gap"], "gap_curve": gaps,
            "front_size": len(s["front"]), "total_s": s["timings"]["total_s"]}


def _map(fn: Any, jobs: list[tuple], n_jobs: int, what: str) -> list[dict[str, Any]]:
    out = []
    with ProcessPoolExecutor(max_workers=n_jobs) as pool:
        futures = [pool.submit(fn, *args) for args in jobs]
        for i, fut in enumerate(futures, 1):
            out.append(fut.result())
            log(f"{what}: {i}/{len(jobs)} {out[-1]['method']} seed {out[-1]['seed']}")
    return out


def _median_hits(rows: list[dict[str, Any]], budget: int) -> float:
    # a run that never queried the cell counts as budget + 1 (beyond the budget): the median stays honest
    hits = [r["queries_to_best_feasible"] or budget + 1 for r in rows]
    return float(np.median(hits))


def constrained(args: argparse.Namespace) -> dict[str, Any]:
    bound = pixel3_median()
    methods = ("ours",) if args.side_predictor else ("ours", "evolution")
    jobs = [(m, s, bound, args.side_predictor) for s in range(args.seeds) for m in methods]
    rows = _map(constrained_run, jobs, args.jobs, "constrained")
    summary = {}
    for m in methods:
        mine = [r for r in rows if r["method"] == m]
        summary[m] = {"median_queries_to_best_feasible": _median_hits(mine, 150),
                      "found_share": sum(r["queries_to_best_feasible"] is not None for r in mine) / len(mine),
                      "mean_search_regret": float(np.mean([r["search_regret"] for r in mine])),
                      "mean_test_regret": float(np.mean([r["regret"] for r in mine])),
                      "mean_total_s": float(np.mean([r["total_s"] for r in mine]))}
    return {"part": "constrained", "constraint": f"pixel3<={bound}", "budget": 150, "seeds": args.seeds,
            "side_predictor": args.side_predictor or "rf",
            "summary": summary, "runs": rows}


def pareto(args: argparse.Namespace) -> dict[str, Any]:
    methods = ("ours", "nsga2", "motpe", "random")
    jobs = [(m, s, args.device) for s in range(args.seeds) for m in methods]
    rows = _map(pareto_run, jobs, args.jobs, f"pareto {args.device}")
    summary = {}
    for m in methods:
        mine = [r for r in rows if r["method"] == m]
        gaps = np.array([r["gap_curve"] for r in mine])
        summary[m] = {"mean_hv_gap_100": float(gaps[:, -1].mean()),
                      "sem_hv_gap_100": float(gaps[:, -1].std(ddof=1) / np.sqrt(len(mine))) if len(mine) > 1 else 0.0,
                      "mean_gap_curve": gaps.mean(axis=0).round(6).tolist(),
                      "mean_total_s": float(np.mean([r["total_s"] for r in mine]))}
    return {"part": "pareto", "device": args.device, "budget": 100, "seeds": args.seeds, "summary": summary,
            "runs": rows}


def walltime(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    out = {}
    for label, options in (
        ("single_objective_default", {"predictor": "nnformer"}),
        ("two_objective_ours", {"predictor": "rf", "objectives": ["val_acc:max", "pixel3:min"],
                                "search": SearchConfig(n_local=0)}),
        ("two_objective_nnformer", {"predictor": "nnformer", "objectives": ["val_acc:max", "pixel3:min"]}),
    ):
        times = []
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            run_search(space="nb201", data=DATA, budget=100, seed=seed, **options)
            times.append(time.perf_counter() - t0)
            log(f"walltime {label} seed {seed}: {times[-1]:.1f} s")
        out[label] = {"seconds": [round(t, 2) for t in times], "mean_s": round(float(np.mean(times)), 2)}
    return {"part": "walltime", "seeds": args.seeds, "runs": out, "load_average": os.getloadavg()}


def figures(args: argparse.Namespace) -> dict[str, Any]:
    from nasloop.plotting import _pyplot, _save
    from nasloop.study import mean_band

    plt = _pyplot()
    files = []
    for path in sorted(RESULTS.glob("hardware-aware-pareto-*.json")):
        result = json.loads(path.read_text())
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
        for method in result["summary"]:
            curves = np.array([r["gap_curve"] for r in result["runs"] if r["method"] == method])
            mean, lo, hi = mean_band(curves)
            steps = np.arange(1, len(mean) + 1)
            label = {"ours": "rf per objective + HV improvement"}.get(method, method)
            ax.plot(steps, mean, label=f"{label} (n={len(curves)})")
            ax.fill_between(steps, lo, hi, alpha=0.2)
        ax.set_yscale("log")
        ax.set_xlabel("true queries")
        ax.set_ylabel("hypervolume gap to the true front")
        ax.set_title(f"val_acc:max vs {result['device']}:min (mean, 95% band)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        files.append(str(_save(fig, ROOT / "docs" / f"hardware_aware_gap_{result['device']}.png")))
    return {"part": "figures", "files": files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("constrained", "pareto", "walltime", "figures"))
    parser.add_argument("--seeds", type=int, default=25)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--device", default="pixel3")
    parser.add_argument("--out", default=None)
    parser.add_argument("--side-predictor", default=None,
                        help="constrained: predictor of the constraint column (default rf; only ours is run)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    result = {"constrained": constrained, "pareto": pareto, "walltime": walltime, "figures": figures}[args.part](args)
    if args.part == "figures":
        log(f"wrote {', '.join(result['files'])}")
        return
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    name = args.part + (f"-{args.device}" if args.part == "pareto" else "") \
        + (f"-side-{args.side_predictor}" if args.part == "constrained" and args.side_predictor else "")
    out = Path(args.out) if args.out else RESULTS / f"hardware-aware-{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    log(f"wrote {out}")
    if "summary" in result:
        for m, row in result["summary"].items():
            log(f"{m}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float)))


if __name__ == "__main__":
    main()
