"""Resume: a run SIGKILLed at any point and continued with --resume ends exactly as the uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nasloop.loop import SearchConfig, resume_search, run_search

ROOT = Path(__file__).resolve().parents[1]
TOY = "tests.toy_predictor:ToyRidge"
CFG = {"n_warmup": 6, "n_per_round": 4, "n_pool": 20, "n_local": 2}  # local picks replay too
BUDGET = 30

# Runs a search in a fresh process and SIGKILLs itself at the chosen event.
KILLER = """
import os, signal, sys
from nasloop.loop import SearchConfig, run_search
data, out, strategy, predictor, phase, n = sys.argv[1:7]
seen = {"fit": 0}
def callback(event):
    if event.phase == "fit":
        seen["fit"] += 1
    hit = (phase == "start" and event.phase == "start") or (phase == "fit" and event.phase == "fit"
          and seen["fit"] == int(n)) or (phase == "query" and event.phase == "query" and not event.replay
          and event.n_queries == int(n))
    if hit:
        os.kill(os.getpid(), signal.SIGKILL)
run_search(space="nb201", strategy=strategy, budget=__BUDGET__, predictor=predictor, data=data, seed=7,
           search=SearchConfig(**__CFG__), out=out, resume=os.path.isdir(out), callback=callback)
""".replace("__BUDGET__", str(BUDGET)).replace("__CFG__", repr(CFG))


def _killed_run(data: Path, out: Path, strategy: str, predictor: str, phase: str, n: int, hashseed: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": hashseed}
    proc = subprocess.run([sys.executable, "-c", KILLER, str(data), str(out), strategy, predictor, phase, str(n)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def _reference(data: Path, out: Path, strategy: str, predictor: str) -> Path:
    run_search(space="nb201", benchmark=None, strategy=strategy, budget=BUDGET, predictor=predictor, data=str(data),
               seed=7, search=SearchConfig(**CFG),
               out=out)
    return out


def _lines(path: Path, drop: tuple[str, ...]) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in drop} for row in rows]


def _assert_same_run(done: Path, ref: Path) -> None:
    assert _lines(done / "history.jsonl", ("time",)) == _lines(ref / "history.jsonl", ("time",))
    assert _lines(done / "rounds.jsonl", ("fit_s",)) == _lines(ref / "rounds.jsonl", ("fit_s",))
    fit_s = [row["fit_s"] for row in _lines(done / "rounds.jsonl", ())]
    assert fit_s == sorted(fit_s)  # cumulative across the processes of a resumed run
    ignore = ("timings", "resumed", "run_dir")
    a, b = (json.loads((d / "summary.json").read_text()) for d in (done, ref))
    assert {k: v for k, v in a.items() if k not in ignore} == {k: v for k, v in b.items() if k not in ignore}
    archs = [row["arch"] for row in _lines(done / "history.jsonl", ())]
    assert len(archs) == len(set(archs)) == BUDGET


CASES = [
    pytest.param("tpe", TOY, "start", 0, id="tpe-toy-before-first-query"),
    pytest.param("tpe", TOY, "fit", 3, id="tpe-toy-during-third-fit"),
    pytest.param("tpe", TOY, "query", 17, id="tpe-toy-mid-round"),
    pytest.param("evolution", "none", "query", 14, id="evolution-none"),
    pytest.param("tpe", TOY, "query", 4, id="tpe-toy-mid-warmup", marks=pytest.mark.slow),
    pytest.param("evolution", TOY, "query", 22, id="evolution-toy", marks=pytest.mark.slow),
    pytest.param("random", TOY, "query", 29, id="random-toy-last-query", marks=pytest.mark.slow),
    pytest.param("tpe", "none", "query", 9, id="tpe-none", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("strategy", "predictor", "phase", "n"), CASES)
def test_resume_after_sigkill_equals_uninterrupted_run(nb201_cifar10_path, tmp_path, strategy, predictor, phase, n):
    ref = _reference(nb201_cifar10_path, tmp_path / "ref", strategy, predictor)
    run = tmp_path / "killed"
    _killed_run(nb201_cifar10_path, run, strategy, predictor, phase, n, hashseed="1")
    assert (run / "config.json").exists() and not (run / "summary.json").exists()
    written = len((run / "history.jsonl").read_text().splitlines())
    assert written == (n if phase == "query" else written)
    resume_search(run, plugins=[TOY])
    _assert_same_run(run, ref)


def test_killed_twice_then_resumed_from_the_cli(nb201_cifar10_path, tmp_path):
    ref = _reference(nb201_cifar10_path, tmp_path / "ref", "evolution", TOY)
    run = tmp_path / "killed"
    _killed_run(nb201_cifar10_path, run, "evolution", TOY, "query", 8, hashseed="2")
    _killed_run(nb201_cifar10_path, run, "evolution", TOY, "query", 19, hashseed="3")  # killed while resuming
    assert len((run / "history.jsonl").read_text().splitlines()) == 19
    proc = subprocess.run([sys.executable, "-m", "nasloop.cli", "search", "--resume", str(run), "--predictor", TOY,
                           "--json", "-q"],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n_queries"] == BUDGET
    _assert_same_run(run, ref)


def test_partial_last_line_is_dropped_and_redone(nb201_cifar10_path, tmp_path):
    ref = _reference(nb201_cifar10_path, tmp_path / "ref", "tpe", TOY)
    run = _reference(nb201_cifar10_path, tmp_path / "cut", "tpe", TOY)
    lines = (run / "history.jsonl").read_text().splitlines(keepends=True)
    (run / "history.jsonl").write_text("".join(lines[:11]) + lines[11][:25])  # killed mid-write
    (run / "rounds.jsonl").write_text("".join((run / "rounds.jsonl").read_text().splitlines(True)[:2]))
    (run / "summary.json").unlink()
    resume_search(run, plugins=[TOY])
    _assert_same_run(run, ref)


def _run(data: Path, out: Path, strategy: str, predictor: str, budget: int) -> Path:
    run_search(space="nb201", benchmark=None, strategy=strategy, budget=budget, predictor=predictor, data=str(data),
               seed=7, search=SearchConfig(**CFG),
               out=out)
    return out


@pytest.mark.parametrize("shorter", [
    pytest.param(28, id="last-round-cut-short"),  # 6 warm-up + 5 rounds of 4 + 2 of a 4-pick round
    pytest.param(26, id="ends-on-a-round"),
])
def test_a_finished_run_extended_equals_a_run_started_with_the_larger_budget(nb201_cifar10_path, tmp_path, shorter):
    ref = _reference(nb201_cifar10_path, tmp_path / "ref", "evolution", TOY)
    run = _run(nb201_cifar10_path, tmp_path / "run", "evolution", TOY, shorter)
    assert json.loads((run / "summary.json").read_text())["n_queries"] == shorter
    result = resume_search(run, budget=BUDGET, plugins=[TOY])
    assert result.summary["n_queries"] == BUDGET
    assert json.loads((run / "config.json").read_text())["budget"] == BUDGET
    _assert_same_run(run, ref)


def test_an_extension_killed_midway_resumes_with_the_new_budget(nb201_cifar10_path, tmp_path):
    ref = _reference(nb201_cifar10_path, tmp_path / "ref", "tpe", TOY)
    run = _run(nb201_cifar10_path, tmp_path / "run", "tpe", TOY, 27)

    def stop(event):
        if event.phase == "query" and not event.replay and event.n_queries == 29:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        resume_search(run, budget=BUDGET, plugins=[TOY], callback=stop)
    assert not (run / "summary.json").exists()  # the shorter run's summary is gone, not stale
    resume_search(run, plugins=[TOY])  # the new budget was recorded
    _assert_same_run(run, ref)


def test_a_budget_below_the_queries_held_is_refused(nb201_cifar10_path, tmp_path):
    from nasloop.errors import ConfigError

    run = _run(nb201_cifar10_path, tmp_path / "run", "random", "none", 12)
    before = {p.name: p.read_text() for p in run.iterdir()}
    with pytest.raises(ConfigError, match="already holds 12 queries"):
        resume_search(run, budget=10)
    assert {p.name: p.read_text() for p in run.iterdir()} == before


def test_resuming_a_finished_run_changes_nothing(nb201_cifar10_path, tmp_path):
    run = _reference(nb201_cifar10_path, tmp_path / "run", "random", "none")
    before = (run / "history.jsonl").read_text()
    (run / "summary.json").unlink()  # killed while writing the summary
    result = resume_search(run)
    assert (run / "history.jsonl").read_text() == before
    assert result.summary["n_queries"] == BUDGET and (run / "summary.json").exists()


def test_resume_refits_the_predictor_and_reads_no_stored_one(nb201_cifar10_path, tmp_path):
    """Killed in round 3 (query 17 of 6 + 4 + 4 + 4...): resume redoes fits #1-#3 in order, then #4-#6
    of the rounds still to come, and the warm-started predictor ends where the uninterrupted one did.
    A ``predictor.pkl`` left by an older version (here one that would run code) is never unpickled."""
    ref = _reference(nb201_cifar10_path, tmp_path / "ref", "evolution", TOY)
    run = tmp_path / "killed"
    _killed_run(nb201_cifar10_path, run, "evolution", TOY, "query", 17, hashseed="5")
    assert not (run / "predictor.pkl").exists()
    marker = tmp_path / "pwned"
    import pickle

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (run / "predictor.pkl").write_bytes(pickle.dumps(Evil()))
    events = []
    resume_search(run, plugins=[TOY], callback=events.append)
    assert sum(e.phase == "fit" for e in events) == 3 + 3
    assert not marker.exists()
    _assert_same_run(run, ref)
