"""RunSpec: one specification of a run; config.json round trips, resume diffs, keyword-only run_search."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from nasloop.budget import Budget
from nasloop.errors import ConfigError
from nasloop.executors import Execution
from nasloop.loop import check_search, resume_search, run_search
from nasloop.runspec import RunSpec
from nasloop.search_config import SearchConfig
from tests.conftest import NB201_LATENCY, require_shared
from tests.toy_predictor import ToyRidge

SMALL = SearchConfig(n_warmup=6, n_per_round=4, n_pool=20)

SPECS = {
    "plain": RunSpec(strategy="evolution", predictor=None, budget=30, seed=2),
    "predictor": RunSpec(space="nb201", data="/data/c10.csv", metric="val_acc", report="test_acc",
                         strategy="tpe", predictor="rf", preset="fast", predictor_options={"n_estimators": 20},
                         strategy_options={"n_startup": 5}, budget=40, max_cost=1e4, max_seconds=60.0, seed=7,
                         search=SearchConfig(n_pool="all", acquisition="ucb", ucb_beta=0.5)),
    "objectives": RunSpec(data=["/data/c10.csv", "/data/latency.csv"], objectives=("val_acc:max", "pixel3:min"),
                          strategy="nsga2", predictor="rf", side_predictor="rf", budget=25, seed=1),
    "constraints": RunSpec(data=["/data/c10.csv", "/data/latency.csv"], metric="val_acc", direction="max",
                           constraints=("pixel3<=8.5", "edgegpu>=1"), predictor="nnformer",
                           predictor_options={"max_fit_steps": 300}, budget=50),
    "execution": RunSpec(benchmark="tests.faulty_benchmark:make_benchmark", data="/data/c10.csv", predictor="mlp",
                         budget=60, execution=Execution(workers=4, simulate=True, cost="1080ti_256", cost_scale=2.0,
                                                        max_retries=1, eval_timeout=30.0)),
    "cluster": RunSpec(predictor=None, execution=Execution(scheduler="tcp://127.0.0.1:8786", gpu=True)),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_to_json_from_json_round_trip(name):
    spec = SPECS[name]
    stored = json.loads(json.dumps(spec.to_json()))  # as config.json holds it
    assert RunSpec.from_json(stored) == spec
    assert RunSpec.from_json(stored).to_json() == stored
    assert spec.diff(stored) == []


def test_a_predictor_object_round_trips_by_class_and_parameters():
    spec = RunSpec(predictor=ToyRidge(alpha=0.5, seed=3), budget=20)
    stored = json.loads(json.dumps(spec.to_json()))
    params = stored["predictor_params"]
    assert stored["predictor"] == "tests.toy_predictor:ToyRidge" and (params["alpha"], params["seed"]) == (0.5, 3)
    back = RunSpec.from_json(stored)
    assert isinstance(back.predictor, ToyRidge) and back.predictor.get_params() == spec.predictor.get_params()
    assert back.diff(stored) == []


def test_to_json_holds_the_option_keys_of_config_json():
    assert list(RunSpec().to_json()) == [
        "space", "data", "dataset", "benchmark_factory", "metric", "report", "direction", "objectives",
        "constraints", "side_predictor", "strategy", "strategy_options", "predictor", "preset",
        "predictor_options", "predictor_params", "budget", "max_cost", "max_seconds", "seed", "search",
        "execution", "cluster"]
    plain = RunSpec(predictor="none").to_json()
    assert (plain["predictor"], plain["preset"], plain["execution"], plain["cluster"]) == ("none", None, None, None)


def test_diff_lists_exactly_the_changed_options():
    spec = SPECS["predictor"]
    stored = spec.to_json()
    changed = spec.replace(seed=8, strategy="random", n_pool=50, workers=2, constraints=["pixel3<=9"])
    lines = changed.diff(stored)
    assert [line.split(":")[0] for line in lines] == ["constraints", "strategy", "seed", "search", "execution"]
    assert "seed: run has 7, now 8" in lines
    assert changed.replace(seed=7).diff(stored)[0].startswith("constraints: run has [], now ['pixel3<=9']")


def test_diff_lets_the_budget_and_the_cluster_address_change():
    spec = SPECS["cluster"]
    moved = spec.replace(budget=500, scheduler="tcp://10.0.0.2:8786")
    assert moved.diff(spec.to_json()) == []


def test_old_config_files_read_with_the_behaviour_they_had():
    old = {"space": "nb201", "data": None, "dataset": None, "benchmark": "t", "benchmark_factory": None,
           "metric": "val_acc", "report": "test_acc", "strategy": "random", "strategy_options": {},
           "predictor": "nnformer", "preset": "fast", "predictor_options": {"warm_start": True},
           "predictor_params": None, "budget": 10, "max_cost": None, "max_seconds": None,
           "seed": 0, "search": {"n_warmup": 10, "n_per_round": 5, "n_pool": 1000, "n_local": 4, "refit_every": 1,
                                 "acquisition": "greedy", "ucb_beta": 1.0, "warm_start": True,
                                 "max_fit_steps": 300}}
    spec = RunSpec.from_json(old)
    assert (spec.direction, spec.objectives, spec.constraints, spec.side_predictor) == ("max", None, (), None)
    assert (spec.search.skip_equivalent, spec.search.fit_budget) == (False, "full")
    assert spec.diff(old) == []


@pytest.mark.parametrize("damage", [{"budget": "many"}, {"space": None}, {"search": [1]}, {"strategy": 5}])
def test_a_damaged_config_is_one_config_error(damage):
    config = {k: v for k, v in {**SPECS["plain"].to_json(), **damage}.items() if v is not None}
    with pytest.raises(ConfigError, match=r"damaged|must be"):
        RunSpec.from_json(config)


def test_a_config_json_written_by_a_run_reads_back_to_its_spec(nb201_cifar10_path, tmp_path):
    # config.json records data paths resolved (symbolic links followed), so the spec names it so too
    spec = RunSpec(data=str(Path(nb201_cifar10_path).resolve()), metric="val_acc", report="test_acc",
                   direction="max", strategy="evolution", predictor=None, budget=8, seed=5)
    run_search(spec, out=tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert RunSpec.from_json(config) == spec
    assert RunSpec.from_json(config).diff(config) == []
    assert {"benchmark", "benchmark_object", "data_files", "nasloop_version", "created"} <= set(config)


def test_config_json_records_the_resolved_options(nb201_cifar10_path):
    data = [str(nb201_cifar10_path), str(require_shared(NB201_LATENCY))]
    config = check_search(data=data, metric="pixel3:min", constraints="raspi4<=9", predictor="rf", budget=20)
    assert (config["metric"], config["direction"], config["report"]) == ("pixel3", "min", "pixel3")
    assert (config["constraints"], config["side_predictor"]) == (["raspi4<=9"], "rf")
    stored = RunSpec.from_json(json.loads(json.dumps(config)))
    assert stored.diff(config) == []


def test_run_search_takes_a_spec_or_the_same_options_by_name(nb201_cifar10, tmp_path):
    options = dict(space="nb201", benchmark=nb201_cifar10, strategy="evolution", predictor=ToyRidge(seed=0),
                   budget=20, seed=3, search=SMALL)
    by_name = run_search(**options, out=tmp_path / "a")
    by_spec = run_search(RunSpec(**{**options, "predictor": ToyRidge(seed=0)}), out=tmp_path / "b")
    assert [r.arch for r in by_name.records] == [r.arch for r in by_spec.records]
    assert (tmp_path / "a" / "history.jsonl").read_text().count("\n") == 20
    rows = [[json.loads(line)["arch"] for line in (tmp_path / d / "history.jsonl").read_text().splitlines()]
            for d in ("a", "b")]
    assert rows[0] == rows[1]


def test_run_search_refuses_positional_options_and_a_spec_with_options(nb201_cifar10):
    with pytest.raises(TypeError, match="RunSpec or keyword options"):
        run_search("nb201", strategy="random")
    with pytest.raises(TypeError, match="positional"):
        run_search("nb201", nb201_cifar10, "random", 10, None)  # type: ignore[misc]
    with pytest.raises(TypeError, match="not both"):
        run_search(RunSpec(), budget=5)
    with pytest.raises(TypeError, match="unknown run option"):
        run_search(budgett=5)
    with pytest.raises(TypeError, match="RunSpec or keyword options"):
        check_search("nb201")


def test_replace_takes_loop_and_execution_options_by_name():
    spec = RunSpec().replace(n_pool="all", fit_budget="full", workers=3, simulate=True, cost="c",
                             budget=Budget(n_queries=40, max_cost=9.0))
    assert (spec.search.n_pool, spec.search.fit_budget) == ("all", "full")
    assert (spec.execution.workers, spec.execution.simulate, spec.execution.cost) == (3, True, "c")
    assert (spec.budget, spec.max_cost, spec.max_seconds) == (40, 9.0, None)
    assert spec.replace(n_pool="500").search.n_pool == 500  # as --n-pool gives it
    assert RunSpec().replace(scheduler="tcp://h:1").execution.workers is None  # one per cluster thread


@pytest.mark.parametrize("bad, message", [
    ({"budget": 0}, "budget must be a positive number"), ({"seed": -1}, "seed must be"),
    ({"max_cost": -1.0}, "max_cost must be"), ({"search": {"n_pool": 5}}, "search must be a SearchConfig"),
    ({"strategy": 3}, "strategy must be"), ({"workers": 0}, "workers must be"),
    ({"budget": Budget(n_queries=5), "max_cost": 3.0}, "not both"), ({"objectives": [1, 2]}, "objectives must be"),
])
def test_cheap_validation_comes_when_the_spec_is_made(bad, message):
    with pytest.raises(ConfigError, match=message):
        RunSpec().replace(**bad)


def test_option_names_are_declared_once_without_clashes():
    own = {f.name for f in fields(RunSpec)}
    loop, execution = {f.name for f in fields(SearchConfig)}, {f.name for f in fields(Execution)}
    assert not (own & loop or own & execution or loop & execution)
    types = RunSpec.toml_types()
    assert set(types) == (own - {"direction", "search", "execution"}) | loop | execution
    assert None not in types.values()


def test_resume_search_builds_its_spec_from_config_json(nb201_cifar10_path, tmp_path):
    spec = RunSpec(data=str(nb201_cifar10_path), strategy="random", predictor=None, budget=6, seed=1)
    first = run_search(spec, out=tmp_path / "run")
    longer = resume_search(tmp_path / "run", budget=9)
    assert [r.arch for r in longer.records][:6] == [r.arch for r in first.records]
    assert len(longer.records) == 9
    again = run_search(spec.replace(budget=9), out=tmp_path / "again")
    assert [r.arch for r in again.records] == [r.arch for r in longer.records]
