"""The search loop: budget exactness, no double charging, acquisition, metrics, predictor quality log."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nasloop.acquisition import select
from nasloop.budget import Budget
from nasloop.errors import ConfigError, UnknownNameError
from nasloop.loop import SearchConfig, choose_metrics, run_search
from nasloop.registry import available
from nasloop.strategies.random import RandomSearch
from nasloop.types import Evaluation

TOY = "tests.toy_predictor:ToyRidge"
STRATEGIES = sorted(available("strategies"))
SMALL = SearchConfig(n_warmup=6, n_per_round=4, n_pool=20)


class CountingBenchmark:
    """Wraps a benchmark; counts true queries and charges a fixed cost per query."""

    def __init__(self, inner, cost=0.0):
        self.inner, self.cost, self.calls = inner, cost, []
        self.space, self.label = inner.space, inner.label

    @property
    def metrics(self):
        return self.inner.metrics

    def check_metric(self, metric):
        return self.inner.check_metric(metric)

    def optimum(self, metric, *, maximize=True):
        return self.inner.optimum(metric, maximize=maximize)

    def query(self, arch):
        self.calls.append(arch)
        ev = self.inner.query(arch)
        return Evaluation(ev.metrics, cost=self.cost)


class Stubborn(RandomSearch):
    """Breaks the contract: proposes already-queried architectures again and again."""

    def ask(self, n):
        return sorted(self.queried)[:n] + super().ask(n)


@pytest.mark.parametrize("predictor", ["none", TOY])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_budget_is_spent_exactly_on_distinct_cells(nb201_cifar10, strategy, predictor):
    bench = CountingBenchmark(nb201_cifar10)
    result = run_search(space="nb201", benchmark=bench, strategy=strategy, budget=23, predictor=predictor, seed=1,
                        search=SMALL)
    archs = [r.arch for r in result.records]
    assert len(archs) == 23 == len(set(archs)) == len(bench.calls)
    assert [r.number for r in result.records] == list(range(1, 24))
    values = [r.metrics["val_acc"] for r in result.records]
    assert result.best_value == max(values)
    best = result.summary["best"]
    assert result.regret == pytest.approx(94.373333 - best["report_value"], abs=1e-4)
    assert result.summary["optimum"]["val_acc"]["value"] == pytest.approx(91.6067)
    if predictor == "none":
        assert all(r.predicted_mean is None for r in result.records)
    else:  # warm-up first, then the predictor's picks with their scores
        assert [r.round for r in result.records[:6]] == [0] * 6
        assert all(r.predicted_mean is not None for r in result.records[6:])


def test_repeat_proposals_are_never_charged(nb201_cifar10):
    bench = CountingBenchmark(nb201_cifar10)
    result = run_search(space="nb201", benchmark=bench, strategy="tests.test_loop:Stubborn", budget=15,
                        predictor=TOY, seed=0, search=SMALL)
    assert len(bench.calls) == len(set(bench.calls)) == 15 == len({r.arch for r in result.records})


def test_cost_budget_keeps_the_query_that_crosses_it(nb201_cifar10):
    bench = CountingBenchmark(nb201_cifar10, cost=10.0)
    result = run_search(space="nb201", benchmark=bench, strategy="random", budget=Budget(n_queries=50,
                        max_cost=35.0), predictor=None, seed=0)
    assert len(result.records) == 4 and result.summary["stopped"] == "cost"
    assert result.records[-1].cum_cost == 40.0


def test_same_seed_same_history(nb201_cifar10):
    def run(seed):
        return [r.arch for r in run_search(space="nb201", benchmark=nb201_cifar10, strategy="evolution", budget=20,
                                           predictor=TOY, seed=seed,
                                           search=SMALL).records]

    assert run(4) == run(4)
    assert run(4) != run(5)


def test_pool_of_all_unqueried_cells(nb201_cifar10):
    cfg = SearchConfig(n_warmup=5, n_per_round=5, n_pool="all")
    result = run_search(space="nb201", benchmark=nb201_cifar10, strategy="random", budget=15, predictor=TOY, seed=0,
                        search=cfg)
    assert len({r.arch for r in result.records}) == 15


def test_refit_cadence_and_predictor_quality_log(nb201_cifar10, tmp_path):
    from tests.toy_predictor import ToyRidge

    toy = ToyRidge(seed=0)
    cfg = SearchConfig(n_warmup=5, n_per_round=5, n_pool=20, refit_every=10)
    run_search(space="nb201", benchmark=nb201_cifar10, strategy="evolution", budget=35, predictor=toy, seed=0,
               search=cfg, out=tmp_path / "run")
    assert toy.n_fits_ == 3  # fits at 5, 15 and 25 true results
    rounds = [json.loads(line) for line in (tmp_path / "run" / "rounds.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rounds] == list(range(7))
    assert [r["n_train"] for r in rounds[1:]] == [5, 5, 15, 15, 25, 25]
    assert rounds[-1]["tau_cum"] is not None and -1 <= rounds[-1]["tau_cum"] <= 1
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["predictor_tau"] == rounds[-1]["tau_cum"]
    assert summary["timings"]["fit_s"] <= summary["timings"]["total_s"]


def test_local_picks_follow_the_incumbent_within_the_round(nb201_cifar10):
    """Each of a round's first n_local picks is a neighbour of the best cell queried before *it*,
    this round's earlier picks included (or of the next best, once that neighbourhood is used up:
    queried or equivalent to a queried cell)."""
    from nasloop.registry import make_space

    space = make_space("nb201")
    cfg = SearchConfig(n_warmup=6, n_per_round=4, n_pool=20, n_local=3)
    result = run_search(space="nb201", benchmark=nb201_cifar10, strategy="random", budget=30, predictor=TOY, seed=2,
                        search=cfg)
    records = result.records
    assert len({r.arch for r in records}) == 30
    moved = 0  # local picks whose incumbent was found earlier in the same round
    for round_ in sorted({r.round for r in records} - {0}):
        first = next(i for i, r in enumerate(records) if r.round == round_)
        for i in range(first, min(first + 3, len(records))):
            before = records[:i]
            seen = {space.from_str(r.arch) for r in before}
            classes = {space.canonical(a) for a in seen}  # equivalent cells are passed over

            def open_neighbours(r, seen=seen, classes=classes):
                return [a for a in space.neighbours(space.from_str(r.arch))
                        if a not in seen and space.canonical(a) not in classes]

            ranked = sorted(before, key=lambda r: r.metrics["val_acc"], reverse=True)
            best_open = next(r for r in ranked if open_neighbours(r))
            assert space.from_str(records[i].arch) in space.neighbours(space.from_str(best_open.arch)), i
            moved += best_open.round == round_
    assert moved > 0  # the rule was exercised, not only the round-start incumbent


def test_bad_n_local():
    with pytest.raises(ConfigError, match="n_local"):
        SearchConfig(n_local=-1)


@pytest.mark.parametrize("rule", ["ucb", "thompson"])
def test_uncertainty_acquisitions_run(nb201_cifar10, rule):
    cfg = SearchConfig(n_warmup=6, n_per_round=4, n_pool=20, acquisition=rule)
    result = run_search(space="nb201", benchmark=nb201_cifar10, strategy="random", budget=14, predictor=TOY, seed=0,
                        search=cfg)
    assert len({r.arch for r in result.records}) == 14
    assert any(r.predicted_std and r.predicted_std > 0 for r in result.records)


def test_callback_reports_progress(nb201_cifar10):
    events = []
    run_search(space="nb201", benchmark=nb201_cifar10, strategy="tpe", budget=12, predictor=TOY, seed=0,
               search=SMALL, callback=events.append)
    phases = [e.phase for e in events]
    assert phases[0] == "start" and phases[-1] == "done" and "fit" in phases
    queries = [e.n_queries for e in events if e.phase == "query"]
    assert queries == list(range(1, 13))
    assert events[-1].best_value == max(e.best_value for e in events if e.best_value is not None)


def test_nothing_is_written_without_out(nb201_cifar10, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_search(space="nb201", benchmark=nb201_cifar10, strategy="random", budget=3, predictor=None, seed=0)
    assert result.run_dir is None and not list(tmp_path.iterdir())


# --- acquisition ------------------------------------------------------------------------------------
def test_greedy_picks_the_highest_means_and_keeps_pool_order_on_ties():
    assert select(np.array([1.0, 3.0, 3.0, 2.0]), None, 3) == [1, 2, 3]


def test_ucb_prefers_uncertain_candidates():
    mean, std = np.array([1.0, 0.9]), np.array([0.0, 1.0])
    assert select(mean, std, 1, rule="greedy") == [0]
    assert select(mean, std, 1, rule="ucb", beta=1.0) == [1]


def test_thompson_is_seeded_and_explores():
    mean, std = np.zeros(50), np.ones(50)
    picks = select(mean, std, 5, rule="thompson", rng=np.random.default_rng(0))
    assert picks == select(mean, std, 5, rule="thompson", rng=np.random.default_rng(0))
    assert picks != list(range(5))


def test_unknown_acquisition():
    with pytest.raises(UnknownNameError, match="greedy, ucb, thompson"):
        SearchConfig(acquisition="ei")


# --- metrics and options ----------------------------------------------------------------------------
def test_default_metrics(nb201_cifar10):
    assert choose_metrics(nb201_cifar10) == ("val_acc", "test_acc")
    assert choose_metrics(nb201_cifar10, "val_acc_12ep") == ("val_acc_12ep", "test_acc_12ep")
    assert choose_metrics(nb201_cifar10, "params_mb") == ("params_mb", "params_mb")
    with pytest.raises(UnknownNameError, match="available: val_acc"):
        choose_metrics(nb201_cifar10, "accuracy")


def test_default_metric_without_val_or_test_is_the_first():
    class Analog:
        metrics = ("baseline_accuracy", "drift_1h")

        def check_metric(self, m):
            return m

    assert choose_metrics(Analog()) == ("baseline_accuracy", "baseline_accuracy")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_warmup": 0}, "n_warmup must be a positive integer"),
        ({"n_pool": 3}, "n_pool \\(3\\) must be at least n_per_round"),
        ({"n_pool": "some"}, "positive integer, 'all' or 'auto'"),
        ({"ucb_beta": -1.0}, "ucb_beta"),
    ],
)
def test_bad_search_config(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SearchConfig(**kwargs)


@pytest.mark.parametrize(("budget", "message"), [(0, "positive"), (-2, "positive"), (20000, "exceeds the 15,625")])
def test_bad_budget(nb201_cifar10, budget, message):
    with pytest.raises(ConfigError, match=message):
        run_search(space="nb201", benchmark=nb201_cifar10, strategy="random", budget=budget, predictor=None)


def test_missing_metric_value_is_not_told_as_a_number(nb201_cifar10):
    """A cell without the search metric is charged, kept in the history, and never becomes the best."""

    class Holes(CountingBenchmark):
        def query(self, arch):
            ev = super().query(arch)
            if len(self.calls) % 3 == 0:
                return Evaluation({k: v for k, v in ev.metrics.items() if k != "val_acc"})
            return ev

    result = run_search(space="nb201", benchmark=Holes(nb201_cifar10), strategy="tpe", budget=15, predictor=TOY,
                        seed=0, search=SMALL)
    assert len(result.records) == 15
    assert math.isfinite(result.best_value)


def test_auto_pool_scores_a_small_finite_space_whole():
    from nasloop.search_config import SearchConfig, resolve_pool

    class Infinite:
        def enumerate(self):
            return None

        def size(self):
            return None

    from nasloop.registry import make_space

    nb201 = make_space("nb201")
    assert resolve_pool(SearchConfig(n_pool="auto"), nb201).n_pool == "all"
    assert resolve_pool(SearchConfig(n_pool="auto", n_per_round=10), Infinite()).n_pool == 100
    assert resolve_pool(SearchConfig(n_pool=30), nb201).n_pool == 30


def _twins(records, space) -> int:
    """Records whose architecture is equivalent (space.canonical) to an earlier record's."""
    classes, twins = set(), 0
    for r in records:
        cls = space.canonical(space.from_str(r.arch))
        twins += cls in classes
        classes.add(cls)
    return twins


