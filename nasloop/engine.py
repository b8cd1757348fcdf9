"""The driver of a run: one :class:`SearchEngine` per :func:`nasloop.loop.run_search` call.

A run has three parts, each in its own module so that each can be read and changed alone:

* the driver (here): the budget, the warm-up, the round loop, when the predictor is (re)fitted,
  results joining the run's state, callbacks, ``rounds.jsonl`` rows and the summary;
* the round policy (:mod:`nasloop.round_policy`): which cells a round considers and picks, pure;
* the run store (:mod:`nasloop.run_store`): the run directory, the journal a resumed run replays,
  predictor snapshots.

The parallel driver (:mod:`nasloop.async_loop`) and the Pareto one (:mod:`nasloop.multiobjective`)
subclass this one and use the same policy and store.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasloop.budget import Budget
from nasloop.errors import ConfigError
from nasloop.objectives import ColumnModels, Goal, Objective, table_optimum, weigh_by_feasibility
from nasloop.round_policy import RoundPolicy
from nasloop.run_store import RunStore
from nasloop.search_config import SearchConfig
from nasloop.space import graph_for
from nasloop.strategies.base import unseen_samples
from nasloop.types import Record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchProgress:
    """What the optional ``callback`` of :func:`run_search` receives.

    Attributes:
        phase: ``start``, ``fit`` (a predictor fit begins), ``query`` (a true result arrived; also
            for results served from the history on resume, with ``replay=True``), ``round`` (a
            round ended) or ``done``.
        n_queries / budget: unique true queries so far / allowed.
        round: current round (0 is the warm-up).
        best_value / best_arch: best search-metric value so far and its architecture string.
        tau: Kendall's tau of the predictor's scores for the queried cells against their true values,
            accumulated over the run (``None`` until two exist).
        replay: the event comes from replaying the history of a resumed run.
    """

    phase: str
    n_queries: int
    budget: int
    round: int
    best_value: float | None = None
    best_arch: str | None = None
    tau: float | None = None
    replay: bool = False


Callback = Callable[[SearchProgress], None]


class SearchEngine:
    """The driver of one run: budget, warm-up, rounds, fits, results, callbacks; :meth:`run` runs it.

    What to pick is asked of :attr:`policy` (:class:`~nasloop.round_policy.RoundPolicy`), what was
    already known and where results go of :attr:`store` (:class:`~nasloop.run_store.RunStore`). A
    result enters through :meth:`_accept` (the run's state) and :meth:`_tell` (the strategy), which
    assume nothing about the order results come in: :class:`~nasloop.async_loop.AsyncSearchEngine`
    overrides only how picks are dispatched and collected.

    Args are the built parts of the run; ``store`` is the run's store (default: in memory).
    """

    def __init__(self, *, space, benchmark, strategy, predictor, budget: Budget, metric: str,
                 cfg: SearchConfig, loop_seed: int, store: RunStore | None = None, callback: Callback | None = None,
                 goal: Goal | None = None, columns: ColumnModels | None = None) -> None:
        self.space, self.benchmark, self.strategy, self.predictor = space, benchmark, strategy, predictor
        # The engine maximises goal.signed (sign · metric); constraints decide which results count.
        self.goal = goal if goal is not None else Goal((Objective(metric),))
        self.columns = columns  # predictors of the constraint columns (predictor runs only)
        self.budget, self.metric, self.cfg, self.loop_seed = budget, metric, cfg, loop_seed
        self.store = store if store is not None else RunStore()
        self.policy = RoundPolicy(space, cfg, skip_equivalent=cfg.skip_equivalent and predictor is not None)
        self.callback = callback
        self.records: list[Record] = []
        self.seen: dict[Hashable, Record] = {}
        self.best: Record | None = None
        self.pairs: list[tuple[float, float]] = []  # (predicted mean, true value) of predictor picks
        self.graphs: dict[Hashable, Any] = {}
        self.n_fit_at: int | None = None
        self.fit_plan: list[int] = []  # training-set size of every fit due so far, in order
        self.fits_done = 0  # fits the predictor object has been through
        self.round = 0
        self.stopped = "budget"
        # Where the run's time goes: predictor fits, predictor scoring (pool and local picks),
        # the strategy's proposals and the benchmark's evaluations (true queries).
        self.timers = {"fit_s": 0.0, "score_s": 0.0, "strategy_s": 0.0, "evaluate_s": 0.0}
        self.t_start = time.perf_counter()
        journal = self.store.journal
        self.t_live: float | None = None if journal else self.t_start
        self.time_offset = journal[-1].time if journal else 0.0

    # --- main flow -----------------------------------------------------------------------------------
    def run(self) -> None:
        if self._finished_before():
            return
        self._emit("start")
        if self.predictor is not None:
            self._warmup()
        self.round = 1
        while not self.budget.exhausted:
            made = self._predictor_round() if self.predictor is not None else self._plain_round()
            if made == 0:
                self.stopped = "space exhausted"
                log.warning("no unqueried architecture left; stopping after %d queries", len(self.records))
                break
            self.round += 1
        else:
            self._stopped_early()
        self._emit("done")

    def _finished_before(self) -> bool:
        """A finished run killed before its summary: take its results and run nothing."""
        journal = self.store.journal
        if len(journal) < self.budget.n_queries:
            return False
        for rec in journal[: self.budget.n_queries]:
            self._accept(rec)
        return True

    def _stopped_early(self) -> None:
        if self.budget.used_queries < self.budget.n_queries:
            self.stopped = "cost" if self.budget.used_cost >= self.budget.max_cost else "time"

    def _warmup(self) -> None:
        rng = self._round_rng(0)
        n = min(self.cfg.n_warmup, self.budget.n_queries)
        for arch in unseen_samples(self.space, rng, n, exclude=self.seen):
            if self.budget.exhausted:
                break
            self._tell(arch, self._query(arch, round_=0))
        self._log_round(0, n_pool=0, picks=[])

    def _plain_round(self) -> int:
        t0 = time.perf_counter()
        proposals = self.policy.plain_proposals(self.strategy.ask, self._round_rng(self.round), self.seen)
        self.timers["strategy_s"] += time.perf_counter() - t0
        for arch in proposals[:1]:
            self._tell(arch, self._query(arch, round_=self.round))
        self._log_round(self.round, n_pool=len(proposals), picks=[])
        return len(proposals[:1])

    def _predictor_round(self) -> int:
        rng = self._round_rng(self.round)
        journaled = self._journaled_round()
        self._maybe_fit(defer=journaled is not None)
        pool, k = self._round_pool(rng)
        if not pool and not (self.cfg.n_local and self._local_candidates()):
            return 0
        if journaled is not None:
            return self._replay_round(pool, journaled)
        self._ensure_fitted()
        mean, std = self._score(pool)
        done: list[tuple[float, float]] = []
        # Local picks one at a time, each among the unqueried neighbours of the best architecture
        # found so far *including this round's results*: once a pick improves on the incumbent, the
        # next one already searches around it. Scoring a neighbourhood costs milliseconds; picking
        # all local picks up front left runs next to the optimum for another round or two.
        for _ in range(min(self.cfg.n_local, k)):
            near = self._local_candidates()
            if not near or self.budget.exhausted:
                break
            near_mean, near_std = self._score(near)
            i = self.policy.pick_one(near_mean, near_std, rng)
            done.append(self._pick_and_query(near[i], float(near_mean[i]), float(near_std[i])))
        # The rest from the whole pool, by the scores of the round's start (the predictor is unchanged).
        n_rest = min(k - len(done), sum(arch not in self.seen for arch in pool))
        ranked = self.policy.rank(pool, mean, std, rng, self.seen.__contains__) if n_rest > 0 else []
        for i in self.policy.prefer_new_classes(ranked, pool, n_rest):
            if self.budget.exhausted:
                break
            done.append(self._pick_and_query(pool[i], float(mean[i]), float(std[i])))
        self._end_round(pool, done)
        return len(done)

    def _end_round(self, pool: list[Hashable], picks: list[tuple[float, float]]) -> None:
        """Discard the pool's cells not picked (the strategy learns nothing from these) and log the round."""
        for arch in pool:
            if arch not in self.seen:
                self.strategy.discard(arch)
        self.pairs += [p for p in picks if math.isfinite(p[1])]
        self._log_round(self.round, n_pool=len(pool), picks=picks)

    def _round_pool(self, rng: np.random.Generator) -> tuple[list[Hashable], int]:
        """The round's candidates and how many picks the round makes (timed as the strategy's)."""
        t0 = time.perf_counter()
        k = min(self.cfg.n_per_round, self.budget.remaining)
        pool = self.policy.round_pool(self.strategy.ask, k, rng, self.seen)
        self.timers["strategy_s"] += time.perf_counter() - t0
        return pool, k

    def _score(self, archs: list[Hashable]) -> tuple[np.ndarray, np.ndarray]:
        """The predictor's mean and std for ``archs`` (timed as scoring)."""
        if not archs:
            return np.zeros(0), np.zeros(0)
        t0 = time.perf_counter()
        mean, std = self.predictor.predict_dist([self._graph(a) for a in archs])
        mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
        if self.columns is not None and self.goal.constraints:
            mean, std = weigh_by_feasibility(mean, std, self.columns.feasibility(self.goal, archs))
        self.timers["score_s"] += time.perf_counter() - t0
        return mean, std

    def _pick_and_query(self, arch: Hashable, mean: float, std: float) -> tuple[float, float]:
        rec = self._query(arch, round_=self.round, mean=mean, std=std)
        self._tell(arch, rec)
        return mean, self._value(rec)

    def _local_candidates(self) -> list[Hashable]:
        """Unqueried neighbours of the best architecture so far that has any (none before the first
        finite result)."""
        results = [(self._feasible(r), v, r.arch) for r in self.records if math.isfinite(v := self._value(r))]
        return self.policy.local_candidates(self.policy.incumbents(results), self.seen.__contains__)

    def _replay_round(self, pool: list[Hashable], journaled: list[Record]) -> int:
        """A round the history holds completely: the strategy sees what it saw, the predictor rests."""
        in_pool = set(pool)
        done = []
        for rec in journaled:
            arch = self.space.from_str(rec.arch)
            # A pick came from the pool or, as a local pick, from the neighbours of a cell seen before it.
            if arch not in in_pool and not any(arch in self.policy.neighbours(seen) for seen in self.seen):
                raise ConfigError(
                    f"resume diverged in round {self.round}: the history's {rec.arch} is neither among the "
                    "candidates the strategy proposes now nor next to a queried architecture; the data or "
                    "code changed since the run started, so start a new run"
                )
            self._tell(arch, self._query(arch, round_=self.round))
            if rec.predicted_mean is not None:
                done.append((float(rec.predicted_mean), self._value(rec)))
        self._end_round(pool, done)
        return len(journaled)

    # --- fits ---------------------------------------------------------------------------------------------
    def _journaled_round(self) -> list[Record] | None:
        """The current round's records when the journal holds all of them (``None`` otherwise)."""
        k = min(self.cfg.n_per_round, self.budget.remaining)
        return self.store.journaled_round(len(self.records), k, self.round)

    def _training_rows(self) -> list[Record]:
        return [r for r in self.records if math.isfinite(self._value(r))]

    def _maybe_fit(self, *, defer: bool = False) -> None:
        """Plan a fit when one is due; run it now unless the round is replayed from the journal."""
        n = len(self._training_rows())
        if self.n_fit_at is not None and n - self.n_fit_at < self.cfg.refit_every:
            return
        self.n_fit_at = n
        self.fit_plan.append(n)
        if not defer:
            self._ensure_fitted()

    def _ensure_fitted(self) -> None:
        """Bring the predictor to the state after every planned fit: from the snapshot, then by fitting.

        A resumed run defers the fits of the rounds it replays. It loads the snapshot of the latest
        fit when the predictor can restore one, and makes the missing fits here, in order and on the
        same training sets, so warm starts chain exactly as in the uninterrupted run.
        """
        target = len(self.fit_plan)
        if self.columns is not None and self.columns.fits_done < target:
            t0 = time.perf_counter()
            self.columns.ensure(self.fit_plan, self._training_rows())
            self.timers["fit_s"] += time.perf_counter() - t0
        if self.fits_done == target:
            return
        if self.fits_done == 0:
            # Only a resumed run can find a snapshot ahead of its predictor, and only before its first
            # fit here; later snapshots are this engine's own saves.
            self.fits_done = self.store.load_snapshot(self.predictor, target)
        train = self._training_rows()
        for i in range(self.fits_done, target):
            rows = train[: self.fit_plan[i]]
            self._emit("fit")
            t0 = time.perf_counter()
            graphs = [self._graph(self.space.from_str(r.arch)) for r in rows]
            self.predictor.fit(graphs, np.array([self._value(r) for r in rows]))
            self.timers["fit_s"] += time.perf_counter() - t0
            self.fits_done = i + 1
            self.store.save_snapshot(self.fits_done, self.predictor)

    # --- results ------------------------------------------------------------------------------------------
    def _query(self, arch: Hashable, *, round_: int, mean: float | None = None, std: float | None = None) -> Record:
        """The true result of ``arch``: from the history when known (never charged twice)."""
        if arch in self.seen:
            return self.seen[arch]
        key = self.space.to_str(arch)
        n = len(self.records)
        known = self.store.replayed(n, key, round_)
        if known is not None:  # replaying a resumed run: the file holds the answer
            self.budget.charge(known.cost)
            self._accept(known, replay=True)
            return known
        if self.t_live is None:
            self.t_live = time.perf_counter()
        t0 = time.perf_counter()
        evaluation = self.benchmark.query(arch)
        self.timers["evaluate_s"] += time.perf_counter() - t0
        self.budget.charge(evaluation.cost)
        rec = Record(
            number=n + 1, round=round_, arch=key, metrics=evaluation.metrics, cost=evaluation.cost,
            cum_cost=self.budget.used_cost, predicted_mean=mean, predicted_std=std,
            time=round(self.time_offset + time.perf_counter() - self.t_live, 6),
            # constrained runs mark every result feasible or not (infeasible ones are charged too)
            extra={"feasible": self.goal.feasible(evaluation.metrics)} if self.goal.constraints else {},
        )
        self.store.append_record(rec)
        self._accept(rec)
        return rec

    def _accept(self, rec: Record, *, replay: bool = False) -> None:
        """A true result joins the run's state (in whatever order results arrive)."""
        self.records.append(rec)
        arch = self.space.from_str(rec.arch)
        self.seen[arch] = rec
        self.policy.note_queried(arch)
        value = self._value(rec)
        if math.isfinite(value) and self._feasible(rec) and (self.best is None or value > self._value(self.best)):
            self.best = rec
        self._emit("query", replay=replay)

    def _tell(self, arch: Hashable, rec: Record) -> None:
        value = self._value(rec)
        if not self._feasible(rec):  # an infeasible result is no better than the worst one seen
            value = min((v for v in map(self._value, self.records) if math.isfinite(v)), default=value)
        self.strategy.tell(arch, value)

    def _feasible(self, rec: Record) -> bool:
        return self.goal.feasible(rec.metrics)

    def _graph(self, arch: Hashable) -> Any:
        graph = self.graphs.get(arch)
        if graph is None:
            graph = self.graphs[arch] = graph_for(self.space, arch, getattr(self.predictor, "graph_kind", None))
        return graph

    def _value(self, rec: Record) -> float:
        return self.goal.signed(rec.metrics)

    def _raw(self, rec: Record | None) -> float | None:
        return None if rec is None else rec.metrics.get(self.metric)

    def _round_rng(self, round_: int) -> np.random.Generator:
        return np.random.default_rng([self.loop_seed, round_])

    # --- reporting ------------------------------------------------------------------------------------------
    def tau(self, pairs: list[tuple[float, float]] | None = None) -> float | None:
        pairs = self.pairs if pairs is None else pairs
        if len(pairs) < 2:
            return None
        from scipy.stats import kendalltau

        value = kendalltau([p for p, _ in pairs], [t for _, t in pairs]).statistic
        return None if value is None or not math.isfinite(value) else round(float(value), 6)

    def _log_round(self, round_: int, *, n_pool: int, picks: list[tuple[float, float]]) -> None:
        row = {
            "round": round_,
            "n_queries": len(self.records),
            "n_train": self.n_fit_at,
            "n_pool": n_pool,
            "tau_round": self.tau([p for p in picks if math.isfinite(p[1])]),
            "tau_cum": self.tau(),
            "best": self._raw(self.best),
            "fit_s": round(self.store.logged_fit_s + self.timers["fit_s"], 4),
        }
        log.info("round %d: %d queries, best %s, tau %s", round_, row["n_queries"], row["best"], row["tau_cum"])
        self.store.append_round(row)
        self._emit("round")

    def _emit(self, phase: str, *, replay: bool = False) -> None:
        if self.callback is None:
            return
        self.callback(SearchProgress(
            phase=phase, n_queries=len(self.records), budget=self.budget.n_queries, round=self.round,
            best_value=self._raw(self.best),
            best_arch=None if self.best is None else self.best.arch,
            tau=self.tau() if phase in ("round", "done") else None, replay=replay,
        ))


def summarize(search: SearchEngine, payload: dict[str, Any], *, report: str, run_dir: Path | None,
              resumed: bool) -> dict[str, Any]:
    """The content of ``summary.json``: best cell, optimum, regret, predictor tau and timings."""
    metric, bench = payload["metric"], search.benchmark
    best = search.best
    total = time.perf_counter() - search.t_start
    out: dict[str, Any] = {
        "run_dir": str(run_dir) if run_dir is not None else None,
        "space": payload["space"], "benchmark": payload["benchmark"], "strategy": payload["strategy"],
        "predictor": payload["predictor"], "seed": payload["seed"], "metric": metric, "report": report,
        "n_queries": len(search.records), "budget": payload["budget"], "stopped": search.stopped,
        "best": None, "optimum": None, "regret": None, "search_regret": None,
        "predictor_tau": search.tau() if search.predictor is not None else None,
        "timings": {
            "total_s": round(total, 3),
            **{k: round(v, 3) for k, v in search.timers.items()},
            # bookkeeping, the history files, snapshots and callbacks
            "other_s": round(total - sum(search.timers.values()), 3),
        },
        "resumed": resumed,
    }
    goal = search.goal
    out["direction"] = goal.primary.direction
    if goal.constraints:
        out["constraints"] = [str(c) for c in goal.constraints]
        out["n_infeasible"] = sum(not goal.feasible(r.metrics) for r in search.records)
    if best is not None:
        out["best"] = {"arch": best.arch, "number": best.number, "round": best.round,
                       "value": best.metrics.get(metric), "report_value": best.metrics.get(report),
                       "metrics": dict(best.metrics)}
    optimum = {}
    sign = goal.primary.sign  # the report metric is judged in the search metric's direction
    for name in dict.fromkeys((metric, report)):
        found = table_optimum(bench, goal, name, goal.primary.direction)
        if found is not None:
            optimum[name] = {"value": float(found[0]), "arch": search.space.to_str(found[1])}
    if optimum:
        out["optimum"] = optimum
        if best is not None and report in optimum and report in best.metrics:
            out["regret"] = round(sign * (optimum[report]["value"] - best.metrics[report]), 6) + 0.0  # no -0.0
        if best is not None and metric in optimum:
            out["search_regret"] = round(sign * (optimum[metric]["value"] - best.metrics[metric]), 6) + 0.0
    return out


