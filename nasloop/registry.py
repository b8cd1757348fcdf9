"""Names → factories for spaces, benchmarks, strategies and predictors.

Built-ins are listed as ``"module:attr"`` strings and imported only when used, so ``import nasloop``
stays light (no torch). Plug-ins come from entry points (groups ``nasloop.search_spaces``,
``nasloop.benchmarks``, ``nasloop.strategies``, ``nasloop.predictors``) or from a ``module:attr``
string given wherever a name is accepted (e.g. ``--space mypkg.spaces:MySpace``).

Factory conventions:
    space:      ``factory() -> SearchSpace``
    benchmark:  ``factory(data=None, dataset=None) -> Benchmark`` (keyed by space name)
    strategy:   ``factory(space, *, seed=0, **options) -> Strategy``
    predictor:  ``factory(*, preset="fast", seed=0, **options) -> Predictor``
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from nasloop.errors import UnknownNameError

KINDS = ("search_spaces", "benchmarks", "strategies", "predictors")

BUILTINS: dict[str, dict[str, str]] = {
    "search_spaces": {
        "nb201": "search_spaces.nasbench201:NasBench201Space",
        "nb101": "search_spaces.nasbench101:NasBench101Space",
        "darts": "search_spaces.darts:DartsSpace",
    },
    "benchmarks": {
        "nb201": "search_spaces.nasbench201.data:load_benchmark",
        "nb101": "search_spaces.nasbench101.data:load_benchmark",
        "darts": "search_spaces.darts.train:load_benchmark",
    },
    "strategies": {
        "random": "nasloop.strategies.random:RandomSearch",
        "evolution": "nasloop.strategies.evolution:RegularizedEvolution",
        "tpe": "nasloop.strategies.tpe:TPEStrategy",
    },
    "predictors": {
        "nnformer": "predictors.nnformer:NNFormerPredictor",
        "narformer2": "predictors.narformer2:NARFormerV2Predictor",
        "mlp": "predictors.baselines:MLPPredictor",
        "gin": "predictors.baselines:GINPredictor",
        "rf": "predictors.baselines:RandomForestPredictor",
        "prior": "predictors.prior:PriorPredictor",
    },
}

_SINGULAR = {
    "search_spaces": "search space",
    "benchmarks": "benchmark",
    "strategies": "strategy",
    "predictors": "predictor",
}


def _entry_point_targets(kind: str) -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=f"nasloop.{kind}")}


def _module_exists(target: str) -> bool:
    module = target.partition(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def available(kind: str) -> dict[str, str]:
    """Name → ``module:attr`` of every installed entry of ``kind`` (built-ins, then plug-ins)."""
    if kind not in KINDS:
        raise UnknownNameError(f"unknown registry kind {kind!r}; expected one of {KINDS}")
    merged = {**BUILTINS[kind], **_entry_point_targets(kind)}
    return {name: t for name, t in sorted(merged.items()) if _module_exists(t)}


def import_target(target: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise UnknownNameError(f"{target!r} is not of the form package.module:Attribute")
    _add_working_directory_to_path()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise UnknownNameError(f"cannot import {module_name!r} (from {target!r}): {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UnknownNameError(f"module {module_name!r} has no attribute {attr!r}") from None


def _add_working_directory_to_path() -> None:
    # The console script's sys.path lacks the current directory, unlike `python -m`; plug-ins given
    # as "mypkg.module:Class" usually live there.
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def resolve(kind: str, name: str) -> Callable[..., Any]:
    """The factory registered as ``name`` (or given as ``module:attr``) for ``kind``."""
    if ":" in name:
        return import_target(name)
    names = available(kind)
    if name not in names:
        raise UnknownNameError(
            f"unknown {_SINGULAR[kind]} {name!r}; available: {', '.join(names) or 'none'}"
            " (or give package.module:Attribute)"
        )
    return import_target(names[name])


def make_space(name: str) -> Any:
    return resolve("search_spaces", name)()


def make_benchmark(space_name: str, *, data: str | list[str] | None = None, dataset: str | None = None) -> Any:
    """The benchmark of a registered space (``--data`` / ``--dataset`` select its source).

    Several ``data`` tables are loaded one by one and joined on the architecture
    (:func:`nasloop.benchmark.join_tables`).
    """
    if ":" not in space_name and space_name not in available("benchmarks"):
        resolve("search_spaces", space_name)  # says "unknown search space" when that is the problem
        raise UnknownNameError(f"search space {space_name!r} has no registered benchmark; pass --benchmark")
    return load_joined(resolve("benchmarks", space_name), data, dataset)


def load_joined(factory: Callable[..., Any], data: Any, dataset: str | None) -> Any:
    """``factory(data=..., dataset=...)``, or for several sources each table built and all joined."""
    from nasloop.benchmark import data_sources, join_tables

    sources = data_sources(data)
    if len(sources) <= 1:
        return factory(data=sources[0] if sources else None, dataset=dataset)
    return join_tables([factory(data=source, dataset=dataset) for source in sources], sources)


def is_registered(kind: str, name: str) -> bool:
    """Whether ``name`` is a built-in or entry-point name of ``kind`` (nothing is imported)."""
    return name in BUILTINS[kind] or name in _entry_point_targets(kind)


def build(kind: str, name: str, factory: Callable[..., Any], *args: Any, **options: Any) -> Any:
    """``factory(*args, **options)``, with unknown or ill-typed options as one-line :class:`ConfigError`.

    Options come from flags and TOML files; a keyword the factory does not take, or a value its
    constructor rejects with ``TypeError`` / ``ValueError``, is the user's input, not a bug.
    """
    from nasloop.errors import ConfigError, NasloopError

    unknown = _unknown_keywords(factory, options)
    if unknown:
        raise ConfigError(f"{_SINGULAR[kind]} {name!r} has no option(s) {unknown}; "
                          f"it takes {_keywords(factory) or 'none'}")
    try:
        obj = factory(*args, **options)
        validate = getattr(obj, "validate", None)
        if callable(validate):  # e.g. a predictor's preset, checked now rather than at its first fit
            validate()
    except NasloopError:
        raise
    except (TypeError, ValueError) as exc:
        given = {k: v for k, v in options.items() if k not in ("seed", "preset")}
        raise ConfigError(f"{_SINGULAR[kind]} {name!r} rejected its options {given}: {exc}") from None
    return obj


def _parameters(factory: Callable[..., Any]) -> dict[str, Any] | None:
    import inspect

    try:
        return dict(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return None


def _unknown_keywords(factory: Callable[..., Any], options: dict[str, Any]) -> list[str]:
    params = _parameters(factory)
    if params is None or any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return []
    return sorted(k for k in options if k not in params or params[k].kind == params[k].POSITIONAL_ONLY)


def _keywords(factory: Callable[..., Any]) -> str:
    params = _parameters(factory) or {}
    return ", ".join(k for k, p in params.items()
                     if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and k not in ("space", "seed", "preset"))


def make_strategy(name: str, space: Any, *, seed: int = 0, **options: Any) -> Any:
    return build("strategies", name, resolve("strategies", name), space, seed=seed, **options)


def make_predictor(name: str, *, preset: str = "fast", seed: int = 0, **options: Any) -> Any:
    return build("predictors", name, resolve("predictors", name), preset=preset, seed=seed, **options)
