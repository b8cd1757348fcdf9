"""Hardening campaign: bad inputs, hostile files and faults through the real ``nasloop`` CLI.

Every case runs ``python -m nasloop.cli ...`` in a fresh temporary directory and is judged on:

- internal errors: exit code 1, or a traceback / "internal error" on stderr;
- not one line + exit 2: a bad input that did not end in exactly one stderr line and exit code 2;
- leftovers: files written (or changed) for a rejected input (lock files aside);
- corrupted or mixed runs: a history that differs from the uninterrupted run's, has repeated
  records, or mixes two data sets (kills at random points, two resumes at once, a killed study,
  a data file edited between a kill and the resume);
- code executions: a crafted run file, predictor snapshot or ``.pth`` file that ran code (a marker
  file appeared);
- unexpected outcomes: a case that should succeed (exit 0) did not, or one with a required
  effect (e.g. a header " val_acc" must search ``val_acc``) missed it.

Targets: all counts 0. The script writes a JSON summary (counts, failing cases by area) and exits 1
when a target is missed. Failing cases are listed by area: ``run`` (runs, studies, config files,
flags) and ``data`` (CSV parsing, ``.pth`` loading, architecture parsers).

Run it from the repository root (about 5-8 minutes on 2 cores with ``--jobs 2``):

    python benchmarks/hardening_campaign.py --out hardening_campaign.json --jobs 2

``--only SUBSTRING`` runs the cases whose name contains it; ``--list`` prints the case names.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = (ROOT / ".." / "shared" / "data").resolve()
CIFAR = DATA / "nb201" / "cifar10.csv"
TOY = "tests.toy_predictor:ToyRidge"
LOCK = ".nasloop.lock"
ENV = {**{k: v for k, v in os.environ.items() if k not in ("NASLOOP_NB201", "NASLOOP_DEBUG")},
       "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}
FAST = ["--predictor", "none", "--budget", "12", "-q"]

# Runs the CLI with one injected OS fault: "mkdir:ERRNO" (Path.mkdir fails), "config:ERRNO" (the
# atomic write of config.json fails), "history:N:ERRNO" (the N-th history line fails).
FAULT_LAUNCHER = r"""
import errno, os, sys
from pathlib import Path
fault, argv = sys.argv[1], sys.argv[2:]
kind, *rest = fault.split(":")
code = getattr(errno, rest[-1])
def boom(path):
    raise OSError(code, os.strerror(code), str(path))
if kind == "mkdir":
    Path.mkdir = lambda self, *a, **k: boom(self)
elif kind == "config":
    from nasloop import rundir
    rundir.atomic_write_text = lambda path, text: boom(path)
elif kind == "history":
    from nasloop import history
    original, seen = history.JsonlWriter.append, [0]
    def append(self, row):
        if self.path.name == "history.jsonl":
            seen[0] += 1
            if seen[0] == int(rest[0]):
                boom(self.path)
        original(self, row)
    history.JsonlWriter.append = append
from nasloop.cli import main
main(argv)
"""

# Runs (or continues) a search and SIGKILLs itself at its N-th progress event.
KILLER = r"""
import os, signal, sys
from pathlib import Path
from nasloop.loop import SearchConfig, run_search
data, out, strategy, predictor, n, budget = sys.argv[1:7]
count = [0]
def callback(event):
    count[0] += 1
    if count[0] == int(n):
        os.kill(os.getpid(), signal.SIGKILL)
run_search(space="nb201", strategy=strategy, budget=int(budget), predictor=predictor, data=data, seed=3,
           search=SearchConfig(n_warmup=6, n_per_round=4, n_pool=40, n_local=2), out=out,
           resume=(Path(out) / "config.json").exists(), callback=callback)
"""
KILL_FLAGS = ["--seed", "3", "--n-warmup", "6", "--n-per-round", "4", "--n-pool", "40", "--n-local", "2"]


@dataclass
class Outcome:
    internal: bool = False
    not_one_line: bool = False
    leftovers: list[str] = field(default_factory=list)
    mixed: str = ""
    executed: bool = False
    unexpected: str = ""
    rc: int | None = None
    stderr: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.internal or self.not_one_line or self.leftovers or self.mixed or self.executed
                    or self.unexpected)


@dataclass
class Case:
    name: str
    area: str  # "run" (runs, studies, config files, flags, CLI) or "data" (data files and parsers)
    fn: Callable[[Path], Outcome]


# --- helpers ----------------------------------------------------------------------------------------
def nasloop(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nasloop.cli", *args], cwd=ROOT, env=env or ENV,
                          capture_output=True, text=True, timeout=timeout)


def launch(fault: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", FAULT_LAUNCHER, fault, *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=300)


def snapshot(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.name == LOCK or not path.is_file():
            continue
        out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def judge(proc: subprocess.CompletedProcess, *, reject: bool) -> Outcome:
    err = proc.stderr.strip()
    out = Outcome(rc=proc.returncode, stderr=err.splitlines()[-1] if err else "")
    out.internal = proc.returncode == 1 or "Traceback" in err or "internal error" in err
    if reject:
        out.not_one_line = proc.returncode != 2 or len(err.splitlines()) != 1
    elif proc.returncode != 0:
        out.unexpected = f"exit {proc.returncode}"
    return out


def rejected(tmp: Path, *args: str, env: dict | None = None, runner: Callable | None = None) -> Outcome:
    """A bad input: one line, exit 2, nothing written or changed under ``tmp``."""
    before = snapshot(tmp)
    proc = runner() if runner else nasloop(*args, env=env)
    out = judge(proc, reject=True)
    after = snapshot(tmp)
    out.leftovers = sorted(k for k in after if before.get(k) != after[k])
    return out


def history(run: Path) -> list[dict]:
    path = run / "history.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [{k: v for k, v in row.items() if k != "time"} for row in rows]


def check_history(run: Path, ref: Path | None, budget: int) -> str:
    rows = history(run)
    numbers, archs = [r["number"] for r in rows], [r["arch"] for r in rows]
    if numbers != list(range(1, len(rows) + 1)) or len(set(archs)) != len(archs):
        return f"repeated or misnumbered records in {run.name}"
    if len(rows) != budget:
        return f"{run.name} holds {len(rows)} of {budget} queries"
    if ref is not None and rows != history(ref):
        return f"{run.name} differs from the uninterrupted run"
    return ""


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def table_lines() -> list[str]:
    return CIFAR.read_text().splitlines(keepends=True)


def good_run(tmp: Path, name: str = "run", *extra: str) -> Path:
    run = tmp / name
    proc = nasloop("search", "--data", str(CIFAR), "--out", str(run), *FAST, *extra)
    if proc.returncode != 0:
        raise RuntimeError(f"setup run failed: {proc.stderr}")
    return run


class Evil:
    """Unpickling calls open(marker, "w"): a file appears if anything unpickles it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


