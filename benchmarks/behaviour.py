"""Does a change keep nasloop's behaviour and speed? This checkout against an earlier revision.

    python benchmarks/behaviour.py histories --base REV      # same seed, same history?
    python benchmarks/behaviour.py timing --base REV --repeats 5
    python benchmarks/behaviour.py studies STUDY_DIR OTHER_STUDY_DIR

``histories`` runs a fixed set of searches (the three strategies with and without a predictor, a
forest on CIFAR-100, a minimised metric, a constraint, two Pareto searches, a simulated parallel run
and a resumed run) with the code of ``REV`` and with this checkout, through the CLI, and compares
``history.jsonl``, ``rounds.jsonl``, ``summary.json`` and ``config.json`` with their timing fields
left out. A case the earlier revision cannot run (an option it lacks) is reported as such. Exit
status 1 when any history differs.

``timing`` alternates the two checkouts, repeat by repeat, so both see the same machine load, on one
torch thread: a predictor fit (NN-Former, fast preset, 100 random cells of the CIFAR-10 table) and a
100-query guided search (evolution + NN-Former). It reports the medians and the median of the
per-repeat ratios (this checkout / REV).

``studies`` compares two directories of the same ``nasloop compare`` study (say one run before a
change and one after) run by run: every run's history, rounds and summary, timings left out.

``REV`` is any git revision; its files are exported with ``git archive`` into a temporary folder.
JSON goes to ``benchmarks/results/behaviour-<part>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = (ROOT.parent / "shared" / "data" / "nb201").resolve()
RESULTS = ROOT / "benchmarks" / "results"
C10, C100, LATENCY = str(DATA / "cifar10.csv"), str(DATA / "cifar100.csv"), str(DATA / "latency_ms.csv")
ACC_AND_LATENCY = ["--data", C10, "--data", LATENCY]

# name -> nasloop search arguments (each run small enough to finish in seconds to a minute)
CASES: dict[str, list[str]] = {
    **{f"{s}-none": ["--data", C10, "--strategy", s, "--predictor", "none", "--budget", "80", "--seed", "3"]
       for s in ("random", "evolution", "tpe")},
    **{f"{s}-nnformer": ["--data", C10, "--strategy", s, "--predictor", "nnformer", "--budget", "40", "--seed", "1"]
       for s in ("random", "evolution", "tpe")},
    "evolution-rf": ["--data", C100, "--strategy", "evolution", "--predictor", "rf", "--budget", "60", "--seed", "2"],
    "constrained": [*ACC_AND_LATENCY, "--metric", "val_acc", "--report", "test_acc", "--constraint", "pixel3<=10.68",
                    "--predictor", "rf", "--budget", "40", "--seed", "0"],
    "pareto": [*ACC_AND_LATENCY, "--objective", "val_acc:max", "--objective", "pixel3:min", "--predictor", "rf",
               "--n-local", "0", "--budget", "40", "--seed", "0"],
    "pareto-nsga2": [*ACC_AND_LATENCY, "--objective", "val_acc:max", "--objective", "pixel3:min", "--strategy",
                     "nsga2", "--predictor", "none", "--budget", "40", "--seed", "0"],
    "minimise": [*ACC_AND_LATENCY, "--metric", "pixel3:min", "--predictor", "rf", "--budget", "30", "--seed", "4"],
    "simulated": [*ACC_AND_LATENCY, "--predictor", "rf", "--workers", "4", "--simulate", "--cost", "1080ti_256",
                  "--budget", "40", "--seed", "0"],
    "resumed": ["--data", C10, "--strategy", "evolution", "--predictor", "nnformer", "--budget", "20", "--seed", "1"],
}
RESUMED_BUDGET = "40"  # "resumed" stops at 20 queries and is resumed to this many
UNINTERRUPTED = "evolution-nnformer"  # the same search run in one go: the resumed history must equal it
# Fields that measure time or place, not behaviour.
UNTIMED = {"time", "timings", "run_dir", "started", "finished", "worker", "created", "nasloop_version"}


def export(rev: str, into: Path) -> Path:
    """The files of ``rev`` in ``into`` (``git archive``), beside the shared data like this checkout."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def cli(code: Path, args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "nasloop.cli", *args], cwd=code, env=env, capture_output=True,
                          text=True)


