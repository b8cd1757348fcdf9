"""DARTS: genotype forms, validity-keeping sampling and mutation, the predictor graph, the network,
training on digits and on a CIFAR-10 folder, and the NAS-Bench-301 surrogate table."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from nasloop.conformance import check_graph, check_space
from nasloop.errors import ConfigError, DataError, InvalidArchitectureError
from search_spaces.darts.space import OPS, DartsSpace, Genotype, from_compact, to_compact

# The genotype of the DARTS paper (second order), exactly as printed in its genotypes.py.
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
    "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
    "reduce_concat=[2, 3, 4, 5])"
)
TINY = {"channels": 4, "layers": 3, "epochs": 1, "batch_size": 32}


@pytest.fixture(scope="module")
def space():
    return DartsSpace()


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny networks: one thread is fastest, and far faster when the CPU is shared (see train.py)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def nb301(shared_data):
    from search_spaces.darts.train import load_benchmark

    return load_benchmark(str(shared_data / "darts" / "nasbench301_725_surrogate_cifar10.json"))


def test_space_passes_the_conformance_checks(space):
    check_space(space, n=30)


def test_official_genotype_string_round_trips(space):
    g = space.from_str(DARTS_V2)
    assert g.normal[7] == ("dil_conv_3x3", 2) and g.reduce[0] == ("max_pool_3x3", 0)
    assert space.to_str(g) == DARTS_V2
    # The search code prints concat as a range; both spellings are the same genotype.
    assert space.from_str(DARTS_V2.replace("[2, 3, 4, 5]", "range(2, 6)")) == g


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("('skip_connect', 0), ('dil_conv_3x3', 2)", "('skip_connect', 2), ('dil_conv_3x3', 2)"),
         "two different inputs"),
        (("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), "inputs must be 0..4"),
        (("('dil_conv_3x3', 2)", "('none', 2)"), "unknown op 'none'"),
        (("normal_concat=[2, 3, 4, 5]", "normal_concat=[4, 5]"), "must be \\[2, 3, 4, 5\\]"),
        (("Genotype(", "Genotipe("), "not a DARTS genotype"),
    ],
)
def test_invalid_genotypes_are_rejected_with_the_reason(space, edit, message):
    with pytest.raises(InvalidArchitectureError, match=message):
        space.from_str(DARTS_V2.replace(*edit))


def test_naslib_compact_form(space):
    compact = "[[(0, 0), (1, 5), (1, 1), (0, 1), (1, 3), (0, 3), (1, 3), (3, 2)], " \
              "[(1, 0), (0, 2), (1, 3), (0, 3), (3, 0), (0, 1), (2, 0), (3, 6)]]"
    g = from_compact(compact)
    assert g.normal[:2] == (("max_pool_3x3", 0), ("dil_conv_3x3", 1))
    assert g.reduce[7] == ("dil_conv_5x5", 3)
    assert to_compact(g) == tuple(tuple(cell) for cell in eval(compact))
    assert space.from_str(compact) == g
    with pytest.raises(InvalidArchitectureError, match="op_index"):
        from_compact(str([[(0, 7), (1, 0)] * 4, [(0, 0), (1, 0)] * 4]))
    with pytest.raises(InvalidArchitectureError, match="two different inputs"):
        from_compact(str([[(0, 0), (0, 1)] * 4, [(0, 0), (1, 0)] * 4]))


def test_sampling_and_mutation_keep_genotypes_valid(space):
    rng = np.random.default_rng(0)
    g = space.sample(rng)
    assert space.sample(np.random.default_rng(0)) == g
    for _ in range(300):
        child = space.mutate(g, rng)
        assert child != g and space._check(child) == child
        assert sum(a != b for a, b in zip(g.normal + g.reduce, child.normal + child.reduce)) == 1
        g = child
    ops_seen = {op for cell in g for op, _ in cell}
    assert ops_seen <= set(OPS)
    assert all(g != n for n in space.neighbours(g))


def test_canonical_ignores_the_order_of_a_nodes_two_edges(space):
    g = space.from_str(DARTS_V2)
    swapped = Genotype(g.normal[1::-1] + g.normal[2:], g.reduce)
    assert swapped != g and space.canonical(swapped) == space.canonical(g)


def test_graph_holds_both_cells_as_op_nodes(space):
    graph = space.to_graph(space.from_str(DARTS_V2))
    check_graph(graph)
    names = graph.op_names()
    assert graph.n_nodes == 20 and names[:2] == ("input", "input")
    assert names[10] == "normal_output" and names[19] == "reduce_output"
    assert names[9] == "dil_conv_3x3" and names[11] == "reduce_max_pool_3x3"
    edges = set(graph.edges)
    assert (2, 9) in edges and (3, 9) in edges  # ('dil_conv_3x3', 2) reads node 2, the sum of op nodes 2 and 3
    assert (1, 11) in edges and (10, 12) in edges  # reduction inputs: normal input 1 and normal output


def test_network_shapes_and_reductions():
    torch = pytest.importorskip("torch")
    from search_spaces.darts.network import DartsNetwork, NetworkConfig

    g = DartsSpace().from_str(DARTS_V2)
    net = DartsNetwork(g, NetworkConfig(channels=4, layers=6, in_channels=3))
    assert [c.reduction for c in net.cells] == [False, False, True, False, True, False]
    assert net.classifier.in_features == 4 * 4 * 4  # C doubled twice, 4 nodes concatenated
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_training_on_digits_is_reproducible_and_reports_progress():
    from search_spaces.darts.train import TrainConfig, load_digits_data, train_and_evaluate

    data = load_digits_data(n_train=128, n_val=64)
    g = DartsSpace().sample(np.random.default_rng(1))
    calls = []
    a = train_and_evaluate(g, data, TrainConfig(**TINY), progress=lambda done, total: calls.append((done, total)))
    b = train_and_evaluate(g, data, TrainConfig(**TINY))
    assert set(a) == {"val_acc", "train_acc", "train_time", "params"}
    assert a["val_acc"] == b["val_acc"] and 0 <= a["val_acc"] <= 100
    assert calls[-1] == (4, 4) and len(calls) == 4  # 128 images / batch 32, one epoch


def _write_cifar_dir(folder, n_per_batch=16):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        batch = {b"data": rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, size=n_per_batch).tolist()}
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh)
    return folder


def test_cifar10_folder_is_read_without_torchvision(tmp_path):
    from search_spaces.darts.train import load_benchmark

    folder = _write_cifar_dir(tmp_path / "cifar-10-batches-py")
    bench = load_benchmark(str(folder), **TINY)
    assert bench.data.name == "cifar10" and tuple(bench.data.x_train.shape) == (64, 3, 32, 32)
    ev = bench.query(DartsSpace().from_str(DARTS_V2))
    assert ev.cost > 0 and ev.metrics["train_time"] == ev.cost
    (folder / "data_batch_5").unlink()
    with pytest.raises(DataError, match="data_batch_5 missing"):
        load_benchmark(str(folder))


def test_benchmark_options_are_checked():
    from search_spaces.darts.train import load_benchmark

    with pytest.raises(ConfigError, match="layers >= 3"):
        load_benchmark(layers=2)
    with pytest.raises(ConfigError, match="cifar-10-batches-py"):
        load_benchmark(dataset="cifar10")


@pytest.mark.slow
def test_default_digits_evaluation_trains_a_usable_network():
    from search_spaces.darts.train import load_benchmark

    bench = load_benchmark()
    ev = bench.query(DartsSpace().from_str(DARTS_V2))
    assert ev.metrics["val_acc"] > 80 and ev.cost < 120


def test_surrogate_table_answers_its_725_genotypes(nb301, space):
    assert len(nb301) == 725 and "not trained" in nb301.label
    check_space(nb301.space, n=20)
    g = nb301.archs[0]
    swapped = Genotype(g.normal[1::-1] + g.normal[2:], g.reduce)
    assert nb301.query(swapped) == nb301.query(g)
    assert 91 < nb301.query(g).metrics["val_acc"] < 95
    with pytest.raises(InvalidArchitectureError, match="not in"):
        nb301.query(space.sample(np.random.default_rng(123)))