# --- case builders ------------------------------------------------------------------------------------
CASES: list[Case] = []


def case(name: str, area: str = "run") -> Callable:
    def register(fn: Callable[[Path], Outcome]) -> Callable:
        CASES.append(Case(name, area, fn))
        return fn
    return register


def flag_case(name: str, *args: str, data: bool = True) -> None:
    def fn(tmp: Path) -> Outcome:
        base = ["--data", str(CIFAR)] if data else []
        return rejected(tmp, "search", *base, "--out", str(tmp / "run"), *args)
    CASES.append(Case(f"search {name}", "run", fn))


def toml_case(name: str, text: str, *args: str) -> None:
    def fn(tmp: Path) -> Outcome:
        cfg = write(tmp / "c.toml", text)
        short = [] if "budget" in text else ["--budget", "12"]  # flags win over the file
        return rejected(tmp, "search", "--data", str(CIFAR), "--out", str(tmp / "run"), "--config", str(cfg),
                        *short, "-q", *args)
    CASES.append(Case(f"search toml {name}", "run", fn))


def study_case(name: str, text: str | None, *args: str) -> None:
    def fn(tmp: Path) -> Outcome:
        extra = ["--config", str(write(tmp / "s.toml", text))] if text is not None else []
        # Flags win over the file: a key the file is about is not given as a flag too.
        seeds = [] if (text and "seeds" in text) or "--seeds" in args else ["--seeds", "1"]
        budget = [] if (text and "budget" in text) or "--budget" in args else ["--budget", "12"]
        return rejected(tmp, "compare", "--data", str(CIFAR), "--out", str(tmp / "study"), *seeds, *budget,
                        "--json", *extra, *args)
    CASES.append(Case(f"compare {name}", "run", fn))


def csv_case(name: str, make: Callable[[list[str]], str], *args: str) -> None:
    def fn(tmp: Path) -> Outcome:
        path = write(tmp / "table.csv", make(table_lines()))
        return rejected(tmp, "search", "--data", str(path), "--out", str(tmp / "run"), *FAST, *args)
    CASES.append(Case(f"data csv {name}", "data", fn))


# search flags
for label, args in [
    ("--budget 0", ["--budget", "0", "--predictor", "none"]),
    ("--budget -5", ["--budget", "-5", "--predictor", "none"]),
    ("--budget ten", ["--budget", "ten"]),
    ("--budget above the space", ["--budget", "99999999", "--predictor", "none"]),
    ("--seed -1", ["--seed", "-1", *FAST]),
    ("--seed abc", ["--seed", "abc", *FAST]),
    ("--strategy bogus", ["--strategy", "bogus", *FAST]),
    ("--strategy os:system", ["--strategy", "os:system", *FAST]),
    ("--strategy nosuchmodule:X", ["--strategy", "nosuchmodule:X", *FAST]),
    ("--strategy nasloop:nothing", ["--strategy", "nasloop:nothing", *FAST]),
    ("--predictor bogus", ["--predictor", "bogus", "--budget", "12"]),
    ("--predictor rf --preset bogus", ["--predictor", "rf", "--preset", "bogus", "--budget", "12", "-q"]),
    ("--predictor nnformer --preset bogus", ["--predictor", "nnformer", "--preset", "bogus", "--budget", "12", "-q"]),
    ("--predictor mlp --preset bogus", ["--predictor", "mlp", "--preset", "bogus", "--budget", "12", "-q"]),
    ("--predictor gin --preset bogus", ["--predictor", "gin", "--preset", "bogus", "--budget", "12", "-q"]),
    ("--n-pool abc", ["--n-pool", "abc", "--budget", "12", "-q"]),
    ("--n-pool 0", ["--n-pool", "0", "--budget", "12", "-q"]),
    ("--n-pool 2", ["--n-pool", "2", "--budget", "12", "-q"]),
    ("--n-per-round 0", ["--n-per-round", "0", "--budget", "12", "-q"]),
    ("--n-local -1", ["--n-local", "-1", "--budget", "12", "-q"]),
    ("--n-warmup 0", ["--n-warmup", "0", "--budget", "12", "-q"]),
    ("--n-warmup 1 with a predictor", ["--n-warmup", "1", "--predictor", "rf", "--budget", "12", "-q"]),
    ("--refit-every 0", ["--refit-every", "0", "--budget", "12", "-q"]),
    ("--acquisition bogus", ["--acquisition", "bogus", "--budget", "12", "-q"]),
    ("--max-fit-steps 0", ["--max-fit-steps", "0", "--budget", "12", "-q"]),
    ("--max-cost 0", ["--max-cost", "0", *FAST]),
    ("--max-cost -1", ["--max-cost", "-1", *FAST]),
    ("--max-cost nan", ["--max-cost", "nan", *FAST]),
    ("--max-seconds nan", ["--max-seconds", "nan", *FAST]),
    ("--max-seconds inf", ["--max-seconds", "inf", *FAST]),
    ("--max-seconds -inf", ["--max-seconds", "-inf", *FAST]),
    ("--metric bogus", ["--metric", "bogus", *FAST]),
    ("--report bogus", ["--report", "bogus", *FAST]),
    ("--space bogus", ["--space", "bogus", *FAST]),
    ("--dataset with a table", ["--dataset", "cifar100", *FAST]),
    ("--unknown-flag", ["--colour", "red", *FAST]),
]:
    flag_case(label, *args)

