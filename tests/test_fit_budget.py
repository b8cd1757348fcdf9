"""The in-loop fit budget (``fit_budget`` / ``--fit-budget``): steps per new result of a warm refit,
its validation, its place in run directories (resume, legacy runs) and the time split of a run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nasloop.commands.compare import build_spec
from nasloop.errors import ConfigError
from nasloop.loop import run_search
from nasloop.registry import make_predictor, make_space
from nasloop.search_config import SearchConfig
from tests.test_search_cli import run_cli

TINY_NNFORMER = {"d_model": 16, "n_layers": 2, "epochs": 100, "min_steps": 0}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def nb201_data(n: int):
    space = make_space("nb201")
    rng = np.random.default_rng(0)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(3 * n)))[:n]
    y = np.array([80 + 3 * a.count("nor_conv_3x3") - 5 * a.count("none") for a in archs], dtype=float)
    return [space.to_graph(a, "pruned") for a in archs], y


def test_warm_refits_run_fit_budget_steps_per_new_result_within_the_warm_share():
    graphs, y = nb201_data(60)
    predictor = make_predictor("nnformer", seed=0, config=TINY_NNFORMER, warm_start=True, max_fit_steps=40,
                               fit_budget=3)
    predictor.fit(graphs[:30], y[:30])
    assert not predictor.fit_info_["warm_start"] and predictor.fit_info_["n_steps"] == 40  # the cap
    predictor.fit(graphs[:35], y[:35])  # 5 new results: 3 steps each
    assert predictor.fit_info_["warm_start"] and predictor.fit_info_["n_steps"] == 15
    predictor.fit(graphs[:35], y[:35])  # nothing new: one result's worth
    assert predictor.fit_info_["n_steps"] == 3
    predictor.fit(graphs[:60], y[:60])  # 25 new: 75 steps, but a warm fit runs at most half of the cap
    assert predictor.fit_info_["n_steps"] == 20


def test_without_a_fit_budget_warm_refits_run_the_warm_share():
    graphs, y = nb201_data(40)
    predictor = make_predictor("nnformer", seed=0, config=TINY_NNFORMER, warm_start=True, max_fit_steps=40)
    predictor.fit(graphs[:30], y[:30]).fit(graphs[:32], y[:32])
    assert predictor.fit_info_["n_steps"] == 20


@pytest.mark.parametrize("value", [0, -3, True, 1.5, "lots", None])
def test_bad_fit_budgets_are_config_errors(value):
    with pytest.raises(ConfigError, match="fit_budget must be a positive integer or 'full'"):
        SearchConfig(fit_budget=value)
    if value is not None:  # None is the predictor's "no budget"
        with pytest.raises(ConfigError, match="fit_budget must be a positive integer"):
            make_predictor("nnformer", fit_budget=value, max_fit_steps=10)._configs()


def test_fit_budget_values_and_legacy_runs():
    assert SearchConfig(fit_budget="full").fit_steps_per_result is None
    assert SearchConfig(fit_budget=4).fit_steps_per_result == 4
    assert SearchConfig.parse_fit_budget("7") == 7 and SearchConfig.parse_fit_budget("full") == "full"
    with pytest.raises(ConfigError):
        SearchConfig.parse_fit_budget("7.5")
    # A run directory written before the knob existed resumes with the schedule it ran with.
    assert SearchConfig.from_stored({}).fit_budget == "full"


def test_the_loop_passes_the_budget_to_the_predictor(nb201_cifar10_path, tmp_path):
    cfg = SearchConfig(n_warmup=5, n_per_round=5, n_local=2, n_pool=30, max_fit_steps=40, fit_budget=2)
    result = run_search(strategy="random", predictor="nnformer", data=str(nb201_cifar10_path), budget=15, seed=0,
                        search=cfg, predictor_options={"config": TINY_NNFORMER}, out=tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["search"]["fit_budget"] == 2 and config["predictor_options"]["fit_budget"] == 2
    snapshot = json.loads((tmp_path / "run" / "predictor.json").read_text())  # the predictor after its last fit
    fit_info = snapshot["state"]["fit_info"]
    assert snapshot["n_fits"] == 2 and fit_info["warm_start"] and fit_info["n_steps"] == 10
    timings = result.summary["timings"]
    assert {"total_s", "fit_s", "score_s", "strategy_s", "evaluate_s", "other_s"} <= set(timings)
    assert timings["fit_s"] + timings["score_s"] + timings["evaluate_s"] <= timings["total_s"]
    assert timings["fit_s"] > 0 and timings["score_s"] > 0


def test_full_budget_records_no_predictor_option(nb201_cifar10_path):
    cfg = SearchConfig(n_warmup=5, n_per_round=5, n_local=2, n_pool=30, max_fit_steps=20, fit_budget="full")
    result = run_search(strategy="random", predictor="nnformer", data=str(nb201_cifar10_path), budget=10, seed=0,
                        search=cfg, predictor_options={"config": TINY_NNFORMER})
    assert result.summary["n_queries"] == 10


@pytest.mark.parametrize("value", ["0", "many"])
def test_bad_fit_budget_flag_is_one_line_exit_2(nb201_cifar10_path, tmp_path, value):
    proc = run_cli("--data", str(nb201_cifar10_path), "--fit-budget", value, "--out", str(tmp_path / "run"))
    assert proc.returncode == 2 and "fit_budget must be a positive integer or 'full'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_fit_budget_flag_and_file_key_reach_the_run_and_must_match_on_resume(nb201_cifar10_path, tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text("fit_budget = 'full'\n")
    out = tmp_path / "run"
    proc = run_cli("--data", str(nb201_cifar10_path), "--predictor", "none", "--budget", "4", "--config", str(toml),
                   "--out", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "config.json").read_text())["search"]["fit_budget"] == "full"
    assert "s scoring" in proc.stdout and "s evaluating" in proc.stdout
    proc = run_cli("--resume", str(out), "--fit-budget", "3")
    assert proc.returncode == 2 and "search: run has" in proc.stderr
    proc = run_cli("--resume", str(out), "--budget", "6", "-q")
    assert proc.returncode == 0, proc.stderr


def test_compare_takes_the_fit_budget():
    spec = build_spec({"strategies": ["random"], "predictors": ["nnformer"], "fit_budget": "5", "seeds": 1})
    assert spec.configs[0].search["fit_budget"] == 5
    spec = build_spec({"strategies": ["random"], "predictors": ["nnformer"], "fit_budget": "full", "seeds": 1})
    assert spec.configs[0].search["fit_budget"] == "full"
