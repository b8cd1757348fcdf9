"""Model-level tests of the predictors: masks, padding, shapes, seeds, warm start, the contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nasloop.conformance import check_predictor
from nasloop.errors import ConfigError, NotFittedError
from nasloop.registry import make_predictor, make_space
from nasloop.types import ArchGraph
from predictors.graphs import GraphEncoder, isomorphic_relabel
from predictors.narformer2 import NARFormerV2, NARFormerV2Config, nerf
from predictors.nnformer import NNFormer, NNFormerConfig, asma_masks

TORCH_PREDICTORS = ["nnformer", "narformer2", "mlp", "gin"]
ALL_PREDICTORS = [*TORCH_PREDICTORS, "rf"]
# Tiny settings so that every fit in this file takes well under a second or two.
TINY = {
    "nnformer": {"d_model": 16, "n_layers": 2, "epochs": 5, "min_steps": 0, "max_steps": 30},
    "narformer2": {"d_model": 16, "n_layers": 2, "head_hidden": 16, "epochs": 5, "min_steps": 0, "max_steps": 30},
    "mlp": {"hidden": 16, "epochs": 5, "min_steps": 0, "max_steps": 30},
    "gin": {"hidden": 16, "epochs": 5, "min_steps": 0, "max_steps": 30},
    "rf": {"n_estimators": 10},
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(name: str, **kwargs):
    return make_predictor(name, preset="fast", seed=kwargs.pop("seed", 0), config=TINY[name], **kwargs)


def nb201_data(kind: str | None, n: int = 40, seed: int = 0):
    space = make_space("nb201")
    rng = np.random.default_rng(seed)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(3 * n)))[:n]
    y = np.array([80 + 3 * a.count("nor_conv_3x3") - 5 * a.count("none") + a.count("skip_connect") for a in archs])
    return [space.to_graph(a, kind) for a in archs], y.astype(float)


DIAMOND = ArchGraph(ops=(0, 1, 2, 3), edges=((0, 1), (0, 2), (1, 3), (2, 3)), vocab=("in", "a", "b", "out"))


# --- NN-Former attention masks ---------------------------------------------------------------------------
def _masks(graph: ArchGraph, strict: bool, pad_to: int | None = None) -> torch.Tensor:
    batch = GraphEncoder().encode([graph], pad_to=pad_to)
    return asma_masks(batch.adj, batch.mask, strict)[0]  # (4, L, L)


def test_released_code_masks_make_the_sibling_heads_global():
    masks = _masks(DIAMOND, strict=False)
    assert masks.shape == (4, 6, 6)
    # A+I and Aᵀ+I with cls/depth rows and columns all ones: 16 + 4 edges + 4 self = 28 of 36.
    assert masks[0].sum() == 28 and masks[1].sum() == 28
    # AᵀA and AAᵀ of the ones-padded adjacency are full: the two sibling heads are global attention.
    assert masks[2].all() and masks[3].all()


def test_strict_masks_follow_the_dag():
    m = _masks(DIAMOND, strict=True)
    node = lambda i: i + 2  # noqa: E731 - tokens are [cls, depth, nodes]
    # head 1 (A + I): a node sees itself and its successors
    assert m[0, node(0), node(1)] and m[0, node(0), node(2)] and not m[0, node(0), node(3)]
    assert not m[0, node(1), node(0)]
    # head 2 (Aᵀ + I): predecessors
    assert m[1, node(3), node(1)] and m[1, node(3), node(2)] and not m[1, node(3), node(0)]
    # head 3 (AᵀA + I): share a parent (1 and 2 both come from 0); 0 and 3 share none
    assert m[2, node(1), node(2)] and m[2, node(2), node(1)] and not m[2, node(0), node(3)]
    assert not m[2, node(1), node(3)]
    # head 4 (AAᵀ + I): share a child (1 and 2 both feed 3)
    assert m[3, node(1), node(2)] and not m[3, node(0), node(1)] and not m[3, node(3), node(1)]
    # every head has the diagonal, and cls/depth see and are seen by everyone
    for h in range(4):
        assert m[h].diagonal().all()
        assert m[h, :2].all() and m[h, :, :2].all()


@pytest.mark.parametrize("strict", [False, True])
def test_padding_tokens_attend_only_to_themselves_and_are_never_attended(strict):
    m = _masks(DIAMOND, strict=strict, pad_to=7)  # 4 real nodes + 3 padding → L = 9
    pad = slice(6, 9)
    assert not m[:, :6, pad].any()  # no real token sees padding
    assert (m[:, pad, pad] == torch.eye(3, dtype=torch.bool)).all()
    assert not m[:, pad, :6].any()


def test_bgiffn_sums_successors_forward_and_predecessors_backward():
    from predictors.nnformer import BGIFFN

    cfg = NNFormerConfig(d_model=4, mlp_ratio=2, dropout=0.0)
    ffn = BGIFFN(cfg).eval()
    with torch.no_grad():
        ffn.fc1.weight.zero_()
        ffn.graph.weight.copy_(torch.cat([torch.eye(4), torch.eye(4)]))  # G = [x, x]
        ffn.fc2.weight.copy_(torch.cat([torch.eye(4), 10 * torch.eye(4)], dim=1))
    x = torch.tensor([[[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]]])  # chain 0→1→2
    adj = torch.tensor([[[0.0, 1, 0], [0, 0, 1], [0, 0, 0]]])
    y = ffn(x, adj)[0]
    # node 0: forward half holds its successor (node 1); backward half (×10) its predecessors (none)
    assert torch.allclose(y[0], torch.tensor([0.0, 1, 0, 0]))
    # node 2: no successor; predecessor node 1 through the backward half
    assert torch.allclose(y[2], torch.tensor([0.0, 10, 0, 0]))


def test_asma_fused_attention_equals_the_explicit_masked_softmax():
    """Evaluation runs the fused kernel; training with attention dropout the explicit ops. Same maths."""
    from predictors.nnformer import ASMA

    torch.manual_seed(0)
    graphs, _ = nb201_data("pruned", n=8)
    batch = GraphEncoder().encode(graphs, pad_to=10)
    masks = asma_masks(batch.adj, batch.mask, strict=True)
    attn = ASMA(NNFormerConfig(d_model=16, dropout=0.0)).eval()
    x = torch.randn(len(graphs), 12, 16)
    with torch.no_grad():
        fused = attn(x, masks)
        attn.training, attn.attn_drop.p = True, 1e-9  # the explicit path; the dropout drops nothing
        explicit = attn(x, masks)
    assert torch.allclose(fused, explicit, atol=1e-6)


def test_attention_dropout_can_be_set_apart_from_the_other_dropouts():
    from predictors.nnformer import ASMA

    attn = ASMA(NNFormerConfig(d_model=16, dropout=0.1, attn_dropout=0.0))
    assert attn.attn_drop.p == 0.0 and attn.resid_drop.p == 0.1
    assert ASMA(NNFormerConfig(d_model=16, dropout=0.1)).attn_drop.p == 0.1


# --- NAR-Former V2 pieces -------------------------------------------------------------------------------
def test_nerf_interleaves_sin_and_cos_of_linear_frequencies():
    code = nerf(torch.tensor([0.5]), 4)[0]
    freqs = np.linspace(1, 8, 4)
    expected = np.stack([np.sin(np.pi * freqs * 0.5), np.cos(np.pi * freqs * 0.5)], axis=1).ravel()
    assert code.shape == (8,)
    assert np.allclose(code.numpy(), expected, atol=1e-6)


def test_narformer2_looks_up_the_same_codes_it_would_compute():
    """The model codes each distinct op id and position once; the tokens must not change."""
    cfg = NARFormerV2Config(d_model=16, n_layers=1, head_hidden=16, dropout=0.0)
    model = NARFormerV2(cfg, torch.Generator().manual_seed(0)).eval()
    graphs, _ = nb201_data("full", n=6)
    batch = GraphEncoder().encode(graphs)
    seen = {}

    def keep_input(_module, args):
        seen["x"] = args[0]

    model.layers[0].register_forward_pre_hook(keep_input)
    with torch.no_grad():
        model(batch)
    pos = torch.arange(batch.ops.shape[1]).expand_as(batch.ops)
    direct = torch.cat([nerf(batch.ops, cfg.multires_op), nerf(pos, cfg.multires_pos)], dim=-1)
    assert torch.equal(seen["x"], direct * batch.mask[..., None])


def test_narformer2_grouped_layer_norm_scores_as_it_trains():
    """Scoring folds the layer norm's centring into the grouped weights; training does not. Both
    must give the same numbers (with trained, not freshly initialised, norm and bias values)."""
    from predictors.narformer2 import GroupedLinear

    gen = torch.Generator().manual_seed(0)
    layer = GroupedLinear(16, 64, 8, gen)
    with torch.no_grad():
        for p in (layer.bias, layer.norm_weight, layer.norm_bias):
            p.copy_(torch.randn(p.shape, generator=gen))
    xg = torch.randn(8, 50, 2, generator=gen)
    trained = layer(xg)  # grad enabled: torch's layer_norm
    expected = F.layer_norm(torch.baddbmm(layer.bias[:, None], xg, layer.weight), (8,))
    assert torch.allclose(trained, expected * layer.norm_weight[:, None] + layer.norm_bias[:, None], atol=1e-6)
    with torch.no_grad():
        scored = layer(xg)
    assert torch.allclose(scored, trained, atol=2e-5)
    assert not torch.equal(scored, trained)  # the scoring path did run


def test_isomorphic_relabel_keeps_the_cell_and_changes_positions():
    graph = make_space("nb201").to_graph(("nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3",
                                          "nor_conv_1x1", "nor_conv_3x3"), "full")
    other = isomorphic_relabel(graph)
    assert other != graph
    assert sorted(other.ops) == sorted(graph.ops) and len(other.edges) == len(graph.edges)
    assert all(i < j for i, j in other.edges)
    assert other.ops[0] == graph.ops[0] and other.ops[-1] == graph.ops[-1]


def test_narformer2_scores_are_restricted_to_neighbours_and_sum_normalised():
    from predictors.narformer2 import GraphAttention

    cfg = NARFormerV2Config(d_model=8, dropout=0.0, use_degree=False)
    layer = GraphAttention(4, 8, cfg, torch.Generator().manual_seed(0)).eval()
    x = torch.randn(1, 3, 4)
    adj = torch.tensor([[[0.0, 1, 0], [1, 0, 0], [0, 0, 0]]])  # node 2 isolated
    mask = torch.ones(1, 3, dtype=torch.bool)
    with torch.no_grad():
        changed = x.clone()
        changed[0, 2] += 5.0  # an isolated node must not influence the others
        a, b = layer(x, adj, mask), layer(changed, adj, mask)
    assert torch.allclose(a[0, :2], b[0, :2], atol=1e-6)


# --- all models: padding invariance, shapes, determinism --------------------------------------------------
@pytest.mark.parametrize("model_cls", ["nnformer", "narformer2"])
def test_padding_invariance_of_the_transformers(model_cls):
    g = torch.Generator().manual_seed(0)
    if model_cls == "nnformer":
        model = NNFormer(NNFormerConfig(d_model=16, n_layers=2, dropout=0.0), g).eval()
        kind = "pruned"
    else:
        model = NARFormerV2(NARFormerV2Config(d_model=16, n_layers=2, head_hidden=16, dropout=0.0), g).eval()
        kind = "full"
    graphs, _ = nb201_data(kind, n=12)
    small = min(graphs, key=lambda gr: gr.n_nodes)
    enc = GraphEncoder()
    with torch.no_grad():
        alone = model(enc.encode([small]))
        padded = model(enc.encode([small, *graphs], pad_to=12))
    assert torch.allclose(alone[0], padded[0], atol=1e-5)


@pytest.mark.parametrize("name", ALL_PREDICTORS)
def test_padded_batch_prediction_equals_prediction_alone(name):
    predictor = tiny(name)
    graphs, y = nb201_data(predictor.graph_kind, n=30)
    predictor.fit(graphs, y)
    pool = predictor.predict(graphs)
    for i in (0, 7, 19):
        assert predictor.predict([graphs[i]])[0] == pytest.approx(pool[i], rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("name", ALL_PREDICTORS)
def test_output_shapes_and_ensemble_spread(name):
    options = {} if name == "rf" else {"n_members": 2}
    predictor = tiny(name, **options)
    graphs, y = nb201_data(predictor.graph_kind, n=24)
    predictor.fit(graphs, y)
    pred = predictor.predict(graphs[:5])
    mean, std = predictor.predict_dist(graphs[:5])
    assert pred.shape == mean.shape == std.shape == (5,)
    assert np.allclose(pred, mean)
    assert np.all(std >= 0) and np.any(std > 0)
    assert predictor.predict([]).shape == (0,)


@pytest.mark.parametrize("name", ALL_PREDICTORS)
def test_same_seed_same_predictions(name):
    graphs, y = nb201_data(tiny(name).graph_kind, n=24)
    a = tiny(name, seed=3).fit(graphs, y).predict(graphs)
    b = tiny(name, seed=3).fit(graphs, y).predict(graphs)
    c = tiny(name, seed=4).fit(graphs, y).predict(graphs)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_leaves_torch_global_rng_alone():
    graphs, y = nb201_data("pruned", n=20)
    state = torch.get_rng_state()
    tiny("nnformer").fit(graphs, y)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("name", TORCH_PREDICTORS)
def test_fast_presets_fit_and_predict_on_one_thread_and_restore_torch_setting(name):
    graphs, y = nb201_data(tiny(name).graph_kind, n=20)
    model = tiny(name)
    seen = []
    model.callback = lambda done, total: seen.append(torch.get_num_threads())
    torch.set_num_threads(2)
    try:
        model.fit(graphs, y)
        assert torch.get_num_threads() == 2
        model.members_[0].register_forward_pre_hook(lambda *_: seen.append(("predict", torch.get_num_threads())))
        if model.emas_[0] is not None:
            model.emas_[0].register_forward_pre_hook(lambda *_: seen.append(("predict", torch.get_num_threads())))
        model.predict(graphs)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    assert seen and set(seen) == {1, ("predict", 1)}


@pytest.mark.parametrize(("cores", "load", "threads"), [(2, 1.0, 2), (2, 0.1, 2), (2, 2.1, 1), (2, 3.9, 1),
                                                     (8, 3.0, 6), (1, 0.0, 1)])
def test_idle_threads_counts_the_cores_the_load_leaves(monkeypatch, cores, load, threads):
    import os

    from predictors.training import idle_threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert idle_threads() == threads


def test_idle_threads_is_one_without_a_load_average(monkeypatch):
    import os

    from predictors.training import idle_threads

    def unavailable():
        raise OSError("no load average")

    monkeypatch.setattr(os, "getloadavg", unavailable)
    assert idle_threads() == 1


@pytest.mark.parametrize("name", ["nnformer", "narformer2"])
def test_scores_do_not_depend_on_the_scoring_threads(monkeypatch, name):
    """The premise of predict_threads="auto": only the speed depends on the thread count."""
    import predictors.training as training

    graphs, y = nb201_data(tiny(name).graph_kind, n=300)
    model = make_predictor(name, seed=0, config={**TINY[name], "predict_threads": "auto"}).fit(graphs[:60], y[:60])
    scores = {}
    for n in (1, 2):
        monkeypatch.setattr(training, "idle_threads", lambda n=n: n)
        seen: list[int] = []
        hook = model.emas_[0].register_forward_pre_hook(lambda *_, seen=seen: seen.append(torch.get_num_threads()))
        scores[n] = model.predict(graphs)
        hook.remove()
        assert set(seen) == {n}
    np.testing.assert_allclose(scores[1], scores[2], rtol=0, atol=1e-6)


def test_bad_thread_settings_are_reported():
    for key, value in (("predict_threads", "many"), ("n_threads", 0), ("n_threads", "as_fit")):
        with pytest.raises(ConfigError, match=key):
            make_predictor("mlp", config={**TINY["mlp"], key: value}).fit(*nb201_data(None, n=20))


# --- warm start -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TORCH_PREDICTORS)
def test_warm_start_continues_from_the_previous_weights(name):
    graphs, y = nb201_data(tiny(name).graph_kind, n=40)
    no_ema = {**TINY[name], "ema_decay": None}
    predictor = make_predictor(name, seed=0, config=no_ema, warm_start=True).fit(graphs[:20], y[:20])
    before = predictor.predict(graphs)
    first = predictor.members_[0]
    # With lr = 0 a warm-started fit cannot move: predictions stay exactly those of the first fit.
    predictor.set_params(config={**no_ema, "lr": 0.0})
    predictor.fit(graphs, y)
    assert predictor.fit_info_["warm_start"] and predictor.members_[0] is first
    assert np.allclose(predictor.predict(graphs), before, atol=1e-6)
    # A cold fit with lr = 0 restarts from a fresh initialisation instead.
    cold = tiny(name)
    cold.set_params(config={**TINY[name], "lr": 0.0, "ema_decay": None})
    assert not np.allclose(cold.fit(graphs, y).predict(graphs), before)


def test_warm_start_runs_the_shorter_schedule():
    graphs, y = nb201_data("pruned", n=40)
    predictor = tiny("nnformer", warm_start=True).fit(graphs[:30], y[:30])
    cold_steps = tiny("nnformer").fit(graphs, y).fit_info_["n_steps"]
    predictor.fit(graphs, y)
    assert predictor.fit_info_["warm_start"]
    assert predictor.fit_info_["n_steps"] == round(cold_steps * 0.5)


# --- targets, errors, the contract ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL_PREDICTORS)
def test_latency_target_gives_positive_predictions(name):
    predictor = tiny(name, target="latency")
    graphs, y = nb201_data(predictor.graph_kind, n=24)
    lat = 0.01 * (y - 60)  # small positive "milliseconds"
    pred = predictor.fit(graphs, lat).predict(graphs)
    assert np.all(pred > 0)


@pytest.mark.parametrize("name", ALL_PREDICTORS)
def test_latency_target_rejects_non_positive_values(name):
    predictor = tiny(name, target="latency")
    graphs, y = nb201_data(predictor.graph_kind, n=10)
    with pytest.raises(ConfigError, match="positive"):
        predictor.fit(graphs, y - 200)


@pytest.mark.parametrize("name", ALL_PREDICTORS)
def test_scikit_learn_contract(name):
    predictor = tiny(name)
    params = predictor.get_params()
    assert params["seed"] == 0 and params["preset"] == "fast"
    assert not any(k.endswith("_") for k in vars(predictor))  # __init__ only stores arguments
    graphs, y = nb201_data(predictor.graph_kind, n=30)
    check_predictor(predictor, graphs, y)
    assert predictor.set_params(seed=5) is predictor and predictor.seed == 5
    with pytest.raises(ConfigError, match="no parameter"):
        predictor.set_params(not_a_parameter=1)


@pytest.mark.parametrize("name", ALL_PREDICTORS)
def test_predict_before_fit_raises(name):
    graphs, _ = nb201_data(tiny(name).graph_kind, n=3)
    with pytest.raises(NotFittedError):
        tiny(name).predict(graphs)


def test_unknown_config_key_is_an_instructive_error():
    graphs, y = nb201_data("pruned", n=10)
    with pytest.raises(ConfigError, match="unknown keys"):
        make_predictor("nnformer", config={"d_modle": 8}).fit(graphs, y)


def test_bad_preset_and_target_are_reported():
    graphs, y = nb201_data("pruned", n=10)
    with pytest.raises(ConfigError, match="preset"):
        make_predictor("nnformer", preset="huge").fit(graphs, y)
    with pytest.raises(ConfigError, match="target"):
        make_predictor("nnformer", target="energy").fit(graphs, y)


@pytest.mark.parametrize("name", ["nnformer", "mlp", "rf"])
def test_graphs_of_another_space_work_and_unseen_op_types_are_reported(name):
    vocab = tuple(f"op{i}" for i in range(40))
    rng = np.random.default_rng(0)
    graphs = []
    for _ in range(20):  # DARTS-like: 12-node chains with skips, 40 op types
        ops = (0, *(int(o) for o in rng.integers(1, 39, size=10)), 39)
        edges = tuple((i, i + 1) for i in range(11)) + ((0, 5), (3, 9))
        graphs.append(ArchGraph(ops, edges, vocab))
    y = rng.normal(size=20)
    predictor = tiny(name).fit(graphs, y)
    assert predictor.predict(graphs).shape == (20,)
    bigger = ArchGraph((0, 1, 45), ((0, 1), (1, 2)), tuple(f"op{i}" for i in range(46)))
    with pytest.raises(ConfigError, match="op types"):
        predictor.predict([bigger])


# --- real data ----------------------------------------------------------------------------------------
def test_nnformer_trained_on_200_real_cells_ranks_the_rest(nb201_cifar10):
    from scipy.stats import kendalltau

    bench = nb201_cifar10
    rng = np.random.default_rng(0)
    rows = rng.choice(len(bench.archs), size=1200, replace=False)
    train, test = rows[:200], rows[200:]
    y = bench.values("val_acc")
    graphs = [bench.space.to_graph(bench.archs[i], "pruned") for i in rows]
    predictor = make_predictor("nnformer", seed=0, config={"d_model": 32, "n_layers": 2, "epochs": 30,
                                                            "min_steps": 0, "dropout": 0.0, "lambda_cons": 0.0})
    predictor.fit(graphs[:200], y[train])
    tau = kendalltau(predictor.predict(graphs[200:]), y[test]).statistic
    assert tau > 0.5


@pytest.mark.parametrize("name", ["nnformer", "narformer2"])
def test_latency_fit_survives_near_zero_latencies(name, shared_data):
    """pixel3 holds cells with almost no compute (0.003 ms against a 10.7 ms median); their relative
    errors once drove NAR-Former V2's −log σ output into saturation (every prediction ~0)."""
    import csv

    space = make_space("nb201")
    rows = list(csv.DictReader((shared_data / "nb201" / "latency_ms.csv").open()))
    rng = np.random.default_rng(0)
    picks = rng.choice(len(rows), 300, replace=False)
    predictor = make_predictor(name, preset="fast", seed=0, target="latency", max_fit_steps=300)
    graphs = [space.to_graph(space.from_str(rows[i]["arch"]), predictor.graph_kind) for i in picks]
    y = np.array([float(rows[i]["pixel3"]) for i in picks])
    assert y.min() < 0.01 * np.median(y)  # the sample holds such cells
    pred = predictor.fit(graphs, y).predict(graphs)
    assert np.median(pred) > 0.25 * np.median(y)  # collapsed, the median prediction was 0.4% of it
    assert np.ptp(pred) > 0.5 * np.median(y)  # and all predictions lay within 0.03 ms of each other