flag_case("--data missing file", "--data", "/nonexistent/table.csv", *FAST, data=False)


@case("search --data a directory", "data")
def _data_dir(tmp: Path) -> Outcome:
    (tmp / "d").mkdir()
    return rejected(tmp, "search", "--data", str(tmp / "d"), "--out", str(tmp / "run"), *FAST)


@case("search --config missing file")
def _config_missing(tmp: Path) -> Outcome:
    return rejected(tmp, "search", "--data", str(CIFAR), "--config", str(tmp / "none.toml"), "--out",
                    str(tmp / "run"), *FAST)


# search TOML values
for label, text in [
    ("not TOML", "budget = = 3\n"),
    ("binary", "\x00\x01\xff"),
    ('budget = "ten"', 'budget = "ten"\n'),
    ("budget = 0", "budget = 0\n"),
    ("budget = 1.5", "budget = 1.5\n"),
    ("n_pool = [1]", "n_pool = [1]\n"),
    ('n_pool = "many"', 'n_pool = "many"\n'),
    ("out = 5", "out = 5\n"),
    ("data = 42", "data = 42\n"),
    ("budgett = 30", "budgett = 30\n"),
    ("seed = -1", "seed = -1\n"),
    ("seed = 1.5", "seed = 1.5\n"),
    ("seed = true", "seed = true\n"),
    ("max_seconds = nan", "max_seconds = nan\n"),
    ("max_cost = inf", "max_cost = inf\n"),
    ("max_cost = -3", "max_cost = -3\n"),
    ("ucb_beta = -1", "ucb_beta = -1\n"),
    ("ucb_beta = nan", "ucb_beta = nan\n"),
    ('warm_start = "yes"', 'warm_start = "yes"\n'),
    ("skip_equivalent = 1", "skip_equivalent = 1\n"),
    ("acquisition = 3", "acquisition = 3\n"),
    ("search = 5", "search = 5\n"),
    ("[search] n_pool = -1", "[search]\nn_pool = -1\n"),
    ("strategy = [1]", "strategy = [1]\n"),
    ('predictor = "bogus"', 'predictor = "bogus"\n'),
    ('preset = "bogus" with rf', 'predictor = "rf"\npreset = "bogus"\n'),
    ("unknown strategy_options", "[strategy_options]\nbogus = 1\n"),
    ("strategy_options = 3", "strategy_options = 3\n"),
    ('evolution population_size = "x"', 'strategy = "evolution"\n[strategy_options]\npopulation_size = "x"\n'),
    ("evolution tournament_size = 0", 'strategy = "evolution"\n[strategy_options]\ntournament_size = 0\n'),
    ("unknown predictor_options", 'predictor = "rf"\n[predictor_options]\nbogus = 1\n'),
    ('predictor_options n_members = "x"', 'predictor = "nnformer"\n[predictor_options]\nn_members = "x"\n'),
    ("predictor_options config unknown key", 'predictor = "mlp"\n[predictor_options.config]\nbogus = 1\n'),
    ("rf config unknown key", 'predictor = "rf"\n[predictor_options.config]\nbogus = 1\n'),
]:
    toml_case(label, text)


@case("search --out under a regular file")
def _out_under_file(tmp: Path) -> Outcome:
    write(tmp / "file", "x")
    return rejected(tmp, "search", "--data", str(CIFAR), "--out", str(tmp / "file" / "run"), *FAST)


@case("search --out a regular file")
def _out_file(tmp: Path) -> Outcome:
    write(tmp / "file", "x")
    return rejected(tmp, "search", "--data", str(CIFAR), "--out", str(tmp / "file"), *FAST)


@case("search --out an existing run")
def _out_existing(tmp: Path) -> Outcome:
    run = good_run(tmp)
    return rejected(tmp, "search", "--data", str(CIFAR), "--out", str(run), *FAST)


@case("search --out /dev/full/x")
def _out_dev_full(tmp: Path) -> Outcome:
    return rejected(tmp, "search", "--data", str(CIFAR), "--out", "/dev/full/x", *FAST)


for fault, label in [("mkdir:EROFS", "a read-only disk"), ("mkdir:EACCES", "a directory without write permission"),
                     ("config:ENOSPC", "a full disk (config.json)"), ("config:EDQUOT", "a disk quota (config.json)")]:
    def _fault(tmp: Path, fault: str = fault) -> Outcome:
        args = ["search", "--data", str(CIFAR), "--out", str(tmp / "new" / "run"), *FAST]
        return rejected(tmp, runner=lambda: launch(fault, *args))
    CASES.append(Case(f"search --out on {label}", "run", _fault))


