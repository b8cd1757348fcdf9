"""Every registered space, strategy and predictor goes through the shared conformance checks."""

from __future__ import annotations

import numpy as np
import pytest

from nasloop.conformance import check_graph, check_predictor, check_space, check_strategy
from nasloop.errors import ContractError, InvalidArchitectureError
from nasloop.registry import available, make_predictor, make_space, make_strategy
from nasloop.space import SearchSpace
from nasloop.types import ArchGraph
from tests.toy_predictor import ToyRidge

SPACES = sorted(available("search_spaces"))
STRATEGIES = sorted(available("strategies"))
# "prior" needs a pre-trained prior folder; tests/test_priors.py runs check_predictor on it.
PREDICTORS = sorted(set(available("predictors")) - {"prior"})


@pytest.mark.parametrize("name", SPACES)
def test_space_conformance(name):
    check_space(make_space(name), n=10)


@pytest.mark.parametrize("name", STRATEGIES)
def test_strategy_conformance(name):
    check_strategy(make_strategy(name, make_space("nb201"), seed=0))


def _toy_training_set(n: int = 48):
    """NB201 graphs with a target that depends on the ops (so a model can learn something)."""
    space = make_space("nb201")
    rng = np.random.default_rng(0)
    archs = list({space.sample(rng) for _ in range(n * 2)})[:n]
    y = np.array([sum(op == "nor_conv_3x3" for op in a) - 0.5 * sum(op == "none" for op in a) for a in archs])
    return space, archs, y


@pytest.mark.parametrize("name", PREDICTORS)
def test_predictor_conformance(name):
    from nasloop.space import graphs_for

    # A few optimiser steps are enough to check the contract; model quality is tested elsewhere.
    cheap = {} if name == "rf" else {"config": {"epochs": 5, "min_steps": 0, "max_steps": 30}}
    predictor = make_predictor(name, preset="fast", seed=0, **cheap)
    space, archs, y = _toy_training_set()
    check_predictor(predictor, graphs_for(space, archs, predictor.graph_kind), y)


def test_registry_lists_the_nb201_space():
    assert "nb201" in SPACES


# --- the checks themselves catch broken plug-ins with instructive messages ---------------------------
class _TinySpace(SearchSpace):
    """A two-parameter space; subclasses below break one rule each."""

    name = "tiny"

    def param_choices(self):
        return {"a": [0, 1, 2], "b": [0, 1]}

    def to_params(self, arch):
        return {"a": arch[0], "b": arch[1]}

    def from_params(self, params):
        if params["a"] not in (0, 1, 2) or params["b"] not in (0, 1):
            raise InvalidArchitectureError(f"bad params {params}")
        return (params["a"], params["b"])

    def to_graph(self, arch, kind=None):
        return ArchGraph(ops=(0, 1 + arch[0], 4 + arch[1]), edges=((0, 1), (1, 2)), vocab=tuple("abcdefg"))


class _SameMutation(_TinySpace):
    def mutate(self, arch, rng):
        return arch


class _CyclicGraph(_TinySpace):
    def to_graph(self, arch, kind=None):
        return ArchGraph(ops=(0, 1, 2), edges=((0, 1), (1, 2), (2, 0)), vocab=("x", "y", "z"))


class _LossyParams(_TinySpace):
    def to_params(self, arch):
        return {"a": arch[0], "b": 1 - arch[1]}


def test_a_correct_space_passes():
    check_space(_TinySpace())


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (_SameMutation(), "mutate returned the same architecture"),
        (_CyclicGraph(), "has a cycle"),
        (_LossyParams(), "round-trip"),
    ],
)
def test_broken_spaces_are_reported(space, message):
    with pytest.raises(ContractError, match=message):
        check_space(space)


def test_graph_check_rejects_out_of_range_edges():
    with pytest.raises(ContractError, match="outside"):
        check_graph(ArchGraph(ops=(0, 1), edges=((0, 5),), vocab=("a", "b")))


def test_strategy_that_repeats_itself_is_reported():
    from nasloop.strategies.base import Strategy

    class Stubborn(Strategy):
        def ask(self, n):
            return [("none",) * 6][:n]

    with pytest.raises(ContractError, match="already-queried"):
        check_strategy(Stubborn(make_space("nb201")), n_per_round=1)


# --- predictors: the same seed and a clone from get_params give the same predictions ----------------------
class _Nondeterministic(ToyRidge):
    """Draws its bootstrap from fresh entropy instead of the seed."""

    def fit(self, graphs, y):
        self.rng_ = np.random.default_rng()
        return super().fit(graphs, y)


class _ForgetfulParams(ToyRidge):
    """Stores ``alpha`` under another name, so ``get_params`` rebuilds it with the default."""

    def __init__(self, *, preset="fast", seed=0, n_members=3, alpha=1.0, warm_start=True):
        super().__init__(preset=preset, seed=seed, n_members=n_members, alpha=1.0, warm_start=warm_start)
        self.ridge_alpha = alpha

    def get_params(self):
        return {**super().get_params(), "alpha": 1.0}

    def fit(self, graphs, y):
        self.alpha = self.ridge_alpha
        return super().fit(graphs, y)


def _toy_graphs():
    from nasloop.space import graphs_for

    space, archs, y = _toy_training_set()
    return graphs_for(space, archs, "full"), y


def test_a_deterministic_predictor_with_complete_params_passes():
    check_predictor(ToyRidge(seed=3, alpha=0.5), *_toy_graphs())


@pytest.mark.parametrize(("predictor", "message"), [
    (_Nondeterministic(), "same seed gave other predictions"),
    (_ForgetfulParams(alpha=50.0), r"get_params\(\)\) fitted the same way gave other predictions"),
])
def test_predictors_that_cannot_be_rebuilt_are_reported(predictor, message):
    with pytest.raises(ContractError, match=message):
        check_predictor(predictor, *_toy_graphs())
