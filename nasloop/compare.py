"""Run a study: a grid of configurations × seeds, in parallel worker processes.

Each run is a normal run directory ``<study>/<config-folder>/seed-<k>/``, so an interrupted study
resumes where it stopped: finished runs (``summary.json`` present) are kept, started ones continue
with ``resume``, missing ones start. ``study.json`` (written first) records the grid. A study may
grow: rerun with a larger budget (finished runs are extended) or more seeds (they start).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from nasloop.errors import ConfigError
from nasloop.locks import LOCK_FILE, DirectoryLock
from nasloop.rundir import atomic_write_json, claim_directory
from nasloop.search_config import SearchConfig


@dataclass(frozen=True)
class StudyConfig:
    """One configuration of a study: a strategy, a predictor and their loop options."""

    strategy: str
    predictor: str = "none"
    label: str = ""
    preset: str = "fast"
    search: dict[str, Any] = field(default_factory=dict)
    strategy_options: dict[str, Any] = field(default_factory=dict)
    predictor_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("strategy", "predictor", "label", "preset"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"a configuration's {name} must be a string, got {getattr(self, name)!r}")
        for name in ("search", "strategy_options", "predictor_options"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"a configuration's {name} must be a table, got {getattr(self, name)!r}")
        if self.label:
            check_label(self.label)
        else:
            name = self.strategy if self.predictor == "none" else f"{self.strategy} + {self.predictor}"
            object.__setattr__(self, "label", name)
        SearchConfig.from_json(self.search)  # validate the loop options now, not in a worker

    @property
    def folder(self) -> str:
        # Only letters, digits, "_", "-" and inner dots; never "." or ".." (the runs stay inside the study).
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.label).lower()
        return re.sub(r"\.{2,}", ".", slug).strip("-.") or "config"


# A label names a folder of the study: letters, digits, spaces and a few separators, with a letter or
# digit first (so "." and ".." cannot escape the study directory).
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.,:+=()-]{0,79}")


def check_label(label: str) -> str:
    if not LABEL.fullmatch(label):
        raise ConfigError(f"configuration label {label!r} is not allowed: use 1-80 letters, digits, spaces or "
                          "_ . , : + = ( ) -, starting with a letter or digit")
    return label


@dataclass(frozen=True)
class StudySpec:
    """A whole study: where the data is, what to search, the configurations and the seeds."""

    configs: tuple[StudyConfig, ...]
    seeds: tuple[int, ...]
    budget: int
    space: str = "nb201"
    data: str | list[str] | None = None
    dataset: str | None = None
    metric: str | None = None
    report: str | None = None
    objectives: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "objectives", tuple(self.objectives or ()))
        object.__setattr__(self, "constraints", tuple(self.constraints or ()))
        if not self.configs:
            raise ConfigError("a study needs at least one configuration (--strategy / --predictor)")
        if not self.seeds:
            raise ConfigError("a study needs at least one seed (--seeds N)")
        if isinstance(self.budget, bool) or not isinstance(self.budget, int) or self.budget < 1:
            raise ConfigError(f"budget must be a positive number of queries, got {self.budget!r}")
        folders = [c.folder for c in self.configs]
        if len(set(folders)) != len(folders):
            raise ConfigError(f"two configurations share a name: {folders}; give each a distinct label")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["configs"] = [{**asdict(c), "folder": c.folder} for c in self.configs]
        out["seeds"] = list(self.seeds)
        for key in ("objectives", "constraints"):  # absent unless used: older study files stay comparable
            out[key] = list(out[key])
            if not out[key]:
                del out[key]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StudySpec:
        configs = tuple(StudyConfig(**{k: v for k, v in c.items() if k != "folder"}) for c in data["configs"])
        return cls(**{**data, "configs": configs, "seeds": tuple(data["seeds"])})


@dataclass(frozen=True)
class Job:
    config: StudyConfig
    seed: int
    run_dir: Path


def jobs_of(spec: StudySpec, study_dir: Path) -> list[Job]:
    """Every (configuration, seed) run, seeds outermost so early results cover all configurations."""
    return [Job(c, s, study_dir / c.folder / f"seed-{s}") for s in spec.seeds for c in spec.configs]


def prepare(spec: StudySpec, study_dir: str | Path) -> DirectoryLock:
    """Create and lock the study directory with ``study.json``, or lock and check an existing one.

    An existing study may grow: a larger budget (its runs go on to it) and more seeds (they start).
    Everything else must be as before. Returns the study's lock (held until the caller releases it):
    a second ``compare`` of the same study is refused while this one runs.
    """
    study_dir = Path(study_dir)
    _check_study_place(study_dir)
    return claim_directory(study_dir, "study", lambda: _write_or_check_spec(spec, study_dir))


def _check_study_place(study_dir: Path) -> None:
    """A study directory is new, empty, or a study (``study.json``); nothing else is touched."""
    try:
        if study_dir.exists() and not study_dir.is_dir():
            raise ConfigError(f"{str(study_dir)!r} is a file, not a study directory; choose another --out")
        foreign = (study_dir.is_dir() and not (study_dir / "study.json").is_file()
                   and any(p.name != LOCK_FILE for p in study_dir.iterdir()))
    except OSError as exc:
        raise ConfigError(f"cannot use {str(study_dir)!r} as a study directory: {exc.strerror or exc}") from None
    if foreign:
        raise ConfigError(f"{str(study_dir)!r} exists and is not a nasloop study; choose another --out")


def _write_or_check_spec(spec: StudySpec, study_dir: Path) -> None:
    spec_file = study_dir / "study.json"
    wanted = json.loads(json.dumps(spec.to_json()))
    if spec_file.is_file():
        try:
            existing = json.loads(spec_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"{spec_file} is damaged (not JSON); choose another --out") from None
        if existing != wanted:
            _check_growth(study_dir, existing, wanted)
            atomic_write_json(spec_file, wanted)
        return
    _check_study_place(study_dir)  # another process may have used it between the first check and the lock
    atomic_write_json(spec_file, wanted)


def _check_growth(study_dir: Path, existing: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Refuse any change to a study but a larger budget and added seeds."""
    if not isinstance(existing, dict) or not isinstance(existing.get("seeds"), list) \
            or not isinstance(existing.get("budget"), int):
        raise ConfigError(f"{study_dir}/study.json is not a nasloop study file; choose another --out")
    changed = sorted(k for k in set(existing) | set(wanted)
                     if k not in ("budget", "seeds") and existing.get(k) != wanted.get(k))
    dropped = sorted(set(existing["seeds"]) - set(wanted["seeds"]))
    if changed or dropped or wanted["budget"] < existing["budget"]:
        what = ", ".join(changed + (["seeds " + ", ".join(map(str, dropped)) + " left out"] if dropped else [])
                         + ([f"budget {wanted['budget']} below {existing['budget']}"]
                            if wanted["budget"] < existing["budget"] else []))
        raise ConfigError(
            f"{str(study_dir)!r} holds a different study ({what}); use another --out, or repeat the original "
            "options to resume it (a study may only grow: a larger --budget, more --seeds)"
        )


