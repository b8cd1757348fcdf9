"""Aggregation maths on hand-made histories: curves, confidence band, median, found share; plots."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from nasloop.errors import DataError
from nasloop.plotting import plot_curves, plot_queries_to_optimum, plot_run_scatter
from nasloop.study import (
    aggregate,
    find_runs,
    incumbent_curves,
    load_run,
    markdown_table,
    mean_band,
    queries_to_optimum,
)
from nasloop.types import Record


def rec(n, val, test, pred=None):
    return Record(number=n, round=n, arch=f"a{n}", metrics={"val": val, "test": test}, predicted_mean=pred)


def write_run(path, config, values, *, torn=False):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    lines = [json.dumps(rec(i + 1, v, t, p).to_json()) for i, (v, t, p) in enumerate(values)]
    text = "\n".join(lines) + "\n" + ('{"number": 9, "rou' if torn else "")
    (path / "history.jsonl").write_text(text)
    return path


def test_incumbent_follows_search_metric_not_report():
    records = [rec(1, 50, 60), rec(2, 70, 55), rec(3, 60, 99), rec(4, 80, 81)]
    best, report = incumbent_curves(records, "val", "test", 6)
    assert list(best) == [50, 70, 70, 80, 80, 80]
    # The report metric is the incumbent's, even when a worse-by-search cell had a better report.
    assert list(report) == [60, 55, 55, 81, 81, 81]


def test_queries_to_optimum():
    records = [rec(1, 50, 0), rec(2, 91.6067, 0), rec(3, 91.6067, 0)]
    assert queries_to_optimum(records, "val", 91.6067) == 2
    assert queries_to_optimum(records[:1], "val", 91.6067) is None


def test_mean_band_is_student_t_interval():
    values = np.array([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]])
    mean, lo, hi = mean_band(values)
    half = student_t.ppf(0.975, 2) * np.std([1, 3, 5], ddof=1) / math.sqrt(3)
    assert mean[0] == pytest.approx(3.0) and hi[0] - mean[0] == pytest.approx(half)
    assert lo[1] == hi[1] == 2.0  # no spread, no band


def test_aggregate_median_and_found_share(tmp_path):
    config = {"strategy": "evolution", "predictor": "none", "budget": 4}
    runs = [
        write_run(tmp_path / "s0", config, [(1, 10, None), (9, 90, None), (5, 0, None), (3, 0, None)]),
        write_run(tmp_path / "s1", config, [(9, 91, None), (1, 0, None), (2, 0, None), (3, 0, None)]),
        write_run(tmp_path / "s2", config, [(1, 10, None), (2, 20, None), (3, 30, None), (4, 40, None)]),
    ]
    [summary] = aggregate([load_run(r) for r in runs], metric="val", report="test", optimum=9)
    assert summary.hits == [2, 1, None]
    assert summary.found_share == pytest.approx(2 / 3)
    assert summary.median_queries_to_optimum == 2  # sorted (1, 2, inf)
    assert summary.report_at(4) == pytest.approx((90 + 91 + 40) / 3)
    table = markdown_table([summary], at=(2, 4))
    assert "| evolution | 3 | 2 | 67% |" in table


def test_median_is_infinite_when_most_runs_never_find_it(tmp_path):
    config = {"strategy": "random", "predictor": "none", "budget": 2}
    runs = [write_run(tmp_path / f"s{i}", config, [(1, 0, None), (2, 0, None)]) for i in range(3)]
    [summary] = aggregate(find_runs([tmp_path]), metric="val", report="test", optimum=9)
    assert math.isinf(summary.median_queries_to_optimum)
    assert "> 2" in markdown_table([summary]) and len(runs) == 3


def test_torn_last_line_is_ignored_but_corruption_is_not(tmp_path):
    config = {"strategy": "random", "predictor": "none", "budget": 2}
    run = load_run(write_run(tmp_path / "torn", config, [(1, 0, None)], torn=True))
    assert len(run.records) == 1
    bad = write_run(tmp_path / "bad", config, [(1, 0, None), (2, 0, None)])
    (bad / "history.jsonl").write_text("garbage\n" + (bad / "history.jsonl").read_text())
    with pytest.raises(DataError, match="line 1"):
        load_run(bad)
    with pytest.raises(DataError, match="not a nasloop run"):
        load_run(tmp_path / "nothing")


def test_plots_are_written(tmp_path):
    config = {"strategy": "evolution", "predictor": "nnformer", "budget": 3}
    paths = [write_run(tmp_path / f"r{i}", config, [(1, 1, 1.5), (2, 2, 1.0), (3 + i, 3, 2.5)]) for i in range(2)]
    runs = [load_run(p) for p in paths]
    summaries = aggregate(runs, metric="val", report="test", optimum=4)
    for out in (plot_curves(summaries, tmp_path / "curves.png", report="test", optimum=3.5, log_x=True),
                plot_queries_to_optimum(summaries, tmp_path / "box.svg"),
                plot_run_scatter(runs[0], tmp_path / "scatter.png", metric="val")):
        assert out.exists() and out.stat().st_size > 1000
