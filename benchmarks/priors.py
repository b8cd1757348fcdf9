"""Predictor priors on NAS-Bench-201: unseen devices and an unseen dataset (writes JSON).

Unseen devices: for each device left out of ``latency_ms.csv``, pre-train a prior on the other
devices, adapt it with ``k`` random cells of the left-out device, test on all 15,625 cells (rho,
tau, MAPE), seeds 0..S-1. ``--group`` leaves several devices out of one pre-training at once.
Unseen dataset: pre-train on CIFAR-10 ``val_acc``, adapt to CIFAR-100 ``test_acc``.
The no-prior baseline trains the same predictor from scratch on the same ``k`` cells.

Examples:
    nice -n 10 python benchmarks/priors.py devices --out runs/priors/lodo.json
    nice -n 10 python benchmarks/priors.py devices --group gold_6226,raspi4,eyeriss,fpga --out runs/priors/four.json
    nice -n 10 python benchmarks/priors.py dataset --out runs/priors/cifar100.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nasloop.predictor_eval import compute_metrics, sample_train  # noqa: E402
from nasloop.registry import make_benchmark, make_predictor  # noqa: E402
from nasloop.space import graphs_for  # noqa: E402
from predictors.prior import PretrainConfig, PriorPredictor, default_graph_kind, pretrain, save_prior  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "nb201"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def metrics(pred: np.ndarray, true: np.ndarray, kind: str) -> dict[str, float]:
    return {k: v for k, v in compute_metrics(pred, true, kind).items() if k in ("kendall_tau", "spearman", "mape")}


def adapt_runs(prior_dir: Path, graphs: list, y: np.ndarray, kind: str, sizes: list[int], seeds: int,
               features: str, penalty: float | str | None = None) -> list[dict]:
    runs = []
    extra = {} if penalty is None else {"penalty": penalty}
    model = PriorPredictor(prior=str(prior_dir), target=kind, features=features, **extra)
    model.prior_features(graphs)  # score every cell once; each adaptation then reads the cache
    for k in sizes:
        for seed in range(seeds):
            idx = sample_train(len(y), k, seed)
            start = time.process_time()
            model.fit([graphs[i] for i in idx], y[idx])
            fit_cpu_s = time.process_time() - start
            runs.append({"k": k, "seed": seed, "with_prior": True, **metrics(model.predict(graphs), y, kind),
                         "fit_cpu_s": fit_cpu_s, "features": model.fit_info_["features"]})
    return runs


def scratch_runs(predictor: str, graphs_of, archs, y: np.ndarray, kind: str, sizes: list[int],
                 seeds: int) -> list[dict]:
    runs = []
    for k in sizes:
        for seed in range(seeds):
            idx = sample_train(len(y), k, seed)
            model = make_predictor(predictor, preset="fast", seed=seed, target=kind)
            graphs = graphs_of(model.graph_kind)
            start = time.process_time()
            model.fit([graphs[i] for i in idx], y[idx])
            fit_cpu_s = time.process_time() - start
            runs.append({"k": k, "seed": seed, "with_prior": False, **metrics(model.predict(graphs), y, kind),
                         "fit_cpu_s": fit_cpu_s})
            log(f"  scratch k={k} seed={seed}: {runs[-1]}")
    return runs


def summarise(runs: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r.get("device", r.get("target")), r["k"], r["with_prior"]), []).append(r)
    out = []
    for (name, k, with_prior), group in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1], kv[0][2])):
        row = {"target": name, "k": k, "with_prior": with_prior, "n_seeds": len(group)}
        for key in ("spearman", "kendall_tau", "mape", "fit_cpu_s"):
            if key in group[0]:
                row[key] = float(np.mean([r[key] for r in group]))
        out.append(row)
    return out


def devices(args: argparse.Namespace) -> dict:
    bench = make_benchmark("nb201", data=str(DATA / "latency_ms.csv"))
    all_devices = list(bench.metrics)
    graph_kind = default_graph_kind(args.predictor, ["latency"])
    graphs = graphs_for(bench.space, bench.archs, graph_kind)
    groups = [g.split(",") for g in args.group] if args.group else [[d] for d in (args.devices or all_devices)]
    cfg = PretrainConfig(steps=args.steps, max_cells=args.max_cells, seed=0)
    runs: list[dict] = []
    priors_dir = Path(args.priors_dir)
    for held in groups:
        rest = [d for d in all_devices if d not in held]
        prior_dir = priors_dir / f"without_{'+'.join(held)}_{args.predictor}_{args.steps}"
        if not (prior_dir / "prior.json").is_file():
            log(f"pre-train on {len(rest)} devices (without {held})")
            values = np.stack([bench.values(d) for d in rest], axis=1)
            settings, net = pretrain(graphs, values, rest, ["latency"] * len(rest), predictor=args.predictor,
                                     graph_kind=graph_kind, config=cfg, sources=[str(DATA / "latency_ms.csv")])
            save_prior(prior_dir, settings, net)
            log(f"  {settings['fit_seconds']} s")
        for device in held:
            y = bench.values(device)
            for r in adapt_runs(prior_dir, graphs, y, "latency", args.sizes, args.seeds, args.features,
                              args.penalty):
                runs.append({"device": device, "pretrained_on": rest, **r})
            if args.scratch:
                cache: dict = {}

                def graphs_of(kind, cache=cache):
                    return cache.setdefault(kind, graphs_for(bench.space, bench.archs, kind))

                for r in scratch_runs(args.predictor, graphs_of, bench.archs, y, "latency", args.sizes, args.seeds):
                    runs.append({"device": device, **r})
            rows = [s for s in summarise([r for r in runs if r["device"] == device])]
            for row in rows:
                log(f"  {row}")
    summary = summarise(runs)
    means = {}
    for k in args.sizes:
        for with_prior in (True, False):
            vals = [r for r in summary if r["k"] == k and r["with_prior"] == with_prior]
            if vals:
                means[f"k={k},prior={with_prior}"] = {m: float(np.mean([v[m] for v in vals]))
                                                      for m in ("spearman", "kendall_tau", "mape")}
    return {"setting": vars(args), "summary": summary, "means": means, "runs": runs}


def dataset(args: argparse.Namespace) -> dict:
    c10 = make_benchmark("nb201", data=str(DATA / "cifar10.csv"))
    c100 = make_benchmark("nb201", data=str(DATA / "cifar100.csv"))
    if c10.archs != c100.archs:
        raise SystemExit("cifar10.csv and cifar100.csv list the cells in different orders")
    graph_kind = default_graph_kind(args.predictor, ["accuracy"])
    graphs = graphs_for(c10.space, c10.archs, graph_kind)
    prior_dir = Path(args.priors_dir) / f"cifar10_{args.source_target}_{args.predictor}_{args.steps}"
    if not (prior_dir / "prior.json").is_file():
        log(f"pre-train on CIFAR-10 {args.source_target}")
        cfg = PretrainConfig(steps=args.steps, max_cells=args.max_cells, seed=0)
        settings, net = pretrain(graphs, c10.values(args.source_target)[:, None], [args.source_target],
                                 ["accuracy"], predictor=args.predictor, graph_kind=graph_kind, config=cfg,
                                 sources=[str(DATA / "cifar10.csv")])
        save_prior(prior_dir, settings, net)
        log(f"  {settings['fit_seconds']} s")
    y = c100.values(args.dataset_target)
    runs = [{"target": args.dataset_target, **r}
            for r in adapt_runs(prior_dir, graphs, y, "accuracy", args.sizes, args.seeds, args.features,
                          args.penalty)]
    if args.scratch:
        def graphs_of(kind):
            return graphs if kind == graph_kind else graphs_for(c100.space, c100.archs, kind)

        runs += [{"target": args.dataset_target, **r}
                 for r in scratch_runs(args.predictor, graphs_of, c100.archs, y, "accuracy", args.scratch_sizes
                                       or args.sizes, args.seeds)]
    summary = summarise(runs)
    for row in summary:
        log(f"  {row}")
    return {"setting": vars(args), "prior": str(prior_dir), "summary": summary, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["devices", "dataset"])
    parser.add_argument("--predictor", default="nnformer", choices=["nnformer", "narformer2"])
    parser.add_argument("--devices", nargs="*", default=None, help="devices left out one at a time (default: all)")
    parser.add_argument("--group", action="append", default=None,
                        help="comma-separated devices left out of one pre-training together (repeatable)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--scratch-sizes", type=int, nargs="+", default=None)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=PretrainConfig.steps)
    parser.add_argument("--max-cells", type=int, default=PretrainConfig.max_cells)
    parser.add_argument("--features", default="auto")
    parser.add_argument("--penalty", type=lambda v: v if v == "loo" else float(v), default=None,
                        help="ridge penalty of the prior's outputs: a number or 'loo' (default: the predictor's)")
    parser.add_argument("--scratch", action="store_true", help="also train the predictor from scratch on the k cells")
    parser.add_argument("--source-target", default="val_acc")
    parser.add_argument("--dataset-target", default="test_acc")
    parser.add_argument("--priors-dir", default="runs/priors/models")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.sizes is None:
        args.sizes = [10, 20, 50] if args.mode == "devices" else [10, 50, 156]
    result = devices(args) if args.mode == "devices" else dataset(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {out}")
    if "means" in result:
        for key, value in result["means"].items():
            log(f"mean {key}: {value}")


if __name__ == "__main__":
    main()
