"""`nasloop search`: summary, run directory, determinism in fresh processes, TOML config, one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli as conftest_cli

ROOT = Path(__file__).resolve().parents[1]
TOY = "tests.toy_predictor:ToyRidge"
FAST = ("--n-warmup", "5", "--n-per-round", "4", "--n-pool", "20", "-q")


def run_cli(*args: str, **options: Any) -> subprocess.CompletedProcess:
    """``nasloop search ARGS`` (conftest's runner)."""
    return conftest_cli("search", *args, **options)


def history(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "time"} for row in rows]


def test_search_writes_the_run_and_a_json_summary(nb201_cifar10_path, tmp_path):
    out = tmp_path / "run"
    proc = run_cli("--data", str(nb201_cifar10_path), "--strategy", "tpe", "--predictor", TOY, "--budget", "20",
                   "--out", str(out), "--json", *FAST)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["n_queries"] == 20 and summary["metric"] == "val_acc" and summary["report"] == "test_acc"
    assert summary["regret"] == pytest.approx(summary["optimum"]["test_acc"]["value"]
                                              - summary["best"]["report_value"])
    assert sorted(p.name for p in out.iterdir()) == [".nasloop.lock", "config.json", "history.jsonl",
                                                     "rounds.jsonl", "summary.json"]
    assert len({row["arch"] for row in history(out)}) == 20
    config = json.loads((out / "config.json").read_text())
    assert config["search"]["n_pool"] == 20 and config["data"] == str(nb201_cifar10_path.resolve())


def test_text_summary_and_default_run_directory(nb201_cifar10_path, tmp_path):
    proc = run_cli("--data", str(nb201_cifar10_path), "--strategy", "random", "--predictor", "none",
                   "--budget", "10", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for needle in ("best cell:", "val_acc", "test_acc", "optimum 91.6067", "regret", "run:"):
        assert needle in proc.stdout
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("nb201-random-none-s0-")


@pytest.mark.parametrize("strategy", ["evolution", "tpe"])
def test_same_seed_same_history_in_fresh_processes(nb201_cifar10_path, tmp_path, strategy):
    runs = []
    for i, hashseed in enumerate(("0", "4242")):
        out = tmp_path / f"run{i}"
        proc = run_cli("--data", str(nb201_cifar10_path), "--strategy", strategy, "--predictor", TOY,
                       "--budget", "18", "--seed", "3", "--out", str(out), *FAST, hashseed=hashseed)
        assert proc.returncode == 0, proc.stderr
        runs.append(history(out))
    assert runs[0] == runs[1]


def test_config_file_with_flags_overriding_it(nb201_cifar10_path, tmp_path):
    toml = tmp_path / "search.toml"
    toml.write_text(f'data = "{nb201_cifar10_path}"\nstrategy = "random"\npredictor = "{TOY}"\nbudget = 12\n'
                    "[search]\nn_warmup = 4\nn_per_round = 3\nn_pool = 9\n")
    out = tmp_path / "run"
    proc = run_cli("--config", str(toml), "--budget", "9", "--out", str(out), "--json", "-q")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert (config["strategy"], config["budget"], config["search"]["n_per_round"]) == ("random", 9, 3)
    assert [row["round"] for row in history(out)] == [0] * 4 + [1] * 3 + [2] * 2


@pytest.fixture(scope="module")
def finished_run(nb201_cifar10_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    proc = run_cli("--data", str(nb201_cifar10_path), "--strategy", "random", "--predictor", "none",
                   "--budget", "6", "--out", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--strategy", "nope"), "unknown strategy 'nope'"),
        (("--predictor", "nope"), "unknown predictor 'nope'"),
        (("--budget", "0"), "budget must be a positive number"),
        (("--budget", "-4"), "budget must be a positive number"),
        (("--metric", "nope"), "metric 'nope' is not in"),
        (("--report", "nope"), "metric 'nope' is not in"),
        (("--n-pool", "lots"), "n_pool must be a positive integer, 'all' or 'auto'"),
        (("--acquisition", "ei"), "unknown acquisition 'ei'"),
        (("--config", "missing.toml"), "does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_run_directory(nb201_cifar10_path, tmp_path, args, needle):
    out = tmp_path / "run"
    proc = run_cli("--data", str(nb201_cifar10_path), "--predictor", "none", "--out", str(out), *args)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr and not out.exists()


def test_unknown_option_in_config_file(tmp_path):
    toml = tmp_path / "bad.toml"
    toml.write_text("strategy = 'random'\npopulation = 3\n")
    proc = run_cli("--config", str(toml))
    assert proc.returncode == 2 and "unknown options ['population']" in proc.stderr


def test_resume_errors(finished_run, tmp_path):
    cases = [
        (("--resume", str(tmp_path / "nowhere")), "is not a run directory"),
        (("--resume", str(tmp_path)), "has no config.json"),
        (("--resume", str(finished_run), "--budget", "3"), "already holds 6 queries"),
        (("--resume", str(finished_run), "--strategy", "tpe"), "strategy: run has 'random', now 'tpe'"),
        (("--resume", str(finished_run), "--out", str(tmp_path / "x")), "--out and --resume"),
        (("--out", str(finished_run), "--predictor", "none"), "already exists"),
    ]
    for args, needle in cases:
        proc = run_cli(*args)
        assert proc.returncode == 2 and needle in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1


def test_resume_with_a_larger_budget_extends_the_run(finished_run, tmp_path):
    longer = tmp_path / "longer"
    shutil.copytree(finished_run, longer)
    proc = run_cli("--resume", str(longer), "--budget", "9", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n_queries"] == 9
    history = (longer / "history.jsonl").read_text()
    assert history.startswith((finished_run / "history.jsonl").read_text()) and len(history.splitlines()) == 9
    proc = run_cli("--resume", str(longer), "--json")  # the new budget is the run's budget now
    assert proc.returncode == 0 and json.loads(proc.stdout)["n_queries"] == 9


def test_resume_with_matching_flags_and_a_changed_history(finished_run, tmp_path):
    proc = run_cli("--resume", str(finished_run), "--strategy", "random", "--budget", "6", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["n_queries"] == 6
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for name in ("config.json", "history.jsonl"):
        (damaged / name).write_text((finished_run / name).read_text())
    lines = (damaged / "history.jsonl").read_text().splitlines()
    row = json.loads(lines[2])
    row["arch"] = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    (damaged / "history.jsonl").write_text("\n".join([*lines[:2], json.dumps(row)]) + "\n")
    proc = run_cli("--resume", str(damaged))
    assert proc.returncode == 2 and "resume diverged at query 3" in proc.stderr
