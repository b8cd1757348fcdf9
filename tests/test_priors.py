"""Predictor priors: pre-training, the prior on disk, adaptation, and --prior in the CLI."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from nasloop.conformance import check_predictor
from nasloop.errors import ConfigError
from predictors.prior import (
    SETTINGS_FILE,
    WEIGHTS_FILE,
    PretrainConfig,
    PriorPredictor,
    fit_ridge,
    load_prior,
    pretrain,
    prior_digest,
    save_prior,
)
from tests.conftest import NB201_CIFAR10, NB201_LATENCY, require_shared, run_cli

ROOT = Path(__file__).resolve().parents[1]
DEVICES = ["1080ti_1", "gold_6226", "pixel3"]


@pytest.fixture(scope="module")
def latency():
    from search_spaces.nasbench201.data import load_benchmark

    return load_benchmark(data=str(require_shared(NB201_LATENCY)))


@pytest.fixture(scope="module")
def executed_graphs(latency):
    from nasloop.space import graphs_for

    return graphs_for(latency.space, latency.archs[:400], "executed")


@pytest.fixture(scope="module")
def prior_dir(latency, executed_graphs, tmp_path_factory):
    values = np.stack([latency.values(d)[:400] for d in DEVICES[:2]], axis=1)
    settings, net = pretrain(executed_graphs, values, DEVICES[:2], ["latency"] * 2, graph_kind="executed",
                             config=PretrainConfig(steps=30, batch_size=16, max_cells=200))
    folder = tmp_path_factory.mktemp("prior")
    save_prior(folder, settings, net)
    return folder


def test_a_prior_round_trips_bit_for_bit(prior_dir, executed_graphs, tmp_path):
    first = load_prior(prior_dir)
    again = tmp_path / "again"
    save_prior(again, first.settings, first.network)
    second = load_prior(again)
    a, b = first.network.state_dict(), second.network.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (again / SETTINGS_FILE).read_bytes() == (prior_dir / SETTINGS_FILE).read_bytes()
    from predictors.graphs import GraphEncoder

    batch = GraphEncoder().encode(executed_graphs[:50])
    assert np.array_equal(first.features(batch), second.features(batch))


def test_pretraining_is_reproducible_and_learns(latency, executed_graphs):
    values = np.stack([latency.values(d)[:400] for d in DEVICES[:2]], axis=1)
    cfg = PretrainConfig(steps=30, batch_size=16, max_cells=200)
    runs = [pretrain(executed_graphs, values, DEVICES[:2], ["latency"] * 2, graph_kind="executed", config=cfg)[1]
            for _ in range(2)]
    a, b = (r.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_loading_refuses_a_weights_file_with_code(prior_dir, tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    crafted = tmp_path / "crafted"
    crafted.mkdir()
    (crafted / SETTINGS_FILE).write_bytes((prior_dir / SETTINGS_FILE).read_bytes())
    with open(crafted / WEIGHTS_FILE, "wb") as fh:
        pickle.dump({"weight": Payload()}, fh, protocol=2)
    with pytest.raises(ConfigError, match="refused"):
        load_prior(crafted)
    assert not marker.exists()


def test_loading_refuses_bad_folders_and_settings(prior_dir, tmp_path):
    with pytest.raises(ConfigError, match="not a prior folder"):
        load_prior(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / WEIGHTS_FILE).write_bytes((prior_dir / WEIGHTS_FILE).read_bytes())
    settings = json.loads((prior_dir / SETTINGS_FILE).read_text())
    (broken / SETTINGS_FILE).write_text(json.dumps({**settings, "targets": ["only_one"]}))
    with pytest.raises(ConfigError, match="same, non-zero length"):
        load_prior(broken)


def test_ridge_leave_one_out_matches_refitting():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 5))
    y = x @ rng.normal(size=5) + rng.normal(scale=0.3, size=12)
    lam = 2.0
    fit = fit_ridge(x, y, np.arange(5), penalties=(lam,))
    errors = []
    for i in range(12):
        keep = np.arange(12) != i
        one = fit_ridge(x[keep], y[keep], np.arange(5), penalties=(lam,))
        # The same standardisation as the full fit, so that only the left-out cell differs.
        errors.append(float(one.predict(x[i : i + 1])[0] - y[i]))
    # Leave-one-out with standardisation refitted per fold is close to, not equal to, the closed form.
    assert fit.loo_mse == pytest.approx(np.mean(np.square(errors)), rel=0.5)
    assert fit.penalty == lam


def test_ridge_closed_form_leave_one_out_is_exact_without_standardisation():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 3))
    x = (x - x.mean(0)) / x.std(0)
    y = x @ np.array([1.0, -0.5, 0.2]) + rng.normal(scale=0.2, size=10)
    lam = 1.5
    fit = fit_ridge(x, y, np.arange(3), penalties=(lam,))
    errors = []
    for i in range(10):
        keep = np.arange(10) != i
        xk, yk = x[keep], y[keep]
        # ridge with an unpenalised intercept on the fold, without re-standardising
        xm, ym = xk.mean(0), yk.mean()
        w = np.linalg.solve((xk - xm).T @ (xk - xm) + lam * np.eye(3), (xk - xm).T @ (yk - ym))
        errors.append(float((x[i] - xm) @ w + ym - y[i]))
    # fit_ridge centres with the full data's column means, the fold refit with its own: close, not exact.
    assert fit.loo_mse == pytest.approx(np.mean(np.square(errors)), rel=0.25)


def test_adaptation_is_deterministic_and_fits_the_contract(prior_dir, latency, executed_graphs):
    y = latency.values(DEVICES[2])[:400]
    idx = np.random.default_rng(0).choice(400, 10, replace=False)
    train = [executed_graphs[i] for i in idx]
    preds = []
    for _ in range(2):
        model = PriorPredictor(prior=str(prior_dir), target="latency")
        assert model.graph_kind == "executed"
        preds.append(model.fit(train, y[idx]).predict(executed_graphs))
    assert np.array_equal(preds[0], preds[1])
    assert np.all(preds[0] > 0)
    check_predictor(PriorPredictor(prior=str(prior_dir), target="latency"), train, y[idx])


def test_adaptation_survives_pickling_and_checks_the_digest(prior_dir, latency, executed_graphs, tmp_path):
    y = latency.values(DEVICES[2])[:20]
    model = PriorPredictor(prior=str(prior_dir), target="latency", prior_sha256=prior_digest(prior_dir))
    model.fit(executed_graphs[:20], y)
    restored = pickle.loads(pickle.dumps(model))
    assert "_prior" not in restored.__dict__
    assert np.array_equal(restored.predict(executed_graphs[:50]), model.predict(executed_graphs[:50]))
    wrong = PriorPredictor(prior=str(prior_dir), target="latency", prior_sha256="0" * 64)
    with pytest.raises(ConfigError, match="changed"):
        wrong.fit(executed_graphs[:20], y)


def test_adaptation_rejects_bad_options(prior_dir, executed_graphs):
    for kwargs, match in (({"features": "all"}, "unknown features"), ({"penalty": -1}, "penalty"),
                          ({"target": "speed"}, "unknown target")):
        with pytest.raises(ConfigError, match=match):
            PriorPredictor(prior=str(prior_dir), **kwargs).fit(executed_graphs[:5], [1.0, 2, 3, 4, 5])
    with pytest.raises(ConfigError, match="positive"):
        PriorPredictor(prior=str(prior_dir), target="latency").fit(executed_graphs[:3], [1.0, 0.0, 2.0])


# --- the command line ----------------------------------------------------------------------------------
# run_cli: tests/conftest.py


def test_pretrain_rejects_bad_input_before_writing(tmp_path):
    data = str(require_shared(NB201_LATENCY))
    for args, message in ((["--target", "no_such_device"], "none of the tables"),
                          (["--target", "all", "--target", "pixel3"], "alone"),
                          (["--target", "pixel3", "--steps", "0"], "--steps"),
                          (["--target", "pixel3", "--max-cells", "x"], "--max-cells")):
        out = run_cli("predictor", "pretrain", "--data", data, *args, "--out", str(tmp_path / "p"))
        assert out.returncode == 2, out.stderr
        assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "p").exists()


def test_pretrain_eval_search_and_resume_from_the_cli(tmp_path):
    latency_csv, cifar10 = str(require_shared(NB201_LATENCY)), str(require_shared(NB201_CIFAR10))
    prior = tmp_path / "prior"
    out = run_cli("predictor", "pretrain", "--data", latency_csv, "--target", "1080ti_1", "--target", "gold_6226",
                  "--steps", "20", "--max-cells", "300", "--out", str(prior), "--json")
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    assert made["sha256"] == prior_digest(prior) and made["kinds"] == ["latency", "latency"]
    out = run_cli("predictor", "eval", "--data", latency_csv, "--target", "pixel3", "--prior", str(prior),
                  "--train-size", "10", "--seeds", "1", "--json")
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)["summary"][0]
    assert row["predictor"] == "prior" and {"spearman", "kendall_tau", "mape"} <= set(row)

    acc_prior = tmp_path / "acc"
    out = run_cli("predictor", "pretrain", "--data", cifar10, "--target", "val_acc", "--steps", "20",
                  "--max-cells", "300", "--out", str(acc_prior))
    assert out.returncode == 0, out.stderr
    run = tmp_path / "run"
    out = run_cli("search", "--data", cifar10, "--prior", str(acc_prior), "--budget", "12", "--n-pool", "30",
                  "--out", str(run), "-q", "--json")
    assert out.returncode == 0, out.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["predictor"] == "prior" and config["search"]["n_warmup"] == 5
    assert config["predictor_options"]["prior_sha256"] == prior_digest(acc_prior)
    out = run_cli("search", "--resume", str(run), "--budget", "16", "-q", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["n_queries"] == 16
    settings = json.loads((acc_prior / SETTINGS_FILE).read_text())
    (acc_prior / SETTINGS_FILE).write_text(json.dumps({**settings, "sources": ["edited"]}))
    out = run_cli("search", "--resume", str(run), "--budget", "20", "-q")
    assert out.returncode == 2 and "changed" in out.stderr


def test_a_narformer2_prior_round_trips(latency, tmp_path):
    from nasloop.space import graphs_for

    graphs = graphs_for(latency.space, latency.archs[:60], "full")
    values = np.stack([latency.values(d)[:60] for d in DEVICES], axis=1)
    settings, net = pretrain(graphs, values, DEVICES, ["latency"] * 3, predictor="narformer2", graph_kind="full",
                             config=PretrainConfig(steps=5, batch_size=8))
    save_prior(tmp_path / "v2", settings, net)
    loaded = load_prior(tmp_path / "v2")
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), loaded.network.state_dict().values()))
    model = PriorPredictor(prior=str(tmp_path / "v2"), target="latency").fit(graphs[:10], values[:10, 0])
    assert model.predict(graphs).shape == (60,)


def test_compare_and_search_options_with_a_prior(prior_dir, tmp_path):
    from nasloop.commands.compare import build_spec
    from nasloop.commands.search import _file_options, _with_prior

    spec = build_spec({"strategies": ["random", "evolution"], "prior": str(prior_dir), "n_per_round": 4})
    assert [(c.strategy, c.predictor) for c in spec.configs] == [("random", "prior"), ("evolution", "prior")]
    assert all(c.search == {"n_per_round": 4, "n_warmup": 5} for c in spec.configs)
    assert spec.configs[0].predictor_options["prior_sha256"] == prior_digest(prior_dir)
    both = build_spec({"strategies": ["random"], "predictors": ["nnformer"], "prior": str(prior_dir),
                       "n_warmup": 8})
    assert [(c.predictor, c.search["n_warmup"]) for c in both.configs] == [("nnformer", 8), ("prior", 8)]

    toml = tmp_path / "search.toml"
    toml.write_text(f'prior = "{prior_dir}"\nbudget = 20\n')
    chosen = _with_prior(_file_options(str(toml)))
    assert chosen["predictor"] == "prior" and chosen["n_warmup"] == 5 and "prior" not in chosen
    with pytest.raises(ConfigError, match="replaces the predictor"):
        _with_prior({"prior": str(prior_dir), "predictor": "nnformer"})
    with pytest.raises(ConfigError, match="not a prior folder"):
        _with_prior({"prior": str(tmp_path)})


def test_a_prior_refuses_graphs_of_another_space(prior_dir, executed_graphs):
    from nasloop.types import ArchGraph

    g = executed_graphs[0]
    foreign = ArchGraph(g.ops, g.edges, tuple(f"x{i}" for i in range(len(g.vocab))))
    model = PriorPredictor(prior=str(prior_dir), target="latency").fit(executed_graphs[:10], np.arange(1.0, 11.0))
    with pytest.raises(ConfigError, match="another space"):
        model.predict([foreign])
