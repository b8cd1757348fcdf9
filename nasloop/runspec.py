"""One run's specification: :class:`RunSpec`, every option of a search in one frozen value.

The CLI (flags and TOML files), ``nasloop compare``, :func:`~nasloop.loop.run_search`,
:func:`~nasloop.loop.resume_search` and ``config.json`` all go through it: an option is one field
here (or of :class:`~nasloop.search_config.SearchConfig` / :class:`~nasloop.executors.Execution`,
whose fields a spec takes by name too), with its TOML type in the field's metadata.

Example:
    >>> spec = RunSpec(strategy="evolution", predictor="rf", budget=50, seed=3)
    >>> spec.replace(budget=80, n_pool=200).search.n_pool
    200
    >>> spec.diff(spec.replace(seed=4).to_json())
    ['seed: run has 4, now 3']
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from nasloop.benchmark import DataSource, resolved_sources
from nasloop.budget import Budget
from nasloop.errors import ConfigError
from nasloop.executors import Execution
from nasloop.option_types import INTEGER, NUMBER, PATHS, TABLE, TEXT, toml, toml_type
from nasloop.search_config import SearchConfig
from nasloop.space import SearchSpace

__all__ = ["LEGACY_GOAL", "RunSpec", "config_diff"]

# What config.json files written before directions, constraints and objectives existed mean.
LEGACY_GOAL: dict[str, Any] = {"direction": "max", "objectives": None, "constraints": [], "side_predictor": None}
# config.json keys a resumed run may change: the query budget (a run can be extended, or cut back to no
# fewer queries than it holds) and where its Dask cluster is reached.
MAY_CHANGE_ON_RESUME = ("budget", "cluster")
# config.json keys that describe what the options built, checked on resume as the options are.
BUILT_KEYS = ("benchmark",)


@dataclass(frozen=True)
class RunSpec:
    """Every option of a run. Frozen: :meth:`replace` gives a changed copy.

    Attributes:
        space: registered space name (``"nb201"``), ``"package.module:Class"``, or a SearchSpace.
        benchmark: a Benchmark, a ``"package.module:function"`` factory called with ``data`` and
            ``dataset``, or ``None`` for the space's registered one.
        data / dataset: benchmark source when ``benchmark`` is not a Benchmark (as ``--data`` /
            ``--dataset``): one path, or a list of tables of the space joined on the architecture.
        metric / report: metric to search / to report (``None``: see
            :func:`~nasloop.search_config.choose_metrics`); ``"pixel3:min"`` gives the direction too.
        direction: ``"max"`` or ``"min"`` for ``metric`` (``None``: by the name).
        objectives: two or three ``"metric:max|min"`` for a Pareto search (``metric`` is then the first).
        constraints: ``"metric<=bound"`` / ``"metric>=bound"``: the best cell is the best feasible one.
        side_predictor: predictor of the constraint columns and further objectives (``None``: ``rf``).
        strategy / strategy_options: ``random``, ``evolution``, ``tpe`` or ``"module:Class"``, and its
            extra keyword arguments.
        predictor / preset / predictor_options: ``nnformer``, ``narformer2``, ``mlp``, ``gin``, ``rf``,
            ``"module:Class"``, an unfitted Predictor object, or ``None`` (``"none"``: the strategy
            alone); its preset and extra keyword arguments.
        budget / max_cost / max_seconds: unique true queries (or a :class:`~nasloop.budget.Budget`
            holding all three), simulated cost and wall-clock limits in seconds (``None``: none).
        seed: the one seed every random stream of the run derives from.
        search: the loop's knobs (pool size, picks per round, warm-up, acquisition, fit budget ...).
        execution: where evaluations run (workers, simulation, Dask scheduler, cost column ...).
    """

    space: str | SearchSpace = field(default="nb201", metadata=toml(TEXT))
    benchmark: Any = field(default=None, metadata=toml(TEXT))
    data: DataSource = field(default=None, metadata=toml(PATHS))
    dataset: str | None = field(default=None, metadata=toml(TEXT))
    metric: str | None = field(default=None, metadata=toml(TEXT))
    report: str | None = field(default=None, metadata=toml(TEXT))
    direction: str | None = field(default=None, metadata=toml(None))
    objectives: tuple[str, ...] | None = field(default=None, metadata=toml(PATHS))
    constraints: tuple[str, ...] = field(default=(), metadata=toml(PATHS))
    side_predictor: str | None = field(default=None, metadata=toml(TEXT))
    strategy: str = field(default="random", metadata=toml(TEXT))
    strategy_options: Mapping[str, Any] = field(default_factory=dict, metadata=toml(TABLE))
    predictor: Any = field(default="nnformer", metadata=toml(TEXT))
    preset: str | None = field(default="fast", metadata=toml(TEXT))
    predictor_options: Mapping[str, Any] = field(default_factory=dict, metadata=toml(TABLE))
    budget: int = field(default=100, metadata=toml(INTEGER))
    max_cost: float | None = field(default=None, metadata=toml(NUMBER))
    max_seconds: float | None = field(default=None, metadata=toml(NUMBER))
    seed: int = field(default=0, metadata=toml(INTEGER))
    search: SearchConfig = field(default_factory=SearchConfig, metadata=toml(None))
    execution: Execution = field(default_factory=Execution, metadata=toml(None))

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen fields)
        if isinstance(self.budget, Budget):
            limits = {k: v for k, v in (("max_cost", self.max_cost), ("max_seconds", self.max_seconds))
                      if v is not None}
            for name, value in _budget_fields(self.budget, limits).items():
                set_(name, value)
        for name in ("max_cost", "max_seconds"):
            value = getattr(self, name)
            if isinstance(value, float) and math.isinf(value) and value > 0:
                set_(name, None)
        self.to_budget()  # a positive query count, positive limits
        for name in ("max_cost", "max_seconds"):  # seconds, as TOML integers or floats
            if getattr(self, name) is not None:
                set_(name, float(getattr(self, name)))
        set_("seed", _check_seed(self.seed))
        if self.predictor == "none":
            set_("predictor", None)
        if not isinstance(self.space, str | SearchSpace):
            raise ConfigError(f"space must be a name, package.module:Class or a SearchSpace, got {self.space!r}")
        if not isinstance(self.strategy, str):
            raise ConfigError(f"strategy must be a name or package.module:Class, got {self.strategy!r}")
        if self.preset is not None and not isinstance(self.preset, str):
            raise ConfigError(f"preset must be a name such as 'fast', got {self.preset!r}")
        for name in ("dataset", "metric", "report", "side_predictor"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{name} must be a string, got {value!r}")
        for name in ("strategy_options", "predictor_options"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Mapping):
                raise ConfigError(f"{name} must be a table of keyword arguments, got {value!r}")
            set_(name, dict(value or {}))
        set_("objectives", _strings("objectives", self.objectives) or None)
        set_("constraints", _strings("constraints", self.constraints))
        if self.search is None:
            set_("search", SearchConfig())
        if not isinstance(self.search, SearchConfig):
            raise ConfigError(f"search must be a SearchConfig, got {self.search!r}")
        if isinstance(self.execution, Mapping) or self.execution is None:
            set_("execution", Execution(**(self.execution or {})))
        if not isinstance(self.execution, Execution):
            raise ConfigError(f"execution must be an Execution, got {self.execution!r}")

    # --- the names of the options --------------------------------------------------------------
    @classmethod
    def toml_types(cls) -> dict[str, str | None]:
        """Every option a TOML run file may set, with its type: this spec's fields (less ``search`` and
        ``execution``, whose fields come by name) and those of SearchConfig and Execution."""
        own = {f.name: toml_type(f) for f in fields(cls) if toml_type(f) is not None}
        return {**own, **SearchConfig.toml_types(), **{f.name: toml_type(f) for f in fields(Execution)}}

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """What :meth:`replace` and ``run_search(**options)`` take: the fields of RunSpec, SearchConfig
        and Execution."""
        return (*(f.name for f in fields(cls)), *_SEARCH_FIELDS, *_EXECUTION_FIELDS)

    def replace(self, **changes: Any) -> RunSpec:
        """A copy with ``changes`` applied: any field of RunSpec, or of its SearchConfig or Execution
        by name (``spec.replace(budget=200, n_pool="all", workers=4)``).

        Raises:
            TypeError: for a name that is no option.
        """
        unknown = sorted(set(changes) - set(self.option_names()))
        if unknown:
            raise TypeError(f"unknown run option(s) {unknown}; valid: {', '.join(self.option_names())}")
        own = {k: v for k, v in changes.items() if k in _OWN_FIELDS}
        if isinstance(own.get("budget"), Budget):  # replaces this spec's limits too
            own.update(_budget_fields(own["budget"], {k: own[k] for k in ("max_cost", "max_seconds") if k in own}))
        spec = dataclasses.replace(self, **own)
        loop = {k: SearchConfig.parse_option(k, v) for k, v in changes.items() if k in _SEARCH_FIELDS}
        execution = {k: v for k, v in changes.items() if k in _EXECUTION_FIELDS}
        if loop:
            spec = dataclasses.replace(spec, search=dataclasses.replace(spec.search, **loop))
        if execution:
            spec = dataclasses.replace(spec, execution=_replace_execution(spec.execution, execution))
        return spec

    def to_budget(self) -> Budget:
        """A fresh :class:`~nasloop.budget.Budget` of this run (nothing used yet)."""
        return Budget(n_queries=self.budget,
                      max_cost=math.inf if self.max_cost is None else self.max_cost,
                      max_seconds=math.inf if self.max_seconds is None else self.max_seconds)

    # --- config.json -----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The options as ``config.json`` records them (the run directory adds what they built: the
        benchmark's label, whether it was an object, the data files' fingerprints)."""
        execution = self.execution
        return {
            "space": self.space if isinstance(self.space, str) else target_of(self.space),
            "data": resolved_sources(self.data),
            "dataset": self.dataset,
            "benchmark_factory": self.benchmark if isinstance(self.benchmark, str) else None,
            "metric": self.metric,
            "report": self.report,
            "direction": self.direction,
            "objectives": list(self.objectives) if self.objectives else None,
            "constraints": list(self.constraints),
            "side_predictor": self.side_predictor,
            "strategy": self.strategy,
            "strategy_options": dict(self.strategy_options),
            "predictor": predictor_name(self.predictor),
            "preset": self.preset if self.predictor is not None else None,
            "predictor_options": dict(self.predictor_options),
            "predictor_params": predictor_params(self.predictor),
            "budget": self.budget,
            "max_cost": self.max_cost,
            "max_seconds": self.max_seconds,
            "seed": self.seed,
            "search": self.search.to_json(),
            "execution": execution.to_json(),
            "cluster": ({"scheduler": execution.scheduler, "scheduler_file": execution.scheduler_file}
                        if execution.uses_scheduler else None),
        }

    @classmethod
    def from_json(cls, config: Mapping[str, Any]) -> RunSpec:
        """The spec of the run that ``config.json`` describes (call
        :func:`~nasloop.loop.check_resume_names` first: this imports a predictor object's class).

        Raises:
            ConfigError: one line for a damaged file.
        """
        try:
            return cls._from_json(config)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise ConfigError(f"the run's config.json is damaged ({type(exc).__name__}: {exc}); this run cannot "
                              "be resumed") from None

    @classmethod
    def _from_json(cls, config: Mapping[str, Any]) -> RunSpec:
        config = {**LEGACY_GOAL, **config}
        predictor: Any = config.get("predictor")
        if config.get("predictor_params") is not None:  # the run was given a predictor object
            from nasloop.registry import import_target

            predictor = import_target(predictor)(**config["predictor_params"])
        execution = {**(config.get("execution") or {}), **(config.get("cluster") or {})}
        known = {f.name for f in fields(Execution)}
        return cls(
            space=config["space"],
            benchmark=config.get("benchmark_factory"),
            data=config.get("data"),
            dataset=config.get("dataset"),
            metric=config.get("metric"),
            report=config.get("report"),
            direction=config["direction"],
            objectives=config.get("objectives"),
            constraints=config.get("constraints") or (),
            side_predictor=config.get("side_predictor"),
            strategy=config["strategy"],
            strategy_options=config.get("strategy_options") or {},
            predictor=predictor,
            preset=config.get("preset") or "fast",
            predictor_options=config.get("predictor_options") or {},
            budget=int(config["budget"]),
            max_cost=None if config.get("max_cost") is None else float(config["max_cost"]),
            max_seconds=None if config.get("max_seconds") is None else float(config["max_seconds"]),
            seed=int(config.get("seed", 0)),
            search=SearchConfig.from_stored(config.get("search", {})),
            execution=Execution(**{k: v for k, v in execution.items() if k in known}),
        )

    def diff(self, stored: Mapping[str, Any]) -> list[str]:
        """What differs between this spec and a run's ``config.json`` (``stored``), one
        ``"key: run has X, now Y"`` per option; the budget may differ (a resume extends or cuts a run)."""
        return config_diff(self.to_json(), stored)


