"""NAS-Bench-101: validity and pruning rules, the official module hash, tables and the .tfrecord reader."""

from __future__ import annotations

import base64
import json
import struct

import numpy as np
import pytest

from nasloop.conformance import check_space
from nasloop.errors import DataError, InvalidArchitectureError
from search_spaces.nasbench101.data import HashTableBenchmark, NasBench101Table, convert, load_benchmark
from search_spaces.nasbench101.space import (
    CONV1X1,
    CONV3X3,
    MAXPOOL3X3,
    Cell,
    NasBench101Space,
    module_hash,
    validity_error,
)
from search_spaces.nasbench101.tfrecord import crc32c, iter_records, masked_crc32c

I, O = "input", "output"
# Inception-like cell from the NAS-Bench-101 README: 1x1 branch, 3x3→3x3 branch, maxpool→1x1 branch.
INCEPTION = Cell.make(
    [[0, 1, 1, 1, 0, 1, 0],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 1, 0, 0],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 0]],
    [I, CONV1X1, CONV3X3, CONV3X3, CONV3X3, MAXPOOL3X3, O],
)


@pytest.fixture(scope="module")
def space():
    return NasBench101Space()


@pytest.fixture(scope="module")
def nb101_500(shared_data):
    return load_benchmark(str(shared_data / "nb101" / "nasbench101_500_cifar10.json"))


@pytest.fixture(scope="module")
def nb101_30k(shared_data):
    return load_benchmark(str(shared_data / "nb101" / "nasbench101_30k_by_hash.csv"))


def test_space_passes_the_conformance_checks(space):
    check_space(space, n=20)


def test_restricted_space_of_a_partial_table_passes_the_conformance_checks(nb101_500):
    check_space(nb101_500.space, n=20)
    rng = np.random.default_rng(0)
    for _ in range(30):  # every proposal of the restricted space can be answered
        nb101_500.query(nb101_500.space.mutate(nb101_500.space.sample(rng), rng))


def test_sampling_is_reproducible_and_always_valid(space):
    a = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    rng = np.random.default_rng(1)
    assert all(validity_error(space.sample(rng)) is None for _ in range(200))


def test_validity_rules_follow_the_benchmark(space):
    assert validity_error(INCEPTION) is None
    disconnected = Cell.make(np.triu(np.ones((7, 7), int), 1) * 0, INCEPTION.ops)
    assert "does not reach" in validity_error(disconnected)
    dense = Cell.make(np.triu(np.ones((7, 7), int), 1), INCEPTION.ops)  # 21 edges
    assert "at most 9" in validity_error(dense)
    lower = Cell.make(np.tril(np.ones((7, 7), int), -1), INCEPTION.ops)
    assert "upper-triangular" in validity_error(lower)
    with pytest.raises(InvalidArchitectureError, match="unknown ops"):
        space.from_params({**space.to_params(INCEPTION), "op_1": "conv5x5"})


def test_edges_are_counted_after_pruning(space):
    m = np.array(INCEPTION.matrix)
    m[1, 2] = m[1, 3] = m[1, 4] = 1  # 9 + 3 = 12 edges on the raw matrix
    cell = Cell.make(m, INCEPTION.ops)
    assert int(m.sum()) > 9
    assert validity_error(cell) is not None  # all live: 12 edges remain
    m2 = np.zeros((7, 7), int)
    m2[0, 6] = 1
    m2[1, 2] = m2[1, 3] = m2[1, 4] = m2[1, 5] = m2[2, 3] = m2[2, 4] = m2[2, 5] = m2[3, 4] = m2[3, 5] = 1
    dangling = Cell.make(m2, INCEPTION.ops)  # 10 edges, 9 of them among unreachable nodes
    assert validity_error(dangling) is None
    assert space.to_graph(dangling).n_nodes == 2


def test_module_hash_is_invariant_to_isomorphism_and_dangling_nodes():
    h = module_hash(INCEPTION)
    assert len(h) == 32 and all(c in "0123456789abcdef" for c in h)
    # Swap the two parallel branches' order: nodes 1 (conv1x1) and 2 (conv3x3) trade places.
    perm = [0, 2, 1, 3, 4, 5, 6]
    m = np.array(INCEPTION.matrix)[np.ix_(perm, perm)]
    swapped = Cell.make(m, [INCEPTION.ops[p] for p in perm])
    assert swapped != INCEPTION and module_hash(swapped) == h
    changed = Cell(INCEPTION.matrix, (I, CONV3X3, *INCEPTION.ops[2:]))
    assert module_hash(changed) != h


