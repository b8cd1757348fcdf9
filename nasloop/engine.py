"""The round machinery behind :func:`nasloop.loop.run_search` (one :class:`SearchEngine` per run).

Replay: a resumed run starts from the beginning with the records of ``history.jsonl`` as a journal.
Each query the loop makes is first answered from the journal (and checked to be the same architecture
in the same round); where the journal ends the benchmark is asked. Every random stream is derived from
the seed, so the strategy, the predictor (warm starts included) and the round generators come out in
the state the uninterrupted run had.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasloop.acquisition import select
from nasloop.budget import Budget
from nasloop.errors import ConfigError
from nasloop.objectives import ColumnModels, Goal, Objective, table_optimum, weigh_by_feasibility
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


class Snapshots:
    """The predictor after its latest fit, as tensors (``predictor.pt``) plus JSON (``predictor.json``).

    Resume loads it instead of redoing the fits of the finished rounds. Nothing executable is read:
    the tensors load with ``torch.load(weights_only=True)`` into the predictor the run builds from its
    registered name, through the predictor's ``restore_state``. Predictors without
    ``snapshot_state`` / ``restore_state`` (the random forest, most plug-ins) are refitted fit by fit
    instead, which gives the same state because fits are deterministic. The JSON records the SHA-256
    of the tensor file; a pair that does not match (a kill between the two renames) is ignored.

    Args:
        directory: the run directory.
    """

    TENSORS, META = "predictor.pt", "predictor.json"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def save(self, n_fits: int, predictor: Any) -> None:
        import hashlib
        import io

        import torch

        from nasloop.rundir import atomic_write_json

        state = predictor.snapshot_state() if hasattr(predictor, "snapshot_state") else None
        if state is None:
            return
        tensors, meta = state
        buffer = io.BytesIO()
        torch.save(tensors, buffer)
        blob = buffer.getvalue()
        tmp = self.directory / f".{self.TENSORS}.tmp"
        tmp.write_bytes(blob)
        os.replace(tmp, self.directory / self.TENSORS)
        atomic_write_json(self.directory / self.META, {"n_fits": n_fits, "sha256": hashlib.sha256(blob).hexdigest(),
                                                       "state": meta})

    def load_into(self, predictor: Any, max_fits: int) -> int:
        """Restore the snapshot into ``predictor``; the number of fits it holds (0: nothing loaded)."""
        import hashlib
        import io
        import json

        if not hasattr(predictor, "restore_state"):
            return 0
        try:
            meta = json.loads((self.directory / self.META).read_text(encoding="utf-8"))
            blob = (self.directory / self.TENSORS).read_bytes()
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            log.warning("ignoring the predictor snapshot in %s (%s)", self.directory, exc)
            return 0
        n_fits = meta.get("n_fits") if isinstance(meta, dict) else None
        if not isinstance(n_fits, int) or not 0 < n_fits <= max_fits \
                or meta.get("sha256") != hashlib.sha256(blob).hexdigest():
            return 0
        import torch

        try:
            tensors = torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
            predictor.restore_state(tensors, meta["state"])
        except Exception as exc:  # a damaged or foreign snapshot: refitting is always possible
            log.warning("ignoring the predictor snapshot in %s (%s: %s)", self.directory, type(exc).__name__, exc)
            return 0
        return n_fits


class SearchEngine:
    """One run: its history, best so far, predictor-quality pairs and timers; :meth:`run` runs it.

    Args are the built parts of the run; ``journal`` holds the records of a resumed run, and the
    writers (``None`` for in-memory runs) receive new ``history.jsonl`` / ``rounds.jsonl`` lines.
    """

    def __init__(self, *, space, benchmark, strategy, predictor, budget: Budget, metric: str,
                 cfg: SearchConfig, loop_seed: int, journal: list[Record], history_writer, rounds_writer,
                 logged_rounds: int, callback: Callback | None, snapshots: Snapshots | None = None,
                 logged_fit_s: float = 0.0, goal: Goal | None = None, columns: ColumnModels | None = None) -> None:
        self.space, self.benchmark, self.strategy, self.predictor = space, benchmark, strategy, predictor
        # The engine maximises goal.signed (sign · metric); constraints decide which results count.
        self.goal = goal if goal is not None else Goal((Objective(metric),))
        self.columns = columns  # predictors of the constraint columns (predictor runs only)
        self.budget, self.metric, self.cfg, self.loop_seed = budget, metric, cfg, loop_seed
        self.journal, self.history_writer, self.rounds_writer = journal, history_writer, rounds_writer
        self.logged_rounds, self.callback = logged_rounds, callback
        self.logged_fit_s = logged_fit_s  # fitting seconds of earlier processes of a resumed run
        self.records: list[Record] = []
        self.seen: dict[Hashable, Record] = {}
        # Equivalence classes (space.canonical) of the queried architectures, kept when picks skip
        # equivalent cells; canonical forms are cached (NB101's costs milliseconds).
        self.skip_equivalent = cfg.skip_equivalent and predictor is not None
        self.seen_classes: set[Hashable] = set()
        self.class_cache: dict[Hashable, Hashable] = {}
        self.best: Record | None = None
        self.pairs: list[tuple[float, float]] = []  # (predicted mean, true value) of predictor picks
        self.graphs: dict[Hashable, Any] = {}
        self.neighbour_cache: dict[Hashable, tuple[Hashable, ...]] = {}
        self.n_fit_at: int | None = None
        self.fit_plan: list[int] = []  # training-set size of every fit due so far, in order
        self.fits_done = 0  # fits the predictor object has been through
        self.snapshots = snapshots
        self.round = 0
        self.stopped = "budget"
        # Where the run's time goes: predictor fits, predictor scoring (pool and local picks),
        # the strategy's proposals and the benchmark's evaluations (true queries).
        self.timers = {"fit_s": 0.0, "score_s": 0.0, "strategy_s": 0.0, "evaluate_s": 0.0}
        self.t_start = time.perf_counter()
        self.t_live: float | None = None if journal else self.t_start
        self.time_offset = journal[-1].time if journal else 0.0

    # --- main flow -----------------------------------------------------------------------------------
    def run(self) -> None:
        if len(self.journal) >= self.budget.n_queries:  # a finished run killed before its summary
            for rec in self.journal[: self.budget.n_queries]:
                self._accept(rec)
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
            if self.budget.used_queries < self.budget.n_queries:
                self.stopped = "cost" if self.budget.used_cost >= self.budget.max_cost else "time"
        self._emit("done")

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
        proposals = self._fresh(self.strategy.ask(1))
        if not proposals:
            proposals = unseen_samples(self.space, self._round_rng(self.round), 1, exclude=self.seen)
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
            i = select(near_mean, near_std, 1, rule=self.cfg.acquisition, beta=self.cfg.ucb_beta, rng=rng)[0]
            done.append(self._pick_and_query(near[i], float(near_mean[i]), float(near_std[i])))
        # The rest from the whole pool, by the scores of the round's start (the predictor is unchanged).
        rest = [i for i, arch in enumerate(pool) if arch not in self.seen]
        n_rest = min(k - len(done), len(rest))
        ranked = [rest[i] for i in select(mean[rest], std[rest], len(rest), rule=self.cfg.acquisition,
                                            beta=self.cfg.ucb_beta, rng=rng)] if n_rest > 0 else []
        for i in self._prefer_new_classes(ranked, pool, n_rest):
            if self.budget.exhausted:
                break
            done.append(self._pick_and_query(pool[i], float(mean[i]), float(std[i])))
        for arch in pool:  # turned down: the strategy learns nothing from these
            if arch not in self.seen:
                self.strategy.discard(arch)
        self.pairs += [p for p in done if math.isfinite(p[1])]
        self._log_round(self.round, n_pool=len(pool), picks=done)
        return len(done)

    def _round_pool(self, rng: np.random.Generator) -> tuple[list[Hashable], int]:
        """The round's candidates (the strategy's proposals, or every unqueried cell under
        ``n_pool="all"``) and how many picks the round makes."""
        t0 = time.perf_counter()
        if self.cfg.n_pool == "all":
            pool = [a for a in self.space.enumerate() if a not in self.seen]
        else:
            pool = self._fresh(self.strategy.ask(self.cfg.n_pool))
        k = min(self.cfg.n_per_round, self.budget.remaining)
        if len(pool) < k:  # a strategy short of ideas: top up with random unseen cells
            pool += unseen_samples(self.space, rng, k - len(pool), exclude={*self.seen, *pool})
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
        ranked = sorted((r for r in self.records if math.isfinite(self._value(r))),
                        key=lambda r: (self._feasible(r), self._value(r)), reverse=True)
        for rec in ranked:
            near = [a for a in self._neighbours(self.space.from_str(rec.arch))
                    if a not in self.seen and self._new_class(a)]
            if near:
                return near
        return []

    def _class(self, arch: Hashable) -> Hashable:
        out = self.class_cache.get(arch)
        if out is None:
            out = self.class_cache[arch] = self.space.canonical(arch)
        return out

    def _new_class(self, arch: Hashable) -> bool:
        """Whether ``arch`` may be picked: with ``skip_equivalent``, no queried architecture is
        equivalent to it (the same function under another labelling, by ``space.canonical``)."""
        return not self.skip_equivalent or self._class(arch) not in self.seen_classes

    def _prefer_new_classes(self, ranked: list[int], pool: list[Hashable], n: int) -> list[int]:
        """The first ``n`` of the pool indices ``ranked`` (best first), passing over architectures
        equivalent to a queried one or to an earlier pick; those fill up only when nothing else is left."""
        if not self.skip_equivalent:
            return ranked[:n]
        picks: list[int] = []
        taken: set[Hashable] = set()
        for i in ranked:
            if len(picks) == n:
                return picks
            cls = self._class(pool[i])
            if cls not in self.seen_classes and cls not in taken:
                picks.append(i)
                taken.add(cls)
        chosen = set(picks)
        return picks + [i for i in ranked if i not in chosen][: n - len(picks)]

    def _neighbours(self, arch: Hashable) -> tuple[Hashable, ...]:
        """``space.neighbours(arch)`` without repeats, in the space's order (ties in the picks depend on
        it), computed once per architecture."""
        out = self.neighbour_cache.get(arch)
        if out is None:
            out = self.neighbour_cache[arch] = tuple(dict.fromkeys(self.space.neighbours(arch)))
        return out

    def _replay_round(self, pool: list[Hashable], journaled: list[Record]) -> int:
        """A round the history holds completely: the strategy sees what it saw, the predictor rests."""
        in_pool = set(pool)
        done = []
        for rec in journaled:
            arch = self.space.from_str(rec.arch)
            # A pick came from the pool or, as a local pick, from the neighbours of a cell seen before it.
            if arch not in in_pool and not any(arch in self._neighbours(seen) for seen in self.seen):
                raise ConfigError(
                    f"resume diverged in round {self.round}: the history's {rec.arch} is neither among the "
                    "candidates the strategy proposes now nor next to a queried architecture; the data or "
                    "code changed since the run started, so start a new run"
                )
            self._tell(arch, self._query(arch, round_=self.round))
            if rec.predicted_mean is not None:
                done.append((float(rec.predicted_mean), self._value(rec)))
        for arch in pool:
            if arch not in self.seen:
                self.strategy.discard(arch)
        self.pairs += [p for p in done if math.isfinite(p[1])]
        self._log_round(self.round, n_pool=len(pool), picks=done)
        return len(journaled)

    # --- pieces ----------------------------------------------------------------------------------------
    def _journaled_round(self) -> list[Record] | None:
        """The current round's records when the journal holds all of them (``None`` otherwise)."""
        start = len(self.records)
        k = min(self.cfg.n_per_round, self.budget.remaining)
        rows = [r for r in self.journal[start : start + k] if r.round == self.round]
        return rows if rows and len(rows) == k else None

    def _maybe_fit(self, *, defer: bool = False) -> None:
        """Plan a fit when one is due; run it now unless the round is replayed from the journal."""
        n = sum(math.isfinite(self._value(r)) for r in self.records)
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
            self.columns.ensure(self.fit_plan, [r for r in self.records if math.isfinite(self._value(r))])
            self.timers["fit_s"] += time.perf_counter() - t0
        if self.fits_done == target:
            return
        if self.fits_done == 0 and self.snapshots is not None:
            # Only a resumed run can find a snapshot ahead of its predictor, and only before its first
            # fit here; later snapshots are this engine's own saves.
            self.fits_done = self.snapshots.load_into(self.predictor, target)
        train = [r for r in self.records if math.isfinite(self._value(r))]
        for i in range(self.fits_done, target):
            rows = train[: self.fit_plan[i]]
            self._emit("fit")
            t0 = time.perf_counter()
            graphs = [self._graph(self.space.from_str(r.arch)) for r in rows]
            self.predictor.fit(graphs, np.array([self._value(r) for r in rows]))
            self.timers["fit_s"] += time.perf_counter() - t0
            self.fits_done = i + 1
            if self.snapshots is not None:
                self.snapshots.save(self.fits_done, self.predictor)

    def _query(self, arch: Hashable, *, round_: int, mean: float | None = None, std: float | None = None) -> Record:
        """The true result of ``arch``: from the history when known (never charged twice)."""
        if arch in self.seen:
            return self.seen[arch]
        key = self.space.to_str(arch)
        n = len(self.records)
        if n < len(self.journal):  # replaying a resumed run: the file holds the answer
            rec = self.journal[n]
            if rec.arch != key or rec.round != round_:
                raise ConfigError(
                    f"resume diverged at query {n + 1}: the run now picks {key} in round {round_}, the "
                    f"history has {rec.arch} in round {rec.round}; the data or code changed since the "
                    "run started, so start a new run"
                )
            self.budget.charge(rec.cost)
            self._accept(rec, replay=True)
            return rec
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
        if self.history_writer is not None:
            self.history_writer.append(rec.to_json())
        self._accept(rec)
        return rec

    def _accept(self, rec: Record, *, replay: bool = False) -> None:
        self.records.append(rec)
        arch = self.space.from_str(rec.arch)
        self.seen[arch] = rec
        if self.skip_equivalent:
            self.seen_classes.add(self._class(arch))
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

    def _fresh(self, proposals: list[Hashable]) -> list[Hashable]:
        out = [a for a in dict.fromkeys(proposals) if a not in self.seen]
        if len(out) < len(proposals):
            log.debug("dropped %d repeated or already-queried proposals", len(proposals) - len(out))
        return out

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
            "fit_s": round(self.logged_fit_s + self.timers["fit_s"], 4),
        }
        log.info("round %d: %d queries, best %s, tau %s", round_, row["n_queries"], row["best"], row["tau_cum"])
        if self.rounds_writer is not None and round_ > self.logged_rounds:
            self.rounds_writer.append(row)
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


