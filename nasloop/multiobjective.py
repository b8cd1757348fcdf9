"""Multi-objective (Pareto) search: ``--objective val_acc:max --objective pixel3:min``.

Strategies (they learn from true results only):
    ``random``  uniform unseen cells;
    ``nsga2``   Optuna's ``NSGAIISampler`` on a multi-objective study;
    ``motpe``   Optuna's ``TPESampler`` on a multi-objective study (multi-objective TPE).

With a predictor, one predictor per objective is refitted each round (the main one on the first
objective, :class:`~nasloop.objectives.ColumnModels` on the others) and the picks are made one at a
time, each by the largest predicted hypervolume improvement over the front of the true results so far
(:func:`nasloop.pareto.improvement`), among the strategy's pool and the unqueried neighbours of the
front's cells. Every query is followed by the hypervolume of the front found so far.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np

from nasloop.engine import SearchEngine, summarize
from nasloop.errors import ConfigError, UnknownNameError
from nasloop.objectives import Goal
from nasloop.pareto import front_indices, improvement, true_front
from nasloop.space import SearchSpace
from nasloop.strategies.base import Strategy, unseen_samples
from nasloop.strategies.tpe import TPEStrategy
from nasloop.types import Record

MO_STRATEGIES = ("random", "nsga2", "motpe")
FRONT = "front.jsonl"


class RandomMO(Strategy):
    """Uniform unseen cells; results are ignored."""

    name = "random"

    def ask(self, n: int) -> list[Hashable]:
        return unseen_samples(self.space, self.rng, n, exclude=self.queried)


class OptunaMO(TPEStrategy):
    """An Optuna multi-objective study over the space's flat categorical view (NSGA-II or MOTPE).

    Proposals, repeats and foreign results (the warm-up) are handled as in :class:`TPEStrategy`;
    ``tell`` takes the signed objective vector (every objective maximised in the study).
    """

    def __init__(self, space: SearchSpace, *, seed: int = 0, n_objectives: int = 2, sampler: str = "nsga2",
                 population_size: int = 20, n_tries: int = 3) -> None:
        super().__init__(space, seed=seed, n_tries=n_tries)
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if sampler == "nsga2":
                chosen = optuna.samplers.NSGAIISampler(seed=int(seed) % 2**32, population_size=population_size)
            else:
                chosen = optuna.samplers.TPESampler(seed=int(seed) % 2**32, multivariate=True, constant_liar=True)
        self.name = sampler
        self.study = optuna.create_study(directions=["maximize"] * n_objectives, sampler=chosen)

    def tell(self, arch: Hashable, value: Any) -> None:
        import optuna
        from optuna.trial import TrialState

        Strategy.tell(self, arch, value)
        values = [float(v) for v in np.atleast_1d(value)]
        trial = self._pending.pop(arch, None)
        finite = all(math.isfinite(v) for v in values)
        if trial is not None:
            self.study.tell(trial, values if finite else None, state=None if finite else TrialState.FAIL)
        elif finite:
            self.study.add_trial(optuna.trial.create_trial(params=self._params(arch), distributions=self._dists,
                                                           values=values))


def make_mo_strategy(name: str, space: SearchSpace, goal: Goal, *, seed: int = 0, **options: Any) -> Strategy:
    """The strategy of a multi-objective run (``random``, ``nsga2`` or ``motpe``)."""
    if name == "random":
        return RandomMO(space, seed=seed, **options)
    if name in ("nsga2", "motpe"):
        return OptunaMO(space, seed=seed, n_objectives=len(goal.objectives), sampler=name, **options)
    raise UnknownNameError(f"unknown multi-objective strategy {name!r}; available: {', '.join(MO_STRATEGIES)}")


class MultiObjectiveEngine(SearchEngine):
    """The driver of a Pareto search: vector results, the front and its hypervolume.

    It shares the serial driver's budget, warm-up, fits, replay and logging, the round policy's pool,
    neighbours and equivalence classes, and the store; only the pick rule (hypervolume improvement,
    one pick at a time) is its own."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.truth = true_front(self.benchmark, self.goal)
        self.vectors: list[np.ndarray] = []
        self.front: list[int] = []  # positions in self.records
        self.hv_curve: list[float] = []

    def _accept(self, rec: Record, *, replay: bool = False) -> None:
        self.vectors.append(self.goal.signed_vector(rec.metrics))
        cand = self.front + [len(self.vectors) - 1]
        self.front = [cand[i] for i in front_indices([self.vectors[j] for j in cand])]
        if self.truth is not None:
            self.hv_curve.append(self.truth.scale.hypervolume(self._front_points()))
        super()._accept(rec, replay=replay)

    def _tell(self, arch: Hashable, rec: Record) -> None:
        self.strategy.tell(arch, self.goal.signed_vector(rec.metrics))

    def _front_points(self) -> np.ndarray:
        return np.array([self.vectors[j] for j in self.front]).reshape(len(self.front), len(self.goal.objectives))

    def _predict(self, archs: list[Hashable]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted signed objective vectors (n, m) and their first objective's std."""
        t0 = time.perf_counter()
        mean0, std0 = self.predictor.predict_dist([self._graph(a) for a in archs])
        cols = [np.asarray(mean0, dtype=np.float64)]
        stds = [np.nan_to_num(np.asarray(std0, dtype=np.float64))]
        for obj in self.goal.objectives[1:]:
            mean, std = self.columns.predict(obj.metric, archs)
            cols.append(obj.sign * mean)
            stds.append(np.nan_to_num(std))
        self.timers["score_s"] += time.perf_counter() - t0
        points = np.column_stack(cols)
        if self.cfg.acquisition == "ucb":  # optimistic points: every objective pushed by beta·std
            points = points + self.cfg.ucb_beta * np.column_stack(stds)
        return points, stds[0]

    def _front_neighbours(self) -> list[Hashable]:
        out: dict[Hashable, None] = {}
        for j in self.front:
            for a in self.policy.neighbours(self.space.from_str(self.records[j].arch)):
                if a not in self.seen and self.policy.open_class(a):
                    out[a] = None
        return list(out)

    def _predictor_round(self) -> int:
        if self.columns is None and len(self.goal.objectives) > 1:
            raise ConfigError("a multi-objective predictor run needs one predictor per objective")
        rng = self._round_rng(self.round)
        journaled = self._journaled_round()
        self._maybe_fit(defer=journaled is not None)
        pool, k = self._round_pool(rng)
        if not pool and not self._front_neighbours():
            return 0
        if journaled is not None:
            return self._replay_round(pool, journaled)
        self._ensure_fitted()
        done: list[tuple[float, float]] = []
        scored: dict[Hashable, tuple[np.ndarray, float]] = {}
        # One pick at a time: each true result joins the front before the next pick is scored.
        for j in range(k):
            if self.budget.exhausted:
                break
            # As in a single-objective round, the first n_local picks come from the unqueried
            # neighbours of the cells on the front, the rest from the strategy's pool.
            near = self._front_neighbours() if j < self.cfg.n_local else []
            cands = near or list(dict.fromkeys([a for a in pool if a not in self.seen] + self._front_neighbours()))
            cands = [a for a in cands if self.policy.open_class(a)] or [a for a in cands if a not in self.seen]
            if not cands:
                break
            new = [a for a in cands if a not in scored]
            if new:
                points, std = self._predict(new)
                scored.update({a: (points[i], float(std[i])) for i, a in enumerate(new)})
            points = np.array([scored[a][0] for a in cands])
            gain = improvement(self.truth.scale if self.truth is not None else _scale_of(points),
                               self._front_points(), points)
            i = int(np.argmax(gain))
            arch = cands[i]
            done.append(self._pick_and_query(arch, float(points[i][0]), scored[arch][1]))
        self._end_round(pool, done)
        return len(done)


def _scale_of(points: np.ndarray) -> Any:
    from nasloop.pareto import Scale

    return Scale(points.min(axis=0), points.max(axis=0))


def summarize_pareto(search: MultiObjectiveEngine, payload: dict[str, Any], *, report: str, run_dir: Path | None,
                     resumed: bool) -> dict[str, Any]:
    """The single-objective summary (for the first objective) plus the front and its hypervolume;
    writes ``front.jsonl`` into the run directory."""
    out = summarize(search, payload, report=report, run_dir=run_dir, resumed=resumed)
    goal = search.goal
    names = [o.metric for o in goal.objectives]
    front = sorted((search.records[j] for j in search.front), key=lambda r: -goal.primary.signed(r.metrics))
    out["objectives"] = [str(o) for o in goal.objectives]
    out["front"] = [{"arch": r.arch, "number": r.number, **{n: r.metrics.get(n) for n in names}} for r in front]
    truth = search.truth
    if truth is not None:
        hv = search.hv_curve[-1] if search.hv_curve else 0.0
        out.update(truth.scale.to_json(goal))
        out["hypervolume"] = round(hv, 6)
        out["true_hypervolume"] = round(truth.hypervolume, 6)
        out["hv_gap"] = round(truth.hypervolume - hv, 6)
        out["true_front_size"] = len(truth.archs)
        out["hv_curve"] = [round(v, 6) for v in search.hv_curve]
    if run_dir is not None:
        import json

        from nasloop.rundir import atomic_write_text

        atomic_write_text(run_dir / FRONT, "".join(json.dumps(row) + "\n" for row in out["front"]))
    return out
