"""``--data`` given more than once: tables of one space joined on the architecture."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nasloop.benchmark import TabularBenchmark, join_tables
from nasloop.errors import ConfigError
from search_spaces.nasbench201.data import load_benchmark
from search_spaces.nasbench201.space import NasBench201Space
from tests.conftest import NB201_LATENCY, require_shared, run_cli


def small_table(archs, **columns) -> TabularBenchmark:
    return TabularBenchmark(NasBench201Space(), archs, columns, label="t")


@pytest.fixture(scope="module")
def latency_path():
    return require_shared(NB201_LATENCY)


def test_joined_columns_stay_with_their_architecture(nb201_cifar10_path, latency_path):
    accuracy = load_benchmark(str(nb201_cifar10_path))
    latency = load_benchmark(str(latency_path))
    joined = join_tables([accuracy, latency], ["acc.csv", "lat.csv"])
    assert set(joined.metrics) == set(accuracy.metrics) | set(latency.metrics)
    assert len(joined) == 15_625
    for arch in accuracy.archs[::997]:
        answer = joined.query(arch).metrics
        assert answer["val_acc"] == accuracy.query(arch).metrics["val_acc"]
        assert answer["pixel3"] == latency.query(arch).metrics["pixel3"]


def test_rows_in_another_order_are_matched_by_architecture():
    space = NasBench201Space()
    archs = [space.from_index(i) for i in range(4)]
    a = small_table(archs, acc=[1.0, 2.0, 3.0, 4.0])
    b = small_table(archs[::-1], lat=[40.0, 30.0, 20.0, 10.0])
    joined = join_tables([a, b], ["a", "b"])
    assert np.array_equal(joined.values("lat"), [10.0, 20.0, 30.0, 40.0])


def test_tables_over_different_cells_are_refused_with_their_counts():
    space = NasBench201Space()
    a = small_table([space.from_index(i) for i in range(4)], acc=[1.0, 2.0, 3.0, 4.0])
    b = small_table([space.from_index(i) for i in range(1, 4)], lat=[1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match="a has 4 cells and b 3, 3 in common"):
        join_tables([a, b], ["a", "b"])


def test_a_column_in_two_tables_is_refused_by_name():
    space = NasBench201Space()
    archs = [space.from_index(i) for i in range(3)]
    with pytest.raises(ConfigError, match="column 'acc' is in both a and b"):
        join_tables([small_table(archs, acc=[1.0, 2.0, 3.0]), small_table(archs, acc=[1.0, 2.0, 3.0])], ["a", "b"])


def test_cli_search_on_two_tables_records_and_resumes_both(tmp_path, nb201_cifar10_path, latency_path):
    run = tmp_path / "run"
    out = run_cli("search", "--data", str(nb201_cifar10_path), "--data", str(latency_path), "--metric", "val_acc",
                  "--report", "test_acc", "--predictor", "none", "--budget", "12", "--out", str(run), "--json")
    assert out.returncode == 0, out.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["data"] == [str(nb201_cifar10_path.resolve()), str(latency_path.resolve())]
    assert sorted(config["data_files"]) == sorted(config["data"])
    record = json.loads((run / "history.jsonl").read_text().splitlines()[0])
    assert {"val_acc", "pixel3"} <= set(record["metrics"])
    more = run_cli("search", "--resume", str(run), "--budget", "15", "--json")
    assert more.returncode == 0, more.stderr
    assert json.loads(more.stdout)["n_queries"] == 15


def test_a_toml_file_may_list_the_tables(tmp_path, nb201_cifar10_path, latency_path):
    file = tmp_path / "run.toml"
    file.write_text(f'data = ["{nb201_cifar10_path}", "{latency_path}"]\nbudget = 5\npredictor = "none"\n')
    out = run_cli("search", "--config", str(file), "--out", str(tmp_path / "run"), "--json")
    assert out.returncode == 0, out.stderr
    assert "pixel3" in json.loads((tmp_path / "run" / "history.jsonl").read_text().splitlines()[0])["metrics"]


@pytest.mark.parametrize("value", ["[]", "[1, 2]", "3"])
def test_a_toml_data_entry_of_the_wrong_type_is_one_line(tmp_path, value):
    file = tmp_path / "run.toml"
    file.write_text(f"data = {value}\n")
    out = run_cli("search", "--config", str(file), "--out", str(tmp_path / "run"))
    assert out.returncode == 2 and "data must be a path or a list of paths" in out.stderr
    assert not (tmp_path / "run").exists()


def test_cli_refuses_two_tables_sharing_a_column_before_writing(tmp_path, nb201_cifar10_path):
    out = run_cli("search", "--data", str(nb201_cifar10_path), "--data", str(nb201_cifar10_path),
                  "--out", str(tmp_path / "run"))
    assert out.returncode == 2 and "is in both" in out.stderr and out.stderr.count("\n") == 1
    assert not (tmp_path / "run").exists()
