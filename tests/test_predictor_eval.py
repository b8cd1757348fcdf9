"""The evaluation protocol (nasloop.predictor_eval) and ``nasloop predictor eval``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from nasloop.benchmark import TabularBenchmark
from nasloop.errors import ConfigError
from nasloop.predictor_eval import (
    REFERENCE_TAU,
    compute_metrics,
    evaluate,
    format_table,
    infer_kind,
    sample_train,
    write_outputs,
)


def test_importing_the_protocol_does_not_import_torch():
    code = "import sys, nasloop.predictor_eval, nasloop.commands.predictor; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_metrics_on_known_values():
    true = np.array([1.0, 2.0, 3.0, 4.0])
    m = compute_metrics(true * 10, true, "accuracy")
    assert m["kendall_tau"] == pytest.approx(1.0) and m["spearman"] == pytest.approx(1.0)
    assert "mape" not in m
    lat = compute_metrics(np.array([1.05, 2.5, 3.0, 4.2]), true, "latency")
    assert lat["mape"] == pytest.approx(100 * np.mean([0.05, 0.25, 0.0, 0.05]))
    assert lat["acc10"] == pytest.approx(75.0)


def test_train_cells_are_drawn_with_the_seed():
    a, b = sample_train(15625, 156, 0), sample_train(15625, 156, 0)
    assert np.array_equal(a, b) and len(set(a.tolist())) == 156
    assert not np.array_equal(a, sample_train(15625, 156, 1))
    with pytest.raises(ConfigError, match="train size"):
        sample_train(100, 101, 0)


def test_kind_is_inferred_from_column_or_table():
    assert infer_kind("val_acc") == "accuracy"
    assert infer_kind("pixel3", "latency_ms.csv") == "latency"
    assert infer_kind("latency") == "latency"


def test_published_reference_values():
    assert REFERENCE_TAU[("nnformer", 156)] == 0.804 and REFERENCE_TAU[("nnformer", 1563)] == 0.890
    assert REFERENCE_TAU[("narformer2", 156)] == 0.752 and REFERENCE_TAU[("narformer2", 1563)] == 0.888


def _toy_bench(n: int = 300) -> TabularBenchmark:
    from nasloop.registry import make_space

    space = make_space("nb201")
    archs = list(space.enumerate())[:n]
    acc = np.array([70 + 4 * a.count("nor_conv_3x3") - 6 * a.count("none") for a in archs], dtype=float)
    lat = np.array([1 + a.count("nor_conv_3x3") + 0.3 * a.count("nor_conv_1x1") for a in archs], dtype=float)
    return TabularBenchmark(space, archs, {"val_acc": acc, "latency": lat}, label="toy table")


def test_evaluate_returns_runs_summary_and_scatter(tmp_path):
    result = evaluate(_toy_bench(), "val_acc", ["rf"], [40, 80], n_seeds=2, options={"n_estimators": 10})
    assert {(r["train_size"], r["seed"]) for r in result["runs"]} == {(40, 0), (40, 1), (80, 0), (80, 1)}
    row = result["summary"][0]
    assert row["n_seeds"] == 2 and row["kendall_tau"]["mean"] > 0.5
    assert set(result["scatter"]) == {"rf@40", "rf@80"}
    table = format_table(result)
    assert "Kendall tau" in table and "rf" in table
    paths = write_outputs(result, tmp_path / "out")
    assert [p.name for p in paths] == ["predictor_eval.json", "predictor_eval.csv", "predictor_eval_scatter.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    saved = json.loads(paths[0].read_text())
    assert saved["setting"]["target"] == "val_acc" and len(saved["runs"]) == 4


def test_latency_evaluation_reports_mape_and_acc10():
    result = evaluate(_toy_bench(), "latency", ["rf"], [60], n_seeds=1, options={"n_estimators": 10})
    assert result["setting"]["kind"] == "latency"
    row = result["summary"][0]
    assert row["mape"]["mean"] >= 0 and 0 <= row["acc10"]["mean"] <= 100
    assert "MAPE" in format_table(result)


def test_unknown_predictor_option_is_reported():
    with pytest.raises(ConfigError, match="no option"):
        evaluate(_toy_bench(), "val_acc", ["rf"], [40], n_seeds=1, options={"n_members": 3, "bogus": 1})


def test_eval_scores_on_idle_cores_and_keeps_the_users_config():
    from nasloop.predictor_eval import _make

    def threads(model):
        cfg = model._configs()[1]
        return cfg.n_threads, cfg.predict_threads

    model = _make("nnformer", preset="fast", seed=0, kind="accuracy", options={}, callback=None)
    assert model.predict_threads == "auto" and threads(model) == (1, "auto")
    model = _make("nnformer", preset="fast", seed=0, kind="accuracy", callback=None,
                  options={"config": {"d_model": 32, "predict_threads": 1}})
    assert threads(model) == (1, 1)  # the user's config wins
    assert _make("rf", preset="fast", seed=0, kind="accuracy", options={}, callback=None).config is None
    model = _make("gin", preset="fast", seed=0, kind="accuracy", options={}, callback=None, fit_threads=2)
    assert threads(model) == (2, "auto")


def test_eval_passes_only_the_options_a_predictor_declares():
    """A plug-in that declares no caller options gets none (here not even its own target= keyword)."""
    from nasloop.predictor_eval import _make

    model = _make("tests.toy_predictor:ToyRidge", preset="fast", seed=0, kind="accuracy", options={},
                  callback=lambda done, total: None)
    assert model.get_params() == {"preset": "fast", "seed": 0, "n_members": 3, "alpha": 1.0, "warm_start": True}
    with pytest.raises(ConfigError, match="cannot be trained for latency"):
        _make("tests.toy_predictor:ToyRidge", preset="fast", seed=0, kind="latency", options={}, callback=None)


# --- the CLI ------------------------------------------------------------------------------------------------
def _cli(args, capsys):
    from nasloop.cli import main

    with pytest.raises(SystemExit) as exc:
        main(args)
    captured = capsys.readouterr()
    return exc.value.code, captured.out, captured.err


def test_cli_eval_on_the_real_table(nb201_cifar10_path, tmp_path, capsys):
    code, out, err = _cli(["predictor", "eval", "--data", str(nb201_cifar10_path), "--target", "val_acc",
                           "--predictor", "rf", "--train-size", "100", "--seeds", "1", "--out", str(tmp_path),
                           "--json"], capsys)
    assert code == 0, err
    payload = json.loads(out)
    row = payload["summary"][0]
    assert row["predictor"] == "rf" and row["train_size"] == 100 and row["n_seeds"] == 1
    assert row["kendall_tau"]["mean"] > 0.3  # a forest on 100 cells already ranks NB201 well above chance
    assert payload["setting"]["n_test"] == 15625
    assert (tmp_path / "predictor_eval_scatter.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--predictor", "rf", "--train-size", "1"], "train-size"),
        (["--predictor", "no_such_model", "--train-size", "10"], "unknown predictor"),
        (["--predictor", "rf", "--train-size", "10", "--target", "no_such_column"], "no_such_column"),
        (["--predictor", "rf", "--train-size", "10", "--seeds", "0"], "seeds"),
        (["--predictor", "rf", "--train-size", "10", "--fit-threads", "0"], "--fit-threads"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(nb201_cifar10_path, capsys, args, message):
    code, _, err = _cli(["predictor", "eval", "--data", str(nb201_cifar10_path), *args], capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