def test_pickled_predictor_leaves_the_encoding_cache_out():
    import pickle

    graphs, y = nb201_data("pruned", n=20)
    model = tiny("nnformer").fit(graphs, y)
    before = model.predict(graphs)
    assert model._graph_encoder._cache
    clone = pickle.loads(pickle.dumps(model))
    assert clone._graph_encoder._cache == {}
    assert np.array_equal(clone.predict(graphs), before)


def test_the_loop_schedule_is_asked_for_explicitly():
    """NN-Former's fast preset fits stand-alone with lr 2e-3 over 250 epochs; with fit_schedule="loop"
    (the search loop's capped refits) it keeps lr 1e-3 and 300 epochs (they searched better,
    docs/decisions.md). A step cap alone changes only the steps; a caller's own lr or epochs win."""
    alone = make_predictor("nnformer", preset="fast", seed=0)._configs()[1]
    assert (alone.lr, alone.epochs, alone.max_steps) == (2e-3, 250, 6000)
    capped = make_predictor("nnformer", preset="fast", seed=0, max_fit_steps=300)._configs()[1]
    assert (capped.lr, capped.epochs, capped.max_steps) == (2e-3, 250, 300)
    in_loop = make_predictor("nnformer", preset="fast", seed=0, max_fit_steps=300, fit_schedule="loop")._configs()[1]
    assert (in_loop.lr, in_loop.epochs, in_loop.max_steps) == (1e-3, 300, 300)
    own = make_predictor("nnformer", preset="fast", seed=0, max_fit_steps=300, fit_schedule="loop",
                         config={"lr": 5e-4, "epochs": 40})._configs()[1]
    assert (own.lr, own.epochs) == (5e-4, 40)
    latency = make_predictor("nnformer", preset="fast", seed=0, target="latency", max_fit_steps=300,
                             fit_schedule="loop")._configs()[1]
    assert (latency.lr, latency.epochs) == (1e-3, 300)  # no loop schedule of its own
    with pytest.raises(ConfigError, match="unknown fit_schedule"):
        make_predictor("nnformer", fit_schedule="short")


