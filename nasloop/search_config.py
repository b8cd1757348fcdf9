"""The loop's knobs (:class:`SearchConfig`) and the default choice of search / report metrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from nasloop.acquisition import check_rule
from nasloop.errors import ConfigError
from nasloop.option_types import BOOLEAN, FIT_BUDGET, INTEGER, NUMBER, POOL, TEXT, toml, toml_type


@dataclass(frozen=True)
class SearchConfig:
    """How a predictor-guided search spends its budget. Every default lives here.

    Attributes:
        n_warmup: random true queries before the predictor is first fitted (predictor runs only).
        n_per_round: true queries the acquisition picks per predictor round. Without a predictor
            every round asks the strategy for one architecture (the plain sequential strategy).
        n_pool: candidates the strategy proposes per round for the predictor to score, or ``"all"``:
            every unqueried architecture of a finite space (the strategy then proposes nothing).
        n_local: of the ``n_per_round`` picks, up to this many (all, if it is larger) come from the
            unqueried neighbours of the best architecture found so far (then of the next best, when
            those run out), ranked by the same acquisition, one at a time: each is queried before
            the next is chosen, so a pick that beats the incumbent moves the neighbourhood at once.
            The rest come from the pool. 0 turns it off.
        refit_every: refit the predictor once this many new true results arrived since its last fit
            (1: every round).
        acquisition: ``greedy`` (mean), ``ucb`` (mean + beta·std) or ``thompson`` (sampling).
        ucb_beta: exploration weight of UCB.
        warm_start: let the predictor start each refit from its previous weights (when it can).
        max_fit_steps: cap on the optimiser steps of each predictor fit in the loop (torch predictors;
            warm-started refits run half of it). Refitting every round with a preset's full schedule
            would dominate the run time; ``None`` uses the preset's own schedule.
        fit_budget: optimiser steps per new true result of a warm-started refit (torch predictors): a
            refit after 5 new results runs ``5·fit_budget`` steps from the previous weights, at most
            half of ``max_fit_steps``; the first fit, from scratch, keeps the whole capped schedule.
            ``"full"``: every warm refit runs half of ``max_fit_steps`` (the cost of a run then
            hardly depends on what is new). The knob trades run time against the predictor's
            ranking quality: see docs/performance.md for the measured curve.
        skip_equivalent: predictor picks pass over architectures that ``space.canonical`` puts in the
            class of one already queried (the same function under another labelling, such as
            NAS-Bench-201 cells that differ only in edges no path uses). Training such a cell only
            measures the training noise again; they are picked only when nothing else is left. Spaces
            without a ``canonical`` of their own are unaffected.

    Example:
        >>> SearchConfig(n_per_round=10, acquisition="ucb").n_pool
        1000
    """

    # Why each default is what it is, with the command behind its evidence: docs/decisions.md.
    n_warmup: int = field(default=10, metadata=toml(INTEGER))
    # A refit after every 5 true results lets the predictor learn from the local scan sooner.
    n_per_round: int = field(default=5, metadata=toml(INTEGER))
    # 1 of 5 picks explores (the predictor's best of 1,000 strategy proposals); 4 exploit, one at a
    # time, around the incumbent, whose unqueried neighbour the predictor alone tends to rank low.
    n_pool: int | str = field(default=1000, metadata=toml(POOL))
    n_local: int = field(default=4, metadata=toml(INTEGER))
    refit_every: int = field(default=1, metadata=toml(INTEGER))
    acquisition: str = field(default="greedy", metadata=toml(TEXT))
    ucb_beta: float = field(default=1.0, metadata=toml(NUMBER))
    warm_start: bool = field(default=True, metadata=toml(BOOLEAN))
    max_fit_steps: int | None = field(default=300, metadata=toml(INTEGER))
    # Warm refits train on what is new: 6 steps per new result, a quarter of the fixed 150-step refit.
    fit_budget: int | str = field(default=6, metadata=toml(FIT_BUDGET))
    # A cell equivalent to a queried one only measures the training noise again.
    skip_equivalent: bool = field(default=True, metadata=toml(BOOLEAN))

    def __post_init__(self) -> None:
        for name in ("n_warmup", "n_per_round", "refit_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        local = self.n_local
        if isinstance(local, bool) or not isinstance(local, int) or local < 0:
            raise ConfigError(f"n_local must be a non-negative integer, got {local!r}")
        if self.n_pool not in ("all", "auto"):
            if isinstance(self.n_pool, bool) or not isinstance(self.n_pool, int) or self.n_pool < 1:
                raise ConfigError(f"n_pool must be a positive integer, 'all' or 'auto', got {self.n_pool!r}")
            if self.n_pool < self.n_per_round:
                raise ConfigError(
                    f"n_pool ({self.n_pool}) must be at least n_per_round ({self.n_per_round}): the "
                    "predictor picks n_per_round candidates out of the pool"
                )
        if self.max_fit_steps is not None and (isinstance(self.max_fit_steps, bool)
                                               or not isinstance(self.max_fit_steps, int) or self.max_fit_steps < 1):
            raise ConfigError(f"max_fit_steps must be a positive integer or None, got {self.max_fit_steps!r}")
        if self.fit_budget != "full" and (isinstance(self.fit_budget, bool) or not isinstance(self.fit_budget, int)
                                          or self.fit_budget < 1):
            raise ConfigError(f"fit_budget must be a positive integer or 'full', got {self.fit_budget!r}")
        if not isinstance(self.skip_equivalent, bool):
            raise ConfigError(f"skip_equivalent must be true or false, got {self.skip_equivalent!r}")
        check_rule(self.acquisition)
        beta = self.ucb_beta
        if isinstance(beta, bool) or not isinstance(beta, int | float) or not 0 <= beta < float("inf"):
            raise ConfigError(f"ucb_beta must be a finite number >= 0, got {beta!r}")
        if not isinstance(self.warm_start, bool):
            raise ConfigError(f"warm_start must be true or false, got {self.warm_start!r}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown search options {unknown}; valid: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> SearchConfig:
        """The options of a run from its ``config.json``: options added after the run was written take
        the value that reproduces it (``LEGACY_VALUES``), not today's default."""
        return cls.from_json({**LEGACY_VALUES, **data})

    @classmethod
    def toml_types(cls) -> dict[str, str | None]:
        """Every option's name and its TOML type (the ``[search]`` keys of a run file)."""
        return {f.name: toml_type(f) for f in fields(cls)}

    @classmethod
    def parse_option(cls, name: str, value: Any) -> Any:
        """``value`` of option ``name`` as given on the command line (``--n-pool all``, ``--fit-budget 6``)."""
        parse = {POOL: cls.parse_pool, FIT_BUDGET: cls.parse_fit_budget}.get(cls.toml_types()[name])
        return value if parse is None else parse(value)

    @property
    def fit_steps_per_result(self) -> int | None:
        """``fit_budget`` as a predictor's ``fit_budget`` option (``None`` for ``"full"``)."""
        return None if self.fit_budget == "full" else int(self.fit_budget)

    @classmethod
    def parse_fit_budget(cls, text: str | int) -> int | str:
        """``--fit-budget`` value: a positive integer or ``full``."""
        if isinstance(text, int) or text == "full":
            return text
        try:
            return int(text)
        except (TypeError, ValueError):
            raise ConfigError(f"fit_budget must be a positive integer or 'full', got {text!r}") from None

    @classmethod
    def parse_pool(cls, text: str | int) -> int | str:
        """``--n-pool`` value: a positive integer, ``all`` or ``auto``."""
        if isinstance(text, int) or text in ("all", "auto"):
            return text
        try:
            return int(text)
        except (TypeError, ValueError):
            raise ConfigError(f"n_pool must be a positive integer, 'all' or 'auto', got {text!r}") from None


