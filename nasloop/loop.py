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
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from nasloop import rundir
from nasloop.benchmark import Benchmark, DataSource, resolved_sources
from nasloop.budget import Budget
from nasloop.engine import Callback, SearchEngine, SearchProgress, summarize
from nasloop.errors import ConfigError
from nasloop.executors import Execution
from nasloop.fingerprint import check_unchanged, fingerprints
from nasloop.locks import DirectoryLock
from nasloop.objectives import DEVICE_COLUMNS, ColumnModels, Goal, Objective, build_goal, split_metric
from nasloop.run_store import DirectoryStore, RunStore
from nasloop.runspec import RunSpec, config_diff, target_of
from nasloop.search_config import SearchConfig, choose_metrics, resolve_pool
from nasloop.space import SearchSpace
from nasloop.types import Record

log = logging.getLogger(__name__)

__all__ = ["RunSpec", "SearchConfig", "SearchProgress", "SearchResult", "choose_metrics", "resume_search", "run_search"]


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


def run_search(spec: RunSpec | None = None, *, out: str | Path | None = None, resume: bool = False,
               callback: Callback | None = None, on_benchmark: Callable[[Any], None] | None = None,
               **options: Any) -> SearchResult:
    """Run the search that ``spec`` (or the keyword ``options``) describes.

    Args:
        spec: every option of the run (:class:`~nasloop.runspec.RunSpec`: space, benchmark, data,
            metrics, strategy, predictor, preset, budget, seed, loop knobs, execution).
        out: run directory to write (``config.json``, ``history.jsonl``, ``rounds.jsonl``,
            ``summary.json``); ``None`` keeps everything in memory.
        resume: continue the run in ``out`` (its config must match these options).
        callback: called with a :class:`SearchProgress` on every fit, query and round.
        on_benchmark: called once with the Benchmark object right after it is built (or given), before
            anything is queried: the place to attach a per-evaluation hook, e.g. the ``progress``
            attribute of a training benchmark (``fn(done, total)``), which the CLI draws as a bar.
        **options: instead of ``spec``, its options by name: the fields of RunSpec, and those of its
            SearchConfig and Execution (``budget=50, predictor="rf", n_pool="all", workers=4``).

    Returns:
        The records of all true queries and the summary: best cell by ``metric``, its ``report``
        value, the benchmark's optimum and the regret, queries used and timings.

    Raises:
        TypeError: for options given positionally, both ``spec`` and options, or an unknown option.
        NasloopError: for bad input (unknown names, a non-positive budget, a missing metric, a run
            directory that exists or does not match), before anything is written.

    Example:
        >>> import nasloop
        >>> result = nasloop.run_search(space="nb201", strategy="evolution", predictor="nnformer",
        ...                             data="../shared/data/nb201/cifar10.csv", budget=50, seed=0,
        ...                             out="runs/evo-nnformer-s0")  # doctest: +SKIP
        >>> result.summary["best"]["arch"], result.regret  # doctest: +SKIP
    """
    spec = _spec_of(spec, options, "run_search")
    if resume and out is not None and spec.benchmark is None:
        _check_data_unchanged(Path(out), spec.space, spec.data)
    plan = _plan(spec, on_benchmark=on_benchmark)
    payload = plan.pop("payload")
    plan["execution"].check_reachable()  # an unreachable cluster is refused before the directory exists
    run_dir = Path(out) if out is not None else None
    lock = _open_run_dir(run_dir, payload, resume=resume)
    try:
        return _run_locked(payload, run_dir=run_dir, resume=resume, callback=callback, **plan)
    finally:
        if lock is not None:
            lock.release()


def check_search(spec: RunSpec | None = None, **options: Any) -> dict[str, Any]:
    """Validate a search as :func:`run_search` would and return what its ``config.json`` would hold.

    Builds the space, benchmark, strategy and predictor (so every name, preset and option is checked)
    and writes nothing. Takes a :class:`~nasloop.runspec.RunSpec` or its options by name.

    Raises:
        NasloopError: for any bad input.
    """
    return _plan(_spec_of(spec, options, "check_search"))["payload"]


def _spec_of(spec: Any, options: dict[str, Any], caller: str) -> RunSpec:
    """The RunSpec of a call: ``spec`` itself, or one built from the keyword ``options``."""
    if spec is not None and not isinstance(spec, RunSpec):
        raise TypeError(f"{caller}() takes a RunSpec or keyword options; got {spec!r} positionally "
                        f"(write {caller}(space=..., strategy=..., ...) or {caller}(RunSpec(...)))")
    if spec is not None and options:
        raise TypeError(f"{caller}() takes a RunSpec or keyword options, not both (got {sorted(options)}); "
                        "change the spec with spec.replace(...)")
    return spec if spec is not None else RunSpec().replace(**options)


