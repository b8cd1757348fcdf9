"""Run a study: a grid of configurations × seeds, on Dask worker processes (or in process).

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
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasloop.errors import ConfigError
from nasloop.locks import LOCK_FILE, DirectoryLock
from nasloop.rundir import atomic_write_json, claim_directory
from nasloop.search_config import SearchConfig

if TYPE_CHECKING:
    from nasloop.runspec import RunSpec


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


# The Execution options a study gives each of its runs (simulated parallel time; the study itself
# spreads the runs over workers).
RUN_EXECUTION_KEYS = ("workers", "simulate", "cost", "cost_scale")


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
    # Per-run execution (simulated parallel time: workers, simulate, cost, cost_scale); None: serial.
    execution: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "objectives", tuple(self.objectives or ()))
        object.__setattr__(self, "constraints", tuple(self.constraints or ()))
        if self.execution is not None:
            from nasloop.executors import Execution

            if set(self.execution) - set(RUN_EXECUTION_KEYS):
                raise ConfigError(f"a study's runs take only {sorted(RUN_EXECUTION_KEYS)}, "
                                  f"got {sorted(self.execution)}")
            execution = Execution(**self.execution)
            if execution.workers != 1 and not execution.simulate:
                raise ConfigError("a study runs each run in one worker: --workers N needs --simulate in compare "
                                  "(use --jobs for how many runs go at once)")
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

    def run_spec(self, config: StudyConfig, seed: int) -> RunSpec:
        """The run of ``config`` with ``seed`` in this study."""
        from nasloop.executors import Execution
        from nasloop.runspec import RunSpec

        return RunSpec(
            space=self.space, data=self.data, dataset=self.dataset, metric=self.metric, report=self.report,
            objectives=self.objectives or None, constraints=self.constraints, strategy=config.strategy,
            strategy_options=config.strategy_options, predictor=config.predictor, preset=config.preset,
            predictor_options=config.predictor_options, budget=self.budget, seed=seed,
            search=SearchConfig.from_json(config.search), execution=Execution(**(self.execution or {})),
        )


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
    study = StudySpec.from_json(spec_json)
    config = StudyConfig(**{k: v for k, v in job_config.items() if k != "folder"})
    resume = (path / "config.json").is_file()
    return run_search(study.run_spec(config, seed), out=path, resume=resume).summary


def _worker_init() -> None:
    # Parallelism comes from processes; one thread each avoids oversubscribing the cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is an install requirement
        pass


def run_job_on_worker(spec_json: dict[str, Any], job_config: dict[str, Any], seed: int, run_dir: str) -> dict[str, Any]:
    """:func:`run_job` in a Dask worker process (one torch thread)."""
    _worker_init()
    return run_job(spec_json, job_config, seed, run_dir)


class StudyInterrupted(KeyboardInterrupt):
    """SIGTERM reached the study's main process (handled like Ctrl-C: exit 130, runs resumable)."""


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM ends the study like Ctrl-C: the ``with`` blocks close, so the LocalCluster stops its
    workers. (A SIGKILLed main process cannot clean up; Dask's worker processes end by themselves
    when the process holding their nannies dies.) Killing a run loses nothing: it resumes."""
    def on_sigterm(signum: int, _frame: Any) -> None:
        raise StudyInterrupted(f"signal {signum}")

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if main_thread else None
    try:
        yield
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def study_client(n_jobs: int, *, scheduler: str | None = None, scheduler_file: str | None = None) -> Iterator[Any]:
    """A Dask client for a study's runs: an owned LocalCluster of ``n_jobs`` single-threaded worker
    processes (closed on exit), or a running cluster (never shut down)."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler is not None or scheduler_file is not None:
        from nasloop.executors import Execution, connect_client

        with connect_client(Execution(scheduler=scheduler, scheduler_file=scheduler_file)) as client:
            yield client
        return
    with LocalCluster(n_workers=n_jobs, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def run_study(
    spec: StudySpec,
    study_dir: str | Path,
    *,
    n_jobs: int = 1,
    callback: Callable[[Job, dict[str, Any]], None] | None = None,
    scheduler: str | None = None,
    scheduler_file: str | None = None,
) -> list[dict[str, Any]]:
    """Run every job of ``spec`` under ``study_dir``: in process (``n_jobs=1``), on an embedded Dask
    LocalCluster of ``n_jobs`` worker processes, or on a running Dask cluster (``scheduler`` /
    ``scheduler_file``; the study directory must then be on a file system every worker sees).

    Returns the run summaries in job order. A job that fails stops the study with its error;
    finished runs stay on disk and a rerun continues from them.
    """
    study_dir = Path(study_dir)
    with prepare(spec, study_dir):
        return run_jobs(spec, study_dir, n_jobs=n_jobs, callback=callback, scheduler=scheduler,
                        scheduler_file=scheduler_file)


def run_jobs(spec: StudySpec, study_dir: Path, *, n_jobs: int,
             callback: Callable[[Job, dict[str, Any]], None] | None, scheduler: str | None = None,
             scheduler_file: str | None = None) -> list[dict[str, Any]]:
    """The jobs of a study whose directory :func:`prepare` made and locked (see :func:`run_study`)."""
    jobs = jobs_of(spec, study_dir)
    spec_json = spec.to_json()
    results: dict[int, dict[str, Any]] = {}
    if n_jobs <= 1 and scheduler is None and scheduler_file is None:
        _worker_init()
        for i, job in enumerate(jobs):
            results[i] = run_job(spec_json, {**asdict(job.config)}, job.seed, str(job.run_dir))
            if callback:
                callback(job, results[i])
        return [results[i] for i in range(len(jobs))]
    from distributed import as_completed

    tag = f"{os.getpid()}-{time.time_ns():x}"
    with _sigterm_interrupts(), study_client(n_jobs, scheduler=scheduler, scheduler_file=scheduler_file) as client:
        futures = {client.submit(run_job_on_worker, spec_json, asdict(job.config), job.seed, str(job.run_dir),
                                 pure=False, key=f"nasloop-run-{tag}-{i}"): i for i, job in enumerate(jobs)}
        for future in as_completed(list(futures)):
            i = futures[future]
            try:
                results[i] = future.result()
            except BaseException:
                for other in futures:
                    other.cancel()
                raise
            if callback:
                callback(jobs[i], results[i])
    return [results[i] for i in range(len(jobs))]


def grid(strategies: Sequence[str], predictors: Sequence[str], **common: Any) -> tuple[StudyConfig, ...]:
    """The configurations of a strategies × predictors grid sharing the same options."""
    search = common.pop("search", {})
    return tuple(
        StudyConfig(strategy=s, predictor=p, search=search if p != "none" else {}, **common)
        for s in strategies for p in predictors
    )