@case("search full disk mid-run, then resume")
def _full_mid_run(tmp: Path) -> Outcome:
    ref = good_run(tmp, "ref", "--strategy", "evolution", "--budget", "20")
    run = tmp / "run"
    args = ["search", "--data", str(CIFAR), "--out", str(run), *FAST, "--strategy", "evolution", "--budget", "20"]
    out = judge(launch("history:9:ENOSPC", *args), reject=True)
    resumed = nasloop("search", "--resume", str(run), "-q")
    if resumed.returncode != 0:
        out.unexpected = f"resume after the full disk: exit {resumed.returncode}"
    out.mixed = check_history(run, ref, 20)
    return out


@case("search --json to a full stdout (/dev/full)")
def _stdout_full(tmp: Path) -> Outcome:
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "nasloop.cli", "search", "--data", str(CIFAR), "--out",
                               str(tmp / "run"), *FAST, "--json"], cwd=ROOT, env=ENV, stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=300)
    out = judge(proc, reject=True)
    out.mixed = check_history(tmp / "run", None, 12)  # the run itself is complete
    return out


# resume
@case("resume a missing directory")
def _resume_missing(tmp: Path) -> Outcome:
    return rejected(tmp, "search", "--resume", str(tmp / "nowhere"))


@case("resume a directory without config.json")
def _resume_empty(tmp: Path) -> Outcome:
    (tmp / "d").mkdir()
    return rejected(tmp, "search", "--resume", str(tmp / "d"))


def _config_case(name: str, edit: Callable[[dict], dict | str], *, marker: bool = False) -> None:
    def fn(tmp: Path) -> Outcome:
        run = good_run(tmp)
        (run / "summary.json").unlink()
        config = json.loads((run / "config.json").read_text())
        new = edit({**config, "_marker": str(tmp / "pwned")})
        (run / "config.json").write_text(new if isinstance(new, str) else json.dumps(new))
        out = rejected(tmp, "search", "--resume", str(run), "-q")
        out.executed = (tmp / "pwned").exists()
        return out
    CASES.append(Case(f"resume {name}", "run", fn))


_config_case("config.json not JSON", lambda c: "{not json")
_config_case("config.json a list", lambda c: "[1, 2]")
_config_case('config.json budget "abc"', lambda c: {**c, "budget": "abc"})
_config_case("config.json seed -3", lambda c: {**c, "seed": -3})
_config_case("config.json search options junk", lambda c: {**c, "search": {"n_pool": "x", "bogus": 1}})
_config_case("config.json max_seconds NaN", lambda c: {**c, "max_seconds": float("nan")})
_config_case("config.json predictor os:system with params",
             lambda c: {**c, "predictor": "os:system", "predictor_params": {"command": f"touch {c['_marker']}"}})
_config_case("config.json strategy subprocess:run", lambda c: {**c, "strategy": "subprocess:run"})
_config_case("config.json space os:getcwd", lambda c: {**c, "space": "os:getcwd"})
_config_case("config.json benchmark_factory os:system", lambda c: {**c, "benchmark_factory": "os:system"})
_config_case("config.json predictor 42", lambda c: {**c, "predictor": 42})


@case("resume with --out")
def _resume_out(tmp: Path) -> Outcome:
    run = good_run(tmp)
    return rejected(tmp, "search", "--resume", str(run), "--out", str(tmp / "x"))


@case("resume with a conflicting --strategy")
def _resume_conflict(tmp: Path) -> Outcome:
    run = good_run(tmp)
    return rejected(tmp, "search", "--resume", str(run), "--strategy", "tpe")


@case("resume with --budget below the queries held")
def _resume_low(tmp: Path) -> Outcome:
    run = good_run(tmp)
    return rejected(tmp, "search", "--resume", str(run), "--budget", "3")


@case("resume with --max-seconds nan")
def _resume_nan(tmp: Path) -> Outcome:
    run = good_run(tmp)
    return rejected(tmp, "search", "--resume", str(run), "--max-seconds", "nan")


@case("resume a history with a damaged middle line")
def _resume_damaged(tmp: Path) -> Outcome:
    run = good_run(tmp)
    lines = (run / "history.jsonl").read_text().splitlines(keepends=True)
    (run / "history.jsonl").write_text("".join(lines[:3]) + "{oops\n" + "".join(lines[4:]))
    (run / "summary.json").unlink()
    return rejected(tmp, "search", "--resume", str(run))


@case("resume a history with a repeated record")
def _resume_repeated(tmp: Path) -> Outcome:
    run = good_run(tmp)
    lines = (run / "history.jsonl").read_text().splitlines(keepends=True)
    (run / "history.jsonl").write_text("".join(lines[:5] + lines[4:5]))
    (run / "summary.json").unlink()
    return rejected(tmp, "search", "--resume", str(run))


def _data_change_case(name: str, change: Callable[[Path, list[str]], None]) -> None:
    def fn(tmp: Path) -> Outcome:
        table = write(tmp / "table.csv", "".join(table_lines()))
        run = tmp / "run"
        proc = nasloop("search", "--data", str(table), "--out", str(run), *FAST)
        if proc.returncode != 0:
            return Outcome(unexpected=f"setup: {proc.stderr.strip()}")
        change(table, table_lines())
        before = history(run)
        out = rejected(tmp, "search", "--resume", str(run), "--budget", "16", "-q")
        out.leftovers = [k for k in out.leftovers if k != "table.csv"]
        if history(run) != before:
            out.mixed = "the run went on with the changed data"
        return out
    CASES.append(Case(f"resume after {name}", "run", fn))


