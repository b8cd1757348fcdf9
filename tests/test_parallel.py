"""The asynchronous driver on the simulated executor: parallel time on tables, pick rules, faults."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from nasloop.errors import ConfigError
from nasloop.history import read_history
from nasloop.loop import resume_search, run_search
from nasloop.search_config import SearchConfig
from tests.conftest import NB201_LATENCY, require_shared
from tests.toy_predictor import ToyRidge

CFG = SearchConfig(n_warmup=6, n_per_round=4, n_local=2, n_pool=60, max_fit_steps=None)


@pytest.fixture(scope="module")
def tables(nb201_cifar10_path):
    return [str(nb201_cifar10_path), str(require_shared(NB201_LATENCY))]


def _sim(tables, workers, *, budget=30, seed=3, out=None, predictor=None, **kw):
    return run_search(space="nb201", strategy=kw.pop("strategy", "evolution"), budget=budget, data=tables, seed=seed,
                      predictor=ToyRidge() if predictor is None else predictor, search=CFG, workers=workers,
                      simulate=True, cost="1080ti_256", out=out, **kw)


def _intervals(records):
    return [(r.extra["start"], r.extra["finish"]) for r in records]


def test_one_simulated_worker_picks_what_the_serial_loop_picks(tables):
    serial = run_search(space="nb201", strategy="evolution", budget=30, data=tables, seed=3, predictor=ToyRidge(),
                        search=CFG)
    sim = _sim(tables, 1)
    assert [r.arch for r in sim.records] == [r.arch for r in serial.records]
    assert [r.round for r in sim.records] == [r.round for r in serial.records]
    assert sim.summary["parallel"]["idle_share"] == 0.0


def test_the_same_seed_gives_the_same_simulated_history(tables):
    a, b = _sim(tables, 4), _sim(tables, 4)
    assert [r.to_json() for r in a.records] == [r.to_json() for r in b.records]


@pytest.mark.parametrize("workers", [3, 8])
def test_simulated_workers_run_in_parallel_in_completion_order(tables, workers):
    result = _sim(tables, workers, budget=40)
    recs = result.records
    assert len(recs) == 40 and len({r.arch for r in recs}) == 40  # budget exact, each cell once
    finishes = [r.extra["finish"] for r in recs]
    assert finishes == sorted(finishes) and [r.time for r in recs] == finishes
    for r in recs:  # each query takes its cost: the 1080ti_256 column
        assert r.extra["finish"] - r.extra["start"] == pytest.approx(r.metrics["1080ti_256"], abs=1e-5)
        assert r.cost == pytest.approx(r.metrics["1080ti_256"])
    # never more than `workers` evaluations at once, and each virtual worker runs one at a time
    events = sorted([(s, 1) for s, _ in _intervals(recs)] + [(f, -1) for _, f in _intervals(recs)],
                    key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == workers
    for w in {r.extra["worker"] for r in recs}:
        mine = sorted((r.extra["start"], r.extra["finish"]) for r in recs if r.extra["worker"] == w)
        assert all(a[1] <= b[0] + 1e-9 for a, b in itertools.pairwise(mine))
    assert sorted(r.extra["submitted"] for r in recs) == list(range(1, 41))
    par = result.summary["parallel"]
    assert par["workers"] == workers and par["simulated"]
    assert par["time_to_best"] == next(r.time for r in recs if r.number == result.summary["best"]["number"])
    assert par["makespan"] == pytest.approx(finishes[-1])
    busy = sum(f - s for s, f in _intervals(recs))
    assert par["idle_share"] == pytest.approx(1 - busy / (workers * finishes[-1]), abs=1e-5)


def test_more_simulated_workers_finish_sooner(tables):
    one, eight = _sim(tables, 1, budget=40), _sim(tables, 8, budget=40)
    assert eight.summary["parallel"]["makespan"] < one.summary["parallel"]["makespan"] / 4


def test_pool_picks_avoid_neighbours_of_pending_cells(tables):
    """With local picks off, picks made while others are pending are not one edit from them."""
    from nasloop.registry import make_space

    space = make_space("nb201")
    cfg = SearchConfig(n_warmup=6, n_per_round=4, n_local=0, n_pool=200, max_fit_steps=None)
    result = run_search(space="nb201", strategy="random", budget=40, data=tables, seed=1, predictor=ToyRidge(),
                        search=cfg,
                        workers=6, simulate=True, cost="1080ti_256")
    recs = sorted(result.records, key=lambda r: r.extra["submitted"])
    close = 0
    for r in recs:
        if r.round == 0:
            continue
        arch = space.from_str(r.arch)
        pending = [p for p in recs if p.extra["start"] <= r.extra["start"] < p.extra["finish"] and p is not r]
        close += any(space.from_str(p.arch) in set(space.neighbours(arch)) for p in pending)
    assert close == 0


def test_plain_strategy_runs_in_parallel_too(tables):
    result = _sim(tables, 4, predictor="none", strategy="tpe")
    assert len({r.arch for r in result.records}) == 30
    assert result.summary["parallel"]["workers"] == 4


def test_a_killed_simulated_run_resumes_to_the_same_history(tables, tmp_path):
    whole = _sim(tables, 4, out=tmp_path / "whole")
    part = tmp_path / "part"
    _sim(tables, 4, out=part)
    lines = (part / "history.jsonl").read_text().splitlines(keepends=True)
    (part / "history.jsonl").write_text("".join(lines[:13]) + lines[13][:20])  # killed mid-line
    (part / "summary.json").unlink()
    resumed = resume_search(part, plugins=["tests.toy_predictor:ToyRidge"])
    assert [r.to_json() for r in resumed.records] == [r.to_json() for r in whole.records]
    assert [r.to_json() for r in read_history(part / "history.jsonl")] == [r.to_json() for r in whole.records]
    stored = json.loads((part / "config.json").read_text())
    assert stored["execution"]["workers"] == 4 and stored["execution"]["simulate"]


def test_a_parallel_run_keeps_its_budget_on_resume(tables, tmp_path):
    _sim(tables, 4, out=tmp_path / "r", budget=20)
    with pytest.raises(ConfigError, match="budget"):
        resume_search(tmp_path / "r", budget=30, plugins=["tests.toy_predictor:ToyRidge"])


def test_simulation_needs_a_cost(nb201_cifar10_path, tables):
    with pytest.raises(ConfigError, match="--cost"):
        run_search(space="nb201", data=str(nb201_cifar10_path), predictor="none", budget=5, workers=2, simulate=True)
    with pytest.raises(ConfigError, match="cost column 'nope'"):
        run_search(space="nb201", data=tables, predictor="none", budget=5, workers=2, simulate=True, cost="nope")
    with pytest.raises(ConfigError, match="workers"):
        run_search(space="nb201", data=tables, predictor="none", budget=5, workers=0, simulate=True, cost="1080ti_256")
    with pytest.raises(ConfigError, match="cost_scale"):
        run_search(space="nb201", data=tables, predictor="none", budget=5, cost="1080ti_256", cost_scale=-1.0)


def test_cost_scale_scales_the_simulated_time(tables):
    a = _sim(tables, 2, budget=12, predictor="none")
    b = _sim(tables, 2, budget=12, predictor="none", cost_scale=0.001)
    assert [r.arch for r in a.records] == [r.arch for r in b.records]
    assert b.summary["parallel"]["makespan"] == pytest.approx(a.summary["parallel"]["makespan"] / 1000, rel=1e-4)


# --- faults, on the simulated executor ---------------------------------------------------------------
class _Flaky:
    """A benchmark that raises for some cells (every seventh query it sees)."""

    def __init__(self, inner):
        self.inner, self.n, self.failed = inner, 0, set()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def query(self, arch):
        self.n += 1
        if self.n % 7 == 0:
            self.failed.add(arch)
            raise RuntimeError("CUDA out of memory\nwhile training the cell")
        return self.inner.query(arch)


def test_an_evaluation_that_raises_is_a_failed_query_and_the_run_goes_on(tables):
    from nasloop.registry import make_benchmark
    from nasloop.simulate import CostColumn

    flaky = _Flaky(CostColumn(make_benchmark("nb201", data=tables), "1080ti_256"))
    result = run_search(space="nb201", benchmark=flaky, strategy="evolution", budget=30, seed=3, predictor=ToyRidge(),
                        search=CFG, workers=4, simulate=True)
    failed = [r for r in result.records if r.extra["status"] == "failed"]
    assert len(result.records) == 30 and len({r.arch for r in result.records}) == 30
    assert failed and len(failed) == len(flaky.failed)
    assert all(r.extra["error"] == "RuntimeError: while training the cell" and not r.metrics for r in failed)
    assert result.summary["parallel"]["failed"] == len(failed)
    assert all(math.isfinite(r.metrics["val_acc"]) for r in result.records if r.extra["status"] == "ok")


def test_a_lost_worker_is_retried_and_charged_once(tables, monkeypatch):
    """An outcome marked lost goes out again (up to max_retries), then counts as failed; charged once."""
    from dataclasses import replace

    from nasloop.simulate import SimulatedExecutor

    real_submit = SimulatedExecutor.submit
    lose = {3: 1, 5: 5}  # submission number -> attempts lost

    def submit(self, job):
        real_submit(self, job)
        if job.attempt <= lose.get(job.number, 0):  # same sort key, so the heap stays valid
            i = next(i for i, e in enumerate(self._events) if e[3].job == job)
            finish, number, worker, outcome = self._events[i]
            self._events[i] = (finish, number, worker, replace(outcome, evaluation=None, lost=True))

    monkeypatch.setattr(SimulatedExecutor, "submit", submit)
    result = _sim(tables, 3, budget=20, max_retries=2)
    by_submission = {r.extra["submitted"]: r for r in result.records}
    assert len(result.records) == 20 and len({r.arch for r in result.records}) == 20
    assert by_submission[3].extra["status"] == "ok" and by_submission[3].extra["attempts"] == 2
    assert by_submission[5].extra["status"] == "failed" and by_submission[5].extra["attempts"] == 3
    assert result.summary["parallel"]["retries"] == 3
    assert result.records[-1].cum_cost == pytest.approx(sum(r.cost for r in result.records))