def _open_run_dir(run_dir: Path | None, payload: dict[str, Any], *, resume: bool) -> DirectoryLock | None:
    """Lock the run directory: an existing one to resume, or a new one created with ``config.json``."""
    if resume:
        if run_dir is None:
            raise ConfigError("resume needs the run directory (out=...)")
        rundir.read_config(run_dir)  # "not a run directory" comes before a lock file is made in it
        return DirectoryLock(run_dir, what="run").acquire()
    if run_dir is None:
        return None
    from nasloop import __version__

    return rundir.create(run_dir, {**payload, "nasloop_version": __version__,
                                   "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def _plan(spec: RunSpec, *, on_benchmark: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Everything of a run built and validated before the disk is touched (``payload``: its config)."""
    from nasloop.registry import make_benchmark, make_space, make_strategy

    space, data, dataset = spec.space, spec.data, spec.dataset
    space_name = space if isinstance(space, str) else target_of(space)
    space_obj = make_space(space) if isinstance(space, str) else space
    benchmark = spec.benchmark
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
    metric, objectives = spec.metric, spec.objectives
    if objectives:
        metric = Objective.parse(objectives[0]).metric if objectives[0] else metric
    metric, given_direction = split_metric(metric)
    metric, report = choose_metrics(benchmark, metric, spec.report)
    goal = build_goal(metric, direction=spec.direction or given_direction, objectives=objectives,
                      constraints=spec.constraints, metrics=tuple(benchmark.metrics))
    cfg = spec.search
    budget = spec.to_budget()
    _check_finite_space(space_obj, cfg, budget)
    strategy_seed, predictor_seed, loop_seed = _child_seeds(spec.seed)
    if goal.multi:
        from nasloop.multiobjective import make_mo_strategy

        strategy_obj = make_mo_strategy(spec.strategy, space_obj, goal, seed=strategy_seed, **spec.strategy_options)
    else:
        strategy_obj = make_strategy(spec.strategy, space_obj, seed=strategy_seed, **spec.strategy_options)
    predictor_obj, predictor_options = _build_predictor(
        spec.predictor, preset=spec.preset, seed=predictor_seed, cfg=cfg, options=dict(spec.predictor_options)
    )
    side_columns = [o.metric for o in goal.objectives[1:]] + [c.metric for c in goal.constraints]
    side_name = (spec.side_predictor or SIDE_PREDICTOR) if predictor_obj is not None and side_columns else None
    columns = _build_columns(side_name, side_columns, space_obj, benchmark, preset=spec.preset,
                             seed=predictor_seed, cfg=cfg) if side_name else None
    _check_warmup(predictor_obj, cfg, budget)
    data_files = fingerprints(space_name, data) if benchmark_factory is None and not benchmark_given else {}
    if on_benchmark is not None:
        on_benchmark(benchmark)
    execution, benchmark = _with_execution(spec.execution, benchmark)
    if not execution.serial and (goal.multi or goal.constraints):
        # The parallel driver picks by one signed value; constraint and Pareto picks are serial only.
        raise ConfigError("--workers N (or --scheduler) runs single-objective searches without constraints; "
                          "run --objective / --constraint searches with one worker")
    # The options as resolved (default metrics, the goal's canonical form, the predictor's loop
    # options): what config.json records, and what a resume must agree with.
    resolved = replace(spec, metric=metric, report=report, direction=goal.primary.direction,
                       objectives=[str(o) for o in goal.objectives] if goal.multi else None,
                       constraints=[str(c) for c in goal.constraints], side_predictor=side_name,
                       predictor_options=predictor_options)
    payload = {
        **resolved.to_json(),
        "benchmark": getattr(benchmark, "label", type(benchmark).__name__),
        "benchmark_object": benchmark_given,
        "data_files": data_files,
    }

    return {"payload": payload, "space_obj": space_obj, "benchmark": benchmark, "strategy_obj": strategy_obj,
            "predictor_obj": predictor_obj, "budget": budget, "metric": metric, "report": report, "cfg": cfg,
            "loop_seed": loop_seed, "goal": goal, "columns": columns, "execution": execution,
            "recipe": None if benchmark_given else _recipe(space_name, benchmark_factory, data, dataset, execution)}


def _run_locked(payload: dict[str, Any], *, run_dir: Path | None, resume: bool, space_obj: Any, benchmark: Any,
                strategy_obj: Any, predictor_obj: Any, budget: Budget, metric: str, report: str,
                cfg: SearchConfig, loop_seed: int, callback: Callback | None, goal: Goal,
                columns: ColumnModels | None, execution: Execution, recipe: Any = None) -> SearchResult:
    """The part of :func:`run_search` that reads and writes the run directory (its lock is held)."""
    parallel = not execution.serial
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
    spec = RunSpec.from_json(config)
    if budget is not None:
        spec = spec.replace(budget=budget)
    if benchmark is not None:
        spec = spec.replace(benchmark=benchmark)
    return run_search(spec, out=run_dir, resume=True, callback=callback, on_benchmark=on_benchmark)


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


def check_parts(space: SearchSpace, spec: RunSpec) -> None:
    """Build (and drop) the strategy and predictor of ``spec`` on ``space`` as :func:`run_search` would:
    every name, preset and option error comes now, before a study writes anything."""
    from nasloop.registry import make_strategy

    budget = spec.to_budget()
    _check_finite_space(space, spec.search, budget)
    make_strategy(spec.strategy, space, seed=0, **spec.strategy_options)
    predictor_obj = _build_predictor(spec.predictor, preset=spec.preset, seed=0, cfg=spec.search,
                                     options=dict(spec.predictor_options))[0]
    _check_warmup(predictor_obj, spec.search, budget)


# --- helpers ------------------------------------------------------------------------------------------
def _with_execution(execution: Execution, benchmark: Any) -> tuple[Execution, Any]:
    """The run's execution and its benchmark, with the cost column applied."""
    from nasloop.simulate import CostColumn

    if execution.cost is not None:
        benchmark = CostColumn(benchmark, execution.cost, execution.cost_scale)
    elif execution.cost_scale != 1.0:
        raise ConfigError("cost_scale scales the cost column: give cost=COLUMN (--cost) with it")
    if execution.simulate and execution.cost is None and getattr(benchmark, "cost_column", None) is None:
        raise ConfigError("simulate needs a cost per query: name a table column with --cost COLUMN "
                          "(for NAS-Bench-201, --data latency_ms.csv --cost 1080ti_256)")
    return execution, benchmark


def _recipe(space: str, factory: str | None, data: DataSource, dataset: str | None, execution: Any) -> Any:
    from nasloop.executors import BenchmarkRecipe

    return BenchmarkRecipe(space=space, factory=factory, data=resolved_sources(data), dataset=dataset,
                           cost=execution.cost, cost_scale=execution.cost_scale)


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
    if not isinstance(bench, Benchmark):
        raise ConfigError(f"benchmark factory {target} returned {type(bench).__name__}, not a Benchmark "
                          "(a subclass of nasloop.Benchmark: metrics and query)")
    return bench


def _check_finite_space(space: SearchSpace, cfg: SearchConfig, budget: Budget) -> None:
    size = space.size()
    if cfg.n_pool == "all" and (size is None or space.enumerate() is None):
        raise ConfigError(f"n_pool='all' needs a finite, enumerable space; {space.name} is not")
    if size is not None and budget.n_queries > size:
        raise ConfigError(f"budget {budget.n_queries} exceeds the {size:,} architectures of {space.name}")


def _check_warmup(predictor: Any, cfg: SearchConfig, budget: Budget) -> None:
    """A predictor is first fitted on the warm-up's results: it needs two of them (unless the run is shorter)."""
    if predictor is not None and cfg.n_warmup < 2 < budget.n_queries:
        raise ConfigError(f"n_warmup must be at least 2 with a predictor (it fits on them), got {cfg.n_warmup}")


def _build_predictor(predictor: Any, *, preset: str | None, seed: int, cfg: SearchConfig,
                     options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(predictor or None, its extra options as config.json records them).

    A named predictor gets the loop's options that its class declares (``Predictor.caller_options``);
    the user's own options win. A predictor given as an object is used as it is; config.json records
    its class and ``get_params()``, which rebuild it (:meth:`RunSpec.to_json`).
    """
    from nasloop.predictor import offer

    if predictor is None or predictor == "none":
        return None, {}
    if not isinstance(predictor, str):
        return predictor, {}
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
    return built, options


def _accepts(factory: Any, name: str) -> bool:
    import inspect

    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


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
        check_unchanged(run_dir, stored, fingerprints(space if isinstance(space, str) else target_of(space), data))


def _check_same_config(run_dir: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """The run's stored ``config.json``, after checking that it agrees with ``payload``."""
    stored = rundir.read_config(run_dir)
    diffs = config_diff(payload, stored)  # RunSpec.diff: options older files lack read as those runs had them
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
