"""Runs under stress: locks, kills at random points, concurrent writers, full disks, hostile run files,
and property tests of TOML files and flags (any input is a valid run spec or a NasloopError)."""

from __future__ import annotations

import errno
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasloop.errors import NasloopError
from nasloop.history import read_history
from nasloop.locks import LOCK_FILE, DirectoryLock
from nasloop.loop import SearchConfig, check_search, resume_search, run_search
from tests.conftest import run_cli as cli
from tests.processes import child_pids, process_alive
from tests.test_resume import BUDGET, CFG, TOY, _assert_same_run, _reference

ROOT = Path(__file__).resolve().parents[1]
ENV = {**{k: v for k, v in os.environ.items() if k != "NASLOOP_NB201"}, "PYTHONPATH": str(ROOT)}


def one_line_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nasloop: error:") and needle in lines[0], proc.stderr


# --- locks --------------------------------------------------------------------------------------------
def test_a_second_lock_on_a_directory_is_refused_and_freed_on_release(tmp_path):
    first = DirectoryLock(tmp_path).acquire()
    with pytest.raises(NasloopError, match=f"in use by another nasloop process \\(pid {os.getpid()}\\)"):
        DirectoryLock(tmp_path).acquire()
    first.release()
    DirectoryLock(tmp_path).acquire().release()


def test_the_lock_of_a_killed_process_is_taken_over_at_once(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from nasloop.locks import DirectoryLock; "
         f"DirectoryLock({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(60)"],
        cwd=ROOT, env=ENV, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(NasloopError, match=f"pid {holder.pid}"):
        DirectoryLock(tmp_path).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    DirectoryLock(tmp_path).acquire().release()


RESUMER = """
import sys, time
from pathlib import Path
from nasloop.loop import resume_search
run, ready = sys.argv[1:3]
def hold(event):
    if event.phase == "query" and not event.replay and not Path(ready).exists():
        Path(ready).touch()
        time.sleep(3)  # the other resume arrives while this one holds the run
resume_search(run, plugins=[sys.argv[3]], callback=hold)
"""


