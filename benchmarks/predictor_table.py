"""The predictor tables of docs/results.md: Kendall's tau from few labels, and latency errors.

    python benchmarks/predictor_table.py cifar10      # NN-Former, NAR-Former V2 and baselines, N 156 / 1563
    python benchmarks/predictor_table.py cifar100     # the same models at N = 156 on a table not tuned on
    python benchmarks/predictor_table.py latency      # four devices of latency_ms.csv, N = 1563
    python benchmarks/predictor_table.py v2-paper     # NAR-Former V2's paper preset (about 30 min a fit)
    python benchmarks/predictor_table.py cifar10 --list   # the commands only

Each writes benchmarks/results/predictors-TABLE.json (``--quick``: N = 50, one seed).
"""

from __future__ import annotations

from published import main

DATA = "../shared/data/nb201"
TRANSFORMERS = ("nnformer", "narformer2")
BASELINES = ("mlp", "gin", "rf")
LATENCY_DEVICES = ("pixel3", "raspi4", "eyeriss", "1080ti_1")


def evaluate(data: str, target: str, predictors: tuple[str, ...], sizes: tuple[int, ...], seeds: int,
             out: str, quick: bool, *extra: str) -> list[str]:
    """One ``nasloop predictor eval`` command line."""
    if quick:
        sizes, seeds, out = (50,), 1, out + "-quick"
    args = ["predictor", "eval", "--data", f"{DATA}/{data}", "--target", target]
    for name in predictors:
        args += ["--predictor", name]
    for size in sizes:
        args += ["--train-size", str(size)]
    return [*args, "--seeds", str(seeds), *extra, "--out", f"runs/{out}"]


TABLES = {
    "cifar10": lambda quick: [
        evaluate("cifar10.csv", "val_acc", TRANSFORMERS, (156, 1563), 3, "table-acc", quick),
        evaluate("cifar10.csv", "val_acc", BASELINES, (156, 1563), 3, "table-base", quick),
    ],
    "cifar100": lambda quick: [
        evaluate("cifar100.csv", "test_acc", TRANSFORMERS + BASELINES, (156,), 3, "table-c100", quick),
    ],
    "latency": lambda quick: [
        evaluate("latency_ms.csv", device, ("rf", *TRANSFORMERS), (1563,), 1, f"pe-lat-{device}", quick)
        for device in LATENCY_DEVICES
    ],
    "v2-paper": lambda quick: [
        evaluate("cifar10.csv", "val_acc", ("narformer2",), (156,), 3, "table-v2-paper", quick,
                 *(() if quick else ("--preset", "paper"))),
    ],
}

if __name__ == "__main__":
    main(__doc__, TABLES, prefix="predictors")
