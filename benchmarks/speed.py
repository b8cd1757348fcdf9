"""Speed of a predictor-guided search: where the time goes, how long a run takes, what it costs in quality.

Every part writes one JSON file (``--out``, default ``benchmarks/results/speed-<part>.json``) and prints
a short table. Run from the repository root:

    python benchmarks/speed.py profile              # one run per fit budget, time per round by part
    python benchmarks/speed.py timing --seeds 10    # default vs --fit-budget full, side by side, 1 thread
    python benchmarks/speed.py merge A.json B.json  # one timing result from seed ranges run apart
    python benchmarks/speed.py quality --seeds 25   # 25-seed studies, CIFAR-10 and CIFAR-100 (nasloop compare)
    python benchmarks/speed.py curve --seeds 10 --fit-budgets 3 12 --tables cifar10

``timing`` alternates the two configurations seed by seed in one process on one torch thread, so
both see the same machine load; it reports the median wall time and the median CPU time of each
(on a machine shared with other work the CPU time is what one dedicated core would take), and the
medians of the per-seed ratios. ``quality`` runs ``nasloop compare`` studies (resumable: rerun the same command to
continue) and reads their ``summary.json``. ``curve`` runs the fit budgets seed by seed in one
process (one thread) and records CPU time, queries to the optimum and the report metric after 50
queries; ``--metric val_acc_12ep`` searches the 12-epoch column instead. The comparison
(labelled "previous" in the JSON) is ``--fit-budget full``: warm refits of half of
``max_fit_steps`` (150 optimiser steps) every round.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's nasloop and predictors, not an installed copy

TABLES = {"cifar10": "../shared/data/nb201/cifar10.csv", "cifar100": "../shared/data/nb201/cifar100.csv"}
RESULTS = ROOT / "benchmarks" / "results"


def _one_thread() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def _budget_value(text: str) -> int | str:
    from nasloop.search_config import SearchConfig

    return SearchConfig.parse_fit_budget(text)


def _run(fit_budget: int | str, *, seed: int, data: str, budget: int, metric: str | None = None,
         out: Path | None = None) -> dict[str, Any]:
    """One in-process run; its summary plus the queries it needed to reach the optimum."""
    from nasloop.loop import run_search
    from nasloop.search_config import SearchConfig
    from nasloop.study import incumbent_curves, queries_to_optimum

    t0, c0 = time.perf_counter(), time.process_time()
    result = run_search(space="nb201", strategy="random", predictor="nnformer", data=data, budget=budget, seed=seed,
                        metric=metric, search=SearchConfig(fit_budget=fit_budget), out=out)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    s = result.summary
    optimum = s["optimum"][s["metric"]]["value"]
    report_curve = incumbent_curves(result.records, s["metric"], s["report"], budget)[1]
    return {"fit_budget": fit_budget, "seed": seed, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "timings": s["timings"], "queries_to_optimum": queries_to_optimum(result.records, s["metric"], optimum),
            "report_at_50": float(report_curve[min(50, budget) - 1])}


# --- profile ------------------------------------------------------------------------------------------
def profile(args: argparse.Namespace) -> dict[str, Any]:
    """CPU time per round, by part, of one run per fit budget (run directory on disk: I/O included).

    CPU seconds of this one-thread process, not wall seconds: on a machine shared with other work
    they are what a dedicated core would take.
    """
    import tempfile

    import nasloop.engine as engine
    import predictors.graphs as graphs

    rows: list[dict[str, Any]] = []
    current: dict[str, Any] = {}

    def timed(kind_of):
        def wrap(fn):
            def inner(self, *a, **k):
                t0 = time.process_time()
                try:
                    return fn(self, *a, **k)
                finally:
                    round_ = getattr(self, "round", current.get("round", 0))
                    current["parts"][round_][kind_of(a)] += time.process_time() - t0
            return inner
        return wrap

    engine.SearchEngine._score = timed(lambda a: "score_pool_s" if len(a[0]) > 100 else "score_local_s")(
        engine.SearchEngine._score)
    engine.SearchEngine._ensure_fitted = timed(lambda a: "fit_s")(engine.SearchEngine._ensure_fitted)
    engine.SearchEngine._query = timed(lambda a: "evaluate_s")(engine.SearchEngine._query)
    original_encode = graphs.GraphEncoder.encode

    def encode(self, *a, **k):  # nested inside fit and scoring: reported as their share
        t0 = time.process_time()
        try:
            return original_encode(self, *a, **k)
        finally:
            current["parts"][current.get("round", 0)]["encode_s"] += time.process_time() - t0

    graphs.GraphEncoder.encode = encode
    original_round = engine.SearchEngine._predictor_round

    def predictor_round(self):
        current["round"] = self.round
        t0 = time.process_time()
        try:
            return original_round(self)
        finally:
            current["parts"][self.round]["round_s"] += time.process_time() - t0

    engine.SearchEngine._predictor_round = predictor_round
    for fit_budget in args.fit_budgets:
        current["parts"] = defaultdict(lambda: defaultdict(float))
        current["round"] = 0
        with tempfile.TemporaryDirectory() as tmp:
            run = _run(fit_budget, seed=args.seed, data=args.data, budget=args.budget, out=Path(tmp) / "run")
        per_round = [{"round": r, **{k: round(v, 4) for k, v in parts.items()}}
                     for r, parts in sorted(current["parts"].items()) if r > 0]
        keys = ("round_s", "fit_s", "score_pool_s", "score_local_s", "encode_s", "evaluate_s")
        mean = {k: round(statistics.fmean(row.get(k, 0.0) for row in per_round), 4) for k in keys}
        mean["other_s"] = round(mean["round_s"] - mean["fit_s"] - mean["score_pool_s"] - mean["score_local_s"]
                                - mean["evaluate_s"], 4)
        rows.append({**run, "rounds": len(per_round), "mean_per_round": mean, "per_round": per_round})
        print(f"fit_budget {fit_budget}: {run['cpu_s']:.1f} s CPU, {len(per_round)} rounds; CPU s per round: "
              + ", ".join(f"{k} {v:.3f}" for k, v in mean.items()))
    return {"part": "profile", "seed": args.seed, "budget": args.budget, "data": args.data, "threads": 1,
            "runs": rows}


# --- timing -------------------------------------------------------------------------------------------
def timing(args: argparse.Namespace) -> dict[str, Any]:
    """The default and --fit-budget full, seed by seed in one process; medians and ratios."""
    from nasloop.search_config import SearchConfig

    new, old = SearchConfig().fit_budget, "full"
    runs: list[dict[str, Any]] = []
    for i, seed in enumerate(range(args.first_seed, args.first_seed + args.seeds)):
        # Alternate which goes first, so that a load change mid-pair favours neither.
        for fit_budget in ((new, old) if i % 2 == 0 else (old, new)):
            run = _run(fit_budget, seed=seed, data=args.data, budget=args.budget, metric=args.metric)
            runs.append({**run, "label": "default" if fit_budget == new else "previous"})
            print(f"seed {seed} {runs[-1]['label']:>8} (fit_budget {fit_budget}): {run['wall_s']:.1f} s wall, "
                  f"{run['cpu_s']:.1f} s CPU (fit {run['timings']['fit_s']:.1f} s wall), optimum after "
                  f"{run['queries_to_optimum']}, load {os.getloadavg()[0]:.1f}", flush=True)
        _write(args.out_path, {"part": "timing", "partial": True, "runs": runs})  # a kill keeps the pairs so far
    return _timing_summary(runs, data=args.data, metric=args.metric, budget=args.budget)


def merge(args: argparse.Namespace) -> dict[str, Any]:
    """One timing result from the runs of several ``timing`` files (e.g. seed ranges run apart)."""
    runs: dict[tuple[int, str], dict[str, Any]] = {}
    for path in args.files:
        for run in json.loads(Path(path).read_text())["runs"]:
            runs[(run["seed"], run["label"])] = run
    paired = [r for (seed, _), r in sorted(runs.items())
              if (seed, "default") in runs and (seed, "previous") in runs]
    return _timing_summary(paired, data=args.data, metric=args.metric, budget=args.budget, sources=args.files)


def _timing_summary(runs: list[dict[str, Any]], **info: Any) -> dict[str, Any]:
    seeds = sorted({r["seed"] for r in runs})
    out: dict[str, Any] = {"part": "timing", **info, "seeds": seeds, "threads": 1, "runs": runs}
    for label in ("default", "previous"):
        mine = [r for r in runs if r["label"] == label]
        out[label] = {"fit_budget": mine[0]["fit_budget"],
                      "median_wall_s": statistics.median(r["wall_s"] for r in mine),
                      "median_cpu_s": statistics.median(r["cpu_s"] for r in mine),
                      "median_fit_s": statistics.median(r["timings"]["fit_s"] for r in mine),
                      "median_score_s": statistics.median(r["timings"]["score_s"] for r in mine),
                      "median_queries_to_optimum": _median_hits([r["queries_to_optimum"] for r in mine])}
    for key in ("wall_s", "cpu_s"):
        by_seed: dict[int, dict[str, float]] = defaultdict(dict)
        for r in runs:
            by_seed[r["seed"]][r["label"]] = r[key]
        out[f"median_ratio_{key[:-2]}"] = statistics.median(s["default"] / s["previous"] for s in by_seed.values())
    print(f"{len(seeds)} seeds; median wall time: default {out['default']['median_wall_s']:.1f} s, previous "
          f"{out['previous']['median_wall_s']:.1f} s (ratio {out['median_ratio_wall']:.3f}); median CPU time: "
          f"default {out['default']['median_cpu_s']:.1f} s, previous {out['previous']['median_cpu_s']:.1f} s "
          f"(ratio {out['median_ratio_cpu']:.3f})")
    return out


def _median_hits(hits: list[int | None]) -> float | None:
    value = statistics.median(math.inf if h is None else h for h in hits)
    return None if math.isinf(value) else value


# --- studies (quality, curve) ------------------------------------------------------------------------------
def _study(table: str, data: str, fit_budget: int | str, *, seeds: int, budget: int, jobs: int,
           metric: str | None, root: Path) -> dict[str, Any]:
    """A ``nasloop compare`` study of the default loop with one fit budget (resumed when it exists)."""
    tag = f"{table}{'-' + metric if metric else ''}-fb{fit_budget}-s{seeds}-b{budget}"
    study_dir = root / tag
    cmd = [sys.executable, "-m", "nasloop.cli", "compare", "--data", data, "--strategy", "random",
           "--predictor", "nnformer", "--seeds", str(seeds), "--budget", str(budget),
           "--fit-budget", str(fit_budget), "--jobs", str(jobs), "--out", str(study_dir), "--json"]
    if metric:
        cmd += ["--metric", metric]
    print(" ".join(cmd[1:]), flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"study {tag} failed:\n{proc.stderr[-2000:]}")
    payload = json.loads(proc.stdout)
    (config,) = payload["configurations"]
    summaries = sorted(study_dir.glob("*/seed-*/summary.json"))
    started = (study_dir / "study.json").stat().st_mtime
    return {
        "table": table, "metric": payload["metric"], "fit_budget": fit_budget, "seeds": seeds, "budget": budget,
        "jobs": jobs, "study_dir": str(study_dir),
        "median_queries_to_optimum": config["median_queries_to_optimum"],
        "found_share": config["found_share"],
        "report_mean_at_50": config["report_mean_at"].get("50"),
        "median_seconds_per_run": config["median_seconds"],
        "median_fit_seconds_per_run": config["median_fit_seconds"],
        # first written to last finished: the study's wall time as run (a resumed study counts its pause)
        "study_wall_s": round(max(p.stat().st_mtime for p in summaries) - started, 1) if summaries else None,
        "hits": config["hits"],
    }


def quality(args: argparse.Namespace) -> dict[str, Any]:
    from nasloop.search_config import SearchConfig

    fit_budget = args.fit_budgets[0] if args.fit_budgets else SearchConfig().fit_budget
    rows = [_study(table, TABLES[table], fit_budget, seeds=args.seeds, budget=args.budget, jobs=args.jobs,
                   metric=args.metric, root=args.studies) for table in args.tables]
    for row in rows:
        print(f"{row['table']}: median queries to optimum {row['median_queries_to_optimum']}, found "
              f"{100 * row['found_share']:.0f}%, test mean @50 {row['report_mean_at_50']:.2f}, "
              f"{row['median_seconds_per_run']:.1f} s per run, study {row['study_wall_s']} s")
    return {"part": "quality", "studies": rows}


def curve(args: argparse.Namespace) -> dict[str, Any]:
    """Time per run (CPU and wall, one thread) against queries to the optimum, per fit budget, in process."""
    runs: list[dict[str, Any]] = []
    rows = []
    for table in args.tables:
        for fb in args.fit_budgets:
            mine = []
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                run = {"table": table, **_run(fb, seed=seed, data=TABLES[table], budget=args.budget,
                                               metric=args.metric)}
                mine.append(run)
                runs.append(run)
                _write(args.out_path, {"part": "curve", "partial": True, "runs": runs})
            rows.append({"table": table, "fit_budget": fb, "seeds": [r["seed"] for r in mine],
                         "median_cpu_s": statistics.median(r["cpu_s"] for r in mine),
                         "median_wall_s": statistics.median(r["wall_s"] for r in mine),
                         "median_queries_to_optimum": _median_hits([r["queries_to_optimum"] for r in mine]),
                         "found": sum(r["queries_to_optimum"] is not None for r in mine),
                         "mean_report_at_50": statistics.fmean(r["report_at_50"] for r in mine)})
            print(f"{table} fit_budget {fb}: {rows[-1]['median_cpu_s']:.1f} s CPU per run, median queries to "
                  f"optimum {rows[-1]['median_queries_to_optimum']}, found {rows[-1]['found']}/{len(mine)}, "
                  f"report mean @50 {rows[-1]['mean_report_at_50']:.3f}", flush=True)
    return {"part": "curve", "budget": args.budget, "metric": args.metric, "curve": rows, "runs": runs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=("profile", "timing", "merge", "quality", "curve"))
    parser.add_argument("files", nargs="*", help="merge: timing files to combine")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="profile: the run's seed")
    parser.add_argument("--first-seed", type=int, default=0, help="timing: seeds first-seed .. first-seed+seeds-1")
    parser.add_argument("--budget", type=int, default=150)
    parser.add_argument("--data", default=TABLES["cifar10"], help="profile / timing: the table")
    parser.add_argument("--metric", default=None, help="search metric (default: the table's)")
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--fit-budgets", nargs="+", type=_budget_value, default=None)
    parser.add_argument("--jobs", type=int, default=2, help="studies: worker processes")
    parser.add_argument("--studies", type=Path, default=ROOT / "runs" / "speed", help="studies: where they go")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    args.out_path = args.out or RESULTS / f"speed-{'timing' if args.part == 'merge' else args.part}.json"
    _one_thread()
    if args.part == "profile" and args.fit_budgets is None:
        from nasloop.search_config import SearchConfig

        args.fit_budgets = [SearchConfig().fit_budget, "full"]
    if args.part == "curve" and args.fit_budgets is None:
        args.fit_budgets = [3, 6, 12, 24, "full"]
    parts = {"profile": profile, "timing": timing, "merge": merge, "quality": quality, "curve": curve}
    result = parts[args.part](args)
    import torch

    result["environment"] = {"torch": torch.__version__, "cpus": os.cpu_count(),
                             "load_avg_end": os.getloadavg()[0], "time": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                        time.gmtime())}
    _write(args.out_path, result)
    print(f"wrote {args.out_path}")


def _write(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
