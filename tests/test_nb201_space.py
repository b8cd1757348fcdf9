"""NAS-Bench-201 space: string form, enumeration order, mutation, parameter view, isomorphism, graphs."""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest

from nasloop.errors import InvalidArchitectureError
from search_spaces.nasbench201.space import GRAPH_VOCAB, OPS, NasBench201Space, cell_function

BEST_C10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def space():
    return NasBench201Space()


def test_string_round_trip_for_every_cell(space):
    for arch in space.enumerate():
        assert space.from_str(space.to_str(arch)) == arch


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "conv_5x5"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|", "node 3"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "none~1"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "none~0|"),
        ("|none~0|+|none~0|none~1|", "node groups"),
        ("|none-0|+|none~0|none~1|+|none~0|none~1|none~2|", "none-0"),
    ],
)
def test_malformed_strings_name_the_bad_part(space, text, names):
    with pytest.raises(InvalidArchitectureError, match=names.replace("|", r"\|")):
        space.from_str(text)


def test_enumerates_all_cells_once(space):
    archs = list(space.enumerate())
    assert len(archs) == len(space) == 15625
    assert set(archs) == set(itertools.product(OPS, repeat=6))


def test_official_index_order_matches_known_cells(space):
    assert space.to_str(space.from_index(6111)) == BEST_C10
    assert space.index_of(space.from_str(BEST_C10)) == 6111
    assert space.to_str(space.from_index(0)) == (
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    )
    with pytest.raises(InvalidArchitectureError, match="out of range"):
        space.from_index(15625)


def test_official_order_matches_real_table(space, nb201_cifar10_path):
    with open(nb201_cifar10_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [space.to_str(a) for a in space.enumerate()] == [r["arch"] for r in rows]


def test_sampling_is_seeded_and_covers_ops(space):
    a = [space.sample(np.random.default_rng(3)) for _ in range(5)]
    b = [space.sample(np.random.default_rng(3)) for _ in range(5)]
    assert a == b
    many = [space.sample(np.random.default_rng(i)) for i in range(200)]
    assert {op for arch in many for op in arch} == set(OPS)


def test_mutation_changes_exactly_one_edge(space):
    rng = np.random.default_rng(0)
    arch = space.from_str(BEST_C10)
    for _ in range(100):
        child = space.mutate(arch, rng)
        assert sum(x != y for x, y in zip(arch, child)) == 1


def test_neighbours_are_the_24_one_edge_changes(space):
    arch = space.from_str(BEST_C10)
    nbrs = space.neighbours(arch)
    assert len(nbrs) == len(set(nbrs)) == 24
    assert all(sum(x != y for x, y in zip(arch, n)) == 1 for n in nbrs)


def test_parameter_view_is_six_categoricals(space):
    choices = space.param_choices()
    assert list(choices) == ["edge_1_0", "edge_2_0", "edge_2_1", "edge_3_0", "edge_3_1", "edge_3_2"]
    assert all(v == list(OPS) for v in choices.values())
    arch = space.from_str(BEST_C10)
    assert space.from_params(space.to_params(arch)) == arch
    with pytest.raises(InvalidArchitectureError):
        space.from_params({**space.to_params(arch), "edge_1_0": "conv_7x7"})


def test_isomorphism_classes(space):
    # Cells computing the same function (skip = identity, none and zero inputs dropped) share a class.
    classes = {cell_function(a) for a in space.enumerate()}
    assert len(classes) == 4930
    # Swapping the two parallel branches 0→1→3 and 0→2→3 gives the same function.
    a = space.from_str("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|avg_pool_3x3~1|skip_connect~2|")
    b = space.from_str("|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|none~0|skip_connect~1|avg_pool_3x3~2|")
    assert space.canonical(a) == space.canonical(b)
    # An edge out of a dead node changes nothing.
    c = space.from_str("|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|nor_conv_3x3~1|skip_connect~2|")
    d = space.from_str("|none~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|skip_connect~2|")
    assert space.canonical(c) == space.canonical(d)
    # Different ops are different functions.
    e = space.from_str(BEST_C10)
    assert space.canonical(e) != space.canonical(space.mutate(e, np.random.default_rng(0)))
    assert space.canonical(space.canonical(a)) == space.canonical(a)


def test_full_graph_has_eight_fixed_nodes(space):
    g = space.to_graph(space.from_str(BEST_C10), "full")
    assert g.n_nodes == 8 and g.vocab == GRAPH_VOCAB
    assert g.op_names() == ("input", "nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect",
                            "nor_conv_3x3", "nor_conv_1x1", "output")
    expected = {(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 6), (3, 6), (4, 7), (5, 7), (6, 7)}
    assert set(g.edges) == expected
    none_cell = space.to_graph(("none",) * 6, "full")
    assert none_cell.op_names()[1:7] == ("none",) * 6 and set(none_cell.edges) == expected


def test_pruned_graph_drops_none_and_dangling_nodes(space):
    all_none = space.to_graph(("none",) * 6, "pruned")
    assert all_none.op_names() == ("input", "output") and all_none.edges == ()
    # Only the direct edge 0→3 is alive: input → conv → output.
    direct = space.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|")
    g = space.to_graph(direct, "pruned")
    assert g.op_names() == ("input", "nor_conv_1x1", "output")
    assert set(g.edges) == {(0, 1), (1, 2)}
    sizes = {space.to_graph(a, "pruned").n_nodes for a in space.enumerate()}
    assert sizes == set(range(2, 9))
    full = space.to_graph(space.from_str(BEST_C10), "pruned")
    assert full == space.to_graph(space.from_str(BEST_C10), "full")


def test_executed_graph_drops_none_but_keeps_dead_ops(space):
    # The 0→1 conv feeds node 1, whose only outgoing edges are none: pruned away, but it still runs.
    cell = space.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|")
    g = space.to_graph(cell, "executed")
    assert g.op_names() == ("input", "nor_conv_3x3", "nor_conv_1x1", "output")
    assert set(g.edges) == {(0, 1), (0, 2), (2, 3)}  # the dead conv has no path to the output
    all_none = space.to_graph(("none",) * 6, "executed")
    assert all_none.op_names() == ("input", "output") and all_none.edges == ()
    best = space.from_str(BEST_C10)  # no none ops: the same nodes and edges as the full graph
    assert space.to_graph(best, "executed") == space.to_graph(best, "full")


def test_nnformer_reads_the_executed_graph_for_latency():
    from nasloop.registry import make_predictor

    assert make_predictor("nnformer", target="latency").graph_kind == "executed"
    assert make_predictor("nnformer").graph_kind == "pruned"


def test_unknown_graph_kind(space):
    with pytest.raises(InvalidArchitectureError, match="graph kind"):
        space.to_graph(space.from_str(BEST_C10), "weird")