def test_two_concurrent_resumes_one_is_refused_and_the_history_stays_intact(nb201_cifar10_path, tmp_path):
    ref = _reference(nb201_cifar10_path, tmp_path / "ref", "evolution", TOY)
    run = tmp_path / "run"
    _kill_at_event(nb201_cifar10_path, run, "evolution", TOY, 40)
    ready = tmp_path / "ready"
    first = subprocess.Popen([sys.executable, "-c", RESUMER, str(run), str(ready), TOY], cwd=ROOT, env=ENV,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert first.poll() is None and time.monotonic() < deadline, first.stderr.read() if first.stderr else ""
        time.sleep(0.05)
    second = cli("search", "--resume", str(run), "--predictor", TOY, "-q")
    one_line_error(second, "is in use by another nasloop process")
    assert first.wait(timeout=300) == 0
    _assert_same_run(run, ref)


def test_a_second_writer_of_a_running_new_run_is_refused(nb201_cifar10_path, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with DirectoryLock(out):
        proc = cli("search", "--data", str(nb201_cifar10_path), "--predictor", "none", "--budget", "5",
                   "--out", str(out), "-q")
    one_line_error(proc, "in use by another nasloop process")
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]


# --- SIGKILL at random points -------------------------------------------------------------------------
KILLER = """
import os, signal, sys
from pathlib import Path
from nasloop.loop import SearchConfig, run_search
data, out, strategy, predictor, n, budget, cfg = sys.argv[1:8]
count = [0]
def callback(event):
    count[0] += 1
    if count[0] == int(n):
        os.kill(os.getpid(), signal.SIGKILL)
run_search(space="nb201", strategy=strategy, budget=int(budget), predictor=predictor, data=data, seed=7,
           search=SearchConfig(**eval(cfg)),
           out=out, resume=(Path(out) / "config.json").exists(), callback=callback)
"""


def _kill_at_event(data: Path, out: Path, strategy: str, predictor: str, n: int) -> int:
    """Run (or continue) the search in a fresh process and SIGKILL it at its n-th progress event."""
    proc = subprocess.run([sys.executable, "-c", KILLER, str(data), str(out), strategy, predictor, str(n),
                           str(BUDGET), repr(CFG)], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, -signal.SIGKILL), proc.stderr
    return proc.returncode


def _events(data: Path, strategy: str, predictor: str) -> int:
    events: list[object] = []
    run_search(space="nb201", benchmark=None, strategy=strategy, budget=BUDGET, predictor=predictor, data=str(data),
               seed=7, search=SearchConfig(**CFG),
               callback=events.append)
    return len(events)


@pytest.mark.parametrize(("strategy", "predictor", "seed"), [
    pytest.param("evolution", TOY, 11, id="predictor-run"),
    pytest.param("tpe", "none", 12, id="tpe-run"),
])
def test_sigkill_at_random_points_then_resume_equals_the_uninterrupted_run(nb201_cifar10_path, tmp_path, strategy,
                                                                           predictor, seed):
    """Three kills at seeded random progress events (fits, queries, round ends, replayed queries of the
    earlier resumes), each in the process that resumed the one before; then a last resume."""
    ref = _reference(nb201_cifar10_path, tmp_path / "ref", strategy, predictor)
    n_events = _events(nb201_cifar10_path, strategy, predictor)
    rng = random.Random(seed)
    run = tmp_path / "run"
    for point in sorted(rng.sample(range(1, n_events), 3)):
        _kill_at_event(nb201_cifar10_path, run, strategy, predictor, point)
    resume_search(run, plugins=[TOY])
    _assert_same_run(run, ref)


# --- a SIGKILLed compare ----------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_sigkilled_compare_leaves_no_worker_and_a_rerun_has_no_duplicates(nb201_cifar10_path, tmp_path):
    out = tmp_path / "study"
    args = [sys.executable, "-m", "nasloop.cli", "compare", "--data", str(nb201_cifar10_path), "--strategy",
            "random", "--strategy", "evolution", "--predictor", TOY, "--seeds", "1", "--budget", "40",
            "--n-per-round", "1", "--n-local", "0", "--jobs", "2", "--out", str(out), "--json"]
    parent = subprocess.Popen(args, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not any(len(p.read_text().splitlines()) >= 5 for p in out.rglob("history.jsonl")):
        assert parent.poll() is None and time.monotonic() < deadline, parent.stderr.read()
        time.sleep(0.05)
    workers = {w for child in child_pids(parent.pid) for w in {child} | child_pids(child)}
    assert workers
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(process_alive(w) for w in workers):
        assert time.monotonic() < deadline, "a worker outlived the killed study"
        time.sleep(0.05)
    again = subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    histories = sorted(out.rglob("history.jsonl"))
    assert len(histories) == 2
    for path in histories:
        records = read_history(path)  # numbered 1, 2, 3, ... with no architecture twice
        assert len(records) == 40
    assert all(c["n_runs"] == 1 for c in json.loads(again.stdout)["configurations"])


# --- hostile run files --------------------------------------------------------------------------------
def test_resume_imports_no_code_named_only_in_config_json(nb201_cifar10_path, tmp_path):
    run = tmp_path / "run"
    run_search(space="nb201", benchmark=None, strategy="random", budget=6, predictor="none",
               data=str(nb201_cifar10_path), seed=0, out=run)
    marker = tmp_path / "pwned"
    config = json.loads((run / "config.json").read_text())
    hostile = {**config, "predictor": "os:system", "predictor_params": {"command": f"touch {marker}"}}
    (run / "config.json").write_text(json.dumps(hostile))
    (run / "summary.json").unlink()
    proc = cli("search", "--resume", str(run), "-q")
    one_line_error(proc, "repeat --predictor os:system")
    assert not marker.exists()
    for key, value in (("space", "os:getcwd"), ("strategy", "subprocess:run"), ("benchmark_factory", "os:system")):
        (run / "config.json").write_text(json.dumps({**config, key: value}))
        one_line_error(cli("search", "--resume", str(run), "-q"), value)


def test_a_data_file_edited_in_place_is_refused_on_resume(nb201_cifar10_path, tmp_path):
    table = tmp_path / "table.csv"
    table.write_bytes(nb201_cifar10_path.read_bytes())
    run = tmp_path / "run"
    first = cli("search", "--data", str(table), "--predictor", "none", "--budget", "6", "--out", str(run), "-q")
    assert first.returncode == 0, first.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["data_files"][str(table.resolve())]["size"] == table.stat().st_size
    lines = table.read_text().splitlines(keepends=True)
    same_size = lines[1].replace("9", "8", 1) if "9" in lines[1] else lines[1].replace("1", "2", 1)
    table.write_text(lines[0] + same_size + "".join(lines[2:]))
    before = (run / "history.jsonl").read_text()
    one_line_error(cli("search", "--resume", str(run), "--budget", "8", "-q"), "changed content")
    table.write_text("".join(lines[:-1]))
    one_line_error(cli("search", "--resume", str(run), "--budget", "8", "-q"), "changed size")
    assert (run / "history.jsonl").read_text() == before
    table.write_text("".join(lines))
    assert cli("search", "--resume", str(run), "--budget", "8", "-q").returncode == 0


# --- full and read-only disks ---------------------------------------------------------------------------
def _main(argv: list[str]) -> int:
    from nasloop.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0)


def test_a_full_disk_when_the_config_is_written_leaves_nothing(nb201_cifar10_path, tmp_path, monkeypatch, capsys):
    from nasloop import rundir

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(rundir, "atomic_write_text", full)
    out = tmp_path / "run"
    code = _main(["search", "--data", str(nb201_cifar10_path), "--predictor", "none", "--budget", "5", "--out",
                  str(out), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "No space left on device" in err[0]
    assert not out.exists()


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_an_unwritable_place_is_one_line(nb201_cifar10_path, tmp_path, monkeypatch, capsys, code):
    def refuse(self, *args, **kwargs):
        raise OSError(code, os.strerror(code), str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    exit_code = _main(["search", "--data", str(nb201_cifar10_path), "--predictor", "none", "--budget", "5",
                       "--out", str(tmp_path / "new" / "run"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_code == 2 and len(err) == 1 and os.strerror(code) in err[0]


def test_a_disk_that_fills_up_mid_run_stops_with_one_line_and_the_run_resumes(nb201_cifar10_path, tmp_path,
                                                                           monkeypatch, capsys):
    from nasloop import history

    ref = _reference(nb201_cifar10_path, tmp_path / "ref", "tpe", "none")
    original = history.JsonlWriter.append
    calls = {"n": 0}

    def fill_up(self, row):
        if self.path.name == "history.jsonl":
            calls["n"] += 1
            if calls["n"] == 9:
                raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        original(self, row)

    monkeypatch.setattr(history.JsonlWriter, "append", fill_up)
    run = tmp_path / "run"
    config = ["--n-warmup", str(CFG["n_warmup"]), "--n-per-round", str(CFG["n_per_round"]),
              "--n-pool", str(CFG["n_pool"]), "--n-local", str(CFG["n_local"])]
    argv = ["search", "--data", str(nb201_cifar10_path), "--strategy", "tpe", "--predictor", "none", "--seed", "7",
            "--budget", str(BUDGET), *config, "--out", str(run), "-q"]
    assert _main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0]
    assert len((run / "history.jsonl").read_text().splitlines()) == 8
    monkeypatch.setattr(history.JsonlWriter, "append", original)
    resume_search(run)
    _assert_same_run(run, ref)


# --- property tests: TOML files and flags -------------------------------------------------------------
NAMES = st.sampled_from(["nb201", "nb999", "random", "evolution", "tpe", "none", "rf", "mlp", "nnformer", "fast",
                         "paper", "bogus", "val_acc", "test_acc", "all", "auto", "greedy", "ucb", "thompson", "",
                         "nosuchmodule:Thing", "nasloop.errors:NasloopError", TOY, "..", "a b"])
NUMBERS = st.one_of(st.integers(-3, 40), st.integers(-(2**63), 2**63 - 1),
                    st.floats(allow_nan=True, allow_infinity=True))
SCALARS = st.one_of(NAMES, NUMBERS, st.booleans(), st.text(max_size=8))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(NAMES, inner, max_size=3)), max_leaves=6)
SEARCH_KEYS = ["space", "benchmark", "dataset", "metric", "report", "strategy", "predictor", "preset", "budget",
               "seed", "max_cost", "max_seconds", "strategy_options", "predictor_options", "n_warmup", "n_per_round",
               "n_pool", "n_local", "refit_every", "acquisition", "ucb_beta", "warm_start", "max_fit_steps",
               "skip_equivalent", "budgett", "search"]
FLAGS = ["--strategy", "--predictor", "--preset", "--budget", "--seed", "--n-pool", "--n-per-round", "--n-local",
         "--n-warmup", "--refit-every", "--acquisition", "--max-fit-steps", "--max-cost", "--max-seconds",
         "--metric", "--report", "--space", "--dataset"]


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def _spec_from(argv: list[str], toml_text: str | None, tmp_path: Path) -> dict | None:
    """The config a new `nasloop search` run would write for these flags and TOML file (nothing runs)."""
    from nasloop.commands.search import chosen_options, new_run_spec, search

    if toml_text is not None:
        (tmp_path / "c.toml").write_text(toml_text, encoding="utf-8")
        argv = [*argv, "--config", str(tmp_path / "c.toml")]
    ctx = search.make_context("search", list(argv))
    flags = dict(ctx.params)
    config_file = flags.pop("config_file")
    for key in ("resume", "quiet", "as_json"):
        flags.pop(key)
    return check_search(new_run_spec(flags, chosen_options(ctx, flags, config_file)))


def _valid_spec(payload: dict) -> None:
    json.dumps(payload, allow_nan=False)  # nothing non-finite reaches config.json
    assert isinstance(payload["budget"], int) and payload["budget"] >= 1
    for key in ("max_cost", "max_seconds"):
        assert payload[key] is None or (math.isfinite(payload[key]) and payload[key] > 0)
    SearchConfig.from_json(payload["search"])


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@PROPERTY
@given(table=st.dictionaries(st.sampled_from(SEARCH_KEYS), VALUES, max_size=5))
def test_any_toml_file_is_a_valid_run_spec_or_a_nasloop_error(nb201_cifar10_path, tmp_path_factory, table):
    text = f"data = {json.dumps(str(nb201_cifar10_path))}\n" + "".join(
        f"{key} = {toml_value(value)}\n" for key, value in table.items())
    try:
        payload = _spec_from([], text, tmp_path_factory.mktemp("toml"))
    except (NasloopError, click.ClickException):
        return
    _valid_spec(payload)


@PROPERTY
@given(text=st.text(max_size=60))
def test_any_text_as_a_toml_file_is_a_valid_run_spec_or_a_nasloop_error(nb201_cifar10_path, tmp_path_factory, text):
    try:
        payload = _spec_from(["--data", str(nb201_cifar10_path)], text, tmp_path_factory.mktemp("toml"))
    except (NasloopError, click.ClickException):
        return
    _valid_spec(payload)


@PROPERTY
@given(pairs=st.lists(st.tuples(st.sampled_from(FLAGS), st.one_of(NAMES, NUMBERS.map(str), st.text(max_size=6))),
                      max_size=4))
def test_any_flag_values_are_a_valid_run_spec_or_a_nasloop_error(nb201_cifar10_path, tmp_path_factory, pairs):
    argv = ["--data", str(nb201_cifar10_path)] + [x for flag, value in pairs for x in (flag, value)]
    try:
        payload = _spec_from(argv, None, tmp_path_factory.mktemp("flags"))
    except (NasloopError, click.ClickException):
        return
    _valid_spec(payload)


STUDY_KEYS = ["strategies", "predictors", "preset", "seeds", "budget", "jobs", "n_pool", "n_warmup", "search",
              "configs", "budgett", "label", "acquisition", "skip_equivalent"]


@PROPERTY
@given(table=st.dictionaries(st.sampled_from(STUDY_KEYS), VALUES, max_size=4),
       labels=st.lists(st.one_of(NAMES, st.text(max_size=6)), max_size=2))
def test_any_study_file_is_a_valid_study_inside_its_directory_or_a_nasloop_error(nb201_cifar10, tmp_path_factory,
                                                                               table, labels):
    from nasloop.commands.compare import build_spec, check_configs, study_file_options
    from nasloop.compare import jobs_of

    text = "".join(f"{key} = {toml_value(value)}\n" for key, value in table.items())
    text += "".join(f"[[configs]]\nstrategy = \"random\"\nlabel = {toml_value(label)}\n" for label in labels)
    path = tmp_path_factory.mktemp("study") / "c.toml"
    path.write_text(text, encoding="utf-8")
    try:
        options = study_file_options(str(path))
        if not options.get("strategies") and not options.get("configs"):
            options["strategies"] = ["random"]
        spec = build_spec(options)
        check_configs(spec, nb201_cifar10)
    except NasloopError:
        return
    study = (path.parent / "s").resolve()
    for job in jobs_of(spec, study):
        assert job.run_dir.resolve().parent.parent == study  # <study>/<config folder>/seed-<k>


# --- the predictor snapshot: tensors + JSON -----------------------------------------------------------
@pytest.mark.parametrize("predictor", ["mlp", pytest.param("nnformer", marks=pytest.mark.slow)])
def test_a_torch_predictor_resumes_from_its_tensor_snapshot_exactly(nb201_cifar10_path, tmp_path, predictor):
    """Killed at query 22 of 30 (round 4): resume restores fit #3 from predictor.pt / predictor.json
    (torch.load with weights_only=True) and makes only the fits still to come; the history equals the
    uninterrupted run's. A damaged snapshot is ignored and the fits are redone, with the same result."""
    cfg = SearchConfig(n_warmup=10, n_per_round=4, n_pool=50, n_local=2, max_fit_steps=20)
    ref = tmp_path / "ref"
    run_search(space="nb201", benchmark=None, strategy="evolution", budget=30, predictor=predictor,
               data=str(nb201_cifar10_path), seed=1, search=cfg, out=ref)

    def killed(out: Path) -> Path:
        def stop(event):
            if event.phase == "query" and not event.replay and event.n_queries == 22:
                raise KeyboardInterrupt  # as a kill: the files are as they were after query 22
        with pytest.raises(KeyboardInterrupt):
            run_search(space="nb201", benchmark=None, strategy="evolution", budget=30, predictor=predictor,
                       data=str(nb201_cifar10_path), seed=1, search=cfg,
                       out=out, callback=stop)
        return out

    run = killed(tmp_path / "run")
    meta = json.loads((run / "predictor.json").read_text())
    assert meta["n_fits"] == 3 and (run / "predictor.pt").exists()
    events: list = []
    resume_search(run, callback=events.append)
    assert sum(e.phase == "fit" for e in events) == 2  # fits #4 and #5 only
    assert [json.loads(x)["arch"] for x in (run / "history.jsonl").read_text().splitlines()] == \
        [json.loads(x)["arch"] for x in (ref / "history.jsonl").read_text().splitlines()]

    damaged = killed(tmp_path / "damaged")
    (damaged / "predictor.pt").write_bytes(b"not a tensor file")
    events.clear()
    resume_search(damaged, callback=events.append)
    assert sum(e.phase == "fit" for e in events) == 5  # the snapshot's hash does not match: all refitted
    assert (damaged / "history.jsonl").read_text().count("\n") == 30
    assert [json.loads(x)["arch"] for x in (damaged / "history.jsonl").read_text().splitlines()] == \
        [json.loads(x)["arch"] for x in (ref / "history.jsonl").read_text().splitlines()]


def test_a_snapshot_keeps_what_the_fit_budget_counts_from(nb201_cifar10_path, tmp_path):
    """With a fit budget that binds (warm refits of 2 steps per new result, below half the cap), the
    refits after a resume from the snapshot run as many steps as uninterrupted ones."""
    cfg = SearchConfig(n_warmup=10, n_per_round=4, n_pool=50, n_local=2, max_fit_steps=120, fit_budget=2)
    ref = tmp_path / "ref"
    run_search(space="nb201", benchmark=None, strategy="evolution", budget=30, predictor="mlp",
               data=str(nb201_cifar10_path), seed=1, search=cfg, out=ref)

    def stop(event):
        if event.phase == "query" and not event.replay and event.n_queries == 22:
            raise KeyboardInterrupt
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_search(space="nb201", benchmark=None, strategy="evolution", budget=30, predictor="mlp",
                   data=str(nb201_cifar10_path), seed=1, search=cfg,
                   out=run, callback=stop)
    resume_search(run)
    assert (run / "history.jsonl").read_text().count("\n") == 30
    assert [json.loads(x)["arch"] for x in (run / "history.jsonl").read_text().splitlines()] == \
        [json.loads(x)["arch"] for x in (ref / "history.jsonl").read_text().splitlines()]