def config_diff(current: Mapping[str, Any], stored: Mapping[str, Any]) -> list[str]:
    """:meth:`RunSpec.diff` of two ``config.json`` contents (``current``: what a resume would write)."""
    stored = {**LEGACY_GOAL, **stored}
    if isinstance(stored.get("search"), dict):  # written before some options existed: fill in their old values
        stored["search"] = SearchConfig.from_stored(stored["search"]).to_json()
    keys = [k for k in RunSpec().to_json() if k not in MAY_CHANGE_ON_RESUME]
    keys += [k for k in BUILT_KEYS if k in current]
    return [f"{k}: run has {stored.get(k)!r}, now {current.get(k)!r}"
            for k in keys if _norm(stored.get(k)) != _norm(current.get(k))]


def predictor_name(predictor: Any) -> str:
    """How ``config.json`` names a predictor: its name, ``"none"``, or an object's ``module:Class``."""
    if predictor is None:
        return "none"
    return predictor if isinstance(predictor, str) else target_of(predictor)


def predictor_params(predictor: Any) -> dict[str, Any] | None:
    """The parameters that rebuild a predictor object (``get_params()``, those JSON can hold); ``None``
    for a predictor given by name."""
    if predictor is None or isinstance(predictor, str):
        return None
    from nasloop.predictor import Predictor

    found = predictor.get_params() if isinstance(predictor, Predictor) else {}
    return {k: v for k, v in found.items() if _jsonable(v)}


