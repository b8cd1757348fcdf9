"""Predictor-in-the-loop search: :func:`run_search` and :func:`resume_search`.

One round (DESIGN §1): refit the predictor on every true result so far → the strategy proposes a
pool of unseen candidates → the predictor scores them → the acquisition rule picks ``k`` → only those
are queried on the benchmark (the budgeted step) → results go to the history and the strategy.
With ``predictor=None`` a round is the plain strategy: ask one → query → tell.

Determinism and resume: every random stream derives from ``seed`` (strategy, predictor, and one
generator per round for warm-up sampling and Thompson draws). A run continues from its directory by
replaying itself: the loop runs again from the start, serves the queries already in
``history.jsonl`` from the file (checking that the same architectures come up in the same order) and
goes live where the file ends. Strategy and predictor state are thereby rebuilt exactly, including
warm-started fits; a kill at any point loses nothing and repeats no true query.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasloop import rundir
from nasloop.benchmark import DataSource, resolved_sources
from nasloop.budget import Budget
from nasloop.engine import Callback, SearchEngine, SearchProgress, summarize
from nasloop.errors import ConfigError
from nasloop.fingerprint import check_unchanged, fingerprints
from nasloop.locks import DirectoryLock
from nasloop.objectives import DEVICE_COLUMNS, ColumnModels, Goal, Objective, build_goal, split_metric
from nasloop.run_store import DirectoryStore, RunStore
from nasloop.search_config import SearchConfig, choose_metrics, resolve_pool
from nasloop.space import SearchSpace
from nasloop.types import Record

log = logging.getLogger(__name__)

__all__ = ["SearchConfig", "SearchProgress", "SearchResult", "choose_metrics", "resume_search", "run_search"]


@dataclass
class SearchResult:
    """The outcome of :func:`run_search`: all true queries and the summary (``summary.json``)."""

    records: list[Record]
    summary: dict[str, Any]
    run_dir: Path | None = None

    @property
    def best_arch(self) -> str:
        return self.summary["best"]["arch"]

    @property
    def best_value(self) -> float:
        return self.summary["best"]["value"]

    @property
    def regret(self) -> float | None:
        return self.summary.get("regret")


def run_search(
    space: str | SearchSpace = "nb201",
    benchmark: Any = None,
    strategy: str = "random",
    budget: int | Budget = 100,
    predictor: str | Any | None = "nnformer",
    *,
    data: DataSource = None,
    dataset: str | None = None,
    metric: str | None = None,
    report: str | None = None,
    preset: str = "fast",
    seed: int = 0,
    config: SearchConfig | None = None,
    strategy_options: Mapping[str, Any] | None = None,
    predictor_options: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    callback: Callback | None = None,
    on_benchmark: Callable[[Any], None] | None = None,
    direction: str | None = None,
    objectives: Sequence[str] | None = None,
    constraints: Sequence[str] | None = None,
    side_predictor: str | None = None,
    workers: int | None = None,
    simulate: bool = False,
    scheduler: str | None = None,
    scheduler_file: str | None = None,
    cost: str | None = None,
    cost_scale: float = 1.0,
    max_retries: int = 2,
    eval_timeout: float | None = None,
    gpu: bool = False,
) -> SearchResult:
    """Search ``space`` on ``benchmark`` with ``strategy``, guided by ``predictor``.

    Args:
        space: registered space name (``"nb201"``), ``"package.module:Class"``, or a SearchSpace.
        benchmark: a Benchmark, a ``"package.module:function"`` factory called with ``data`` and
            ``dataset``, or ``None`` for the space's registered one.
        strategy: ``random``, ``evolution``, ``tpe`` or ``"package.module:Class"``.
        budget: unique true queries (a repeat is never charged), or a :class:`~nasloop.budget.Budget`
            that also limits simulated cost and wall-clock time.
        predictor: ``nnformer``, ``narformer2``, ``mlp``, ``gin``, ``rf``, ``"module:Class"``, an
            unfitted Predictor object, or ``None`` / ``"none"`` for the strategy alone (the baseline).
        data / dataset: benchmark source when ``benchmark`` is ``None`` (as ``--data`` / ``--dataset``):
            one path, or a list of tables of the space joined on the architecture (say accuracy from
            one file and latency from another).
        metric / report: metric to search / to report; see :func:`choose_metrics` for the defaults.
            ``"pixel3:min"`` gives the direction with the name.
        direction: ``"max"`` or ``"min"`` for ``metric`` (``None``: by the name, see
            :func:`nasloop.objectives.default_direction`).
        objectives: two or three ``"metric:max|min"`` for a Pareto search (``metric`` is then the
            first); see docs/hardware_aware.md.
        constraints: ``"metric<=bound"`` / ``"metric>=bound"``: the best cell is the best feasible one.
        side_predictor: predictor of the constraint columns and further objectives (``None``: ``rf``,
            see docs/decisions.md).
        preset: predictor preset (``fast`` ...).
        seed: the one seed every random stream of the run derives from.
        config: loop knobs (pool size, queries per round, warm-up, refit cadence, acquisition, the
            fit budget: ``SearchConfig(fit_budget=...)``).
        strategy_options / predictor_options: extra keyword arguments of the strategy / predictor.
        out: run directory to write (``config.json``, ``history.jsonl``, ``rounds.jsonl``,
            ``summary.json``); ``None`` keeps everything in memory.
        resume: continue the run in ``out`` (its config must match these options).
        callback: called with a :class:`SearchProgress` on every fit, query and round.
        on_benchmark: called once with the Benchmark object right after it is built (or given), before
            anything is queried: the place to attach a per-evaluation hook, e.g. the ``progress``
            attribute of a training benchmark (``fn(done, total)``), which the CLI draws as a bar.
        workers / simulate / scheduler / scheduler_file: where evaluations run (docs/scaling.md):
            ``workers=1`` is the serial in-process loop; ``simulate=True`` runs ``workers`` virtual
            workers on the table, each query taking its cost; ``workers > 1`` an embedded Dask
            LocalCluster; a scheduler address or file a running Dask cluster (never shut down).
        cost / cost_scale: a metric column read as each query's cost, times ``cost_scale``.
        max_retries / eval_timeout: resubmissions of an evaluation whose worker died; seconds after
            which an evaluation is recorded as failed (parallel runs).
        gpu: each evaluation asks its Dask worker for one ``GPU`` resource.

    Returns:
        The records of all true queries and the summary: best cell by ``metric``, its ``report``
        value, the benchmark's optimum and the regret, queries used and timings.

    Raises:
        NasloopError: for bad input (unknown names, a non-positive budget, a missing metric, a run
            directory that exists or does not match), before anything is written.

    Example:
        >>> import nasloop
        >>> result = nasloop.run_search("nb201", strategy="evolution", predictor="nnformer",
        ...                             data="../shared/data/nb201/cifar10.csv", budget=50, seed=0,
        ...                             out="runs/evo-nnformer-s0")  # doctest: +SKIP
        >>> result.summary["best"]["arch"], result.regret  # doctest: +SKIP
    """
    if resume and out is not None and benchmark is None:
        _check_data_unchanged(Path(out), space, data)
    plan = _plan(space, benchmark, strategy, budget, predictor, data=data, dataset=dataset, metric=metric,
                 report=report, preset=preset, seed=seed, config=config, strategy_options=strategy_options,
                 predictor_options=predictor_options, on_benchmark=on_benchmark, direction=direction,
                 objectives=objectives, constraints=constraints, side_predictor=side_predictor,
                 execution=_execution(workers=workers, simulate=simulate, scheduler=scheduler,
                                      scheduler_file=scheduler_file, cost=cost, cost_scale=cost_scale,
                                      max_retries=max_retries, eval_timeout=eval_timeout, gpu=gpu))
    payload = plan.pop("payload")
    plan["execution"].check_reachable()  # an unreachable cluster is refused before the directory exists
    run_dir = Path(out) if out is not None else None
    lock: DirectoryLock | None = None
    if resume:
        if run_dir is None:
            raise ConfigError("resume needs the run directory (out=...)")
        rundir.read_config(run_dir)  # "not a run directory" comes before a lock file is made in it
        lock = DirectoryLock(run_dir, what="run").acquire()
    elif run_dir is not None:
        from nasloop import __version__

        lock = rundir.create(run_dir, {**payload, "nasloop_version": __version__,
                                       "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    try:
        return _run_locked(payload, run_dir=run_dir, resume=resume, callback=callback, **plan)
    finally:
        if lock is not None:
            lock.release()


def check_search(space: str | SearchSpace = "nb201", benchmark: Any = None, strategy: str = "random",
                 budget: int | Budget = 100, predictor: str | Any | None = "nnformer",
                 **options: Any) -> dict[str, Any]:
    """Validate a search as :func:`run_search` would and return what its ``config.json`` would hold.

    Builds the space, benchmark, strategy and predictor (so every name, preset and option is checked)
    and writes nothing. Takes :func:`run_search`'s arguments except ``out``, ``resume`` and ``callback``.

    Raises:
        NasloopError: for any bad input.
    """
    execution = _execution(**{k: options.pop(k) for k in _EXECUTION_KEYS if k in options})
    return _plan(space, benchmark, strategy, budget, predictor, execution=execution, **options)["payload"]


def _plan(space: str | SearchSpace, benchmark: Any, strategy: str, budget: int | Budget, predictor: Any, *,
          data: DataSource = None, dataset: str | None = None, metric: str | None = None,
          report: str | None = None, preset: str = "fast", seed: int = 0, config: SearchConfig | None = None,
          strategy_options: Mapping[str, Any] | None = None, predictor_options: Mapping[str, Any] | None = None,
          on_benchmark: Callable[[Any], None] | None = None, direction: str | None = None,
          objectives: Sequence[str] | None = None, constraints: Sequence[str] | None = None,
          side_predictor: str | None = None, execution: Any = None) -> dict[str, Any]:
    """Everything of a run built and validated before the disk is touched (``payload``: its config)."""
    from nasloop.registry import make_benchmark, make_space, make_strategy

    # --- validate and build everything before touching the disk -------------------------------------
    space_name = space if isinstance(space, str) else _target(space)
    space_obj = make_space(space) if isinstance(space, str) else space
    benchmark_factory = benchmark if isinstance(benchmark, str) else None
    if benchmark_factory is not None:  # "package.module:function", called like a registered factory
        benchmark = _call_benchmark_factory(benchmark_factory, data=data, dataset=dataset)
    benchmark_given = benchmark is not None and benchmark_factory is None
    if benchmark is None:
        if ":" in space_name:  # a plug-in space given as module:Class has no registered benchmark
            raise ConfigError(f"space {space_name} has no registered benchmark: pass one (--benchmark "
                              "package.module:function, or benchmark=... in Python)")
        benchmark = make_benchmark(space_name, data=data, dataset=dataset)
    if isinstance(space, str) and isinstance(getattr(benchmark, "space", None), SearchSpace):
        if not isinstance(benchmark.space, type(space_obj)):
            raise ConfigError(f"benchmark {getattr(benchmark, 'label', type(benchmark).__name__)!r} answers "
                              f"{type(benchmark.space).__name__} architectures, not those of space {space_name!r}")
        # A partial table (NB101's 500 cells, the 725 DARTS genotypes) restricts its space to the
        # cells it can answer; searching the full space would query cells it does not have.
        space_obj = benchmark.space
    if objectives:
        metric = Objective.parse(objectives[0]).metric if objectives[0] else metric
    metric, given_direction = split_metric(metric)
    metric, report = choose_metrics(benchmark, metric, report)
    goal = build_goal(metric, direction=direction or given_direction, objectives=objectives,
                      constraints=constraints, metrics=tuple(benchmark.metrics))
    cfg = config or SearchConfig()
    if not isinstance(budget, Budget):
        budget = Budget(n_queries=budget)
    budget = Budget(n_queries=budget.n_queries, max_cost=budget.max_cost, max_seconds=budget.max_seconds)
    _check_finite_space(space_obj, cfg, budget)
    seed = _check_seed(seed)
    strategy_seed, predictor_seed, loop_seed = _child_seeds(seed)
    strategy_options = dict(strategy_options or {})
    if goal.multi:
        from nasloop.multiobjective import make_mo_strategy

        strategy_obj = make_mo_strategy(strategy, space_obj, goal, seed=strategy_seed, **strategy_options)
    else:
        strategy_obj = make_strategy(strategy, space_obj, seed=strategy_seed, **strategy_options)
    predictor_obj, predictor_name, predictor_options, predictor_params = _build_predictor(
        predictor, preset=preset, seed=predictor_seed, cfg=cfg, options=dict(predictor_options or {})
    )
    side_columns = [o.metric for o in goal.objectives[1:]] + [c.metric for c in goal.constraints]
    side_name = (side_predictor or SIDE_PREDICTOR) if predictor_obj is not None and side_columns else None
    columns = _build_columns(side_name, side_columns, space_obj, benchmark, preset=preset,
                             seed=predictor_seed, cfg=cfg) if side_name else None
    if predictor_obj is not None and cfg.n_warmup < 2 < budget.n_queries:
        raise ConfigError(f"n_warmup must be at least 2 with a predictor (it fits on them), got {cfg.n_warmup}")
    data_files = fingerprints(space_name, data) if benchmark_factory is None and not benchmark_given else {}
    if on_benchmark is not None:
        on_benchmark(benchmark)
    execution, benchmark = _with_execution(execution, benchmark)
    if not execution.serial and (goal.multi or goal.constraints):
        # The parallel driver picks by one signed value; constraint and Pareto picks are serial only.
        raise ConfigError("--workers N (or --scheduler) runs single-objective searches without constraints; "
                          "run --objective / --constraint searches with one worker")
    payload = {
        "space": space_name,
        "data": resolved_sources(data),
        "dataset": dataset,
        "benchmark": getattr(benchmark, "label", type(benchmark).__name__),
        "benchmark_object": benchmark_given,
        "benchmark_factory": benchmark_factory,
        "metric": metric,
        "report": report,
        "direction": goal.primary.direction,
        "objectives": [str(o) for o in goal.objectives] if goal.multi else None,
        "constraints": [str(c) for c in goal.constraints],
        "side_predictor": side_name,
        "strategy": strategy,
        "strategy_options": strategy_options,
        "predictor": predictor_name,
        "preset": preset if predictor_obj is not None else None,
        "predictor_options": predictor_options,
        "predictor_params": predictor_params,
        "budget": budget.n_queries,
        "max_cost": None if math.isinf(budget.max_cost) else budget.max_cost,
        "max_seconds": None if math.isinf(budget.max_seconds) else budget.max_seconds,
        "seed": seed,
        "search": cfg.to_json(),
        "data_files": data_files,
        "execution": execution.to_json(),
        "cluster": _cluster_json(execution),
    }

    return {"payload": payload, "space_obj": space_obj, "benchmark": benchmark, "strategy_obj": strategy_obj,
            "predictor_obj": predictor_obj, "budget": budget, "metric": metric, "report": report, "cfg": cfg,
            "loop_seed": loop_seed, "goal": goal, "columns": columns, "execution": execution,
            "recipe": None if benchmark_given else _recipe(space_name, benchmark_factory, data, dataset, execution)}


def _run_locked(payload: dict[str, Any], *, run_dir: Path | None, resume: bool, space_obj: Any, benchmark: Any,
                strategy_obj: Any, predictor_obj: Any, budget: Budget, metric: str, report: str,
                cfg: SearchConfig, loop_seed: int, callback: Callback | None, goal: Goal,
                columns: ColumnModels | None, execution: Any = None, recipe: Any = None) -> SearchResult:
    """The part of :func:`run_search` that reads and writes the run directory (its lock is held)."""
    parallel = execution is not None and not execution.serial
    store = RunStore()
    if run_dir is not None:
        stored = _check_same_config(run_dir, payload) if resume else {}
        store = DirectoryStore(run_dir, resume=resume, n_queries=budget.n_queries, stored_budget=stored.get("budget"),
                               parallel=parallel, submissions=parallel and not execution.simulate,
                               snapshots=predictor_obj is not None and not parallel)
    parts = dict(
        space=space_obj, benchmark=benchmark, strategy=strategy_obj, predictor=predictor_obj,
        budget=budget, metric=metric, cfg=resolve_pool(cfg, space_obj), loop_seed=loop_seed, store=store,
        callback=callback, goal=goal, columns=columns,
    )
    summary_fn = summarize
    try:
        if parallel:
            from nasloop.executors import parallel_engine

            search = parallel_engine(execution, parts, recipe=recipe)
        else:
            engine_class = SearchEngine
            if goal.multi:
                from nasloop.multiobjective import MultiObjectiveEngine, summarize_pareto

                engine_class, summary_fn = MultiObjectiveEngine, summarize_pareto
            search = engine_class(**parts)
        search.run()
    finally:
        store.close()
    summary = summary_fn(search, payload, report=report, run_dir=run_dir, resumed=store.resumed)
    if parallel:
        summary["parallel"] = search.parallel_summary()
    if run_dir is not None:
        rundir.atomic_write_json(run_dir / rundir.SUMMARY, summary)
    return SearchResult(records=search.records, summary=summary, run_dir=run_dir)


def resume_search(run_dir: str | Path, *, budget: int | None = None, benchmark: Any = None,
                  plugins: Collection[str] = (), callback: Callback | None = None,
                  on_benchmark: Callable[[Any], None] | None = None) -> SearchResult:
    """Continue the run in ``run_dir`` (killed at any point, or finished) until its budget is spent.

    The finished history equals the one of an uninterrupted run with the same config.

    Args:
        run_dir: the run directory (``runs/<run-id>``).
        budget: a new number of unique true queries (default: the run's own). A finished run goes
            on to this many; the history is then the one of a run started with this budget. It
            must be at least the number of queries the run holds.
        benchmark: the Benchmark object, needed only for runs started with one (not from ``data``).
        plugins: the ``"package.module:Attribute"`` plug-ins (space, strategy, predictor, benchmark
            factory) the run uses, named again by the caller: code named only in ``config.json`` is
            never imported (see :func:`check_resume_names`).
        callback / on_benchmark: as in :func:`run_search`.

    Example:
        >>> result = resume_search("runs/evo-nnformer-s0")  # doctest: +SKIP
        >>> longer = resume_search("runs/evo-nnformer-s0", budget=300)  # doctest: +SKIP
    """
    config = rundir.read_config(run_dir)
    check_resume_names(config, run_dir, plugins)
    if config.get("benchmark_object") and benchmark is None:
        raise ConfigError(f"{run_dir} was started with a Benchmark object; pass benchmark=... to resume it")
    options = run_options(config)
    if budget is not None:
        old = options["budget"]
        options["budget"] = Budget(n_queries=budget, max_cost=old.max_cost, max_seconds=old.max_seconds)
    if benchmark is not None:
        options["benchmark"] = benchmark
    return run_search(**options, out=run_dir, resume=True, callback=callback, on_benchmark=on_benchmark)


# config.json key → (registry kind, the flag that names it again).
_NAMED_CODE = {"space": ("search_spaces", "--space"), "strategy": ("strategies", "--strategy"),
               "predictor": ("predictors", "--predictor"), "benchmark_factory": ("benchmarks", "--benchmark"),
               "side_predictor": ("predictors", "--side-predictor")}


def check_resume_names(config: Mapping[str, Any], run_dir: str | Path, named: Collection[str] = ()) -> None:
    """Refuse a ``config.json`` that would make resume import code the user did not name.

    A run file is data: it may name registered spaces, strategies and predictors (built-ins and
    installed entry points), but a ``package.module:Attribute`` plug-in is imported only when the
    caller names it again (``named``: the ``--space`` / ``--strategy`` / ``--predictor`` /
    ``--benchmark`` values). Nothing is imported before this check.
    """
    from nasloop.registry import is_registered

    for key, (kind, flag) in _NAMED_CODE.items():
        value = config.get(key)
        if value is None or (key == "predictor" and value == "none"):
            continue
        if not isinstance(value, str):
            raise ConfigError(f"{run_dir}/config.json has a damaged {key!r} entry ({value!r}); this run cannot "
                              "be resumed")
        registered = key != "benchmark_factory" and ":" not in value and is_registered(kind, value)
        if key == "predictor" and config.get("predictor_params") is not None:
            registered = False  # a predictor object's class, rebuilt from its parameters
        if key == "strategy" and config.get("objectives"):
            from nasloop.multiobjective import MO_STRATEGIES

            registered = value in MO_STRATEGIES  # the built-in strategies of a Pareto search
        if not registered and value not in named:
            raise ConfigError(f"{run_dir}/config.json names the plug-in {key} {value!r}; code named only in "
                              f"a run file is not imported: repeat {flag} {value} to resume this run")


def run_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`run_search` that reproduce the run described by ``config.json``
    (call :func:`check_resume_names` first: this imports a predictor object's class)."""
    try:
        return _run_options(config)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ConfigError(f"the run's config.json is damaged ({type(exc).__name__}: {exc}); this run cannot "
                          "be resumed") from None


def _run_options(config: Mapping[str, Any]) -> dict[str, Any]:
    budget = Budget(
        n_queries=int(config["budget"]),
        max_cost=math.inf if config.get("max_cost") is None else float(config["max_cost"]),
        max_seconds=math.inf if config.get("max_seconds") is None else float(config["max_seconds"]),
    )
    predictor: Any = config.get("predictor")
    if config.get("predictor_params") is not None:  # the run was given a predictor object
        from nasloop.registry import import_target

        predictor = import_target(predictor)(**config["predictor_params"])
    return {
        "space": config["space"],
        "strategy": config["strategy"],
        "budget": budget,
        "predictor": predictor,
        "data": config.get("data"),
        "dataset": config.get("dataset"),
        "metric": config.get("metric"),
        "report": config.get("report"),
        # runs written before directions existed maximised their metric
        "direction": config.get("direction") or "max",
        "objectives": config.get("objectives"),
        "constraints": config.get("constraints") or [],
        "side_predictor": config.get("side_predictor"),
        "preset": config.get("preset") or "fast",
        "benchmark": config.get("benchmark_factory"),
        "seed": int(config.get("seed", 0)),
        "config": SearchConfig.from_stored(config.get("search", {})),
        "strategy_options": config.get("strategy_options") or {},
        "predictor_options": config.get("predictor_options") or {},
        **_execution_options(config),
    }


def check_parts(space: SearchSpace, *, strategy: str, predictor: str, preset: str, config: SearchConfig,
                budget: int, strategy_options: Mapping[str, Any], predictor_options: Mapping[str, Any]) -> None:
    """Build (and drop) the strategy and predictor of a run as :func:`run_search` would: every name,
    preset and option error comes now, before a study writes anything."""
    from nasloop.registry import make_strategy

    budget_obj = Budget(n_queries=budget)
    _check_finite_space(space, config, budget_obj)
    make_strategy(strategy, space, seed=0, **dict(strategy_options))
    predictor_obj = _build_predictor(predictor, preset=preset, seed=0, cfg=config,
                                     options=dict(predictor_options))[0]
    if predictor_obj is not None and config.n_warmup < 2 < budget:
        raise ConfigError(f"n_warmup must be at least 2 with a predictor (it fits on them), got {config.n_warmup}")


# --- helpers ------------------------------------------------------------------------------------------
_EXECUTION_KEYS = ("workers", "simulate", "scheduler", "scheduler_file", "cost", "cost_scale", "max_retries",
                   "eval_timeout", "gpu")


def _execution(**options: Any) -> Any:
    from nasloop.executors import Execution

    return Execution(**options)


def _with_execution(execution: Any, benchmark: Any) -> tuple[Any, Any]:
    """The run's execution (serial by default) and its benchmark, with the cost column applied."""
    from nasloop.executors import Execution
    from nasloop.simulate import CostColumn

    execution = execution or Execution()
    if execution.cost is not None:
        benchmark = CostColumn(benchmark, execution.cost, execution.cost_scale)
    elif execution.cost_scale != 1.0:
        raise ConfigError("cost_scale scales the cost column: give cost=COLUMN (--cost) with it")
    if execution.simulate and execution.cost is None and getattr(benchmark, "cost_column", None) is None:
        raise ConfigError("simulate needs a cost per query: name a table column with --cost COLUMN "
                          "(for NAS-Bench-201, --data latency_ms.csv --cost 1080ti_256)")
    return execution, benchmark


def _cluster_json(execution: Any) -> dict[str, Any] | None:
    if not execution.uses_scheduler:
        return None
    return {"scheduler": execution.scheduler, "scheduler_file": execution.scheduler_file}


def _recipe(space: str, factory: str | None, data: DataSource, dataset: str | None, execution: Any) -> Any:
    from nasloop.executors import BenchmarkRecipe

    return BenchmarkRecipe(space=space, factory=factory, data=resolved_sources(data), dataset=dataset,
                           cost=execution.cost, cost_scale=execution.cost_scale)


def _execution_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """run_search's execution keywords from ``config.json`` (none for a serial run)."""
    execution = dict(config.get("execution") or {})
    execution.update(config.get("cluster") or {})
    return {k: v for k, v in execution.items() if k in _EXECUTION_KEYS}


def _child_seeds(seed: int) -> tuple[int, int, int]:
    children = np.random.SeedSequence(seed).spawn(3)
    return tuple(int(c.generate_state(1)[0]) for c in children)  # type: ignore[return-value]


def _call_benchmark_factory(target: str, *, data: DataSource, dataset: str | None) -> Any:
    """The Benchmark that the ``"package.module:function"`` factory returns for ``data`` / ``dataset``."""
    from nasloop.registry import import_target, load_joined

    factory = import_target(target)
    if not callable(factory) or not (_accepts(factory, "data") and _accepts(factory, "dataset")):
        raise ConfigError(f"benchmark factory {target} must be a function f(data=None, dataset=None) -> Benchmark")
    bench = load_joined(factory, data, dataset)
    if not (hasattr(bench, "query") and hasattr(bench, "metrics")):
        raise ConfigError(f"benchmark factory {target} returned {type(bench).__name__}, not a Benchmark "
                          "(nasloop.benchmark.Benchmark: metrics and query)")
    return bench


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_finite_space(space: SearchSpace, cfg: SearchConfig, budget: Budget) -> None:
    size = len(space) if hasattr(space, "__len__") else None
    if cfg.n_pool == "all" and (size is None or space.enumerate() is None):
        raise ConfigError(f"n_pool='all' needs a finite, enumerable space; {space.name} is not")
    if size is not None and budget.n_queries > size:
        raise ConfigError(f"budget {budget.n_queries} exceeds the {size:,} architectures of {space.name}")


def _build_predictor(predictor: Any, *, preset: str, seed: int, cfg: SearchConfig,
                     options: dict[str, Any]) -> tuple[Any, str, dict[str, Any], dict[str, Any] | None]:
    """(predictor or None, its name for config.json, its extra options, all parameters of an object).

    A named predictor gets the loop's options that its class declares (``Predictor.caller_options``);
    the user's own options win. A predictor given as an object is recorded by class and
    ``get_params()``, which rebuild it.
    """
    from nasloop.predictor import Predictor, offer

    if predictor is None or predictor == "none":
        return None, "none", {}, None
    if not isinstance(predictor, str):
        params = predictor.get_params() if isinstance(predictor, Predictor) else {}
        return predictor, _target(predictor), {}, {k: v for k, v in params.items() if _jsonable(v)}
    from nasloop.registry import build, resolve

    if not isinstance(preset, str):
        raise ConfigError(f"preset must be a name such as 'fast', got {preset!r}")
    factory = resolve("predictors", predictor)
    loop = {"warm_start": cfg.warm_start, "max_fit_steps": cfg.max_fit_steps, "fit_budget": cfg.fit_steps_per_result}
    options.update({k: v for k, v in offer(factory, loop).items() if v is not None and k not in options})
    # The capped refits train on the preset's loop schedule. Derived from the cap, not recorded in
    # config.json, so a run resumes with the predictor it started with.
    schedule = {"fit_schedule": "loop"} if options.get("max_fit_steps") is not None else {}
    built = build("predictors", predictor, factory, preset=preset, seed=seed,
                  **{**offer(factory, schedule), **options})
    return built, predictor, options, None


def _accepts(factory: Any, name: str) -> bool:
    import inspect

    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | type(None))


