"""The declared predictor contract: callers pass the options a class declares, and only those."""

from __future__ import annotations

import json

import pytest

from nasloop.errors import ContractError
from nasloop.loop import _build_predictor, run_search
from nasloop.predictor import CALLER_OPTIONS, Predictor, declared_options, offer
from nasloop.registry import available, resolve
from nasloop.search_config import SearchConfig
from tests.toy_predictor import ToyRidge

SMALL = SearchConfig(n_warmup=6, n_per_round=4, n_pool=20, warm_start=False)


class DeclaresWarmStart(ToyRidge):
    caller_options = frozenset({"warm_start"})


def test_a_plug_in_that_declares_nothing_gets_no_loop_options(nb201_cifar10, tmp_path):
    """ToyRidge takes warm_start, but declares nothing: the loop's warm_start=False does not reach it."""
    assert declared_options(ToyRidge) == frozenset()
    built, options = _build_predictor("tests.toy_predictor:ToyRidge", preset="fast", seed=0, cfg=SMALL, options={})
    assert options == {} and built.warm_start is True
    result = run_search(space="nb201", benchmark=nb201_cifar10, strategy="random", budget=14,
                        predictor="tests.toy_predictor:ToyRidge", seed=0, search=SMALL,
                        out=tmp_path / "run")
    assert len(result.records) == 14
    assert json.loads((tmp_path / "run" / "config.json").read_text())["predictor_options"] == {}


def test_a_plug_in_gets_what_it_declares_and_the_users_options_win(monkeypatch):
    import tests.toy_predictor as toy

    monkeypatch.setattr(toy, "DeclaresWarmStart", DeclaresWarmStart, raising=False)
    name = "tests.toy_predictor:DeclaresWarmStart"
    built, options = _build_predictor(name, preset="fast", seed=0, cfg=SMALL, options={})
    assert options == {"warm_start": False} and built.warm_start is False
    built = _build_predictor(name, preset="fast", seed=0, cfg=SMALL, options={"warm_start": True})[0]
    assert built.warm_start is True


def test_functions_and_foreign_classes_declare_nothing():
    class NotAPredictor:
        caller_options = frozenset({"warm_start"})

    assert declared_options(lambda **kw: None) == frozenset()
    assert declared_options(NotAPredictor) == frozenset()
    assert offer(NotAPredictor, {"warm_start": True}) == {}


def test_declaring_an_option_no_caller_passes_is_a_contract_error():
    class Typo(ToyRidge):
        caller_options = frozenset({"warmstart"})

    with pytest.raises(ContractError, match="warmstart"):
        declared_options(Typo)


@pytest.mark.parametrize("name", sorted(available("predictors")))
def test_every_built_in_predictor_declares_only_known_options_its_constructor_takes(name):
    import inspect

    cls = resolve("predictors", name)
    assert issubclass(cls, Predictor)
    declared = declared_options(cls)
    assert declared <= CALLER_OPTIONS.keys() and "target" in declared
    assert declared <= set(inspect.signature(cls).parameters)


def test_the_base_classes_are_exported_without_torch():
    import subprocess
    import sys

    code = ("import sys, nasloop; "
            "print([c.__module__ for c in (nasloop.SearchSpace, nasloop.Benchmark, nasloop.Predictor, "
            "nasloop.Strategy)], 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ("['nasloop.space', 'nasloop.benchmark', 'nasloop.predictor', 'nasloop.strategies.base'] "
                   "False")


# --- optional capabilities are declared on the base classes ---------------------------------------------
def test_space_size_comes_from_len_and_defaults_to_none():
    from nasloop.registry import make_space
    from tests.test_conformance import _TinySpace

    class Sized(_TinySpace):
        def __len__(self):
            return 6

    assert make_space("nb201").size() == 15625
    assert _TinySpace().size() is None and Sized().size() == 6


def test_a_predictor_without_snapshots_offers_none():
    assert ToyRidge().snapshot_state() is None
    with pytest.raises(NotImplementedError):
        ToyRidge().restore_state({}, {})
