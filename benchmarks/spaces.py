"""The search-space figures of docs/results.md: the tables' facts, DARTS and the custom-space example.

    python benchmarks/spaces.py data           # data info of the CIFAR-10 table and the default table
    python benchmarks/spaces.py darts-graphs   # predictors on the 725 NAS-Bench-301 genotypes, N = 100
    python benchmarks/spaces.py darts-demo     # a 10-query search training DARTS networks on digits
    python benchmarks/spaces.py custom         # the custom-space example (MLPs on digits)

Each writes benchmarks/results/spaces-TABLE.json. The NAS-Bench-101 hash check is a test:
``python -m pytest tests/test_nasbench101.py -k "official_hash or wrong_op_mapping"``.
"""

from __future__ import annotations

from published import main

DATA = "../shared/data"
DARTS_725 = f"{DATA}/darts/nasbench301_725_surrogate_cifar10.json"
CUSTOM = ("--space", "examples.custom_space.mlp_space:MLPSpace",
          "--benchmark", "examples.custom_space.mlp_space:make_benchmark", "--metric", "val_acc")


def darts_graphs(quick: bool) -> list[list[str]]:
    predictors = ("rf", "mlp") if quick else ("rf", "mlp", "gin", "nnformer")
    args = ["predictor", "eval", "--space", "darts", "--data", DARTS_725, "--target", "val_acc",
            "--train-size", "100", "--seeds", "1" if quick else "3", "--out", "runs/darts-graphs"]
    for name in predictors:
        args += ["--predictor", name]
    return [args]


TABLES = {
    "data": lambda quick: [["data", "info", "--data", f"{DATA}/nb201/cifar10.csv"], ["data", "info"]],
    "darts-graphs": darts_graphs,
    "darts-demo": lambda quick: [["search", "--space", "darts", "--budget", "2" if quick else "10", "--seed", "0",
                                  "-q"]],
    "custom": lambda quick: [
        ["search", *CUSTOM, "--strategy", "evolution", "--predictor", "none", "--budget", "3" if quick else "8",
         "--seed", "0", "-q"],
        ["search", *CUSTOM, "--strategy", "random", "--predictor", "rf", "--budget", "4" if quick else "12",
         "--n-warmup", "3", "--seed", "0", "-q"],
    ],
}

if __name__ == "__main__":
    main(__doc__, TABLES, prefix="spaces")
