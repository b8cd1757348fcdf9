"""The run store alone: journals written, read back once, replay lookups checked, budget changes."""

from __future__ import annotations

import json

import pytest

from nasloop.errors import ConfigError
from nasloop.run_store import DirectoryStore, RunStore
from nasloop.types import Record


def record(n, round_, arch):
    return Record(number=n, round=round_, arch=arch, metrics={"acc": float(n)})


def write_run(run, budget=4):
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"strategy": "random", "budget": budget}))
    store = DirectoryStore(run, resume=False, n_queries=budget)
    for rec in (record(1, 0, "a"), record(2, 0, "b"), record(3, 1, "c")):
        store.append_record(rec)
    store.append_round({"round": 0, "fit_s": 0.5})
    store.append_round({"round": 1, "fit_s": 1.5})
    store.close()


def test_an_in_memory_store_knows_nothing_and_keeps_nothing():
    store = RunStore()
    assert not store.resumed and store.replayed(0, "a", 0) is None
    store.append_record(record(1, 0, "a"))
    assert store.journal == [] and store.load_snapshot(object(), 3) == 0


def test_a_resumed_store_replays_its_journal_and_refuses_a_diverging_run(tmp_path):
    run = tmp_path / "run"
    write_run(run)
    store = DirectoryStore(run, resume=True, n_queries=4, stored_budget=4)
    assert store.resumed and [r.arch for r in store.journal] == ["a", "b", "c"]
    assert store.replayed(1, "b", 0).number == 2 and store.replayed(3, "d", 1) is None
    assert store.journaled_round(0, 2, 0) == store.journal[:2]
    assert store.journaled_round(2, 2, 1) is None  # round 1 is not complete in the journal
    with pytest.raises(ConfigError, match="resume diverged at query 3: the run now picks d in round 1"):
        store.replayed(2, "d", 1)
    # round 1 is the journal's last: its row is forgotten and logged again once the round is complete
    assert store.logged_rounds == 0 and store.logged_fit_s == 0.5
    store.append_round({"round": 0, "fit_s": 9.0})  # logged by the earlier process: not written again
    store.append_round({"round": 1, "fit_s": 2.0})
    store.close()
    rows = [json.loads(line) for line in (run / "rounds.jsonl").read_text().splitlines()]
    assert rows == [{"round": 0, "fit_s": 0.5}, {"round": 1, "fit_s": 2.0}]


def test_a_budget_change_on_resume_rewrites_the_config_and_refuses_fewer_queries_than_held(tmp_path):
    run = tmp_path / "run"
    write_run(run)
    (run / "summary.json").write_text("{}")
    DirectoryStore(run, resume=True, n_queries=6, stored_budget=4).close()
    assert json.loads((run / "config.json").read_text())["budget"] == 6 and not (run / "summary.json").exists()
    with pytest.raises(ConfigError, match="already holds 3 queries"):
        DirectoryStore(run, resume=True, n_queries=2, stored_budget=6)
    with pytest.raises(ConfigError, match="is a parallel run"):
        DirectoryStore(run, resume=True, n_queries=8, stored_budget=6, parallel=True)


def test_a_parallel_store_hands_back_what_was_in_flight(tmp_path):
    run = tmp_path / "run"
    write_run(run)
    lines = [{"submitted": 3, "arch": "c"}, {"submitted": 4, "arch": "d"}]
    (run / "submitted.jsonl").write_text("".join(json.dumps(row) + "\n" for row in lines))
    store = DirectoryStore(run, resume=True, n_queries=4, stored_budget=4, parallel=True, submissions=True)
    assert store.in_flight == [{"submitted": 4, "arch": "d"}]
    store.close()
