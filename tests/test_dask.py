"""Real Dask executors with real processes: LocalCluster faults, a killed driver, a CLI-started cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import child_pids, process_alive

ROOT = Path(__file__).resolve().parents[1]
FAULTY = "tests.faulty_benchmark:make_benchmark"

pytest.importorskip("distributed")


def _env(**faults: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAULTY_")}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", **faults}


def _search(*args: str, env: dict[str, str], wait: bool = True):
    predictor = () if "--predictor" in args else ("--predictor", "none")
    cmd = [sys.executable, "-m", "nasloop.cli", "search", "--benchmark", FAULTY, *predictor, "-q", *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _rows(run: Path) -> list[dict]:
    path = run / "history.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def _descendants(pid: int) -> set[int]:
    out: set[int] = set()
    todo = [pid]
    while todo:
        try:
            kids = child_pids(todo.pop())
        except OSError:
            continue
        out |= kids
        todo += kids
    return out


def _wait_for(condition, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


def test_local_cluster_retries_a_killed_worker_records_failures_and_timeouts(nb201_cifar10_path, tmp_path):
    out = tmp_path / "run"
    env = _env(FAULTY_SLEEP="0.1", FAULTY_KILL_ONCE=str(tmp_path / "killed"), FAULTY_KILL_AFTER="3",
               FAULTY_RAISE_MOD="5", FAULTY_HANG_MOD="9")
    done = _search("--data", str(nb201_cifar10_path), "--budget", "20", "--seed", "4", "--workers", "2",
                   "--eval-timeout", "2", "--out", str(out), "--json", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _rows(out)
    assert len(rows) == 20 and len({r["arch"] for r in rows}) == 20  # budget exact, each cell once
    assert (tmp_path / "killed").exists()
    retried = [r for r in rows if r["extra"].get("attempts") == 2]
    assert len(retried) == 1 and retried[0]["extra"]["status"] in ("ok", "failed")
    failed = [r for r in rows if r["extra"]["status"] == "failed"]
    errors = {r["extra"]["error"] for r in failed}
    assert "ValueError: loss is nan" in errors  # the error's last line
    assert any(e.startswith("TimeoutError") for e in errors)
    assert all(not r["metrics"] for r in failed)
    summary = json.loads(done.stdout)
    assert summary["parallel"]["retries"] == 1 and summary["parallel"]["failed"] == len(failed)
    assert summary["n_queries"] == 20


def test_a_driver_killed_with_sigkill_leaves_no_worker_and_resume_finishes_the_run(nb201_cifar10_path, tmp_path):
    out = tmp_path / "run"
    env = _env(FAULTY_SLEEP="0.15")
    args = ("--data", str(nb201_cifar10_path), "--budget", "24", "--seed", "5", "--workers", "2")
    driver = _search(*args, "--out", str(out), env=env, wait=False)
    try:
        _wait_for(lambda: len(_rows(out)) >= 4)
        workers = _descendants(driver.pid)
        assert workers
        driver.kill()
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    _wait_for(lambda: not any(process_alive(p) for p in workers), timeout=30)
    in_flight = {json.loads(line)["arch"] for line in (out / "submitted.jsonl").read_text().splitlines()} \
        - {r["arch"] for r in _rows(out)}
    done = _search("--resume", str(out), "--benchmark", FAULTY, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _rows(out)
    assert len(rows) == 24 and len({r["arch"] for r in rows}) == 24
    assert in_flight <= {r["arch"] for r in rows}  # what was in flight was submitted again
    assert [r["number"] for r in rows] == list(range(1, 25))


@pytest.mark.slow
def test_a_search_on_a_cli_started_cluster_survives_a_killed_worker(nb201_cifar10_path, tmp_path):
    """`dask scheduler` + two `dask worker` processes; one worker is killed mid-run."""
    sched_file = tmp_path / "scheduler.json"
    env = _env(FAULTY_SLEEP="0.25")
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    procs = [subprocess.Popen([*dask, "--scheduler-file", str(sched_file), "--port", "0", "--no-dashboard"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        _wait_for(sched_file.exists, timeout=60)
        worker = [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(sched_file),
                  "--nthreads", "1", "--no-nanny", "--no-dashboard"]
        procs += [subprocess.Popen([*worker, "--name", f"w{i}"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL) for i in range(2)]
        from distributed import Client

        with Client(scheduler_file=str(sched_file), timeout="60s") as client:
            client.wait_for_workers(2, timeout=60)
        out = tmp_path / "run"
        driver = _search("--data", str(nb201_cifar10_path), "--budget", "30", "--seed", "6", "--scheduler-file",
                         str(sched_file), "--out", str(out), "--json", env=env, wait=False)
        _wait_for(lambda: len(_rows(out)) >= 8)
        procs[1].kill()  # one worker dies mid-run (it is evaluating: every worker always is)
        stdout, stderr = driver.communicate(timeout=180)
        assert driver.returncode == 0, stderr[-3000:]
        rows = _rows(out)
        assert len(rows) == 30 and len({r["arch"] for r in rows}) == 30
        assert json.loads(stdout)["n_queries"] == 30
        assert all(r["extra"]["status"] == "ok" for r in rows)
        assert process_alive(procs[0].pid) and process_alive(procs[2].pid)  # the cluster is not shut down
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=30)


def test_a_guided_run_on_a_local_cluster_fits_in_the_background(nb201_cifar10_path, tmp_path):
    out = tmp_path / "run"
    done = _search("--data", str(nb201_cifar10_path), "--predictor", "tests.toy_predictor:ToyRidge", "--budget", "24",
                   "--seed", "2", "--workers", "2", "--n-warmup", "5", "--n-per-round", "4", "--n-pool", "50",
                   "--out", str(out), "--json", env=_env(FAULTY_SLEEP="0.05"))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _rows(out)
    assert len(rows) == 24 and len({r["arch"] for r in rows}) == 24
    guided = [r for r in rows if r["predicted_mean"] is not None]
    assert guided and all(r["round"] >= 1 for r in guided)
    summary = json.loads(done.stdout)
    assert summary["timings"]["fit_s"] > 0 and summary["parallel"]["workers"] == 2


@pytest.mark.slow
def test_compare_interrupted_with_sigint_leaves_no_worker_and_a_rerun_finishes(nb201_cifar10_path, tmp_path):
    out = tmp_path / "study"
    args = [sys.executable, "-m", "nasloop.cli", "compare", "--data", str(nb201_cifar10_path), "--strategy", "random",
            "--predictor", "tests.toy_predictor:ToyRidge", "--seeds", "2", "--budget", "40", "--n-per-round", "1",
            "--n-local", "0", "--jobs", "2", "--out", str(out), "--json"]
    parent = subprocess.Popen(args, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: any(len(p.read_text().splitlines()) >= 5 for p in out.rglob("history.jsonl")))
    workers = _descendants(parent.pid)
    assert parent.poll() is None and workers
    parent.send_signal(signal.SIGINT)
    _, err = parent.communicate(timeout=60)
    assert parent.returncode == 130, err
    _wait_for(lambda: not any(process_alive(p) for p in workers), timeout=10)
    again = subprocess.run(args, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    for path in out.rglob("history.jsonl"):
        rows = _rows(path.parent)
        assert len(rows) == 40 and len({r["arch"] for r in rows}) == 40


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--scheduler-file", "missing-scheduler.json", "does not exist: start the scheduler first"),
    ("--scheduler", "nonsense://x", "cannot reach the Dask scheduler nonsense://x"),
])
def test_an_unreachable_cluster_is_one_line_before_the_run_directory_exists(tmp_path, flag, value, message):
    from tests.conftest import run_cli

    target = str(tmp_path / value) if flag == "--scheduler-file" else value
    out = run_cli("search", "--predictor", "none", "--budget", "3", flag, target, "--out", str(tmp_path / "run"))
    assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_compare_refuses_an_unreachable_cluster_before_writing_the_study(tmp_path, nb201_cifar10_path):
    from tests.conftest import run_cli

    out = run_cli("compare", "--data", str(nb201_cifar10_path), "--strategy", "random", "--seeds", "1", "--budget",
                  "3", "--scheduler", "nonsense://x", "--out", str(tmp_path / "study"))
    assert out.returncode == 2 and "cannot reach the Dask scheduler" in out.stderr
    assert not (tmp_path / "study").exists()
