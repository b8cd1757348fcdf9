"""Strategies: the shared conformance suite, never re-proposing, aging evolution, TPE on true values only."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nasloop.conformance import check_strategy
from nasloop.errors import ConfigError, InvalidArchitectureError
from nasloop.registry import available, make_space, make_strategy
from nasloop.space import SearchSpace
from nasloop.types import ArchGraph

STRATEGIES = sorted(available("strategies"))


class _SmallSpace(SearchSpace):
    """Twelve architectures (a in 0..3, b in 0..2): small enough to run out of."""

    name = "small"

    def param_choices(self):
        return {"a": [0, 1, 2, 3], "b": [0, 1, 2]}

    def to_params(self, arch):
        return {"a": arch[0], "b": arch[1]}

    def from_params(self, params):
        if params["a"] not in (0, 1, 2, 3) or params["b"] not in (0, 1, 2):
            raise InvalidArchitectureError(f"bad params {params}")
        return (params["a"], params["b"])

    def to_graph(self, arch, kind=None):
        return ArchGraph(ops=(0, 1 + arch[0], 5 + arch[1]), edges=((0, 1), (1, 2)), vocab=tuple("abcdefgh"))

    def __len__(self):
        return 12

    def enumerate(self):
        return iter([(a, b) for a in range(4) for b in range(3)])


def test_all_three_strategies_are_registered():
    assert {"random", "evolution", "tpe"} <= set(STRATEGIES)


@pytest.mark.parametrize("name", STRATEGIES)
def test_conformance(name):
    check_strategy(make_strategy(name, make_space("nb201"), seed=3), n_rounds=6, n_per_round=6)


@pytest.mark.parametrize("name", STRATEGIES)
def test_never_proposes_a_queried_arch_until_the_space_runs_out(name):
    space = _SmallSpace()
    strategy = make_strategy(name, space, seed=0, **({"population_size": 3, "tournament_size": 2}
                                                     if name == "evolution" else {}))
    told = []
    while True:
        proposals = strategy.ask(2)
        assert len(set(proposals)) == len(proposals)
        assert not set(proposals) & set(told)
        if not proposals:
            break
        for arch in proposals:
            strategy.tell(arch, float(sum(arch)))
            told.append(arch)
    assert sorted(told) == sorted(space.enumerate())


@pytest.mark.parametrize("name", STRATEGIES)
def test_same_seed_same_proposals(name):
    def trace(seed):
        strategy = make_strategy(name, make_space("nb201"), seed=seed)
        out = []
        for r in range(4):
            proposals = strategy.ask(5)
            out += proposals
            for i, arch in enumerate(proposals):
                strategy.tell(arch, float((r * 7 + i * 3) % 11)) if i < 2 else strategy.discard(arch)
        return out

    assert trace(1) == trace(1)
    assert trace(1) != trace(2)


def test_evolution_population_ages_on_true_results_only():
    evo = make_strategy("evolution", make_space("nb201"), seed=0, population_size=4, tournament_size=2)
    first = evo.ask(4)
    for i, arch in enumerate(first):
        evo.tell(arch, float(i))
    assert [a for a, _ in evo.population] == first
    for arch in evo.ask(10):  # turned-down proposals leave the population as it is
        evo.discard(arch)
    assert [a for a, _ in evo.population] == first
    child = evo.ask(1)[0]
    evo.tell(child, 99.0)
    assert [a for a, _ in evo.population] == [*first[1:], child]  # the oldest died, not the worst


def test_evolution_children_are_mutations_of_the_population():
    space = make_space("nb201")
    evo = make_strategy("evolution", space, seed=0, population_size=5, tournament_size=5)
    members = evo.ask(5)
    for i, arch in enumerate(members):
        evo.tell(arch, float(i))
    best = members[-1]  # tournament over the whole population: the best member is always the parent
    for child in evo.ask(8):
        assert child in space.neighbours(best)


@pytest.mark.parametrize("revisit", [True, False])
def test_evolution_known_children_reenter_the_population_for_free(revisit):
    space = make_space("nb201")
    best = space.from_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
                          "nor_conv_1x1~2|")
    evo = make_strategy("evolution", space, seed=0, population_size=3, tournament_size=3, revisit_known=revisit)
    for arch in space.neighbours(best):  # every child of the best cell is already known
        evo.tell(arch, 0.0)
    evo.tell(best, 9.0)
    before = list(evo.population)
    child = evo.ask(1)[0]
    assert child not in evo.queried
    if revisit:  # each known child re-entered (ageing the best out); the next parent was a known child
        assert best not in [a for a, _ in evo.population]
        assert all(a in space.neighbours(best) and v == 0.0 for a, v in evo.population)
        assert any(child in space.neighbours(a) for a, _ in evo.population)
    else:  # known children are skipped: the population stays as it was
        assert list(evo.population) == before


def test_evolution_rejects_bad_sizes():
    with pytest.raises(ConfigError, match="tournament_size"):
        make_strategy("evolution", make_space("nb201"), population_size=3, tournament_size=5)


def _complete(study):
    from optuna.trial import TrialState

    return [t for t in study.trials if t.state == TrialState.COMPLETE]


def test_tpe_learns_from_told_values_only():
    space = make_space("nb201")
    tpe = make_strategy("tpe", space, seed=0)
    truth = {}
    rng = np.random.default_rng(0)
    for _ in range(6):
        proposals = tpe.ask(8)
        for i, arch in enumerate(proposals):
            if i < 2:
                truth[arch] = float(rng.normal(80, 5))
                tpe.tell(arch, truth[arch])
            else:
                tpe.discard(arch)
    complete = _complete(tpe.study)
    assert len(complete) == len(truth)
    assert {space.from_params(t.params): t.value for t in complete} == truth
    assert all(t.state.name == "FAIL" for t in tpe.study.trials if t not in complete)


def test_tpe_adds_results_it_did_not_propose():
    space = make_space("nb201")
    tpe = make_strategy("tpe", space, seed=0)
    arch = space.sample(np.random.default_rng(5))
    tpe.tell(arch, 70.0)
    (trial,) = _complete(tpe.study)
    assert space.from_params(trial.params) == arch and trial.value == 70.0
    assert arch not in tpe.ask(50)


def test_tpe_duplicate_suggestions_cost_nothing_and_teach_nothing():
    """On a 12-cell space TPE re-suggests points all the time; those become FAIL trials, not results."""
    space = _SmallSpace()
    tpe = make_strategy("tpe", space, seed=0, n_startup_trials=2)
    told = {}
    while proposals := tpe.ask(1):
        told[proposals[0]] = float(sum(proposals[0]))
        tpe.tell(proposals[0], told[proposals[0]])
    assert len(told) == 12
    complete = _complete(tpe.study)
    assert sorted(space.from_params(t.params) for t in complete) == sorted(told)
    assert all(t.value == told[space.from_params(t.params)] for t in complete)


def test_tpe_non_finite_result_is_not_a_value():
    space = make_space("nb201")
    tpe = make_strategy("tpe", space, seed=0)
    arch = tpe.ask(1)[0]
    tpe.tell(arch, math.nan)
    assert not _complete(tpe.study)
    assert arch in tpe.queried
