"""The search-efficiency tables of docs/results.md: baselines against the guided default.

    python benchmarks/search_studies.py cifar10    # 25 seeds, budget 150 (docs/study_cifar10.toml)
    python benchmarks/search_studies.py cifar100   # the same study on CIFAR-100 (search and report test_acc)
    python benchmarks/search_studies.py 12ep       # the 12-epoch columns of both tables, 10 seeds, budget 100
    python benchmarks/search_studies.py cifar10 --list

Each writes benchmarks/results/studies-TABLE.json: per configuration the median queries to the
optimum, the share of runs that found it and the mean report after 25/50/100/150 queries
(``nasloop compare --json``). ``--quick``: 2 seeds, budget 20.
"""

from __future__ import annotations

from published import main

DATA = "../shared/data/nb201"
STUDY_FILE = "docs/study_cifar10.toml"


def study(out: str, quick: bool, *args: str) -> list[str]:
    """One ``nasloop compare`` command line (run directories under runs/, resumed when rerun)."""
    small = ("--seeds", "2", "--budget", "20") if quick else ()
    return ["compare", *args, *small, "--jobs", "2", "--out", f"runs/{out}{'-quick' if quick else ''}"]


def twelve_epochs(table: str, quick: bool) -> list[str]:
    metric = ("--metric", "val_acc_12ep", "--report", "test_acc_12ep")
    return study(f"general-{table}-12ep", quick, "--data", f"{DATA}/{table}.csv", *metric,
                 "--strategy", "random", "--strategy", "evolution", "--predictor", "none", "--predictor", "nnformer",
                 *(() if quick else ("--seeds", "10", "--budget", "100")))


TABLES = {
    "cifar10": lambda quick: [study("study-c10", quick, "--config", STUDY_FILE)],
    "cifar100": lambda quick: [study("study-c100", quick, "--config", STUDY_FILE, "--data", f"{DATA}/cifar100.csv")],
    "12ep": lambda quick: [twelve_epochs("cifar10", quick), twelve_epochs("cifar100", quick)],
}

if __name__ == "__main__":
    main(__doc__, TABLES, prefix="studies")