def run_job(spec_json: dict[str, Any], job_config: dict[str, Any], seed: int, run_dir: str) -> dict[str, Any]:
    """Worker: run (or resume, or skip if finished) one run directory; returns its summary."""
    from nasloop.loop import run_search

    path = Path(run_dir)
    if (path / "summary.json").is_file():
        if json.loads((path / "config.json").read_text()).get("budget") == spec_json["budget"]:
            return json.loads((path / "summary.json").read_text())
        # A study that grew a larger budget: the finished run goes on to it (resume extends it).
    config = StudyConfig(**{k: v for k, v in job_config.items() if k != "folder"})
    resume = (path / "config.json").is_file()
    result = run_search(
        space=spec_json["space"], strategy=config.strategy, budget=spec_json["budget"],
        predictor=config.predictor, data=spec_json["data"], dataset=spec_json["dataset"],
        metric=spec_json["metric"], report=spec_json["report"], preset=config.preset, seed=seed,
        config=SearchConfig.from_json(config.search), strategy_options=config.strategy_options,
        predictor_options=config.predictor_options, out=path, resume=resume,
        objectives=spec_json.get("objectives") or None, constraints=spec_json.get("constraints") or None,
    )
    return result.summary


def _worker_init(parent_pid: int | None = None) -> None:
    # Parallelism comes from processes; one thread each avoids oversubscribing the cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if parent_pid is not None:
        die_with_parent(parent_pid)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is an install requirement
        pass


