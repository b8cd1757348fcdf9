"""``--workers N --simulate --cost``, TOML, resume and ``plot --x time`` from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NB201_LATENCY, require_shared

ROOT = Path(__file__).resolve().parents[1]
TOY = "tests.toy_predictor:ToyRidge"
FAST = ("--n-warmup", "5", "--n-per-round", "4", "--n-pool", "20", "-q")


def nasloop(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}
    return subprocess.run([sys.executable, "-m", "nasloop.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)


@pytest.fixture(scope="module")
def data_flags(nb201_cifar10_path):
    return ("--data", str(nb201_cifar10_path), "--data", str(require_shared(NB201_LATENCY)))


def test_simulated_search_from_the_cli_and_its_time_plot(data_flags, tmp_path):
    out = tmp_path / "run"
    done = nasloop("search", *data_flags, "--predictor", TOY, "--budget", "24", "--seed", "2", "--workers", "4",
                   "--simulate", "--cost", "1080ti_256", "--cost-scale", "0.001", "--out", str(out), "--json", *FAST)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["parallel"]["workers"] == 4 and summary["parallel"]["simulated"]
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert len(rows) == 24 and all({"submitted", "worker", "start", "finish"} <= set(r["extra"]) for r in rows)
    # the same options from a TOML file give the same history
    toml = tmp_path / "search.toml"
    toml.write_text(f'data = {json.dumps([str(p) for p in data_flags[1::2]])}\npredictor = "{TOY}"\nbudget = 24\n'
                    'seed = 2\nworkers = 4\nsimulate = true\ncost = "1080ti_256"\ncost_scale = 0.001\n'
                    'n_warmup = 5\nn_per_round = 4\nn_pool = 20\n')
    again = nasloop("search", "--config", str(toml), "--out", str(tmp_path / "again"), "-q", "--json")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again" / "history.jsonl").read_text() == (out / "history.jsonl").read_text()
    # resume of the finished run from its directory alone changes nothing
    resumed = nasloop("search", "--resume", str(out), "--predictor", TOY, "-q", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert len((out / "history.jsonl").read_text().splitlines()) == 24
    plotted = nasloop("plot", str(out), "--x", "time", "--out", str(tmp_path / "fig"))
    assert plotted.returncode == 0, plotted.stderr
    assert (tmp_path / "fig" / "curves_time.png").stat().st_size > 1000


@pytest.mark.parametrize("flags, message", [
    (("--workers", "4", "--simulate"), "--cost COLUMN"),
    (("--workers", "4", "--simulate", "--cost", "nope"), "cost column 'nope'"),
    (("--workers", "0"), "workers must be a positive integer"),
    (("--simulate", "--scheduler", "tcp://127.0.0.1:1"), "takes no scheduler"),
    (("--max-retries", "-1"), "max_retries"),
    (("--eval-timeout", "0"), "eval_timeout"),
])
def test_bad_parallel_options_print_one_line_and_write_nothing(nb201_cifar10_path, tmp_path, flags, message):
    out = tmp_path / "run"
    done = nasloop("search", "--data", str(nb201_cifar10_path), "--predictor", "none", "--budget", "5",
                   "--out", str(out), *flags)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_a_simulated_study_aggregates_time_to_the_optimum(data_flags, tmp_path):
    out = tmp_path / "study"
    done = nasloop("compare", *data_flags, "--strategy", "random", "--predictor", "none", "--seeds", "2",
                   "--budget", "15", "--jobs", "1", "--workers", "4", "--simulate", "--cost", "1080ti_256",
                   "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    (config,) = json.loads(done.stdout)["configurations"]
    assert config["label"] == "random, 4 workers" and len(config["time_hits"]) == 2
    for seed in (0, 1):
        history = out / "random" / f"seed-{seed}" / "history.jsonl"
        rows = [json.loads(line) for line in history.read_text().splitlines()]
        assert {r["extra"]["worker"] for r in rows} == {f"sim-{w}" for w in range(4)}
    assert (out / "curves_time.png").is_file()
    refused = nasloop("compare", *data_flags, "--strategy", "random", "--seeds", "1", "--budget", "5",
                      "--workers", "2", "--out", str(tmp_path / "other"))
    assert refused.returncode == 2 and "needs --simulate" in refused.stderr