def run_cases(code: Path, out: Path, names: list[str]) -> dict[str, str]:
    """Each case's run directory under ``out``; the value says ``ok`` or why it did not run."""
    status = {}
    for name in names:
        done = cli(code, ["search", "-q", "--out", str(out / name), *CASES[name]])
        if done.returncode == 0 and name == "resumed":
            done = cli(code, ["search", "-q", "--resume", str(out / name), "--budget", RESUMED_BUDGET])
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        status[name] = "ok" if done.returncode == 0 else f"exit {done.returncode}: {last[0][:200]}"
        print(f"  {code.name:>12} {name:<18} {status[name]}", flush=True)
    return status


def untimed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in UNTIMED and not k.endswith("_s")}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def read_run(directory: Path) -> dict[str, Any]:
    """A run's files without their timing fields; history in submission order (parallel runs)."""
    out: dict[str, Any] = {}
    for name in ("history.jsonl", "rounds.jsonl"):
        rows = [untimed(json.loads(line)) for line in (directory / name).read_text().splitlines() if line.strip()]
        out[name] = sorted(rows, key=lambda r: r.get("number", 0)) if name == "history.jsonl" else rows
    for name in ("summary.json", "config.json"):
        out[name] = untimed(json.loads((directory / name).read_text()))
    return out


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What differs between two runs' files. Keys of ``summary.json`` / ``config.json`` that only one
    side writes (an option added since) are not differences: :func:`added_keys` lists them."""
    found = []
    for file, content in a.items():
        if content == b[file]:
            continue
        if isinstance(content, dict):
            keys = sorted(k for k in set(content) & set(b[file]) if content[k] != b[file][k])
            if keys:
                found.append(f"{file}: {', '.join(keys)}")
        else:
            first = next((i for i, (x, y) in enumerate(zip(content, b[file])) if x != y), min(len(content),
                                                                                              len(b[file])))
            found.append(f"{file}: from row {first + 1} ({len(content)} vs {len(b[file])} rows)")
    return found


def added_keys(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Keys of the JSON files that ``b`` writes and ``a`` does not (or the other way round)."""
    return sorted(f"{file}: {k}" for file in ("summary.json", "config.json") for k in set(a[file]) ^ set(b[file]))


def histories(args: argparse.Namespace) -> dict[str, Any]:
    names = args.cases or list(CASES)
    with tempfile.TemporaryDirectory() as tmp:
        base = export(args.base, Path(tmp) / "base")
        print(f"base {args.base} -> {base}; this checkout {ROOT}")
        base_status = run_cases(base, Path(tmp) / "runs-base", names)
        head_status = run_cases(ROOT, Path(tmp) / "runs-head", names)
        cases = {}
        for name in names:
            if head_status[name] != "ok":
                cases[name] = {"result": "fails here", "why": head_status[name]}
            elif base_status[name] != "ok":
                cases[name] = {"result": "not in base", "why": base_status[name]}
            else:
                base_run, head_run = read_run(Path(tmp) / "runs-base" / name), read_run(Path(tmp) / "runs-head" / name)
                diff = differences(base_run, head_run)
                cases[name] = {"result": "same" if not diff else "different", "queries": len(head_run["history.jsonl"]),
                               "differences": diff, "keys_in_one_only": added_keys(base_run, head_run)}
        both_ran = "resumed" in names and UNINTERRUPTED in names
        if both_ran and head_status["resumed"] == head_status[UNINTERRUPTED] == "ok":
            resumed = read_run(Path(tmp) / "runs-head" / "resumed")["history.jsonl"]
            whole = read_run(Path(tmp) / "runs-head" / UNINTERRUPTED)["history.jsonl"]
            cases["resumed"]["same_as_uninterrupted"] = resumed == whole
    for name, case in cases.items():
        extra = "" if "same_as_uninterrupted" not in case else \
            f" (resumed history {'equals' if case['same_as_uninterrupted'] else 'DIFFERS FROM'} {UNINTERRUPTED})"
        print(f"{name:<18} {case['result']:<12} {case.get('queries', '')} {'; '.join(case.get('differences', []))}"
              f"{extra}")
    return {"base": args.base, "head": _head(), "cases": cases}


FIT_SNIPPET = """
import json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from nasloop.registry import make_benchmark, make_predictor
from nasloop.space import graph_for
seed = int(sys.argv[1])
bench = make_benchmark("nb201", data=sys.argv[2])
space = bench.space
rng = np.random.default_rng(seed)
archs = list(dict.fromkeys(space.sample(rng) for _ in range(150)))[:100]
predictor = make_predictor("nnformer", preset="fast", seed=seed)
graphs = [graph_for(space, a, getattr(predictor, "graph_kind", None)) for a in archs]
y = np.array([bench.query(a).metrics["val_acc"] for a in archs])
t0 = time.process_time()
predictor.fit(graphs, y)
print(json.dumps({"fit_cpu_s": time.process_time() - t0}))
"""


