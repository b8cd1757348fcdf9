"""The scripts behind the published tables list their commands and run them (cheap tables only)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SHARED_DATA, require_shared

SCRIPTS = {
    "predictor_table.py": ("cifar10", "cifar100", "latency", "v2-paper"),
    "search_studies.py": ("cifar10", "cifar100", "12ep"),
    "spaces.py": ("data", "darts-graphs", "darts-demo", "custom"),
}


def script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


@pytest.mark.parametrize(("name", "table"), [(n, t) for n, tables in SCRIPTS.items() for t in tables])
def test_every_table_lists_nasloop_commands(name, table):
    out = script(name, table, "--list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines and all(line.startswith("nasloop ") for line in lines)


def test_a_table_runs_and_writes_what_the_commands_printed(tmp_path):
    require_shared(SHARED_DATA)
    out_file = tmp_path / "data.json"
    out = script("spaces.py", "data", "--out", str(out_file))
    assert out.returncode == 0, out.stderr
    written = json.loads(out_file.read_text())
    assert [run["result"]["n_cells"] for run in written["runs"]] == [15_625, 15_625]
    assert written["runs"][0]["result"]["best"]["val_acc"]["index"] == 6111
    assert written["machine"]["cpus"] >= 1


def test_an_unknown_table_is_refused():
    out = script("spaces.py", "nonexistent-table")
    assert out.returncode == 2 and "invalid choice" in out.stderr


def test_a_failing_command_stops_the_table_with_its_last_error_line(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from published import run_json

    with pytest.raises(SystemExit, match=r"nasloop search --budget 0 failed \(exit 2\): .*budget"):
        run_json(["search", "--budget", "0"])


def test_the_behaviour_check_finds_a_changed_history_and_ignores_timings_and_new_keys(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from behaviour import added_keys, differences, read_run

    def write_run(name, values, summary):
        run = tmp_path / name
        run.mkdir()
        rows = [{"number": i + 1, "arch": f"a{v}", "metrics": {"acc": v}, "time": 0.1 * i}
                for i, v in enumerate(values)]
        (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (run / "rounds.jsonl").write_text(json.dumps({"round": 0, "fit_s": len(name)}) + "\n")
        (run / "summary.json").write_text(json.dumps({"timings": {"total_s": len(name)}, **summary}))
        (run / "config.json").write_text(json.dumps({"seed": 0, "created": name}))
        return read_run(run)

    base = write_run("base", [1, 2, 3], {"best": 3})
    same = write_run("same-later", [1, 2, 3], {"best": 3, "direction": "max"})
    assert differences(base, same) == []
    assert added_keys(base, same) == ["summary.json: direction"]
    changed = write_run("changed", [1, 5, 3], {"best": 5})
    assert differences(base, changed) == ["history.jsonl: from row 2 (3 vs 3 rows)", "summary.json: best"]