def test_the_search_loop_passes_the_loop_schedule_with_its_cap():
    from nasloop.loop import _build_predictor
    from nasloop.search_config import SearchConfig

    capped, options = _build_predictor("nnformer", preset="fast", seed=0, cfg=SearchConfig(), options={})
    assert (capped.fit_schedule, capped.max_fit_steps, capped.warm_start, capped.fit_budget) == ("loop", 300, True, 6)
    assert "fit_schedule" not in options  # derived from the cap: config.json records what it always did
    uncapped = _build_predictor("nnformer", preset="fast", seed=0, cfg=SearchConfig(max_fit_steps=None),
                                options={})[0]
    assert (uncapped.fit_schedule, uncapped.max_fit_steps) == ("standalone", None)
    own = _build_predictor("nnformer", preset="fast", seed=0, cfg=SearchConfig(),
                           options={"fit_schedule": "standalone"})[0]
    assert own.fit_schedule == "standalone"


def test_narformer2_fast_preset_layers_per_target():
    # 4 layers for accuracy (docs/decisions.md); latency keeps the 3 its MAPE figures were measured with.
    accuracy = make_predictor("narformer2", preset="fast", seed=0)._configs()[0]
    latency = make_predictor("narformer2", preset="fast", seed=0, target="latency")._configs()[0]
    assert (accuracy.n_layers, latency.n_layers) == (4, 3)
