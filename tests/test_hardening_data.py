"""Hostile data files: every malformed table is refused at load with one line naming the place, and
no data file (``.pth``, CIFAR-10 batches, JSON) can make nasloop run code."""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from nasloop.errors import DataError, InvalidArchitectureError, NasloopError
from search_spaces.darts.space import DartsSpace
from search_spaces.nasbench101.data import load_csv as load_nb101_csv
from search_spaces.nasbench101.data import load_naslib_json
from search_spaces.nasbench201.data import load_benchmark, load_csv, load_official_pth, write_csv
from search_spaces.nasbench201.space import NasBench201Space
from tests.conftest import run_cli
from tests.nb201_official_file import write_official_file

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"  # official index 1651


def table(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- CSV headers --------------------------------------------------------------------------------------------
def test_byte_order_mark_and_spaces_are_stripped_from_names(tmp_path):
    path = table(tmp_path, f"\ufeffindex , arch,  val_acc ,test_acc\n6111,{BEST},91.5,94.3\n1651,{NONE},10,10\n")
    bench = load_csv(path)
    assert bench.metrics == ("val_acc", "test_acc")  # never "\ufeffindex" or " val_acc"
    assert bench.values("val_acc")[0] == 91.5 and bench.indices == [6111, 1651]


@pytest.mark.parametrize("header", ["index,arch,acc,acc", "index,arch,acc, acc", "index,arch,arch,acc",
                                    "index,index ,arch,acc"])
def test_repeated_column_names_are_refused(tmp_path, header):
    n = len(header.split(","))
    row = ",".join(["6111", BEST, *["1"] * (n - 2)])
    with pytest.raises(DataError, match=r"names column .* twice"):
        load_csv(table(tmp_path, f"{header}\n{row}\n"))


def test_unnamed_column_is_refused(tmp_path):
    with pytest.raises(DataError, match="column 4 of the header has no name"):
        load_csv(table(tmp_path, f"index,arch,acc,\n6111,{BEST},1,2\n"))


def test_header_parsing_is_linear_in_the_number_of_columns(tmp_path):
    # 80,000 columns parsed in ~0.2 s; the former quadratic parser took 9 s for 40,000 (36 s for 80,000).
    names = [f"m{i}" for i in range(80_000)]
    rows = [",".join(["index", "arch", *names]), ",".join(["6111", BEST, *["1"] * 80_000])]
    path = table(tmp_path, "\n".join(rows) + "\n")
    start = time.perf_counter()
    bench = load_csv(path)
    assert len(bench.metrics) == 80_000 and time.perf_counter() - start < 5.0


# --- CSV rows -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (f"6111,{BEST},1\n6111,{BEST},2\n", "line 3: index 6111 already appears on line 2"),
        (f"12.5,{BEST},1\n", "line 2: column 'index' holds '12.5', expected a whole number"),
        (f"abc,{BEST},1\n", "line 2: column 'index' holds 'abc'"),
        (f"-3,{BEST},1\n", "line 2: column 'index' holds '-3'"),
        (f"5,{BEST},1\n", "line 2: index 5 is not the official index of .* \\(that is 6111\\)"),
        (f"6111,{BEST},inf\n", "line 2: column 'acc' holds 'inf', expected a finite number"),
        (f"1651,{NONE},1\n6111,{BEST},nan\n", "line 3: column 'acc' holds 'nan'"),
        (f"6111,{BEST},-1e999\n", "line 2: column 'acc' holds '-1e999'"),
    ],
)
def test_bad_rows_are_refused_naming_the_line(tmp_path, rows, message):
    with pytest.raises(DataError, match=message):
        load_csv(table(tmp_path, "index,arch,acc\n" + rows))


def test_without_an_index_column_repeated_architectures_are_refused(tmp_path):
    with pytest.raises(DataError, match=r"line 3: architecture .* already appears on line 2"):
        load_csv(table(tmp_path, f"arch,acc\n{BEST},1\n{BEST},2\n"))