# Options that did not exist in older run directories, with the behaviour those runs had.
LEGACY_VALUES: dict[str, Any] = {"skip_equivalent": False, "fit_budget": "full"}


def choose_metrics(benchmark: Any, metric: str | None = None, report: str | None = None) -> tuple[str, str]:
    """The metric to search and the metric to report, validated against ``benchmark.metrics``.

    Defaults: search ``val_acc`` and report ``test_acc`` when the benchmark has them (the NAS-Bench
    protocol: choose on validation, report test); else ``test_acc`` for both; else the first metric
    (``baseline_accuracy`` for the AnalogNAS default table). A given ``val*`` metric reports its
    ``test*`` counterpart when that exists (``val_acc_12ep`` → ``test_acc_12ep``), others themselves.

    Example:
        >>> class B:
        ...     metrics = ("val_acc", "test_acc")
        ...     def check_metric(self, m): return m
        >>> choose_metrics(B())
        ('val_acc', 'test_acc')
    """
    names = tuple(benchmark.metrics)
    if metric is None:
        metric = "val_acc" if "val_acc" in names else "test_acc" if "test_acc" in names else names[0]
    metric = benchmark.check_metric(metric)
    if report is None:
        twin = "test" + metric[3:] if metric.startswith("val") else None
        report = twin if twin in names else metric
    return metric, benchmark.check_metric(report)


# Largest finite space whose every unqueried cell is scored each round under n_pool="auto".
AUTO_POOL_MAX_CELLS = 50_000
# Pool size under n_pool="auto" for larger or infinite spaces (the strategy's proposals).
AUTO_POOL_SIZE = 100


def resolve_pool(cfg: SearchConfig, space: Any) -> SearchConfig:
    """``cfg`` with ``n_pool="auto"`` made concrete for ``space``.

    A finite, enumerable space of at most ``AUTO_POOL_MAX_CELLS`` cells is scored whole every round
    (the predictor then ranks every unqueried cell, which is cheap next to a true evaluation);
    otherwise the strategy proposes ``AUTO_POOL_SIZE`` candidates.
    """
    if cfg.n_pool != "auto":
        return cfg
    size = space.size()
    finite = size is not None and size <= AUTO_POOL_MAX_CELLS and space.enumerate() is not None
    from dataclasses import replace

    return replace(cfg, n_pool="all" if finite else max(AUTO_POOL_SIZE, cfg.n_per_round))
