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
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from nasloop.errors import ConfigError
from nasloop.rundir import atomic_write_json
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
        if not self.label:
            name = self.strategy if self.predictor == "none" else f"{self.strategy} + {self.predictor}"
            object.__setattr__(self, "label", name)
        SearchConfig.from_json(self.search)  # validate the loop options now, not in a worker

    @property
    def folder(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", self.label).strip("-").lower() or "config"


@dataclass(frozen=True)
class StudySpec:
    """A whole study: where the data is, what to search, the configurations and the seeds."""

    configs: tuple[StudyConfig, ...]
    seeds: tuple[int, ...]
    budget: int
    space: str = "nb201"
    data: str | None = None
    dataset: str | None = None
    metric: str | None = None
    report: str | None = None

    def __post_init__(self) -> None:
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


def prepare(spec: StudySpec, study_dir: str | Path) -> Path:
    """Create the study directory with ``study.json``, or check it matches an existing one.

    An existing study may grow: a larger budget (its runs go on to it) and more seeds (they start).
    Everything else must be as before.
    """
    study_dir = Path(study_dir)
    spec_file = study_dir / "study.json"
    if spec_file.is_file():
        existing = json.loads(spec_file.read_text())
        wanted = json.loads(json.dumps(spec.to_json()))
        if existing != wanted:
            _check_growth(study_dir, existing, wanted)
            atomic_write_json(spec_file, wanted)
        return study_dir
    if study_dir.exists() and any(study_dir.iterdir()):
        raise ConfigError(f"{str(study_dir)!r} exists and is not a nasloop study; choose another --out")
    study_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(spec_file, spec.to_json())
    return study_dir


def _check_growth(study_dir: Path, existing: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Refuse any change to a study but a larger budget and added seeds."""
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
    )
    return result.summary


def _worker_init() -> None:
    # Parallelism comes from processes; one thread each avoids oversubscribing the cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is an install requirement
        pass


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
    study_dir = prepare(spec, study_dir)
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
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=get_context("spawn"), initializer=_worker_init) as pool, \
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
