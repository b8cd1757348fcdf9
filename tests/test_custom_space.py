"""The custom-space example (examples/custom_space) and FunctionBenchmark, as a plug-in author uses them."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from nasloop.conformance import check_space
from nasloop.errors import ContractError
from nasloop.plugins import FunctionBenchmark
from nasloop.types import ArchGraph

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the example is imported from the repository root, as the guide runs it
    sys.path.insert(0, str(ROOT))

from examples.custom_space.mlp_space import MLP, MLPSpace, evaluate, make_benchmark  # noqa: E402


def test_example_space_passes_the_conformance_checks():
    check_space(MLPSpace(), n=40)


def test_example_space_is_finite_and_uses_the_default_operators():
    space = MLPSpace()
    archs = list(space.enumerate())
    assert len(archs) == len(set(archs)) == len(space) == 168
    rng = np.random.default_rng(0)
    arch = space.sample(rng)
    assert space.from_str(space.to_str(arch)) == arch
    assert all(n != arch for n in space.neighbours(arch))
    # Changing the width of an absent layer is not a move: neighbours only hold real changes.
    one_layer = MLP((32,), "relu")
    assert len(space.neighbours(one_layer)) == 2 + 3 + 1  # n_layers 2/3, width_1 three others, activation


def test_example_loads_by_module_path_like_the_cli():
    from nasloop.registry import import_target

    space = import_target("examples.custom_space.mlp_space:MLPSpace")()
    bench = import_target("examples.custom_space.mlp_space:make_benchmark")()
    assert isinstance(bench, FunctionBenchmark) and bench.metrics == ("val_acc", "params")
    assert bench.check_metric("val_acc") == "val_acc" and type(space) is type(bench.space)


def test_example_evaluator_really_trains():
    bench = make_benchmark()
    small, large = MLP((16,), "relu"), MLP((64, 64), "relu")
    ev_small = bench.query(small)
    assert 80 < ev_small.metrics["val_acc"] <= 100 and ev_small.cost > 0
    assert ev_small.metrics["params"] == 64 * 16 + 16 + 16 * 10 + 10
    assert evaluate(large)["params"] > ev_small.metrics["params"]
    assert evaluate(small) == {k: v for k, v in ev_small.metrics.items()}  # fixed split and seed


# --- FunctionBenchmark ------------------------------------------------------------------------------------
def _space():
    return MLPSpace()


def test_function_benchmark_measures_cost_or_takes_it_from_the_function():
    arch = MLP((16,), "tanh")
    timed = FunctionBenchmark(_space(), lambda a: {"score": 1.0}, label="toy")
    assert timed.metrics == ()  # learnt from the first answer
    ev = timed.query(arch)
    assert ev.metrics == {"score": 1.0} and ev.cost >= 0 and timed.metrics == ("score",)
    priced = FunctionBenchmark(_space(), lambda a: ({"score": 2.0}, 12.5), label="toy")
    assert priced.query(arch).cost == 12.5


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda a: 0.9, "non-empty dict"),
        (lambda a: {"score": "high"}, "non-numeric"),
        (lambda a: {"score": math.nan}, "non-finite"),
        (lambda a: ({"score": 1.0}, 1.0, 2.0), "metrics or \\(metrics, cost\\)"),
    ],
)
def test_function_benchmark_reports_bad_answers(fn, message):
    with pytest.raises(ContractError, match=message):
        FunctionBenchmark(_space(), fn, label="bad").query(MLP((16,), "relu"))


def test_function_benchmark_requires_the_same_metrics_every_time():
    answers = iter([{"a": 1.0, "b": 2.0}, {"a": 1.0}])
    bench = FunctionBenchmark(_space(), lambda arch: next(answers), label="flaky")
    bench.query(MLP((16,), "relu"))
    with pytest.raises(ContractError, match=r"did not return \['b'\]"):
        bench.query(MLP((32,), "relu"))


# --- a space that breaks the contract is reported with what to fix ------------------------------------------
class _StuckMutation(MLPSpace):
    def mutate(self, arch, rng):
        return arch


class _CyclicGraph(MLPSpace):
    def to_graph(self, arch, kind=None):
        g = super().to_graph(arch)
        return ArchGraph(g.ops, (*g.edges, (g.n_nodes - 1, 0)), g.vocab)


class _ForgetfulParams(MLPSpace):
    def to_params(self, arch):
        return {**super().to_params(arch), "activation": "relu"}  # loses tanh


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (_StuckMutation(), "mutate returned the same architecture"),
        (_CyclicGraph(), "has a cycle"),
        (_ForgetfulParams(), "round-trip"),
    ],
)
def test_broken_example_spaces_are_reported_with_a_fix(space, message):
    with pytest.raises(ContractError, match=message):
        check_space(space, n=40)