def test_picks_skip_cells_equivalent_to_queried_ones(nb201_cifar10):
    """NB201 cells that differ only in unused edges compute the same function; with local picks a
    run keeps meeting them. The default passes over them, and switching it off brings them back."""
    from nasloop.registry import make_space

    space = make_space("nb201")
    cfg = SearchConfig(n_warmup=6, n_per_round=5, n_pool=40, n_local=4)
    skipping = run_search(space="nb201", benchmark=nb201_cifar10, strategy="random", budget=60, predictor=TOY,
                          seed=3, search=cfg).records
    assert cfg.skip_equivalent and len(skipping) == 60
    assert _twins(skipping[6:], space) == 0 and _twins(skipping, space) == _twins(skipping[:6], space)
    off = SearchConfig(**{**cfg.to_json(), "skip_equivalent": False})
    plain = run_search(space="nb201", benchmark=nb201_cifar10, strategy="random", budget=60, predictor=TOY, seed=3,
                       search=off).records
    assert _twins(plain, space) > 0


def _one_class_nb201():
    """NAS-Bench-201 in which every cell is declared equivalent to every other."""
    from search_spaces.nasbench201.space import NasBench201Space

    class OneClass(NasBench201Space):
        def canonical(self, arch):
            return self.from_index(0)

    return OneClass()


def test_equivalent_cells_are_picked_when_nothing_else_is_left(nb201_cifar10):
    space = _one_class_nb201()
    cfg = SearchConfig(n_warmup=3, n_per_round=4, n_pool=20, n_local=2)
    result = run_search(space=space, benchmark=nb201_cifar10, strategy="random", budget=15, predictor=TOY, seed=0,
                        search=cfg)
    assert len({r.arch for r in result.records}) == 15 and result.summary["stopped"] == "budget"


def test_runs_written_before_skip_equivalent_resume_without_it():
    from nasloop.search_config import SearchConfig as Cfg

    stored = {k: v for k, v in Cfg().to_json().items() if k != "skip_equivalent"}
    assert Cfg.from_stored(stored).skip_equivalent is False
    assert Cfg.from_stored({**stored, "skip_equivalent": True}).skip_equivalent is True
    assert Cfg.from_json(stored).skip_equivalent is True  # new runs get the default