def test_canonical_form_matches_the_hash(space):
    rng = np.random.default_rng(3)
    cells = [space.sample(rng) for _ in range(40)]
    for a in cells[:20]:
        c = space.canonical(a)
        assert space.canonical(c) == c and module_hash(c) == module_hash(a)
    assert len({space.canonical(a) for a in cells}) == len({module_hash(a) for a in cells})
    perm = [0, 2, 1, 3, 4, 5, 6]  # an isomorphic relabelling of INCEPTION
    swapped = Cell.make(np.array(INCEPTION.matrix)[np.ix_(perm, perm)], [INCEPTION.ops[p] for p in perm])
    assert space.canonical(swapped) == space.canonical(INCEPTION)


def brute_force_canonical(cell):
    """The definition, one relabelling at a time: the smallest (adjacency, ops) key among the
    relabellings of the padded module's interior nodes that keep it upper-triangular."""
    import itertools

    from search_spaces.nasbench101.space import module_of, pad_module

    base = pad_module(*module_of(cell))
    a = np.array(base.matrix)
    keys = []
    for perm in itertools.permutations(range(1, 6)):
        order = (0, *perm, 6)
        b = a[np.ix_(order, order)]
        if not np.tril(b).any():
            keys.append((tuple(b.ravel().tolist()), tuple(base.ops[o] for o in order)))
    flat, ops = min(keys)
    return Cell.make(np.array(flat).reshape(7, 7), ops)


def test_canonical_form_is_the_smallest_relabelling(space):
    # Sampled cells and their neighbours, which include small pruned modules.
    rng = np.random.default_rng(11)
    cells = [space.sample(rng) for _ in range(15)]
    cells += [n for c in cells[:3] for n in space.neighbours(c)]
    for cell in cells:
        assert space.canonical(cell) == brute_force_canonical(cell)
    assert len({space.canonical(c) for c in cells}) == len({module_hash(c) for c in cells})


def test_mutation_changes_the_module(space):
    rng = np.random.default_rng(5)
    cell = space.sample(rng)
    for _ in range(20):
        child = space.mutate(cell, rng)
        assert module_hash(child) != module_hash(cell)
        cell = child


def test_graph_is_the_pruned_module_with_the_spec_vocabulary(space):
    g = space.to_graph(INCEPTION)
    assert g.vocab == ("input", "conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3", "output")
    assert g.op_names() == INCEPTION.ops and len(g.edges) == 9


def test_string_form_round_trips_and_rejects_garbage(space):
    text = space.to_str(INCEPTION)
    assert text.startswith("0111010") and text.endswith(",maxpool3x3,output")
    assert space.from_str(text) == INCEPTION
    for bad in ("", "0101:input,output", "x" * 49 + ":" + ",".join(INCEPTION.ops), text.replace("conv1x1", "c")):
        with pytest.raises(InvalidArchitectureError):
            space.from_str(bad)
    module = space.from_str("011001000:input,conv3x3-bn-relu,output")  # a 3-node module, as in data files
    assert space.to_graph(module).n_nodes == 3 and len(module.ops) == 7


# --- the NB101 hash check against real data (docs/results.md, "NAS-Bench-101") --------------------------
def test_official_hash_finds_the_500_cells_in_the_30k_table(nb101_500, nb101_30k):
    assert isinstance(nb101_500, NasBench101Table) and isinstance(nb101_30k, HashTableBenchmark)
    found = [a for a in nb101_500.archs if a in nb101_30k]
    diffs = [nb101_500.query(a).metrics["val_acc"] - nb101_30k.query(a).metrics["val_acc"] for a in found]
    assert len(found) >= 20  # 26 distinct modules (110 of the 500 listed cells)
    assert np.mean(np.abs(diffs)) < 0.5


def test_wrong_op_mapping_finds_cells_whose_accuracies_disagree(nb101_500, nb101_30k):
    swap = {CONV3X3: MAXPOOL3X3, MAXPOOL3X3: CONV3X3, CONV1X1: CONV1X1, I: I, O: O}
    diffs = []
    for a in nb101_500.archs:
        b = Cell(a.matrix, tuple(swap[o] for o in a.ops))
        if b in nb101_30k:
            diffs.append(nb101_500.query(a).metrics["val_acc"] - nb101_30k.query(b).metrics["val_acc"])
    assert np.mean(np.abs(diffs)) > 1.0


def test_hash_only_table_answers_what_it_holds_and_explains_the_rest(nb101_30k, space):
    assert len(nb101_30k) == 30_001 and "val_acc" in nb101_30k.metrics
    miss = next(c for c in (space.sample(np.random.default_rng(s)) for s in range(100)) if c not in nb101_30k)
    with pytest.raises(InvalidArchitectureError, match="no graphs"):
        nb101_30k.query(miss)


