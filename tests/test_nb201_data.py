"""NAS-Bench-201 benchmark sources against the real tables and a small official-format file."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr

from nasloop.errors import ConfigError, DataError, InvalidArchitectureError, UnknownNameError
from search_spaces.nasbench201.data import (
    ANALOG_LABEL,
    load_benchmark,
    load_csv,
    load_official_pth,
    naslib_to_arch,
    write_csv,
)
from search_spaces.nasbench201.space import NasBench201Space
from tests.conftest import NB201_CIFAR100, NB201_LATENCY, require_shared
from tests.nb201_official_file import accuracy, write_official_file

BEST_C10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_cifar10_table_published_facts(nb201_cifar10):
    bench = nb201_cifar10
    assert len(bench) == 15625
    assert bench.metrics == ("val_acc", "test_acc", "val_acc_12ep", "test_acc_12ep", "params_mb")
    best, arch = bench.optimum("val_acc")
    assert best == pytest.approx(91.6067)
    assert bench.space.to_str(arch) == BEST_C10
    assert bench.indices[bench.row_of(arch)] == 6111
    assert bench.query(arch).metrics["test_acc"] == pytest.approx(94.3733)
    test = bench.values("test_acc")
    assert np.sum(np.isclose(test, test.max())) == 2 and test.max() == pytest.approx(94.3733)


def test_cifar100_table_published_facts():
    bench = load_benchmark(str(require_shared(NB201_CIFAR100)))
    best, _arch = bench.optimum("test_acc")
    assert best == pytest.approx(73.5133)
    assert np.sum(np.isclose(bench.values("test_acc"), best)) == 1
    assert "val_acc" not in bench.metrics


def test_latency_table_has_sixteen_devices():
    bench = load_benchmark(str(require_shared(NB201_LATENCY)))
    assert len(bench.metrics) == 16 and "pixel3" in bench.metrics
    assert np.all(bench.values("pixel3") > 0)


def test_analog_default_mapping_matches_nb201(nb201_cifar10, monkeypatch):
    monkeypatch.delenv("NASLOOP_NB201", raising=False)
    analog = load_benchmark()
    assert analog.label == ANALOG_LABEL and len(analog) == 15625
    assert set(analog.archs) == set(nb201_cifar10.archs)
    ours = analog.values("baseline_accuracy")
    theirs = np.array([nb201_cifar10.query(a).metrics["test_acc"] for a in analog.archs])
    assert pearsonr(ours, theirs).statistic > 0.99
    # Rows come in official index order, like the tables.
    assert analog.indices == list(range(15625))


def test_naslib_tuple_mapping():
    # NASLib (skip, none, conv3x3, conv1x1, avgpool); edges (1,2),(1,3),(1,4),(2,3),(2,4),(3,4).
    assert naslib_to_arch((2, 2, 0, 2, 2, 3)) == NasBench201Space().from_str(BEST_C10)
    with pytest.raises(InvalidArchitectureError):
        naslib_to_arch((0, 0, 9, 0, 0, 0))


def test_resolution_order_data_then_env_then_default(tmp_path, monkeypatch, nb201_cifar10_path):
    monkeypatch.setenv("NASLOOP_NB201", str(nb201_cifar10_path))
    assert load_benchmark().label == "NAS-Bench-201 table cifar10.csv"
    copy = write_csv(load_benchmark(str(nb201_cifar10_path)), tmp_path / "copy.csv")
    assert load_benchmark(str(copy)).label == "NAS-Bench-201 table copy.csv"
    monkeypatch.setenv("NASLOOP_NB201", str(tmp_path / "gone.csv"))
    with pytest.raises(DataError, match=r"\$NASLOOP_NB201"):
        load_benchmark()
    monkeypatch.delenv("NASLOOP_NB201")
    assert load_benchmark().label == ANALOG_LABEL


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("index,name,acc\n0,x,1\n", "no 'arch' column"),
        (f"index,arch,acc\n6111,{BEST_C10},abc\n", "holds 'abc'"),
        (f"index,arch,acc\n6111,{BEST_C10}\n", "2 fields"),
        ("index,arch,acc\n0,|bad~0|,1\n", "line 2"),
        (f"index,arch,acc\n6111,{BEST_C10},1\n6111,{BEST_C10},2\n", "already appears on line 2"),
        ("index,arch\n", "no metric columns"),
        ("index,arch,acc\n", "no rows"),
    ],
)
def test_malformed_tables(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_benchmark(str(path))


def test_dataset_rejected_for_tables(nb201_cifar10_path):
    with pytest.raises(ConfigError, match="--dataset"):
        load_benchmark(str(nb201_cifar10_path), dataset="cifar100")


@pytest.fixture(scope="module")
def official_file(tmp_path_factory):
    space = NasBench201Space()
    archs = [space.to_str(space.from_index(i)) for i in range(3)]
    return write_official_file(tmp_path_factory.mktemp("pth") / "NAS-Bench-201-tiny.pth", [0, 1, 2]), archs


@pytest.mark.parametrize("dataset", ["cifar10-valid", "cifar10", "cifar100", "ImageNet16-120"])
def test_official_pth_file(official_file, dataset):
    path, archs = official_file
    bench = load_official_pth(path, dataset=dataset)
    assert len(bench) == 3 and bench.label == f"NAS-Bench-201 {dataset} ({path.name})"
    assert {"val_acc", "test_acc", "val_acc_12ep", "test_acc_12ep", "train_time"} <= set(bench.metrics)
    val_source = "cifar10-valid" if dataset == "cifar10" else dataset  # the NB201 protocol
    test_split = {"cifar10-valid": "ori-test", "cifar10": "ori-test"}.get(dataset, "x-test")

    def seed_mean(source, split):
        return np.mean([accuracy(2, source, split, seed, 200) for seed in (777, 888)])

    metrics = bench.query(bench.space.from_str(archs[2])).metrics
    assert metrics["val_acc"] == pytest.approx(seed_mean(val_source, "x-valid"))
    assert metrics["test_acc"] == pytest.approx(seed_mean(dataset, test_split))
    assert metrics["train_time"] == pytest.approx(200 * 10.0)  # the cost of one 200-epoch training
    assert bench.query(bench.space.from_str(archs[2])).cost == pytest.approx(2000.0)


def test_official_pth_unknown_dataset(official_file):
    with pytest.raises(UnknownNameError, match="ImageNet16-120"):
        load_benchmark(str(official_file[0]), dataset="imagenet")


def test_convert_round_trip(official_file, tmp_path):
    path, _ = official_file
    bench = load_official_pth(path, dataset="cifar100")
    out = write_csv(bench, tmp_path / "table.csv")
    again = load_csv(out)
    assert again.metrics == bench.metrics and again.indices == bench.indices
    for arch in bench.archs:
        for name, value in bench.query(arch).metrics.items():
            assert again.query(arch).metrics[name] == pytest.approx(value, rel=1e-5)
    assert again.cost_column == "train_time"


def test_not_an_official_file(tmp_path):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="not an official NAS-Bench-201 file"):
        load_benchmark(str(bad))