def _same_size_edit(table: Path, lines: list[str]) -> None:
    row = lines[1]
    i = max(i for i, ch in enumerate(row) if ch.isdigit())
    row = row[:i] + str((int(row[i]) + 1) % 10) + row[i + 1:]
    table.write_text("".join([lines[0], row, *lines[2:]]))


_data_change_case("the table was edited in place (same size)", _same_size_edit)
_data_change_case("the table lost its last row", lambda t, lines: t.write_text("".join(lines[:-1])))
_data_change_case("the table was deleted", lambda t, lines: t.unlink())


@case("resume with a hostile predictor.pkl")
def _resume_pkl(tmp: Path) -> Outcome:
    run = tmp / "run"
    args = ["search", "--data", str(CIFAR), "--out", str(run), "--predictor", TOY, "--budget", "16", "-q"]
    proc = launch("history:14:ENOSPC", *args)  # stopped two queries short
    if proc.returncode != 2:
        return Outcome(unexpected=f"setup: {proc.stderr.strip()}")
    (run / "predictor.pkl").write_bytes(pickle.dumps(Evil(tmp / "pwned")))
    out = judge(nasloop("search", "--resume", str(run), "--predictor", TOY, "-q"), reject=False)
    out.executed = (tmp / "pwned").exists()
    return out


@case("resume with a hostile predictor.pt (matching predictor.json)")
def _resume_pt(tmp: Path) -> Outcome:
    import torch

    run = tmp / "run"
    args = ["search", "--data", str(CIFAR), "--out", str(run), "--predictor", "mlp", "--max-fit-steps", "20",
            "--budget", "20", "-q"]
    proc = launch("history:19:ENOSPC", *args)  # stopped one query short, after two fits
    if proc.returncode != 2 or not (run / "predictor.json").exists():
        return Outcome(unexpected=f"setup: {proc.stderr.strip()}")
    torch.save({"weights": Evil(tmp / "pwned")}, run / "predictor.pt")
    meta = json.loads((run / "predictor.json").read_text())
    meta["sha256"] = hashlib.sha256((run / "predictor.pt").read_bytes()).hexdigest()
    (run / "predictor.json").write_text(json.dumps(meta))
    out = judge(nasloop("search", "--resume", str(run), "-q"), reject=False)
    out.internal = out.internal or "Traceback" in out.stderr
    out.executed = (tmp / "pwned").exists()
    return out


@case("resume a plug-in run without naming the plug-in")
def _resume_plugin(tmp: Path) -> Outcome:
    run = good_run(tmp, "run", "--predictor", TOY)
    (run / "summary.json").unlink()
    return rejected(tmp, "search", "--resume", str(run), "-q")


@case("two resumes of one run at once")
def _two_resumes(tmp: Path) -> Outcome:
    # A predictor run of one pick per round: slow enough (~70 ms a query) for the second resume to
    # arrive while the first one runs.
    slow = ["--strategy", "evolution", "--predictor", TOY, "--n-per-round", "1", "--n-local", "0"]
    ref = tmp / "ref"
    proc = nasloop("search", "--data", str(CIFAR), "--out", str(ref), "--budget", "60", "-q", *slow)
    if proc.returncode != 0:
        return Outcome(unexpected=f"reference: {proc.stderr.strip()}")
    run = tmp / "run"
    shutil.copytree(ref, run)
    lines = (run / "history.jsonl").read_text().splitlines(keepends=True)
    (run / "history.jsonl").write_text("".join(lines[:15]))
    (run / "rounds.jsonl").write_text("")
    (run / "summary.json").unlink()
    first = subprocess.Popen([sys.executable, "-m", "nasloop.cli", "search", "--resume", str(run), "--predictor",
                              TOY, "-q"], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.monotonic() + 60
    while len(history(run)) <= 16 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    overlap = first.poll() is None
    second = nasloop("search", "--resume", str(run), "--predictor", TOY, "-q")
    first_err = first.communicate(timeout=300)[1]
    out = judge(second, reject=True)
    if first.returncode != 0:
        out.unexpected = f"the first resume: exit {first.returncode}: {first_err.strip()}"
    out.mixed = check_history(run, ref, 60)
    if not overlap:
        out.unexpected = "the first resume ended before the second began (no overlap)"
    return out


@case("new run into a directory another process holds")
def _held_new(tmp: Path) -> Outcome:
    (tmp / "run").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from nasloop.locks import DirectoryLock; "
                               f"DirectoryLock({str(tmp / 'run')!r}).acquire(); print(1, flush=True); time.sleep(60)"],
                              cwd=ROOT, env=ENV, stdout=subprocess.PIPE, text=True)
    holder.stdout.readline()
    try:
        return rejected(tmp, "search", "--data", str(CIFAR), "--out", str(tmp / "run"), *FAST)
    finally:
        holder.kill()
        holder.wait()