def timing(args: argparse.Namespace) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        codes = {"base": export(args.base, Path(tmp) / "base"), "head": ROOT}
        for repeat in range(args.repeats):
            row: dict[str, Any] = {"repeat": repeat}
            for label, code in codes.items():
                row[f"{label}_fit_cpu_s"] = _fit_seconds(code, seed=repeat)
                row[f"{label}_search_wall_s"], row[f"{label}_search_cpu_s"] = _search_seconds(
                    code, seed=repeat, out=Path(tmp) / f"{label}-{repeat}")
            rows.append(row)
            print("  " + "  ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
                  flush=True)
    summary = {}
    for part in ("fit_cpu_s", "search_wall_s", "search_cpu_s"):
        base = [r[f"base_{part}"] for r in rows]
        head = [r[f"head_{part}"] for r in rows]
        summary[part] = {"base_median": round(statistics.median(base), 3),
                         "head_median": round(statistics.median(head), 3),
                         "median_ratio": round(statistics.median(h / b for h, b in zip(head, base)), 3)}
        print(f"{part:<14} base {summary[part]['base_median']:8.2f}  head {summary[part]['head_median']:8.2f}  "
              f"head/base {summary[part]['median_ratio']:.3f}")
    return {"base": args.base, "head": _head(), "repeats": rows, "summary": summary}


def _fit_seconds(code: Path, *, seed: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", FIT_SNIPPET, str(seed), C10], cwd=code, env=env,
                          capture_output=True, text=True, check=True)
    return round(json.loads(done.stdout.strip().splitlines()[-1])["fit_cpu_s"], 3)


def _search_seconds(code: Path, *, seed: int, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds (the child's) of a 100-query guided search from the CLI."""
    before = os.times()
    t0 = time.perf_counter()
    done = cli(code, ["search", "-q", "--data", C10, "--strategy", "evolution", "--predictor", "nnformer",
                      "--budget", "100", "--seed", str(seed), "--out", str(out)])
    wall = time.perf_counter() - t0
    after = os.times()
    if done.returncode != 0:
        raise SystemExit(f"search failed in {code}: {done.stderr.strip()[-300:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return round(wall, 3), round(cpu, 3)


def studies(args: argparse.Namespace) -> dict[str, Any]:
    first, second = Path(args.first), Path(args.second)
    runs = sorted(p.parent.relative_to(first) for p in first.glob("**/history.jsonl"))
    if not runs:
        raise SystemExit(f"{first} holds no run (no history.jsonl below it)")
    cases = {}
    for run in runs:
        if not (second / run / "history.jsonl").exists():
            cases[str(run)] = {"result": f"missing in {second}"}
            continue
        diff = differences(read_run(first / run), read_run(second / run))
        cases[str(run)] = {"result": "same" if not diff else "different", "differences": diff}
    counts = {r: sum(c["result"] == r for c in cases.values()) for r in {c["result"] for c in cases.values()}}
    for run, case in cases.items():
        if case["result"] != "same":
            print(f"{run}: {case['result']} {'; '.join(case.get('differences', []))}")
    print(f"{len(runs)} runs: " + ", ".join(f"{n} {r}" for r, n in sorted(counts.items())))
    return {"first": str(first), "second": str(second), "counts": counts, "runs": cases}


def _head() -> str:
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return rev.stdout.strip() + ("+changes" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    h = sub.add_parser("histories", help="same seed, same history, against --base")
    h.add_argument("--base", required=True, help="git revision to compare with")
    h.add_argument("--cases", nargs="*", choices=sorted(CASES), help="a subset of the cases (default: all)")
    t = sub.add_parser("timing", help="predictor fit and a 100-query search, side by side with --base")
    t.add_argument("--base", required=True)
    t.add_argument("--repeats", type=int, default=5)
    s = sub.add_parser("studies", help="two directories of one compare study, run by run")
    s.add_argument("first")
    s.add_argument("second")
    for p in (h, t, s):
        p.add_argument("--out", default=None, help="JSON file (default: benchmarks/results/behaviour-<part>.json)")
    args = parser.parse_args()
    result = {"histories": histories, "timing": timing, "studies": studies}[args.part](args)
    out = Path(args.out) if args.out else RESULTS / f"behaviour-{args.part}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    cases = result.get("cases") or result.get("runs") or {}
    if any(c["result"] not in ("same", "not in base") or c.get("same_as_uninterrupted") is False
           for c in cases.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
