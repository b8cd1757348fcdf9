"""A tiny real study end to end through the CLI, its resume, and `nasloop plot`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli as cli
from tests.processes import child_pids, process_alive

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def study(tmp_path_factory, nb201_cifar10_path):
    out = tmp_path_factory.mktemp("study") / "s"
    args = ("compare", "--data", str(nb201_cifar10_path), "--strategy", "random", "--strategy", "evolution",
            "--predictor", "none", "--seeds", "2", "--budget", "12", "--jobs", "2", "--out", str(out), "--json")
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout), args


def test_study_layout_and_summary(study):
    out, payload, _ = study
    assert payload["metric"] == "val_acc" and payload["report"] == "test_acc"
    assert payload["optimum"]["val_acc"] == pytest.approx(91.6067)
    labels = sorted(c["label"] for c in payload["configurations"])
    assert labels == ["evolution", "random"]
    for label in labels:
        for seed in (0, 1):
            history = (out / label / f"seed-{seed}" / "history.jsonl").read_text().splitlines()
            assert len(history) == 12
    assert (out / "summary.md").read_text().count("|") > 10
    assert (out / "curves.csv").read_text().startswith("configuration,queries")
    for name in ("curves.png", "queries_to_optimum.png"):
        assert (out / name).stat().st_size > 5000


def test_rerun_resumes_without_new_queries(study):
    out, payload, args = study
    before = {p: p.read_text() for p in out.rglob("history.jsonl")}
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    assert {p: p.read_text() for p in out.rglob("history.jsonl")} == before
    assert json.loads(again.stdout)["configurations"][0]["hits"] == payload["configurations"][0]["hits"]


def test_conflicting_rerun_is_refused(study):
    out, _, args = study
    before = (out / "study.json").read_text()
    for old, new, needle in [("12", "11", "budget 11 below 12"), ("2", "1", "seeds 1 left out"),
                             ("random", "tpe", "configs")]:
        changed = [new if a == old else a for a in args]
        result = cli(*changed)
        assert result.returncode == 2 and "different study" in result.stderr and needle in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert (out / "study.json").read_text() == before


def test_a_study_grows_by_budget_and_seeds_into_the_larger_study(tmp_path, nb201_cifar10_path):
    common = ("compare", "--data", str(nb201_cifar10_path), "--strategy", "evolution", "--predictor", "none",
              "--jobs", "1", "--json")
    grown, direct = tmp_path / "grown", tmp_path / "direct"
    assert cli(*common, "--seeds", "1", "--budget", "8", "--out", str(grown)).returncode == 0
    result = cli(*common, "--seeds", "2", "--budget", "11", "--out", str(grown))
    assert result.returncode == 0, result.stderr
    assert cli(*common, "--seeds", "2", "--budget", "11", "--out", str(direct)).returncode == 0
    for seed in (0, 1):
        rows = [[{k: v for k, v in json.loads(line).items() if k != "time"}
                 for line in (root / "evolution" / f"seed-{seed}" / "history.jsonl").read_text().splitlines()]
                for root in (grown, direct)]
        assert len(rows[0]) == 11 and rows[0] == rows[1]
    assert json.loads((grown / "study.json").read_text())["budget"] == 11
    assert [(c["n_runs"], c["budget"]) for c in json.loads(result.stdout)["configurations"]] == [(2, 11)]


def test_plot_study_and_single_run(study, tmp_path):
    out, _, _ = study
    result = cli("plot", str(out), "--out", str(tmp_path / "figs"), "--svg", "--log-x", "--json")
    assert result.returncode == 0, result.stderr
    files = json.loads(result.stdout)["files"]
    assert files and all(Path(f).suffix == ".svg" and Path(f).stat().st_size > 1000 for f in files)
    single = cli("plot", str(out / "random" / "seed-0"), "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    assert (tmp_path / "one" / "predictor_scatter.png").stat().st_size > 1000


def test_plot_missing_path_is_one_line():
    result = cli("plot", "no/such/study")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads worker processes from /proc")
def test_sigterm_stops_the_workers_too(nb201_cifar10_path, tmp_path):
    import signal
    import time

    out = tmp_path / "s"
    env = {k: v for k, v in os.environ.items() if k != "NASLOOP_NB201"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nasloop.cli", "compare", "--data", str(nb201_cifar10_path), "--strategy", "random",
         "--predictor", "nnformer", "--seeds", "2", "--budget", "40", "--jobs", "2", "--out", str(out)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.stat().st_size for p in out.glob("*/*/history.jsonl")):
        time.sleep(0.2)
    workers = child_pids(proc.pid)
    assert proc.poll() is None and workers, "the study ended before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    time.sleep(1.0)
    assert not [pid for pid in workers if process_alive(pid)], "workers outlived the study"
    assert not any((p / "summary.json").exists() for p in out.glob("*/*"))  # interrupted, resumable


@pytest.mark.parametrize("line", ["data = 42", "fit_budget = \"lots\"", "objectives = 3"])
def test_an_ill_typed_study_file_value_is_refused_even_where_a_flag_overrides_it(nb201_cifar10_path, tmp_path, line):
    study_file = tmp_path / "study.toml"
    study_file.write_text(f'strategies = ["random"]\n{line}\n')
    out = cli("compare", "--config", str(study_file), "--data", str(nb201_cifar10_path), "--fit-budget", "6",
              "--objective", "val_acc:max", "--objective", "test_acc:max", "--seeds", "1", "--budget", "5",
              "--out", str(tmp_path / "study"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert line.split(" =")[0] in out.stderr
    assert not (tmp_path / "study").exists()


def test_a_one_seed_study_prints_no_warning(nb201_cifar10_path, tmp_path):
    out = cli("compare", "--data", str(nb201_cifar10_path), "--strategy", "random", "--predictor", "none",
              "--seeds", "1", "--budget", "5", "--out", str(tmp_path / "study"), "--json")
    assert out.returncode == 0, out.stderr
    assert "Warning" not in out.stderr, out.stderr
