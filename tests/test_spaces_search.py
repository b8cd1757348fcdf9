"""A search runs end to end on every space: the MLP plug-in, NAS-Bench-101, DARTS (table and real training).

Through the real CLI (``python -m nasloop.cli search`` from the repository root, as a user runs it) and
through ``nasloop.run_search``. The MLP and DARTS evaluators train real networks, so budgets are tiny.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from nasloop.benchmark import Benchmark
from tests.conftest import SHARED_DATA, require_shared
from tests.conftest import run_cli as conftest_cli

ROOT = Path(__file__).resolve().parents[1]
MLP_SPACE = "examples.custom_space.mlp_space:MLPSpace"
MLP_BENCH = "examples.custom_space.mlp_space:make_benchmark"
MLP_ARGS = ("--predictor", "rf", "--strategy", "evolution", "--budget", "6", "--n-warmup", "3",
            "--n-per-round", "2", "--n-pool", "10", "--seed", "0", "--json")
TABLE_ARGS = ("--n-warmup", "3", "--n-per-round", "2", "--n-pool", "10", "--seed", "0", "--json", "-q")
NB101_500 = SHARED_DATA / "nb101" / "nasbench101_500_cifar10.json"
DARTS_725 = SHARED_DATA / "darts" / "nasbench301_725_surrogate_cifar10.json"
# The smallest DARTS training that still trains: 3 cells of 4 channels, 1 epoch on 128 digit images.
TINY_DARTS = {"epochs": 1, "channels": 4, "layers": 3, "batch_size": 64, "n_train": 128, "n_val": 64}


def run_cli(*args: str, **options: Any) -> subprocess.CompletedProcess:
    """``nasloop search ARGS`` (conftest's runner)."""
    return conftest_cli("search", *args, **options)


def history(run: Path, drop: tuple[str, ...] = ("time",)) -> list[dict]:
    rows = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in drop} for row in rows]


# The training seconds differ between runs; everything else must agree.
TIMING = ("time", "cost", "cum_cost")