def _kill_case(strategy: str, predictor: str, seed: int) -> None:
    def fn(tmp: Path) -> Outcome:
        budget = 30
        ref = tmp / "ref"
        proc = nasloop("search", "--data", str(CIFAR), "--strategy", strategy, "--predictor", predictor,
                       "--budget", str(budget), *KILL_FLAGS, "--out", str(ref), "-q")
        if proc.returncode != 0:
            return Outcome(unexpected=f"reference: {proc.stderr.strip()}")
        n_events = 6 * budget  # more than the run has: a late point means "not killed"
        rng = random.Random(seed)
        run = tmp / "run"
        for point in sorted(rng.sample(range(1, n_events // 2), 4)):
            kill = subprocess.run([sys.executable, "-c", KILLER, str(CIFAR), str(run), strategy, predictor,
                                   str(point), str(budget)], cwd=ROOT, env=ENV, capture_output=True, text=True,
                                  timeout=300)
            if kill.returncode not in (0, -signal.SIGKILL):
                return judge(kill, reject=False)
        named = ["--predictor", predictor] if ":" in predictor else []
        out = judge(nasloop("search", "--resume", str(run), *named, "-q"), reject=False)
        out.mixed = check_history(run, ref, budget)
        return out
    CASES.append(Case(f"SIGKILL at 4 random points then resume ({strategy} + {predictor})", "run", fn))


_kill_case("evolution", TOY, 1)
_kill_case("tpe", "none", 2)
_kill_case("random", "rf", 3)


# compare
for label, args in [
    ("unknown strategy", ["--strategy", "bogus"]),
    ("unknown predictor", ["--strategy", "random", "--predictor", "bogus"]),
    ("--preset bogus with rf", ["--strategy", "random", "--predictor", "rf", "--preset", "bogus"]),
    ("--jobs 0", ["--strategy", "random", "--jobs", "0"]),
    ("--jobs -1", ["--strategy", "random", "--jobs", "-1"]),
    ("--jobs two", ["--strategy", "random", "--jobs", "two"]),
    ("--seeds 0", ["--strategy", "random", "--seeds", "0"]),
    ("--budget 0", ["--strategy", "random", "--budget", "0"]),
    ("--n-pool abc", ["--strategy", "random", "--predictor", "rf", "--n-pool", "abc"]),
    ("--acquisition bogus", ["--strategy", "random", "--predictor", "rf", "--acquisition", "bogus"]),
    ("--metric bogus", ["--strategy", "random", "--metric", "bogus"]),
]:
    study_case(label, None, *args)

for label, text in [
    ("budgett = 30", 'strategies = ["random"]\nbudgett = 30\n'),
    ('jobs = "two"', 'strategies = ["random"]\njobs = "two"\n'),
    ("jobs = 0", 'strategies = ["random"]\njobs = 0\n'),
    ("data = 42", 'strategies = ["random"]\ndata = 42\n'),
    ('label ".."', '[[configs]]\nstrategy = "random"\nlabel = ".."\n'),
    ('label "."', '[[configs]]\nstrategy = "random"\nlabel = "."\n'),
    ('label "../x"', '[[configs]]\nstrategy = "random"\nlabel = "../x"\n'),
    ('label "/abs"', '[[configs]]\nstrategy = "random"\nlabel = "/abs"\n'),
    ("label 5", '[[configs]]\nstrategy = "random"\nlabel = 5\n'),
    ("configs unknown key", '[[configs]]\nstrategy = "random"\ncolour = "red"\n'),
    ("configs without strategy", '[[configs]]\npredictor = "rf"\n'),
    ("configs strategy_options unknown", '[[configs]]\nstrategy = "random"\n[configs.strategy_options]\nx = 1\n'),
    ("configs predictor_options unknown",
     '[[configs]]\nstrategy = "random"\npredictor = "rf"\n[configs.predictor_options]\nx = 1\n'),
    ("configs preset bogus", '[[configs]]\nstrategy = "random"\npredictor = "rf"\npreset = "bogus"\n'),
    ("configs search n_pool 0", '[[configs]]\nstrategy = "random"\npredictor = "rf"\nsearch = {n_pool = 0}\n'),
    ('strategies = "random"', 'strategies = "random"\n'),
    ("strategies = [1]", "strategies = [1]\n"),
    ("singular strategy", 'strategy = "random"\n'),
    ("seeds = [1, 1]", 'strategies = ["random"]\nseeds = [1, 1]\n'),
    ("seeds = [-1]", 'strategies = ["random"]\nseeds = [-1]\n'),
    ('seeds = "x"', 'strategies = ["random"]\nseeds = "x"\n'),
    ("n_pool = [1]", 'strategies = ["random"]\npredictors = ["rf"]\nn_pool = [1]\n'),
    ("search = 3", 'strategies = ["random"]\nsearch = 3\n'),
    ("not TOML", "strategies = [\n"),
]:
    study_case(f"toml {label}", text)


@case("compare --out a regular file")
def _study_file(tmp: Path) -> Outcome:
    write(tmp / "file", "x")
    return rejected(tmp, "compare", "--data", str(CIFAR), "--strategy", "random", "--seeds", "1", "--budget", "12",
                    "--out", str(tmp / "file"))


@case("compare --out a directory that is not a study")
def _study_foreign(tmp: Path) -> Outcome:
    write(tmp / "d" / "notes.txt", "mine")
    return rejected(tmp, "compare", "--data", str(CIFAR), "--strategy", "random", "--seeds", "1", "--budget", "12",
                    "--out", str(tmp / "d"))


@case("compare rerun with a smaller budget")
def _study_shrink(tmp: Path) -> Outcome:
    args = ["compare", "--data", str(CIFAR), "--strategy", "random", "--seeds", "1", "--out", str(tmp / "s"), "--json"]
    first = nasloop(*args, "--budget", "12")
    if first.returncode != 0:
        return Outcome(unexpected=f"setup: {first.stderr.strip()}")
    return rejected(tmp, *args, "--budget", "10")


@case("compare of a study another compare is running")
def _study_busy(tmp: Path) -> Outcome:
    args = ["compare", "--data", str(CIFAR), "--strategy", "random", "--predictor", TOY, "--seeds", "2",
            "--budget", "60", "--n-per-round", "1", "--n-local", "0", "--jobs", "1", "--out", str(tmp / "s"), "--json"]
    first = subprocess.Popen([sys.executable, "-m", "nasloop.cli", *args], cwd=ROOT, env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list((tmp / "s").rglob("history.jsonl")) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    second = nasloop(*args)
    first_err = first.communicate(timeout=300)[1]
    out = judge(second, reject=True)
    if first.returncode != 0:
        out.unexpected = f"the first compare: exit {first.returncode}: {first_err.strip()}"
    for path in (tmp / "s").rglob("history.jsonl"):
        out.mixed = out.mixed or check_history(path.parent, None, 60)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        out |= {int(x) for x in (task / "children").read_text().split()}
    return out


@case("compare parent SIGKILLed, then rerun")
def _study_killed(tmp: Path) -> Outcome:
    out_dir = tmp / "s"
    args = [sys.executable, "-m", "nasloop.cli", "compare", "--data", str(CIFAR), "--strategy", "random",
            "--strategy", "evolution", "--predictor", TOY, "--seeds", "2", "--budget", "40", "--n-per-round", "1",
            "--n-local", "0", "--jobs", "2", "--out", str(out_dir), "--json"]
    parent = subprocess.Popen(args, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not any(len(p.read_text().splitlines()) >= 5 for p in out_dir.rglob("history.jsonl")):
        if parent.poll() is not None or time.monotonic() > deadline:
            return Outcome(unexpected="the study ended before it could be killed")
        time.sleep(0.05)
    workers = {w for child in _children(parent.pid) for w in {child} | _children(child)}
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    time.sleep(3)
    out = Outcome()
    survivors = [w for w in workers if _alive(w)]
    if survivors:
        out.mixed = f"{len(survivors)} workers outlived the killed study"
        for w in survivors:
            os.kill(w, signal.SIGKILL)
    again = subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    result = judge(again, reject=False)
    result.mixed = out.mixed
    for path in sorted(out_dir.rglob("history.jsonl")):
        result.mixed = result.mixed or check_history(path.parent, None, 40)
    return result


@case("plot a missing path")
def _plot_missing(tmp: Path) -> Outcome:
    return rejected(tmp, "plot", str(tmp / "nowhere"))


@case("data info of a missing file", "data")
def _info_missing(tmp: Path) -> Outcome:
    return rejected(tmp, "data", "info", "--data", str(tmp / "none.csv"))


# --- data files (CSV parsing, official files, other spaces) -------------------------------------------
def _with(lines: list[str], header: str | None = None, rows: list[str] | None = None) -> str:
    return (header if header is not None else lines[0]) + "".join(rows if rows is not None else lines[1:])


csv_case("empty file", lambda lines: "")
csv_case("header only", lambda lines: lines[0])
csv_case("no arch column", lambda lines: _with(lines, "index,cell,val_acc,test_acc,val_acc_12ep,test_acc_12ep,"
                                                      "params_mb\n"))
csv_case("a bad architecture string", lambda lines: _with(lines, rows=["0,|bogus~0|,1,2,3,4,5\n", *lines[2:]]))
csv_case("a non-numeric metric", lambda lines: _with(lines, rows=[lines[1].replace(",", ",x", 2).replace(",x", ",", 1),
                                                                  *lines[2:]]))
csv_case("a short row", lambda lines: _with(lines, rows=[lines[1].rsplit(",", 2)[0] + "\n", *lines[2:]]))
csv_case("binary garbage", lambda lines: "\x00\xff\x01garbage\n")
csv_case("duplicated index values", lambda lines: _with(lines, rows=[lines[1], "0" + lines[2][lines[2].index(","):],
                                                                     *lines[3:]]))
csv_case("index 12.5", lambda lines: _with(lines, rows=["12.5" + lines[1][lines[1].index(","):], *lines[2:]]))
csv_case("index abc", lambda lines: _with(lines, rows=["abc" + lines[1][lines[1].index(","):], *lines[2:]]))
csv_case("a duplicated column name", lambda lines: _with(lines, lines[0].replace("test_acc,", "val_acc,", 1)))
csv_case("inf values", lambda lines: _with(lines, rows=[lines[1].replace(lines[1].split(",")[2], "inf", 1),
                                                        *lines[2:]]))
csv_case("-inf values", lambda lines: _with(lines, rows=[lines[1].replace(lines[1].split(",")[2], "-inf", 1),
                                                         *lines[2:]]))
csv_case("a 200-row subset", lambda lines: _with(lines, rows=lines[1:201]))
csv_case("a repeated architecture", lambda lines: _with(lines, rows=[lines[1], "99999" + lines[1][lines[1].index(","):],
                                                                     *lines[2:]]))


METRICS = ["val_acc", "test_acc", "val_acc_12ep", "test_acc_12ep", "params_mb"]


def _header_case(name: str, make: Callable[[list[str]], str]) -> None:
    """A table whose header needs cleaning: it must load with exactly the table's metric names."""
    def fn(tmp: Path) -> Outcome:
        path = write(tmp / "table.csv", make(table_lines()))
        proc = nasloop("data", "info", "--data", str(path), "--json")
        out = judge(proc, reject=False)
        if proc.returncode == 0:
            metrics = json.loads(proc.stdout)["metrics"]
            if metrics != METRICS:
                out.unexpected = f"metrics {metrics!r}, expected {METRICS!r}"
        return out
    CASES.append(Case(f"data csv {name}", "data", fn))


_header_case("byte-order mark in the header", lambda lines: "\ufeff" + "".join(lines))
_header_case('header " val_acc"', lambda lines: lines[0].replace(",val_acc", ", val_acc", 1) + "".join(lines[1:]))
_header_case("spaces around every header name", lambda lines: " , ".join(lines[0].rstrip("\n").split(",")) + "\n"
             + "".join(lines[1:]))


def _wide_case(n_columns: int, limit_s: float) -> None:
    def fn(tmp: Path) -> Outcome:
        header = "index,arch," + ",".join(f"m{i}" for i in range(n_columns)) + "\n"
        rows = [f"{i},{line.split(',')[1]}," + ",".join("1.0" for _ in range(n_columns)) + "\n"
                for i, line in enumerate(table_lines()[1:4])]
        path = write(tmp / "wide.csv", header + "".join(rows))
        t0 = time.perf_counter()
        try:
            proc = nasloop("data", "info", "--data", str(path), timeout=limit_s + 30)
        except subprocess.TimeoutExpired:
            return Outcome(unexpected=f"did not finish in {limit_s + 30:.0f} s")
        seconds = time.perf_counter() - t0
        out = judge(proc, reject=proc.returncode != 0)
        if seconds > limit_s:
            out.unexpected = f"{seconds:.1f} s for {n_columns:,} columns (limit {limit_s:.0f} s)"
        return out
    CASES.append(Case(f"data csv {n_columns:,}-column header", "data", fn))


for n, limit in ((10_000, 8.0), (20_000, 8.0), (40_000, 10.0), (150_000, 20.0)):
    _wide_case(n, limit)


def _pth_case(via_env: bool) -> None:
    def fn(tmp: Path) -> Outcome:
        path = tmp / "NAS-Bench-201-v1_1-096897.pth"
        path.write_bytes(pickle.dumps({"arch2infos": Evil(tmp / "pwned")}))
        env = {**ENV, "NASLOOP_NB201": str(path)} if via_env else None
        data = [] if via_env else ["--data", str(path)]
        out = rejected(tmp, "search", *data, "--out", str(tmp / "run"), *FAST, env=env)
        out.executed = (tmp / "pwned").exists()
        return out
    CASES.append(Case(f"data crafted .pth via {'NASLOOP_NB201' if via_env else '--data'}", "data", fn))


_pth_case(False)
_pth_case(True)


@case("data nb101 garbage file", "data")
def _nb101(tmp: Path) -> Outcome:
    path = write(tmp / "nb101.tfrecord", b"\x00garbage" * 10)
    return rejected(tmp, "search", "--space", "nb101", "--data", str(path), "--out", str(tmp / "run"), *FAST)


@case("data darts garbage file", "data")
def _darts(tmp: Path) -> Outcome:
    path = write(tmp / "darts.csv", "genotype,acc\nnot-a-genotype,1\n")
    return rejected(tmp, "search", "--space", "darts", "--data", str(path), "--out", str(tmp / "run"), *FAST)


# --- running and reporting --------------------------------------------------------------------------------
def run_case(c: Case) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="nasloop-campaign-"))
    t0 = time.perf_counter()
    try:
        out = c.fn(tmp)
    except Exception as exc:  # the campaign's own setup failed: report it as an unexpected outcome
        out = Outcome(unexpected=f"campaign error: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"name": c.name, "area": c.area, "failed": out.failed, "rc": out.rc, "stderr": out.stderr[:300],
            "internal": out.internal, "not_one_line": out.not_one_line, "leftovers": out.leftovers,
            "mixed": out.mixed, "executed": out.executed, "unexpected": out.unexpected,
            "seconds": round(time.perf_counter() - t0, 2)}


COUNTS = {"internal_errors": "internal", "not_one_line_exit_2": "not_one_line", "leftovers": "leftovers",
          "corrupted_or_mixed_runs": "mixed", "code_executions": "executed", "unexpected_outcomes": "unexpected"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="hardening_campaign.json", help="JSON summary to write.")
    parser.add_argument("--jobs", type=int, default=2, help="Cases run at once.")
    parser.add_argument("--only", default=None, help="Run only cases whose name contains this.")
    parser.add_argument("--list", action="store_true", help="List the cases and exit.")
    args = parser.parse_args()
    cases = [c for c in CASES if args.only is None or args.only in c.name]
    if args.list:
        for c in cases:
            print(f"{c.area:4}  {c.name}")
        return 0
    if not CIFAR.is_file():
        print(f"the campaign needs {CIFAR}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(run_case, cases))
    counts = {name: sum(bool(r[key]) for r in results) for name, key in COUNTS.items()}
    failing = {area: [r["name"] for r in results if r["failed"] and r["area"] == area] for area in ("run", "data")}
    summary = {"cases": len(results), "by_area": {a: sum(r["area"] == a for r in results) for a in ("run", "data")},
               "counts": counts, "failing": failing, "wall_s": round(time.perf_counter() - t0, 1),
               "results": results}
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    for r in results:
        if r["failed"]:
            what = [k for k in ("internal", "not_one_line", "leftovers", "mixed", "executed", "unexpected") if r[k]]
            print(f"FAIL [{r['area']}] {r['name']}: {', '.join(what)} (exit {r['rc']}) {r['unexpected'] or r['mixed']}"
                  f" {r['stderr'][:160]}")
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}, indent=2))
    return 1 if any(counts.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