def test_missing_data_says_what_to_give(monkeypatch):
    monkeypatch.delenv("NASLOOP_NB101", raising=False)
    with pytest.raises(DataError, match="--data"):
        load_benchmark()


# --- the official .tfrecord format ---------------------------------------------------------------------------
def test_crc32c_matches_the_standard_check_value():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


def _double(field: int, value: float) -> bytes:
    return bytes([field << 3 | 1]) + struct.pack("<d", value)


def _metrics_proto(runs: list[tuple[float, float, float]], params: int) -> bytes:
    """ModelMetrics bytes built by hand: evaluation_data = 1 (message), trainable_parameters = 2 (varint)."""
    out = b""
    for epoch, (train_time, val, test) in enumerate(runs):
        body = _double(1, float(epoch)) + _double(2, train_time) + _double(4, val) + _double(5, test)
        body += bytes([6 << 3 | 2, 4]) + b"ckpt"  # a string field the reader must skip
        out += bytes([1 << 3 | 2, len(body)]) + body
    varint = bytearray()
    while True:
        byte, params = params & 0x7F, params >> 7
        varint.append(byte | (0x80 if params else 0))
        if not params:
            break
    return out + bytes([2 << 3 | 0]) + bytes(varint)


def _write_tfrecord(path, rows) -> None:
    with open(path, "wb") as fh:
        for row in rows:
            data = json.dumps(row).encode()
            length = struct.pack("<Q", len(data))
            fh.write(length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data)))


def _sample_rows():
    """Two modules, two repeats at 108 epochs and one at 12 epochs: [hash, epochs, adjacency, ops, metrics]."""
    inception = "".join(str(v) for row in INCEPTION.matrix for v in row)
    small = "011001000"  # input → conv3x3 → output, plus input → output
    rows = []
    for adjacency, ops, val, params in ((inception, INCEPTION.ops, 0.90, 2_000_000),
                                        (small, (I, CONV3X3, O), 0.80, 300_000)):
        k = len(ops)
        cell_hash = module_hash(NasBench101Space().from_str(f"{adjacency}:{','.join(ops)}"))
        assert k * k == len(adjacency)
        for epochs, repeat_vals in ((108, (val, val + 0.02)), (12, (val - 0.1,))):
            for v in repeat_vals:
                proto = _metrics_proto([(0.0, 0.1, 0.1), (50.0, v - 0.05, v - 0.06), (100.0 + epochs, v, v - 0.01)],
                                       params)
                rows.append([cell_hash, epochs, adjacency, ",".join(ops), base64.b64encode(proto).decode()])
    return rows


def test_tfrecord_is_read_without_tensorflow_and_converted(tmp_path):
    src = tmp_path / "nasbench_sample.tfrecord"
    _write_tfrecord(src, _sample_rows())
    bench = load_benchmark(str(src))
    assert len(bench) == 2 and bench.cost_column == "train_time"
    ev = bench.query(INCEPTION)
    assert ev.metrics["val_acc"] == pytest.approx(91.0)  # mean of 0.90 and 0.92, in percent
    assert ev.metrics["test_acc"] == pytest.approx(90.0)
    assert ev.metrics["val_acc_12ep"] == pytest.approx(80.0)
    assert ev.metrics["params"] == 2_000_000 and ev.cost == pytest.approx(208.0)
    dst = convert(src, tmp_path / "nb101.csv")
    table = load_benchmark(str(dst))
    assert table.query(INCEPTION) == ev
    small = NasBench101Space().from_str("011001000:input,conv3x3-bn-relu,output")
    assert table.query(small).metrics["val_acc"] == pytest.approx(81.0)
    assert len(table.space) == 2  # a partial table restricts its space


def test_corrupt_tfrecord_is_reported(tmp_path):
    src = tmp_path / "bad.tfrecord"
    _write_tfrecord(src, _sample_rows()[:2])
    blob = bytearray(src.read_bytes())
    blob[20] ^= 0xFF  # inside the first record's data
    src.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="checksum"):
        list(iter_records(src))
    src.write_bytes(src.read_bytes()[:-3])
    with pytest.raises(DataError, match=r"truncated|checksum"):
        list(iter_records(src, verify=False))


def test_converted_table_with_a_malformed_cell_is_reported(tmp_path):
    table = tmp_path / "nb101.csv"
    for bad in ("011001000:input,conv9x9,output", "0101:input,conv3x3-bn-relu,output"):
        table.write_text(f'hash,arch,val_acc\n{"0" * 32},"{bad}",90.0\n')
        with pytest.raises(DataError, match=r"line 2: .*k ops"):
            load_benchmark(str(table))