def test_empty_cells_are_missing_values(tmp_path):
    bench = load_csv(table(tmp_path, f"index,arch,acc,lat\n6111,{BEST},,3\n"))
    assert np.isnan(bench.values("acc")[0]) and bench.query(bench.archs[0]).metrics == {"lat": 3.0}


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b"index,arch,acc\n\"unterminated", b"", b"a,b\x00,c\n"])
def test_unreadable_tables_are_data_errors(tmp_path, content):
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(NasloopError):
        load_csv(path)


# --- tables that lack cells ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def subset_200(tmp_path_factory, nb201_cifar10_path):
    lines = nb201_cifar10_path.read_text().splitlines()
    path = tmp_path_factory.mktemp("subset") / "subset.csv"
    path.write_text("\n".join(lines[:201]) + "\n")  # header and the cells of index 0..199
    return path


def test_a_table_lacking_cells_is_refused_at_load(subset_200):
    with pytest.raises(DataError, match=r"lacks 15,425 of the 15,625 NAS-Bench-201 cells \(e.g. index 200, \|"):
        load_benchmark(str(subset_200))
    assert len(load_csv(subset_200)) == 200  # the table itself is well formed


def test_search_on_a_partial_table_writes_nothing(subset_200, tmp_path):
    out = tmp_path / "run"
    result = run_cli("search", "--data", str(subset_200), "--strategy", "random", "--budget", "5", "--out", str(out))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "lacks 15,425 of the 15,625" in lines[0]
    assert not out.exists()


def test_complete_written_table_round_trips(tmp_path, nb201_cifar10):
    again = load_benchmark(str(write_csv(nb201_cifar10, tmp_path / "copy.csv")))
    assert len(again) == 15_625 and again.optimum("val_acc") == nb201_cifar10.optimum("val_acc")


