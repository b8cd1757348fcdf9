"""Property-based tests of the parsers of user data: any input either parses to a valid value or raises
the package's error type (``NasloopError``), never another exception.

Architecture strings of every space must round-trip once parsed; CSV tables must parse to a table
whose names are clean and unique and whose values are finite (or missing), or be refused.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examples.custom_space.mlp_space import MLPSpace
from nasloop.benchmark import read_csv_table
from nasloop.errors import NasloopError
from search_spaces.darts.space import DartsSpace, from_compact
from search_spaces.nasbench101.data import decode_naslib
from search_spaces.nasbench101.data import load_csv as load_nb101_csv
from search_spaces.nasbench101.space import NasBench101Space
from search_spaces.nasbench201.data import load_csv as load_nb201_csv
from search_spaces.nasbench201.space import NasBench201Space

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPACES = {"nb201": NasBench201Space(), "nb101": NasBench101Space(), "darts": DartsSpace(), "mlp": MLPSpace()}


# --- architecture strings -------------------------------------------------------------------------------
@st.composite
def edited(draw, valid: st.SearchStrategy[str]) -> str:
    """A valid string with a few characters inserted, deleted or replaced (near-misses find more bugs
    than random text)."""
    text = draw(valid)
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(("insert", "delete", "replace")))
        char = draw(st.characters(codec="utf-8") | st.sampled_from("|~+:,0123456789()[]'_ \n"))
        if kind == "insert":
            text = text[:pos] + char + text[pos:]
        elif kind == "delete":
            text = text[:pos] + text[pos + 1 :]
        else:
            text = text[:pos] + char + text[pos + 1 :]
    return text


def sampled_strings(space) -> st.SearchStrategy[str]:
    return st.integers(0, 2**32 - 1).map(lambda seed: space.to_str(space.sample(np.random.default_rng(seed))))


def arch_strings(space) -> st.SearchStrategy[str]:
    valid = sampled_strings(space)
    return st.one_of(valid, edited(valid), st.text(max_size=200))


def assert_parses_or_refuses(space, text: str) -> None:
    try:
        arch = space.from_str(text)
    except NasloopError:
        return
    again = space.from_str(space.to_str(arch))
    assert again == arch, (text, arch, again)
    hash(arch)


@pytest.mark.parametrize("name", list(SPACES))
def test_architecture_strings_parse_or_raise_nasloop_error(name):
    space = SPACES[name]

    @FAST
    @given(arch_strings(space))
    def check(text):
        assert_parses_or_refuses(space, text)

    check()


@pytest.mark.parametrize("name", list(SPACES))
def test_non_string_architectures_raise_nasloop_error(name):
    space = SPACES[name]

    @FAST
    @given(st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=20),
                     st.lists(st.integers(), max_size=8)))
    def check(value):
        with pytest.raises(NasloopError):
            space.from_str(value)

    check()


@FAST
@given(st.one_of(
    st.text(max_size=200),
    edited(sampled_strings(DartsSpace()).map(lambda s: str(_compact(DartsSpace().from_str(s))))),
))
def test_naslib_compact_darts_strings(text):
    try:
        genotype = from_compact(text)
    except NasloopError:
        return
    assert from_compact(str(_compact(genotype))) == genotype


def _compact(genotype):
    from search_spaces.darts.space import to_compact

    return to_compact(genotype)


@FAST
@given(st.one_of(st.text(max_size=300), st.lists(st.integers(-2, 6), min_size=50, max_size=60).map(str)))
def test_naslib_nb101_encodings(text):
    try:
        cell = decode_naslib(text)
    except NasloopError:
        return
    assert len(cell.ops) == 7


# --- CSV tables -------------------------------------------------------------------------------------------------
NB201 = NasBench201Space()
NAMES = st.sampled_from(["index", "arch", "val_acc", "test_acc", " val_acc", "\ufeffindex", "train_time", "", "acc"])
CELLS = st.one_of(
    st.integers(0, 15_624).map(lambda i: NB201.to_str(NB201.from_index(i))),
    st.sampled_from(["1.5", "92.3", "", "inf", "-inf", "nan", "NaN", "12.5", "abc", "1e400", " 7 ", "0", "6111"]),
    st.integers(-5, 20_000).map(str),
    st.text(max_size=12),
)


@st.composite
def tables(draw) -> bytes:
    """CSV text built from plausible header names and cells (often valid, often subtly not), or raw bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    header = draw(st.lists(NAMES, min_size=1, max_size=5))
    rows = []
    for _ in range(draw(st.integers(0, 4))):
        width = len(header) if draw(st.integers(0, 9)) else draw(st.integers(0, 6))
        row = [draw(CELLS) for _ in range(width)]
        if "arch" in header and "index" in header and len(row) == len(header) and draw(st.booleans()):
            index = draw(st.integers(0, 15_624))  # a consistent (index, arch) pair
            row[header.index("index")] = str(index)
            row[header.index("arch")] = NB201.to_str(NB201.from_index(index))
        rows.append(",".join(_quoted(c) for c in row))
    bom = "\ufeff" if draw(st.booleans()) else ""
    return (bom + "\n".join([",".join(header), *rows]) + "\n").encode("utf-8")


def _quoted(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',"\n\r') else cell


def _read(reader, content: bytes):
    """``reader`` applied to a file holding ``content`` (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="nasloop-prop-") as folder:
        path = Path(folder) / "table.csv"
        path.write_bytes(content)
        return reader(path)


@FAST
@given(tables())
def test_csv_reader_gives_clean_unique_names_or_refuses(content):
    try:
        table = _read(read_csv_table, content)
    except NasloopError:
        return
    assert len(set(table.header)) == len(table.header)
    assert all(name and name == name.strip() and "\ufeff" not in name for name in table.header)
    assert all(len(fields) == len(table.header) for _, fields in table.rows)
    assert all(table.position(name) == i for i, name in enumerate(table.header))


@FAST
@given(tables())
def test_nb201_tables_load_valid_or_refuse(content):
    try:
        bench = _read(load_nb201_csv, content)
    except NasloopError:
        return
    assert len(bench) > 0 and len(set(bench.indices)) == len(bench)
    assert all(NB201.index_of(a) == i for a, i in zip(bench.archs, bench.indices))
    assert not {"index", "arch"} & set(bench.metrics)
    for values in bench.columns.values():
        assert all(math.isnan(v) or math.isfinite(v) for v in values)
        assert not np.isinf(values).any()


@FAST
@given(st.one_of(tables(), tables().map(lambda b: b.replace(b"index", b"hash", 1))))
def test_nb101_tables_load_valid_or_refuse(content):
    try:
        bench = _read(load_nb101_csv, content)
    except NasloopError:
        return
    assert len(set(bench.hashes)) == len(bench.hashes) > 0
    for values in bench.columns.values():
        assert not np.isinf(values).any()
