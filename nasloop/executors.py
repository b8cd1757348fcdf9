"""Where a run's evaluations happen: in process (serial), simulated on a table, or on Dask.

* ``workers=1`` and no scheduler: the serial loop of :mod:`nasloop.engine`, in process.
* ``simulate=True``: :class:`nasloop.simulate.SimulatedExecutor`, ``workers`` virtual workers.
* ``workers=N > 1``: an embedded ``distributed.LocalCluster`` (processes, one thread each), started
  and shut down by nasloop.
* ``scheduler`` / ``scheduler_file``: a running Dask cluster; nasloop connects and never shuts it down.

Evaluations are shipped as a :class:`BenchmarkRecipe` plus the architecture: each worker process
builds the benchmark once (a table or a dataset) and keeps it for every later evaluation.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasloop.errors import ConfigError
from nasloop.option_types import BOOLEAN, INTEGER, NUMBER, TEXT, toml

# How long a client waits for a running scheduler before the run is refused.
CONNECT_TIMEOUT = "30s"


@dataclass(frozen=True)
class Execution:
    """How a run evaluates (``--workers``, ``--simulate``, ``--scheduler``, ``--cost`` ...).

    Attributes:
        workers: evaluations in flight (virtual workers with ``simulate``, LocalCluster processes
            otherwise); ``None``: 1, or with a scheduler one per thread of the cluster.
        simulate: discrete-event simulation on the table: each query takes its cost.
        scheduler / scheduler_file: a running Dask scheduler (address, or its JSON file).
        cost / cost_scale: the table column read as a query's cost, and its factor.
        max_retries: resubmissions of an evaluation whose worker died.
        eval_timeout: seconds after which a running evaluation is recorded as failed.
        gpu: each evaluation asks its Dask worker for one ``GPU`` resource.
    """

    workers: int | None = field(default=None, metadata=toml(INTEGER))
    simulate: bool = field(default=False, metadata=toml(BOOLEAN))
    scheduler: str | None = field(default=None, metadata=toml(TEXT))
    scheduler_file: str | None = field(default=None, metadata=toml(TEXT))
    cost: str | None = field(default=None, metadata=toml(TEXT))
    cost_scale: float = field(default=1.0, metadata=toml(NUMBER))
    max_retries: int = field(default=2, metadata=toml(INTEGER))
    eval_timeout: float | None = field(default=None, metadata=toml(NUMBER))
    gpu: bool = field(default=False, metadata=toml(BOOLEAN))

    def __post_init__(self) -> None:
        from nasloop.simulate import check_scale

        w = self.workers
        if w is not None and (isinstance(w, bool) or not isinstance(w, int) or w < 1):
            raise ConfigError(f"workers must be a positive integer, got {w!r}")
        if w is None and not self.uses_scheduler:  # no cluster to count threads on: the serial loop
            object.__setattr__(self, "workers", 1)
        if self.scheduler is not None and self.scheduler_file is not None:
            raise ConfigError("give --scheduler or --scheduler-file, not both")
        if self.simulate and self.uses_scheduler:
            raise ConfigError("--simulate runs virtual workers; it takes no scheduler")
        if self.cost is not None and not isinstance(self.cost, str):
            raise ConfigError(f"cost must be a column name, got {self.cost!r}")
        check_scale(self.cost_scale)
        r = self.max_retries
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            raise ConfigError(f"max_retries must be a non-negative integer, got {r!r}")
        t = self.eval_timeout
        if t is not None and (isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t < math.inf):
            raise ConfigError(f"eval_timeout must be a positive number of seconds, got {t!r}")

    def check_reachable(self) -> None:
        """Refuse, with one line, a running cluster that cannot be reached (nothing is kept open).

        A missing scheduler file is refused at once: Dask's client would wait for it indefinitely.
        """
        if not self.uses_scheduler:
            return
        if self.scheduler_file is not None and not Path(self.scheduler_file).expanduser().is_file():
            raise ConfigError(f"scheduler file {self.scheduler_file!r} does not exist: start the scheduler first "
                              f"(dask scheduler --scheduler-file {self.scheduler_file})")
        connect_client(self).close()

    @property
    def uses_scheduler(self) -> bool:
        return self.scheduler is not None or self.scheduler_file is not None

    @property
    def serial(self) -> bool:
        """Today's in-process loop: one worker, no simulation, no cluster."""
        return self.workers == 1 and not self.simulate and not self.uses_scheduler

    def to_json(self) -> dict[str, Any] | None:
        """What ``config.json`` keeps (``None`` for the serial default, as runs written before it).
        The cluster's address is not part of it: a resume may reach the cluster elsewhere."""
        if self == Execution():
            return None
        return {"workers": self.workers, "simulate": self.simulate, "cost": self.cost, "cost_scale": self.cost_scale,
                "max_retries": self.max_retries, "eval_timeout": self.eval_timeout, "gpu": self.gpu}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None, cluster: dict[str, Any] | None = None) -> Execution:
        return cls(**{**(data or {}), **(cluster or {})})