# --- official .pth files: no code from data -----------------------------------------------------------------
class _Marker:
    """Unpickling this would create ``path`` (what a crafted file would do with any command)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def _crafted_pth(path: Path, marker: Path, *, legacy: bool = False) -> Path:
    content = {"meta_archs": [], "arch2infos": {}, "evaluated_indexes": [], "x": _Marker(marker)}
    torch.save(content, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.mark.parametrize("legacy", [False, True])
def test_crafted_pth_runs_no_code(tmp_path, legacy):
    marker = tmp_path / "marker"
    path = _crafted_pth(tmp_path / "crafted.pth", marker, legacy=legacy)
    with pytest.raises(DataError, match=r"needs \S*open to load, and nasloop does not run code"):
        load_benchmark(str(path))
    assert not marker.exists()


def test_crafted_pth_through_environment_and_cli(tmp_path):
    marker = tmp_path / "marker"
    path = _crafted_pth(tmp_path / "crafted.pth", marker)
    for args, env in ((("data", "info"), {"NASLOOP_NB201": str(path)}),
                      (("data", "convert", str(path), "-o", str(tmp_path / "x.csv")), None)):
        result = run_cli(*args, env=env)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "does not run code" in result.stderr
    assert not marker.exists() and not (tmp_path / "x.csv").exists()


def test_plain_pickle_of_a_newer_protocol_is_one_line_through_the_cli(tmp_path):
    # torch's restricted unpickler warns about protocols above 2; the user still sees one line.
    marker = tmp_path / "marker"
    path = tmp_path / "crafted.pth"
    path.write_bytes(pickle.dumps({"arch2infos": _Marker(marker)}, protocol=4))
    result = run_cli("search", "--data", str(path), "--predictor", "none", "--budget", "3",
                     "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_official_format_loads_safely_also_in_the_legacy_format(tmp_path):
    path = write_official_file(tmp_path / "tiny.pth", [0, 6111])
    legacy = tmp_path / "legacy.pth"
    torch.save(torch.load(path, weights_only=True), legacy, _use_new_zipfile_serialization=False)
    a, b = load_official_pth(path), load_official_pth(legacy)
    assert a.indices == b.indices == [0, 6111]
    assert np.array_equal(a.values("val_acc"), b.values("val_acc"))


def _with_numpy_scalars(value):
    """The structure with every float turned into a numpy float64 (as older official files hold)."""
    if isinstance(value, dict):
        return {k: _with_numpy_scalars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_numpy_scalars(v) for v in value]
    return np.float64(value) if isinstance(value, float) else value


def test_numpy_scalars_of_older_files_are_allowed(tmp_path):
    source = write_official_file(tmp_path / "tiny.pth", [6111])
    raw = _with_numpy_scalars(torch.load(source, weights_only=True))
    buffer = io.BytesIO()
    torch.save(raw, buffer, pickle_protocol=2)
    # Rename numpy 2's module to numpy 1's, as a file written with numpy 1 names it.
    old = tmp_path / "numpy1.pth"
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as zin, zipfile.ZipFile(old, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("data.pkl"):
                assert b"numpy._core.multiarray\nscalar" in data
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            zout.writestr(info, data)
    bench = load_official_pth(old)
    assert bench.values("val_acc")[0] == pytest.approx(load_official_pth(source).values("val_acc")[0])


def test_partial_official_file_is_refused_by_load_benchmark(tmp_path):
    path = write_official_file(tmp_path / "tiny.pth", [0, 1])
    with pytest.raises(DataError, match=r"lacks 15,623 of the 15,625 NAS-Bench-201 cells \(e.g. index 2,"):
        load_benchmark(str(path))


def test_non_finite_official_values_are_refused(tmp_path):
    source = write_official_file(tmp_path / "tiny.pth", [6111])
    raw = torch.load(source, weights_only=True)
    results = raw["arch2infos"][6111]["full"]["all_results"]
    for (dataset, _seed), rc in results.items():
        if dataset == "cifar10-valid":
            rc["eval_acc1es"] = {k: float("inf") for k in rc["eval_acc1es"]}
    torch.save(raw, tmp_path / "inf.pth")
    with pytest.raises(DataError, match=r"cell 6111 .* val_acc = inf, expected a finite number"):
        load_official_pth(tmp_path / "inf.pth")


# --- CIFAR-10 python batches (DARTS training) ---------------------------------------------------------------
def _batch(n: int = 4) -> dict:
    rng = np.random.default_rng(0)
    return {b"batch_label": b"training batch 1 of 5", b"labels": rng.integers(0, 10, n).tolist(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"a.png"] * n}


def test_cifar_batch_pickled_with_protocol_2_and_numpy_1_names_loads(tmp_path):
    from search_spaces.darts.train import _read_cifar_batch

    blob = pickle.dumps(_batch(), protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    (tmp_path / "data_batch_1").write_bytes(blob)
    data, labels = _read_cifar_batch(tmp_path / "data_batch_1")
    assert data.shape == (4, 3072) and labels.tolist() == _batch()[b"labels"]


def test_crafted_cifar_batch_runs_no_code(tmp_path):
    from search_spaces.darts.train import _read_cifar_batch

    marker = tmp_path / "marker"
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({**_batch(), b"x": _Marker(marker)}))
    with pytest.raises(DataError, match=r"needs \S*open, which a CIFAR-10 batch does not contain"):
        _read_cifar_batch(tmp_path / "data_batch_1")
    assert not marker.exists()


# --- NAS-Bench-101 and DARTS tables -------------------------------------------------------------------------
H1, H2 = "0" * 31 + "1", "0" * 31 + "2"
CELL = "0100000001000000010000000100000001000000010000000:input,conv3x3-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,output"  # noqa: E501


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"hash,val_acc_108ep\n{H1},0.9\n{H1},0.8\n", f"line 3: hash {H1} already appears on line 2"),
        ("hash,val_acc_108ep\nxyz,0.9\n", "line 2: hash 'xyz' is not 32 hexadecimal digits"),
        (f"hash,val_acc_108ep\n{H1},inf\n", "line 2: column 'val_acc_108ep' holds 'inf'"),
        (f'hash,arch,acc\n{H1},"0x:input,output",1\n', "line 2: .* is not '<k\\*k adjacency digits>"),
        (f'hash,arch,acc,acc\n{H1},"{CELL}",1,2\n', "names column 'acc' twice"),
    ],
)
def test_nb101_tables_refuse_bad_rows(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        load_nb101_csv(table(tmp_path, text))


def test_nb101_table_with_spaces_and_bom_in_the_header(tmp_path):
    bench = load_nb101_csv(table(tmp_path, f'\ufeff hash , arch ,acc\n{H1},"{CELL}",1\n{H2},"{CELL}",2\n'))
    assert bench.metrics == ("acc",) and bench.hashes == [H1, H2]


def test_naslib_json_non_finite_values_and_bad_encodings(tmp_path):
    chain = [1 if j == i + 1 else 0 for i in range(7) for j in range(7)]  # input → 5 convs → output
    encoding = str(chain + [0, 4, 4, 4, 4, 4, 1])
    path = tmp_path / "nb101.json"
    path.write_text(json.dumps({"nasbench101": {"cifar10": {encoding: {"val_accuracy": math.nan}}}}))
    with pytest.raises(DataError, match="'val_accuracy' is nan, expected a finite number"):
        load_naslib_json(path)
    path.write_text(json.dumps({"nasbench101": {"cifar10": {"(1.5, __import__)": {"val_accuracy": 1}}}}))
    with pytest.raises(DataError, match="NASLib NAS-Bench-101 encoding"):
        load_naslib_json(path)


def test_darts_surrogate_json_non_finite_values(tmp_path):
    from search_spaces.darts.space import to_compact
    from search_spaces.darts.train import load_surrogate_table

    genotype = DartsSpace().sample(np.random.default_rng(0))
    path = tmp_path / "nb301.json"
    path.write_text(json.dumps({"cifar10": {str(to_compact(genotype)): {"val_accuracy": math.inf}}}))
    with pytest.raises(DataError, match="val_accuracy = inf, expected a finite number"):
        load_surrogate_table(path)


# --- architecture strings with hostile content --------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "Genotype(normal=[], normal_concat=range(10**18), reduce=[], reduce_concat=range(2, 6))",
        "Genotype(normal=[], normal_concat=range(0, 10, 0), reduce=[], reduce_concat=[2, 3, 4, 5])",
        "[" * 5000 + "]" * 5000,
        "x" * 1_000_000,
        "Genotype(normal=[('sep_conv_3x3', 0.0)] * 8, normal_concat=[2, 3, 4, 5], reduce=[], reduce_concat=[2])",
        "[[(0, True)] * 8, [(1, 2)] * 8]",
    ],
)
def test_darts_hostile_strings(text):
    start = time.perf_counter()
    with pytest.raises(InvalidArchitectureError):
        DartsSpace().from_str(text)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("text", ["|none~" + "9" * 5000 + "|+|none~0|none~1|+|none~0|none~1|none~2|",
                                  "|none~0\n|+|none~0|none~1|+|none~0|none~1|none~2|", "|" * 2_000_000])
def test_nb201_hostile_strings(text):
    with pytest.raises(InvalidArchitectureError):
        NasBench201Space().from_str(text)


def test_marker_helper_would_create_its_file(tmp_path):
    # The crafted files above are real: unpickled without restriction, they create the marker.
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(_Marker(marker)))
    assert marker.exists()
    os.remove(marker)


@pytest.mark.parametrize("damage", ["string_results", "unknown_arch", "not_a_dict"])
def test_malformed_official_content_is_a_data_error(tmp_path, damage):
    raw = torch.load(write_official_file(tmp_path / "tiny.pth", [6111]), weights_only=True)
    if damage == "string_results":
        raw["arch2infos"][6111]["full"]["all_results"] = "nothing here"
    elif damage == "unknown_arch":
        raw["meta_archs"][6111] = "|conv9~0|"
    else:
        raw = [1, 2, 3]
    torch.save(raw, tmp_path / "damaged.pth")
    with pytest.raises(DataError, match=r"damaged\.pth"):
        load_official_pth(tmp_path / "damaged.pth")