def die_with_parent(parent_pid: int) -> None:
    """End this worker process when the study's main process ends, however it ends.

    A SIGKILLed main process cannot stop its workers; left running, they went on writing runs that a
    rerun of the study wrote again. On Linux the kernel sends SIGKILL to this process when its parent
    dies (``PR_SET_PDEATHSIG``); elsewhere a daemon thread polls the parent pid twice a second. Dying
    mid-run loses nothing: the run's lock dies with the process and its history resumes.
    """
    if _set_parent_death_signal():
        if os.getppid() != parent_pid:  # the parent died before the signal was armed
            os._exit(1)
        return

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="nasloop-parent-watch", daemon=True).start()


def _set_parent_death_signal() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        return libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class StudyInterrupted(KeyboardInterrupt):
    """SIGTERM reached the study's main process (handled like Ctrl-C: exit 130, runs resumable)."""


@contextlib.contextmanager
def _stop_workers_on_exit(pool: ProcessPoolExecutor) -> Iterator[None]:
    """Stop the worker processes when the study ends by Ctrl-C or SIGTERM.

    Without this a ``kill`` of the main process leaves its workers running their jobs to the end.
    Killing them loses nothing: every run directory resumes from its ``history.jsonl``.
    """
    def on_sigterm(signum: int, _frame: Any) -> None:
        raise StudyInterrupted(f"signal {signum}")

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if main_thread else None
    try:
        yield
    except BaseException:
        for process in list(getattr(pool, "_processes", {}).values()):  # no public API for this
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def run_study(
    spec: StudySpec,
    study_dir: str | Path,
    *,
    n_jobs: int = 1,
    callback: Callable[[Job, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every job of ``spec`` under ``study_dir`` with ``n_jobs`` worker processes.

    Returns the run summaries in job order. A job that fails stops the study with its error after
    the running jobs finish; finished runs stay on disk and a rerun continues from them.
    """
    study_dir = Path(study_dir)
    with prepare(spec, study_dir):
        return run_jobs(spec, study_dir, n_jobs=n_jobs, callback=callback)


def run_jobs(spec: StudySpec, study_dir: Path, *, n_jobs: int,
              callback: Callable[[Job, dict[str, Any]], None] | None) -> list[dict[str, Any]]:
    """The jobs of a study whose directory :func:`prepare` made and locked (see :func:`run_study`)."""
    jobs = jobs_of(spec, study_dir)
    spec_json = spec.to_json()
    results: dict[int, dict[str, Any]] = {}
    if n_jobs <= 1:
        _worker_init()
        for i, job in enumerate(jobs):
            results[i] = run_job(spec_json, {**asdict(job.config)}, job.seed, str(job.run_dir))
            if callback:
                callback(job, results[i])
        return [results[i] for i in range(len(jobs))]
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=get_context("spawn"), initializer=_worker_init,
                             initargs=(os.getpid(),)) as pool, \
            _stop_workers_on_exit(pool):
        pending = {pool.submit(run_job, spec_json, asdict(job.config), job.seed, str(job.run_dir)): i
                   for i, job in enumerate(jobs)}
        error: BaseException | None = None
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                i = pending.pop(fut)
                try:
                    results[i] = fut.result()
                except BaseException as exc:  # keep the first error; let running jobs finish
                    if error is None:
                        error = exc
                        for other in pending:
                            other.cancel()
                    continue
                if callback:
                    callback(jobs[i], results[i])
        if error is not None:
            raise error
    return [results[i] for i in range(len(jobs))]


def grid(strategies: Sequence[str], predictors: Sequence[str], **common: Any) -> tuple[StudyConfig, ...]:
    """The configurations of a strategies × predictors grid sharing the same options."""
    search = common.pop("search", {})
    return tuple(
        StudyConfig(strategy=s, predictor=p, search=search if p != "none" else {}, **common)
        for s in strategies for p in predictors
    )