# --- the MLP plug-in (examples/custom_space) ------------------------------------------------------------------
@pytest.fixture(scope="module")
def mlp_by_name(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mlp") / "by-name"
    proc = run_cli("--space", "mlp-digits", *MLP_ARGS, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n_queries"] == 6
    return out


@pytest.fixture(scope="module")
def mlp_by_path(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mlp") / "by-path"
    proc = run_cli("--space", MLP_SPACE, "--benchmark", MLP_BENCH, *MLP_ARGS, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_mlp_plugin_by_registered_name(mlp_by_name):
    rows = history(mlp_by_name)
    assert len(rows) == len({row["arch"] for row in rows}) == 6
    assert all(0 < row["metrics"]["val_acc"] <= 100 for row in rows)
    config = json.loads((mlp_by_name / "config.json").read_text())
    assert (config["space"], config["benchmark_object"], config["benchmark_factory"]) == ("mlp-digits", False, None)


def test_mlp_plugin_by_module_path_and_benchmark_flag(mlp_by_path, mlp_by_name):
    assert len({row["arch"] for row in history(mlp_by_path)}) == 6
    assert history(mlp_by_path, TIMING) == history(mlp_by_name, TIMING)  # the same space, evaluator and seed
    config = json.loads((mlp_by_path / "config.json").read_text())
    assert (config["space"], config["benchmark_factory"]) == (MLP_SPACE, MLP_BENCH)


def test_mlp_plugin_through_run_search(mlp_by_name):
    import nasloop
    from nasloop.search_config import SearchConfig

    result = nasloop.run_search(space="mlp-digits", strategy="evolution", predictor="rf", budget=6, seed=0,
                                search=SearchConfig(n_warmup=3, n_per_round=2, n_pool=10))
    assert [r.arch for r in result.records] == [row["arch"] for row in history(mlp_by_name)]
    assert [dict(r.metrics) for r in result.records] == [row["metrics"] for row in history(mlp_by_name)]


def test_resume_a_run_started_with_a_benchmark_factory(mlp_by_path, tmp_path):
    # Finished: resume replays it from its files (no training) and leaves the history as it was.
    done = tmp_path / "done"
    shutil.copytree(mlp_by_path, done)
    proc = run_cli("--resume", str(done), "--json", "-q")
    assert proc.returncode == 2 and "repeat --space" in proc.stderr  # plug-ins are named again, not read
    proc = run_cli("--resume", str(done), "--space", MLP_SPACE, "--benchmark", MLP_BENCH, "--json", "-q")
    assert proc.returncode == 0, proc.stderr
    assert history(done) == history(mlp_by_path)
    # Cut after query 4 of 6 (as a kill leaves it): resume imports the factory again and trains the rest.
    cut = tmp_path / "cut"
    shutil.copytree(mlp_by_path, cut)
    lines = (cut / "history.jsonl").read_text().splitlines(keepends=True)
    (cut / "history.jsonl").write_text("".join(lines[:4]))
    rounds = [line for line in (cut / "rounds.jsonl").read_text().splitlines(keepends=True)
              if json.loads(line)["round"] < 1]
    (cut / "rounds.jsonl").write_text("".join(rounds))
    (cut / "summary.json").unlink()
    proc = run_cli("--resume", str(cut), "--space", MLP_SPACE, "--benchmark", MLP_BENCH, "--json", "-q")
    assert proc.returncode == 0, proc.stderr
    assert history(cut, TIMING) == history(mlp_by_path, TIMING)
    assert json.loads(proc.stdout)["n_queries"] == 6


def test_guide_command_works_with_the_console_script_from_the_repo_root(tmp_path):
    # docs/custom_spaces.md: `nasloop search --space examples...:MLPSpace --benchmark ...`, no PYTHONPATH.
    exe = shutil.which("nasloop")
    if exe is None:
        pytest.skip("the nasloop console script is not installed (pip install -e .)")
    proc = run_cli("--space", MLP_SPACE, "--benchmark", MLP_BENCH, "--metric", "val_acc", "--strategy", "random",
                   "--predictor", "none", "--budget", "2", "-q", "--out", str(tmp_path / "run"),
                   pythonpath=(), exe=(exe,))
    assert proc.returncode == 0, proc.stderr
    assert len(history(tmp_path / "run")) == 2


@pytest.mark.parametrize(("args", "needle"), [
    ((MLP_SPACE,), "has no registered benchmark: pass one (--benchmark"),
    (("mlp-digits", "--benchmark", MLP_SPACE), "must be a function f(data=None, dataset=None)"),
    (("nb201", "--benchmark", MLP_BENCH), "answers MLPSpace architectures, not those of space 'nb201'"),
])
def test_bad_benchmark_is_one_line_exit_2(tmp_path, args, needle):
    proc = run_cli("--space", *args, "--predictor", "none", "--budget", "2", "-q", "--out", str(tmp_path / "run"))
    assert proc.returncode == 2 and needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


# --- tables: NAS-Bench-101 (500 cells) and DARTS (725 NAS-Bench-301 surrogate genotypes) ---------------------
def _assert_queried_cells_in(bench, run: Path, n: int) -> None:
    rows = history(run)
    assert len({row["arch"] for row in rows}) == n
    for row in rows:
        bench.row_of(bench.space.from_str(row["arch"]))  # raises InvalidArchitectureError if not in the table


@pytest.mark.parametrize("predictor", ["rf", "none"])
def test_nb101_on_the_500_cell_table(tmp_path, predictor):
    from search_spaces.nasbench101.data import load_benchmark

    data = require_shared(NB101_500)
    proc = run_cli("--space", "nb101", "--data", str(data), "--predictor", predictor, "--budget", "10", *TABLE_ARGS,
                   "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n_queries"] == 10
    _assert_queried_cells_in(load_benchmark(str(data)), tmp_path / "run", 10)


def test_darts_on_the_725_genotype_surrogate_table(tmp_path):
    from search_spaces.darts.train import load_benchmark

    data = require_shared(DARTS_725)
    proc = run_cli("--space", "darts", "--data", str(data), "--predictor", "rf", "--budget", "10", *TABLE_ARGS,
                   "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["n_queries"] == 10 and summary["regret"] is not None
    _assert_queried_cells_in(load_benchmark(str(data)), tmp_path / "run", 10)


# --- DARTS trained for real on scikit-learn's digits -------------------------------------------------------------
def test_darts_real_training_on_digits_cli(tmp_path):
    # The CLI has no training flags; a --benchmark factory picks the smallest training.
    (tmp_path / "tiny_darts.py").write_text(
        "from search_spaces.darts.train import load_benchmark\n\n\n"
        f"def make(data=None, dataset=None):\n    return load_benchmark(data, dataset, **{TINY_DARTS!r})\n"
    )
    out = tmp_path / "run"
    proc = run_cli("--space", "darts", "--benchmark", "tiny_darts:make", "--predictor", "none", "--budget", "2",
                   "--json", "--out", str(out), pythonpath=(ROOT, tmp_path))  # not -q: the training bar runs too
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["n_queries"] == 2 and "digits" in summary["benchmark"]
    rows = history(out)
    assert len({row["arch"] for row in rows}) == 2
    assert all(set(row["metrics"]) == {"val_acc", "train_acc", "params", "train_time"} for row in rows)


def test_darts_real_training_through_run_search_reports_steps():
    import nasloop
    from search_spaces.darts.train import load_benchmark

    bench = load_benchmark(**TINY_DARTS)
    steps: list[tuple[int, int]] = []

    def hook(benchmark):
        assert benchmark is bench
        benchmark.progress = lambda done, total: steps.append((done, total))

    result = nasloop.run_search(space="darts", benchmark=bench, strategy="evolution", budget=2, predictor=None,
                                seed=0, on_benchmark=hook)
    assert len(result.records) == 2 and result.summary["metric"] == "val_acc"
    assert steps == [(1, 2), (2, 2)] * 2  # 128 images, batch 64, 1 epoch: 2 steps per genotype
    assert all(r.cost == pytest.approx(r.metrics["train_time"]) for r in result.records)


@pytest.mark.slow
def test_darts_default_training_on_digits_cli(tmp_path):
    # The literal command: default training (about 10-20 s a genotype on 2 CPU cores).
    proc = run_cli("--space", "darts", "--predictor", "none", "--budget", "2", "--json", "-q",
                   "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n_queries"] == 2


class _Trainer(Benchmark):
    """A benchmark with the declared ``progress`` hook (None until the CLI sets it)."""

    metrics = ("acc",)

    def query(self, arch):
        raise NotImplementedError


def test_cli_bar_shows_a_training_task_per_evaluation():
    from nasloop.commands.search import _Bar

    bench = _Trainer()
    table = SimpleNamespace()  # not a Benchmark, no progress attribute: nothing attached
    with _Bar(3, disable=False) as bar:
        bar.attach(bench)
        bar.attach(table)
        assert bench.progress == bar.training and not hasattr(table, "progress")
        event = SimpleNamespace(phase="start", best_value=None, tau=None, round=0, replay=False, budget=3,
                                n_queries=0)
        bar.update(event)
        bench.progress(1, 4)
        bench.progress(3, 4)
        (task,) = [t for t in bar.progress.tasks if t.description == "training cell"]
        assert (task.completed, task.total, task.visible) == (3, 4, True)
        bar.update(SimpleNamespace(**{**vars(event), "phase": "query", "n_queries": 1}))
        assert not task.visible
        bench.progress(1, 5)  # the next evaluation starts the bar again
        assert (task.completed, task.total, task.visible) == (1, 5, True)
    with _Bar(3, disable=True) as quiet:
        quiet.attach(bench := _Trainer())
        assert bench.progress is None