@dataclass(frozen=True)
class BenchmarkRecipe:
    """What a worker needs to build the run's benchmark itself (once per worker process).

    Attributes:
        space: registered space name or ``module:Class``.
        factory: ``module:function`` benchmark factory, or ``None`` for the space's registered one.
        data / dataset: the benchmark's source, as ``--data`` / ``--dataset``.
        cost / cost_scale: the cost column, as :class:`Execution`.
    """

    space: str
    factory: str | None
    data: Any
    dataset: str | None
    cost: str | None = None
    cost_scale: float = 1.0

    def key(self) -> tuple:
        data = tuple(self.data) if isinstance(self.data, list | tuple) else self.data
        return (self.space, self.factory, data, self.dataset, self.cost, self.cost_scale)

    def build(self) -> Any:
        from nasloop.loop import _call_benchmark_factory
        from nasloop.registry import make_benchmark
        from nasloop.simulate import CostColumn

        if self.factory is not None:
            bench = _call_benchmark_factory(self.factory, data=self.data, dataset=self.dataset)
        else:
            bench = make_benchmark(self.space, data=self.data, dataset=self.dataset)
        return CostColumn(bench, self.cost, self.cost_scale) if self.cost is not None else bench


# Benchmarks built in this (worker) process, by recipe: a table or dataset is loaded once per worker.
_BUILT: dict[tuple, Any] = {}


def evaluate_on_worker(recipe: BenchmarkRecipe | Any, arch: Any, timeout: float | None = None) -> dict[str, Any]:
    """Run on a Dask worker: build (or reuse) the benchmark and evaluate one architecture.

    Returns the metrics and cost, or the error's last line, with the worker's clock around it. With
    ``timeout``, an evaluation still running after that many seconds (the benchmark's construction
    not counted) is reported as a ``TimeoutError`` and marked ``hung``: its thread cannot be stopped,
    so the driver then ends this worker process.
    """
    from nasloop.simulate import last_line

    start = time.time()
    result: dict[str, Any]
    try:
        if isinstance(recipe, BenchmarkRecipe):
            bench = _BUILT.get(recipe.key())
            if bench is None:
                bench = _BUILT[recipe.key()] = recipe.build()
        else:  # a Benchmark object, scattered to the workers once
            bench = recipe
        evaluation = bench.query(arch) if timeout is None else _query_within(bench, arch, timeout)
        result = {"metrics": dict(evaluation.metrics), "cost": evaluation.cost}
    except _Hung:
        result = {"error": f"TimeoutError: no result after {timeout:g} s", "hung": True}
    except Exception as exc:  # recorded as a failed query; the search goes on
        result = {"error": last_line(exc)}
    return {**result, "start": start, "finish": time.time(), **_worker_identity()}


class _Hung(Exception):
    pass


def _query_within(bench: Any, arch: Any, timeout: float) -> Any:
    import threading

    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["evaluation"] = bench.query(arch)
        except BaseException as exc:  # handed to the task's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="nasloop-evaluation", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise _Hung
    if "error" in box:
        raise box["error"]
    return box["evaluation"]


def _exit_now() -> None:
    """Run on a worker's event loop (not its busy thread): end the process at once."""
    import os

    os._exit(1)


def _worker_identity() -> dict[str, str]:
    try:
        from distributed import get_worker

        worker = get_worker()
        return {"worker": str(worker.name), "address": str(worker.address)}
    except (ImportError, ValueError):
        import os

        return {"worker": f"pid-{os.getpid()}", "address": ""}


def connect_client(execution: Execution) -> Any:
    """A client of the running cluster ``execution`` names; one ``ConfigError`` line when unreachable."""
    from distributed import Client

    where = execution.scheduler or f"in {execution.scheduler_file}"
    try:
        if execution.scheduler is not None:
            return Client(execution.scheduler, timeout=CONNECT_TIMEOUT)
        return Client(scheduler_file=str(Path(execution.scheduler_file).expanduser()), timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"cannot reach the Dask scheduler {where}: {str(exc).splitlines()[0]}") from None