def target_of(obj: Any) -> str:
    """``module:Class`` of an object (or class)."""
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


_OWN_FIELDS = frozenset(f.name for f in fields(RunSpec))
_SEARCH_FIELDS = tuple(f.name for f in fields(SearchConfig))
_EXECUTION_FIELDS = tuple(f.name for f in fields(Execution))


def _budget_fields(budget: Budget, limits: Mapping[str, Any]) -> dict[str, Any]:
    """The spec's ``budget`` / ``max_cost`` / ``max_seconds`` of a :class:`~nasloop.budget.Budget`
    (``limits``: the ones also given by name, refused)."""
    if limits:
        raise ConfigError("give the cost and time limits in the Budget or as max_cost / max_seconds, not both")
    return {"budget": budget.n_queries,
            "max_cost": None if math.isinf(budget.max_cost) else budget.max_cost,
            "max_seconds": None if math.isinf(budget.max_seconds) else budget.max_seconds}


def _replace_execution(current: Execution, changes: Mapping[str, Any]) -> Execution:
    declared = {f.name: getattr(current, f.name) for f in fields(Execution)}
    if current.serial and "workers" not in changes:
        declared["workers"] = None  # 1 was the implied default: a scheduler named now counts its threads
    return Execution(**{**declared, **changes})


def _strings(name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{name} must be a string or a list of strings, got {value!r}")
    return tuple(value)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | type(None))


def _norm(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True))