def _target(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


# Keys of config.json that must agree when a run is resumed. The query budget may change: a resumed
# run can be extended (or cut back to no fewer queries than it holds), see _change_budget.
_RERUN_KEYS = ("space", "data", "dataset", "benchmark", "benchmark_factory", "metric", "report", "direction",
               "objectives", "constraints", "side_predictor", "strategy",
               "strategy_options",
               "predictor", "preset", "predictor_options", "predictor_params", "max_cost",
               "max_seconds", "seed", "search", "execution")


# What config.json files written before directions, constraints and objectives existed mean.
_LEGACY_GOAL = {"direction": "max", "objectives": None, "constraints": [], "side_predictor": None}
# Predictor of constraint columns and further objectives: a forest fits in milliseconds (docs/decisions.md).
SIDE_PREDICTOR = "rf"


def _build_columns(name: str, columns: Sequence[str], space: Any, benchmark: Any, *, preset: str, seed: int,
                   cfg: SearchConfig) -> ColumnModels:
    """One ``name`` predictor per column, as a latency target where the column is one (positive values)."""
    from nasloop.predictor import offer
    from nasloop.predictor_eval import infer_kind
    from nasloop.registry import resolve

    factory = resolve("predictors", name)
    models = {}
    for i, column in enumerate(dict.fromkeys(columns)):
        kind = infer_kind(column, getattr(benchmark, "label", ""))
        if kind == "accuracy" and column in DEVICE_COLUMNS:
            kind = "latency"
        options = offer(factory, {"target": kind})
        models[column] = _build_predictor(name, preset=preset, seed=(seed + 1 + i) % 2**32, cfg=cfg,
                                          options=options)[0]
    return ColumnModels(space, models)


def _check_data_unchanged(run_dir: Path, space: str | SearchSpace, data: DataSource) -> None:
    """Refuse a resume whose data files changed before they are loaded: an edited table is reported as
    changed, not by whatever its new content fails (or, worse, passes) in the loader."""
    stored = rundir.read_config(run_dir).get("data_files")
    if stored is not None:
        check_unchanged(run_dir, stored, fingerprints(space if isinstance(space, str) else _target(space), data))


def _check_same_config(run_dir: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """The run's stored ``config.json``, after checking that it agrees with ``payload``."""
    stored = {**_LEGACY_GOAL, **rundir.read_config(run_dir)}
    if isinstance(stored.get("search"), dict):  # written before some options existed: fill in their old values
        stored = {**stored, "search": SearchConfig.from_stored(stored["search"]).to_json()}
    diffs = [f"{k}: run has {stored.get(k)!r}, now {payload.get(k)!r}"
             for k in _RERUN_KEYS if _norm(stored.get(k)) != _norm(payload.get(k))]
    if diffs:
        raise ConfigError(f"{run_dir} was started with other options ({'; '.join(diffs)}); drop the "
                          "conflicting flags to resume it, or start a new run")
    if "data_files" in stored:
        check_unchanged(run_dir, stored["data_files"], payload["data_files"])
    else:
        # Written before fingerprints existed: nothing to compare with. The files as they are now are
        # recorded, so later resumes of this run are checked.
        log.warning("%s has no data fingerprints (an older run); recording the current files", run_dir)
        rundir.atomic_write_json(run_dir / rundir.CONFIG,
                                 {**rundir.read_config(run_dir), "data_files": payload["data_files"]})
    return stored


def _norm(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, sort_keys=True))