def parallel_engine(execution: Execution, parts: dict[str, Any], *, recipe: BenchmarkRecipe | None) -> Any:
    """The :class:`~nasloop.async_loop.AsyncSearchEngine` of a parallel run, with its executor."""
    from nasloop.async_loop import AsyncSearchEngine
    from nasloop.simulate import SimulatedExecutor

    if execution.simulate:
        return AsyncSearchEngine(executor=SimulatedExecutor(parts["benchmark"], execution.workers),
                                 max_retries=execution.max_retries, **parts)
    # a resumed run's times go on from its last result
    offset = max((float(r.extra.get("finish", r.time)) for r in parts["store"].journal), default=0.0)
    executor = DaskExecutor(execution, recipe if recipe is not None else parts["benchmark"], time_offset=offset)
    return AsyncSearchEngine(executor=executor, max_retries=execution.max_retries, **parts)


class DaskExecutor:
    """Evaluations on Dask: an embedded LocalCluster (owned, shut down on close) or a running cluster.

    A worker that dies mid-evaluation makes the task fail with ``KilledWorker`` (the LocalCluster's
    scheduler allows no silent re-run), reported as ``lost``: the driver submits it again up to
    ``max_retries`` times. On a cluster of your own, its scheduler's
    ``distributed.scheduler.allowed-failures`` re-runs first.

    Args:
        execution: workers, scheduler, timeout and GPU request.
        recipe: a :class:`BenchmarkRecipe` (each worker builds the benchmark once), or a Benchmark
            object (scattered to every worker once).
        time_offset: seconds the run had already taken (a resumed run's times go on from there).
    """

    simulated = False

    def __init__(self, execution: Execution, recipe: Any, *, time_offset: float = 0.0) -> None:
        import logging

        import dask
        from distributed import Client, LocalCluster

        self.execution = execution
        self.cluster = None
        if execution.uses_scheduler:
            self.client = connect_client(execution)
        else:
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                self.cluster = LocalCluster(n_workers=execution.workers, threads_per_worker=1, processes=True,
                                            dashboard_address=None, silence_logs=logging.ERROR,
                                            resources={"GPU": 1} if execution.gpu else None)
            self.client = Client(self.cluster)
        threads = sum(self.client.nthreads().values()) if execution.workers is None else execution.workers
        if threads < 1:
            self.close()
            raise ConfigError("the Dask cluster has no workers; start some (dask worker ADDRESS) or give --workers")
        self.n_workers = threads
        self.payload = recipe if isinstance(recipe, BenchmarkRecipe) else self.client.scatter(recipe, broadcast=True)
        self.resources = {"GPU": 1} if execution.gpu else None
        self.running: dict[Any, tuple[Any, float]] = {}
        self.t0 = time.time() - time_offset

    def submit(self, job: Any) -> None:
        future = self.client.submit(evaluate_on_worker, self.payload, job.arch, self.execution.eval_timeout,
                                    pure=False,
                                    key=f"nasloop-eval-{job.number}-{job.attempt}-{id(self):x}",
                                    resources=self.resources)
        self.running[future] = (job, time.time())

    def wait(self) -> list[Any]:
        from distributed import wait

        done = wait(list(self.running), return_when="FIRST_COMPLETED").done
        out = [self._outcome(f) for f in self.running if f in done]
        for future, _ in out:
            self.running.pop(future)
        return [o for _, o in out]

    def _outcome(self, future: Any) -> tuple[Any, Any]:
        from distributed import KilledWorker

        from nasloop.async_loop import Outcome
        from nasloop.simulate import last_line
        from nasloop.types import Evaluation

        job, submitted = self.running[future]
        try:
            result = future.result()
        except KilledWorker:
            now = time.time() - self.t0
            return future, Outcome(job=job, evaluation=None, worker="lost", start=submitted - self.t0, finish=now,
                                   error="the worker died", lost=True)
        except Exception as exc:  # the task could not run (unpicklable result, cancelled ...)
            now = time.time() - self.t0
            return future, Outcome(job=job, evaluation=None, worker="?", start=submitted - self.t0, finish=now,
                                   error=last_line(exc))
        if result.get("hung"):
            self._restart([result["address"]])
        evaluation = None if "error" in result else Evaluation(result["metrics"], cost=result["cost"])
        return future, Outcome(job=job, evaluation=evaluation, worker=result["worker"],
                               start=result["start"] - self.t0, finish=result["finish"] - self.t0,
                               error=result.get("error"))

    def _restart(self, workers: list[str]) -> None:
        """A hung evaluation holds its worker's only thread: end that worker process (a graceful
        restart waits for the thread); its nanny starts a fresh one. A worker without a nanny is gone."""
        if not workers:
            return
        try:
            self.client.run(_exit_now, workers=workers, on_error="ignore")
        except Exception as exc:  # best effort: the search goes on with the other workers
            import logging

            logging.getLogger(__name__).warning("could not end a hung worker (%s)", exc)

    def now(self) -> float:
        return time.time() - self.t0

    def close(self) -> None:
        for future in self.running:
            future.cancel()
        self.running.clear()
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
