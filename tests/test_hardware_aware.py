"""Directions, constraints and multi-objective (Pareto) search."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nasloop.errors import ConfigError, NasloopError
from nasloop.loop import SearchConfig, resume_search, run_search
from nasloop.objectives import Constraint, Objective, build_goal, default_direction, weigh_by_feasibility
from nasloop.pareto import Scale, front_indices, improvement
from tests.conftest import NB201_LATENCY, require_shared
from tests.test_cli_foundation import run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(nb201_cifar10_path):
    return [str(nb201_cifar10_path), str(require_shared(NB201_LATENCY))]


@pytest.fixture(scope="module")
def table(data):
    from nasloop.registry import make_benchmark

    return make_benchmark("nb201", data=data)


# --- parsing and rules --------------------------------------------------------------------------------
def test_default_direction_minimises_costs_and_maximises_the_rest():
    assert [default_direction(m) for m in ("val_acc", "test_acc", "pixel3", "latency", "train_ms", "params_mb",
                                           "flops", "eyeriss")] == ["max", "max", "min", "min", "min", "min",
                                                                    "min", "min"]
    assert Objective.parse("pixel3") == Objective("pixel3", "min")
    assert Objective.parse("pixel3:max") == Objective("pixel3", "max")
    assert Objective.parse("val_acc:min").sign == -1.0


@pytest.mark.parametrize("text", ["pixel3<8", "pixel3<=", "<=3", "pixel3<=abc", "pixel3<=inf", ""])
def test_bad_constraints_are_refused(text):
    with pytest.raises(ConfigError):
        Constraint.parse(text)


def test_constraint_parse_and_probability():
    c = Constraint.parse(" pixel3 <= 8.5 ")
    assert (c.metric, c.op, c.bound) == ("pixel3", "<=", 8.5)
    assert c.holds({"pixel3": 8.5}) and not c.holds({"pixel3": 8.6}) and not c.holds({})
    p = c.probability(np.array([8.5, 7.5, 9.5, 9.5]), np.array([1.0, 1.0, 1.0, 0.0]))
    assert p[0] == pytest.approx(0.5) and p[1] == pytest.approx(0.8413, abs=1e-4)
    assert p[2] == pytest.approx(0.1587, abs=1e-4) and p[3] == 0.0
    assert Constraint.parse("val_acc>=90").probability(np.array([91.0]), np.array([0.0]))[0] == 1.0


def test_weighing_by_feasibility_ranks_objective_times_probability():
    mean, std = weigh_by_feasibility(np.array([-3.0, -1.0, -2.0]), np.array([1.0, 1.0, 1.0]),
                                     np.array([1.0, 0.25, 1.0]))
    assert mean.tolist() == [0.0, 0.5, 1.0] and std.tolist() == [1.0, 0.25, 1.0]


def test_goal_checks_names_and_counts():
    with pytest.raises(ConfigError, match="not in the benchmark"):
        build_goal("val_acc", constraints=["nope<=1"], metrics=("val_acc",))
    with pytest.raises(ConfigError, match="2 or 3"):
        build_goal("val_acc", objectives=["a", "b", "c", "d"])
    with pytest.raises(ConfigError, match="repeat"):
        build_goal("val_acc", objectives=["a:max", "a:min"])
    with pytest.raises(ConfigError, match="not supported together"):
        build_goal("val_acc", objectives=["a:max", "b:min"], constraints=["a>=1"])


# --- hypervolume ----------------------------------------------------------------------------------------
def test_hypervolume_and_improvement_match_a_hand_computed_front():
    scale = Scale(np.zeros(2), np.ones(2))
    points = np.array([[0.2, 0.8], [0.5, 0.5], [0.8, 0.2], [0.4, 0.4]])
    assert front_indices(points) == [0, 1, 2]
    # boxes from the reference (0, 0): 0.2·0.8 + (0.5-0.2)·0.5 + (0.8-0.5)·0.2
    assert scale.hypervolume(points) == pytest.approx(0.37)
    front = points[:3]
    gain = improvement(scale, front, np.array([[0.6, 0.6], [0.1, 0.1], [0.5, 0.5]]))
    # (0.6, 0.6) removes (0.5, 0.5) from the front: 0.2·0.8 + 0.4·0.6 + 0.2·0.2 = 0.44
    assert gain[0] == pytest.approx(0.44 - 0.37)
    assert gain[1] == pytest.approx(-0.4)  # must move 0.4 in both objectives to leave the dominated region
    assert gain[2] == pytest.approx(0.0)  # on the front already: no gain, no distance
    # the reference point is not counted: a point beyond it in one objective adds nothing
    assert scale.hypervolume(np.array([[1.0, -0.1]])) == 0.0


def test_three_objective_hypervolume():
    scale = Scale(np.zeros(3), np.ones(3))
    assert scale.hypervolume(np.array([[0.5, 0.5, 0.5], [1.0, 0.2, 0.2]])) == pytest.approx(
        0.125 + 0.04 - 0.5 * 0.2 * 0.2)


# --- direction ---------------------------------------------------------------------------------------------
def test_a_minimised_metric_finds_the_smallest_value(data, table):
    result = run_search(space="nb201", strategy="evolution", predictor=None, data=data, metric="pixel3:min",
                        budget=30, seed=1)
    s = result.summary
    values = [r.metrics["pixel3"] for r in result.records]
    assert s["direction"] == "min" and s["best"]["value"] == min(values)
    assert s["optimum"]["pixel3"]["value"] == pytest.approx(float(np.nanmin(table.values("pixel3"))))
    assert s["search_regret"] == pytest.approx(min(values) - s["optimum"]["pixel3"]["value"], abs=1e-6)
    assert s["search_regret"] >= 0
    flipped = run_search(space="nb201", strategy="evolution", predictor=None, data=data, metric="pixel3",
                         direction="max", budget=30, seed=1)
    assert flipped.summary["best"]["value"] == max(r.metrics["pixel3"] for r in flipped.records)


def test_a_minimised_metric_guides_the_predictor(data):
    cfg = SearchConfig(n_warmup=5, n_pool=50)
    result = run_search(space="nb201", strategy="random", predictor="rf", data=data, metric="pixel3:min", budget=25,
                        seed=0, search=cfg)
    warm = np.median([r.metrics["pixel3"] for r in result.records[:5]])
    picked = np.median([r.metrics["pixel3"] for r in result.records[5:]])
    assert picked < warm  # the predictor's picks go for low latency


# --- constraints --------------------------------------------------------------------------------------------
class Recorder:
    """Wraps a strategy and keeps what it is told."""

    def __init__(self, inner):
        self.inner, self.told = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def tell(self, arch, value):
        self.told.append(value)
        self.inner.tell(arch, value)


def test_constraints_pick_the_best_feasible_cell_and_mark_infeasible_ones(data, table, tmp_path):
    bound = float(np.median(table.values("pixel3")))
    result = run_search(space="nb201", strategy="evolution", predictor=None, data=data,
                        constraints=[f"pixel3<={bound}"],
                        budget=40, seed=3, out=tmp_path / "run")
    s = result.summary
    feasible = [r for r in result.records if r.metrics["pixel3"] <= bound]
    assert s["best"]["value"] == max(r.metrics["val_acc"] for r in feasible)
    assert s["best"]["metrics"]["pixel3"] <= bound
    assert s["n_infeasible"] == len(result.records) - len(feasible) > 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [row["extra"]["feasible"] for row in rows] == [r.metrics["pixel3"] <= bound for r in result.records]
    mask = table.values("pixel3") <= bound
    assert s["optimum"]["val_acc"]["value"] == pytest.approx(float(table.values("val_acc")[mask].max()))
    assert s["search_regret"] == pytest.approx(s["optimum"]["val_acc"]["value"] - s["best"]["value"], abs=1e-6)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["constraints"] == [f"pixel3<={bound:g}"]


def test_strategies_see_infeasible_results_as_the_worst_value(data):
    from nasloop.engine import SearchEngine

    seen = {}
    original = SearchEngine.__init__

    def spy(self, **kwargs):
        kwargs["strategy"] = seen["strategy"] = Recorder(kwargs["strategy"])
        original(self, **kwargs)

    SearchEngine.__init__ = spy
    try:
        result = run_search(space="nb201", strategy="evolution", predictor=None, data=data, constraints=["pixel3<=5"],
                            budget=25, seed=0)
    finally:
        SearchEngine.__init__ = original
    told = seen["strategy"].told
    for i, rec in enumerate(result.records):
        if rec.metrics["pixel3"] > 5:
            assert told[i] == min(r.metrics["val_acc"] for r in result.records[: i + 1])
        else:
            assert told[i] == rec.metrics["val_acc"]


def test_a_constrained_predictor_run_fits_a_predictor_per_constraint(data):
    result = run_search(space="nb201", strategy="random", predictor="rf", data=data, constraints=["pixel3<=6"],
                        budget=20, seed=0, search=SearchConfig(n_warmup=5, n_pool=40))
    s = result.summary
    assert s["best"]["metrics"]["pixel3"] <= 6
    # the picks after the warm-up are mostly predicted feasible, and mostly are
    after = result.records[5:]
    assert sum(r.metrics["pixel3"] <= 6 for r in after) > len(after) / 2


# --- multi-objective -------------------------------------------------------------------------------------------
def _front_is_right(result):
    s = result.summary
    points = [(r.metrics["val_acc"], -r.metrics["pixel3"]) for r in result.records]
    expected = {result.records[i].arch for i in front_indices(points)}
    assert {row["arch"] for row in s["front"]} == expected
    assert len(s["hv_curve"]) == len(result.records)
    assert all(b >= a - 1e-12 for a, b in zip(s["hv_curve"], s["hv_curve"][1:]))  # never shrinks
    assert s["hv_gap"] == pytest.approx(s["true_hypervolume"] - s["hypervolume"], abs=3e-6) and s["hv_gap"] >= 0


@pytest.mark.parametrize("strategy", ["random", "nsga2", "motpe"])
def test_baselines_return_the_front_of_their_queries(data, strategy):
    result = run_search(space="nb201", strategy=strategy, predictor=None, data=data,
                        objectives=["val_acc:max", "pixel3:min"], budget=30, seed=0)
    _front_is_right(result)
    assert result.summary["objectives"] == ["val_acc:max", "pixel3:min"]


def test_an_unknown_multi_objective_strategy_is_refused(data):
    with pytest.raises(NasloopError, match="nsga2"):
        run_search(space="nb201", strategy="evolution", predictor=None, data=data,
                   objectives=["val_acc:max", "pixel3:min"], budget=10)


MO_CFG = SearchConfig(n_warmup=5, n_pool=40, n_local=1)


@pytest.mark.parametrize("goal", [{"objectives": ["val_acc:max", "pixel3:min"], "strategy": "nsga2"},
                                  {"metric": "val_acc", "constraints": ["pixel3<=8"]}], ids=["pareto", "constrained"])
def test_a_killed_run_resumes_to_the_uninterrupted_one(data, tmp_path, goal):
    options = {"strategy": "random", "predictor": "rf", "data": data, **goal, "budget": 22, "seed": 4,
               "search": MO_CFG}
    ref = run_search(space="nb201", **options, out=tmp_path / "ref")
    if "objectives" in goal:
        _front_is_right(ref)

    class Kill(Exception):
        pass

    def killer(event):
        if event.phase == "query" and event.n_queries == 13:
            raise Kill

    with pytest.raises(Kill):
        run_search(space="nb201", **options, out=tmp_path / "run", callback=killer)
    assert not (tmp_path / "run" / "summary.json").exists()
    done = resume_search(tmp_path / "run")
    assert [r.arch for r in done.records] == [r.arch for r in ref.records]
    ignore = ("timings", "resumed", "run_dir")
    assert {k: v for k, v in done.summary.items() if k not in ignore} == \
        {k: v for k, v in ref.summary.items() if k not in ignore}
    assert (tmp_path / "run" / "history.jsonl").read_text().count('"feasible"') == 22 * ("constraints" in goal)
    if "objectives" in goal:
        assert (tmp_path / "run" / "front.jsonl").read_text() == (tmp_path / "ref" / "front.jsonl").read_text()


def test_a_run_from_before_directions_resumes_as_maximised(data, tmp_path):
    run_search(space="nb201", strategy="evolution", predictor=None, data=data, metric="pixel3", direction="max",
               budget=10, seed=0, out=tmp_path / "old")
    config_path = tmp_path / "old" / "config.json"
    config = json.loads(config_path.read_text())
    for key in ("direction", "objectives", "constraints", "side_predictor"):
        config.pop(key)
    config_path.write_text(json.dumps(config))
    result = resume_search(tmp_path / "old", budget=15)
    assert result.summary["direction"] == "max" and len(result.records) == 15
    assert result.summary["best"]["value"] == max(r.metrics["pixel3"] for r in result.records)


# --- CLI --------------------------------------------------------------------------------------------------------
def test_cli_pareto_search_with_json(data, tmp_path):
    out = run_cli("search", "--data", data[0], "--data", data[1], "--objective", "val_acc:max", "--objective",
                  "pixel3", "--strategy", "nsga2", "--predictor", "none", "--budget", "20", "--out",
                  str(tmp_path / "run"), "--json", "-q")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["objectives"] == ["val_acc:max", "pixel3:min"] and summary["front"]
    assert len((tmp_path / "run" / "front.jsonl").read_text().splitlines()) == len(summary["front"])
    longer = run_cli("search", "--resume", str(tmp_path / "run"), "--budget", "25", "--json", "-q")
    assert longer.returncode == 0, longer.stderr
    assert json.loads(longer.stdout)["n_queries"] == 25


def test_cli_constraint_from_toml_and_a_bad_one(data, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(f'data = {json.dumps(data)}\nmetric = "val_acc:max"\nconstraints = ["pixel3<=6"]\n'
                      'predictor = "none"\nstrategy = "evolution"\nbudget = 15\n')
    out = run_cli("search", "--config", str(config), "--out", str(tmp_path / "run"), "-q")
    assert out.returncode == 0, out.stderr
    assert "subject to pixel3<=6" in out.stdout and "infeasible" in out.stdout
    bad = run_cli("search", "--data", data[1], "--constraint", "pixel3<8", "--predictor", "none", "--budget", "5",
                  "--out", str(tmp_path / "bad"))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()


def test_compare_and_plot_pareto_searches(data, tmp_path):
    out = run_cli("compare", "--data", data[0], "--data", data[1], "--objective", "val_acc:max", "--objective",
                  "pixel3:min", "--strategy", "random", "--strategy", "nsga2", "--seeds", "2", "--budget", "20",
                  "--jobs", "1", "--out", str(tmp_path / "study"), "--json")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert sorted(c["label"] for c in payload["configurations"]) == ["nsga2", "random"]
    for config in payload["configurations"]:
        assert config["n_runs"] == 2 and 0 <= config["final_gap_mean"] <= payload["true_hypervolume"]
    run = tmp_path / "study" / "random" / "seed-0"
    summary = json.loads((run / "summary.json").read_text())
    assert config["final_gap_mean"] >= 0 and summary["hv_gap"] >= 0
    plotted = run_cli("plot", str(run), "--out", str(tmp_path / "fig"), "--json")
    assert plotted.returncode == 0, plotted.stderr
    assert sorted(p.rsplit("/", 1)[1] for p in json.loads(plotted.stdout)["files"]) == ["front.png", "hv_gap.png"]


def test_compare_honours_a_minimised_metric_and_constraints(data, tmp_path):
    out = run_cli("compare", "--data", data[0], "--data", data[1], "--metric", "pixel3:min", "--constraint",
                  "val_acc>=85", "--strategy", "evolution", "--seeds", "2", "--budget", "20", "--jobs", "1",
                  "--out", str(tmp_path / "study"), "--json")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    runs = [json.loads((tmp_path / "study" / "evolution" / f"seed-{k}" / "summary.json").read_text()) for k in (0, 1)]
    # the final mean of the incumbent curve is the mean best feasible value of the runs
    assert payload["configurations"][0]["final_search_mean"] == pytest.approx(
        np.mean([r["best"]["value"] for r in runs]))
    assert all(r["best"]["metrics"]["val_acc"] >= 85 and r["direction"] == "min" for r in runs)


def test_two_objective_improvement_agrees_with_the_general_path():
    # a third objective at the ideal for every point leaves every hypervolume as in two dimensions
    rng = np.random.default_rng(0)
    scale2, scale3 = Scale(np.zeros(2), np.ones(2)), Scale(np.zeros(3), np.ones(3))
    for _ in range(20):
        points = rng.random((int(rng.integers(1, 12)), 2)) * 1.2 - 0.1
        front = points[front_indices(points)]
        cand = rng.random((30, 2)) * 1.2 + 0.01  # inside the reference box
        flat = improvement(scale2, front, cand)
        ones = np.ones((len(front), 1)), np.ones((len(cand), 1))
        deep = improvement(scale3, np.hstack([front, ones[0]]), np.hstack([cand, ones[1]]))
        np.testing.assert_allclose(flat, deep, atol=1e-12)


def test_compare_refuses_an_unknown_constraint_column_before_writing(data, tmp_path):
    out = run_cli("compare", "--data", data[0], "--constraint", "pixel3<=5", "--strategy", "random", "--seeds", "1",
                  "--budget", "5", "--jobs", "1", "--out", str(tmp_path / "study"))
    assert out.returncode == 2 and "pixel3" in out.stderr and not (tmp_path / "study").exists()


@pytest.mark.parametrize("goal", [("--constraint", "pixel3<=8"), ("--objective", "val_acc:max", "--objective",
                                                                  "pixel3:min")])
def test_parallel_runs_refuse_constraints_and_several_objectives_before_writing(tmp_path, goal):
    from tests.conftest import NB201_CIFAR10, NB201_LATENCY, require_shared, run_cli

    data = ("--data", str(require_shared(NB201_CIFAR10)), "--data", str(require_shared(NB201_LATENCY)))
    out = run_cli("search", *data, *goal, "--workers", "2", "--simulate", "--cost", "1080ti_256", "--budget", "10",
                  "--predictor", "none", "--out", str(tmp_path / "run"))
    assert out.returncode == 2 and "one worker" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
