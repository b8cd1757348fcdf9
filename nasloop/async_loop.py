"""The asynchronous driver: ``N`` evaluations in flight, results taken in completion order.

One driver serves every parallel executor (a simulated one on tables, a Dask cluster). Each time a
worker is free the driver picks the next architecture at once and submits it; each result is written
to ``history.jsonl`` the moment it arrives, with its submission number, the worker, and its start
and finish times (simulated or wall-clock seconds since the run started).

The pick policy is the serial one (:class:`~nasloop.round_policy.RoundPolicy`), made pending-aware
by what the driver passes it: pending cells count as taken, their classes as queried ones:

* Warm-up: random cells (the serial warm-up's ``n_warmup`` first, then further random ones while
  fewer than ``n_warmup`` results are back, so no worker waits for the first fit).
* A round of ``n_per_round`` picks starts when the last one's picks are all submitted: the
  predictor is refitted when ``refit_every`` new true results arrived since its last fit (else the
  last fitted one keeps picking), the strategy proposes the pool, the predictor scores it. On a real
  executor the fit runs in a background thread on a copy of the predictor, so dispatch never waits
  for it; in a simulation it runs in line (no simulated time), so the history is reproducible.
* Local picks (the first ``n_local`` of a round) are made at dispatch time among the unqueried
  neighbours of the best result so far; pending cells (and their equivalence classes) count as taken.
* Pool picks follow the acquisition ranking, passing over cells that are pending, equivalent to a
  queried or pending cell, or a neighbour of a pending cell (a local-penalisation batch rule, see
  docs/decisions.md); when only such cells are left they are taken in ranked order.
* Strategies are told true results only; TPE keeps its pending proposals as RUNNING trials, which
  its constant liar treats as pending.

With one worker and no failures this is the serial policy: the simulated history with
``workers=1`` picks the architectures the serial loop picks, in the same order.

Faults: an outcome marked ``lost`` (the worker died) is submitted again, at most ``max_retries``
times, and charged once when it finally completes; an evaluation that raised (or timed out) is a
failed query: recorded with ``status`` and the error's last line, charged, never picked again.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from nasloop.engine import SearchEngine
from nasloop.strategies.base import unseen_samples
from nasloop.types import Evaluation, Record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One submitted evaluation.

    Attributes:
        number: 1-based submission number (a retry keeps it).
        arch / key: the architecture and its string.
        round: the pick's round (0 = warm-up).
        mean / std: the predictor's score when it was picked, if any.
        attempt: 1 for the first submission, 2 for the first retry, ...
    """

    number: int
    arch: Hashable
    key: str
    round: int
    mean: float | None = None
    std: float | None = None
    attempt: int = 1


@dataclass(frozen=True)
class Outcome:
    """What an executor reports for a job: its evaluation, or the error's last line, or ``lost``."""

    job: Job
    evaluation: Evaluation | None
    worker: str
    start: float
    finish: float
    error: str | None = None
    lost: bool = False


@dataclass
class _Round:
    """The picks still to make in the current round and its scored pool (ranked on first use)."""

    pool: list[Hashable]
    mean: np.ndarray
    std: np.ndarray
    rng: np.random.Generator
    local_left: int
    left: int
    ranked: list[int] | None = None
    cursor: int = 0
    pairs: list[tuple[float, float]] = field(default_factory=list)


class AsyncSearchEngine(SearchEngine):
    """A :class:`SearchEngine` whose queries go to ``executor``, ``executor.n_workers`` at a time.

    Args:
        executor: a :class:`nasloop.executors.Executor` (simulated or Dask).
        max_retries: resubmissions of an evaluation whose worker died.
        Others as :class:`SearchEngine`; the store journals the submissions (``submitted.jsonl``) and
        on resume hands back what a killed driver had in flight (submitted again first).
    """

    def __init__(self, *, executor: Any, max_retries: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.executor = executor
        self.max_retries = max_retries
        self.in_flight_jobs: list[Job] = []  # built from the store's in_flight once the journal is known
        self.pending: dict[Hashable, Job] = {}
        self.pending_classes: Counter[Hashable] = Counter()
        self.near_pending: Counter[Hashable] = Counter()  # neighbours of pending cells (with repeats)
        self.n_submitted = 0
        self.plan: _Round | None = None
        self.warmup: list[Hashable] | None = None
        self.busy_s = 0.0  # worker time spent evaluating
        self.retries = 0
        self.space_exhausted = False
        # A simulated run is replayed on resume (the journal checks every completion); a real one
        # takes its journal as known results and goes on.
        self.replay = bool(getattr(executor, "simulated", False))
        # Real runs fit in a background thread: dispatch never waits for a fit, the last fitted
        # predictor keeps picking. (Simulated fits take no simulated time; they run in line.)
        self.background_fits = not self.replay and self.predictor is not None
        self.fit_thread: Any = None
        self.fit_box: dict[str, Any] = {}

    # --- main flow -----------------------------------------------------------------------------------
    def run(self) -> None:
        if self._finished_before():
            return
        self._emit("start")
        if not self.replay:
            self._absorb_journal()
        try:
            while True:
                self._fill()
                if not self.pending:
                    break
                for outcome in self.executor.wait():
                    self._complete(outcome)
        finally:
            self.executor.close()
            if self.fit_thread is not None:
                self._collect_fit(wait=True)
        if self.space_exhausted and self.budget.used_queries < self.budget.n_queries:
            self.stopped = "space exhausted"
        else:
            self._stopped_early()
        if self.plan is not None:
            self._close_round()
        self._emit("done")

    def _absorb_journal(self) -> None:
        """A resumed real run: the finished results are known; what was in flight goes out again first."""
        journal = self.store.journal
        for rec in journal:
            self.budget.charge(rec.cost)
            self._accept(rec, replay=True)
            self._tell(self.space.from_str(rec.arch), rec)
            self.busy_s += float(rec.extra.get("finish", 0.0)) - float(rec.extra.get("start", 0.0))
        if journal:
            self.n_submitted = max(int(r.extra.get("submitted", r.number)) for r in journal)
        queued: set[Hashable] = set()
        for row in self.store.in_flight:  # a row may repeat: a resume submits what was in flight again
            arch = self.space.from_str(row["arch"])
            if arch in self.seen or arch in queued:
                continue
            queued.add(arch)
            self.n_submitted = max(self.n_submitted, int(row["submitted"]))
            self.in_flight_jobs.append(Job(number=int(row["submitted"]), arch=arch, key=row["arch"],
                                           round=int(row.get("round", 0)), mean=row.get("predicted_mean"),
                                           std=row.get("predicted_std")))
        self.round = max((r.round for r in journal), default=0)

    def _fill(self) -> None:
        """Submit picks until every worker is busy or the budget (counting what is in flight) is spent."""
        while len(self.pending) < self.executor.n_workers and not self.space_exhausted:
            if self.budget.used_queries + len(self.pending) >= self.budget.n_queries or self.budget.exhausted:
                return
            job = self.in_flight_jobs.pop(0) if self.in_flight_jobs else self._next_job()
            if job is None:
                self.space_exhausted = True
                log.warning("no unqueried architecture left; stopping after %d queries", len(self.records))
                return
            self._submit(job)

    def _submit(self, job: Job) -> None:
        self.pending[job.arch] = job
        if self.policy.skip_equivalent:
            self.pending_classes[self.policy.cls(job.arch)] += 1
        self.near_pending.update(self.policy.neighbours(job.arch))
        if job.attempt == 1:
            self.store.append_submission({"submitted": job.number, "arch": job.key, "round": job.round,
                                            "predicted_mean": job.mean, "predicted_std": job.std})
        self.executor.submit(job)

    def _release(self, job: Job) -> None:
        del self.pending[job.arch]
        if self.policy.skip_equivalent:
            self.pending_classes.subtract([self.policy.cls(job.arch)])
        self.near_pending.subtract(self.policy.neighbours(job.arch))

    def _complete(self, out: Outcome) -> None:
        job = out.job
        self.busy_s += max(out.finish - out.start, 0.0)
        if out.lost and job.attempt <= self.max_retries:
            self.retries += 1
            log.warning("worker %s lost %s; submitting it again (attempt %d)", out.worker, job.key, job.attempt + 1)
            self.executor.submit(replace(job, attempt=job.attempt + 1))
            return
        self._release(job)
        if out.lost:
            out = replace(out, error=f"worker lost {job.attempt} times")
        rec = self._record(out)
        # Resuming a simulated run: the file holds the answer.
        known = self.store.completed(len(self.records), rec.arch, job.number) if self.replay else None
        if known is not None:
            self.budget.charge(known.cost)
            self._accept(known, replay=True)
        else:
            self.budget.charge(rec.cost)
            rec = replace(rec, cum_cost=self.budget.used_cost)
            self.store.append_record(rec)
            self._accept(rec)
        self._tell(job.arch, rec)
        if job.mean is not None and math.isfinite(self._value(rec)):
            self.pairs.append((float(job.mean), self._value(rec)))
            if self.plan is not None:
                self.plan.pairs.append((float(job.mean), self._value(rec)))

    def _record(self, out: Outcome) -> Record:
        job, ev = out.job, out.evaluation
        failed = ev is None
        extra: dict[str, Any] = {"submitted": job.number, "worker": out.worker, "start": round(out.start, 6),
                                 "finish": round(out.finish, 6), "status": "failed" if failed else "ok"}
        if job.attempt > 1:
            extra["attempts"] = job.attempt
        if failed:
            extra["error"] = out.error or "evaluation failed"
        return Record(number=len(self.records) + 1, round=job.round, arch=job.key,
                      metrics={} if failed else ev.metrics, cost=0.0 if failed else ev.cost,
                      predicted_mean=job.mean, predicted_std=job.std, time=round(out.finish, 6), extra=extra)

    # --- fits in the background (real runs) ---------------------------------------------------------------
    def _ensure_fitted(self) -> None:
        if not self.background_fits:
            super()._ensure_fitted()
            return
        self._collect_fit()
        target = len(self.fit_plan)
        if self.fits_done == target or self.fit_thread is not None:
            return  # up to date, or a fit is under way: the next round looks again
        import copy
        import threading
        import time

        # On the latest training set only: fits planned while another ran are folded into this one.
        rows = self._training_rows()[: self.fit_plan[-1]]
        graphs = [self._graph(self.space.from_str(r.arch)) for r in rows]
        y = np.array([self._value(r) for r in rows])
        candidate = copy.deepcopy(self.predictor)
        box: dict[str, Any] = {"target": target}

        def fit() -> None:
            t0 = time.perf_counter()
            try:
                box["predictor"] = candidate.fit(graphs, y) or candidate
            except BaseException as exc:  # raised in the driver when collected
                box["error"] = exc
            box["seconds"] = time.perf_counter() - t0

        self._emit("fit")
        self.fit_box = box
        self.fit_thread = threading.Thread(target=fit, name="nasloop-fit", daemon=True)
        self.fit_thread.start()

    def _collect_fit(self, *, wait: bool = False) -> None:
        """Take the background fit's predictor once it is done (``wait``: wait for it)."""
        thread = self.fit_thread
        if thread is None:
            return
        if wait:
            thread.join()
        if thread.is_alive():
            return
        box, self.fit_thread = self.fit_box, None
        self.timers["fit_s"] += box.get("seconds", 0.0)
        if "error" in box:
            raise box["error"]
        self.predictor, self.fits_done = box["predictor"], box["target"]

    # --- the pick policy -------------------------------------------------------------------------------
    def _taken(self, arch: Hashable) -> bool:
        return arch in self.seen or arch in self.pending

    def _local_candidates(self) -> list[Hashable]:
        """Untaken neighbours of the best architecture that has any, where a pending pick counts with
        the predictor's mean as its believed value (kriging believer): while a promising pick is out,
        the next local picks already search around it instead of using up the incumbent's whole
        neighbourhood. Cells equivalent to a pending one count as taken."""
        believed = [(True, v, r.arch) for r in self.records if math.isfinite(v := self._value(r))]
        believed += [(True, float(job.mean), job.key) for job in self.pending.values()
                     if job.mean is not None and math.isfinite(job.mean)]
        return self.policy.local_candidates(self.policy.incumbents(believed), self._taken, self.pending_classes)

    def _next_job(self) -> Job | None:
        self.n_submitted += 1
        number = self.n_submitted
        if self.predictor is None:
            picked = self._plain_pick()
            return None if picked is None else self._job(number, picked, self.round)
        n_finite = sum(math.isfinite(self._value(r)) for r in self.records)
        if self.background_fits:
            self._collect_fit()
            if self.fits_done == 0 and self.fit_thread is None and n_finite >= min(self.cfg.n_warmup,
                                                                                    self.budget.n_queries):
                self._maybe_fit()  # the first fit starts; random cells keep the workers busy meanwhile
        if self.fits_done == 0 and (n_finite < min(self.cfg.n_warmup, self.budget.n_queries) or self.background_fits):
            arch = self._warmup_pick(number)
            return None if arch is None else self._job(number, arch, 0)
        for _ in range(2):  # a finished round gives way to a new one
            if self.plan is None or self.plan.left == 0:
                if not self._new_round():
                    return None
            picked = self._round_pick()
            if picked is not None:
                arch, mean, std = picked
                return self._job(number, arch, self.round, mean, std)
            self.plan.left = 0
        return None

    def _job(self, number: int, arch: Hashable, round_: int, mean: float | None = None,
             std: float | None = None) -> Job:
        return Job(number=number, arch=arch, key=self.space.to_str(arch), round=round_, mean=mean, std=std)

    def _plain_pick(self) -> Hashable | None:
        import time

        self.round += 1
        t0 = time.perf_counter()
        proposals = self.policy.plain_proposals(self.strategy.ask, self._round_rng(self.round),
                                                {*self.seen, *self.pending})
        self.timers["strategy_s"] += time.perf_counter() - t0
        return proposals[0] if proposals else None

    def _warmup_pick(self, number: int) -> Hashable | None:
        if self.warmup is None:  # the serial warm-up's cells, in its order
            n = min(self.cfg.n_warmup, self.budget.n_queries)
            self.warmup = unseen_samples(self.space, self._round_rng(0), n, exclude=self.seen)
        while self.warmup:
            arch = self.warmup.pop(0)
            if not self._taken(arch):
                return arch
        # More workers than warm-up cells: keep them busy with random cells until the first fit.
        more = unseen_samples(self.space, np.random.default_rng([self.loop_seed, 0, number]), 1,
                              exclude={*self.seen, *self.pending})
        return more[0] if more else None

    def _new_round(self) -> bool:
        """Close the current round, refit when due, and score a new pool; False when nothing is left."""
        import time

        if self.plan is not None:
            self._close_round()
        self.round += 1
        self._maybe_fit()
        rng = self._round_rng(self.round)
        t0 = time.perf_counter()
        k = min(self.cfg.n_per_round, self.budget.remaining)
        pool = self.policy.round_pool(self.strategy.ask, k, rng, {*self.seen, *self.pending})
        self.timers["strategy_s"] += time.perf_counter() - t0
        mean, std = self._score(pool)
        self.plan = _Round(pool=pool, mean=mean, std=std, rng=rng, local_left=min(self.cfg.n_local, k), left=k)
        return bool(pool) or bool(self.cfg.n_local and self._local_candidates())

    def _close_round(self) -> None:
        plan = self.plan
        for arch in plan.pool:  # turned down: the strategy learns nothing from these
            if arch not in self.seen and arch not in self.pending:
                self.strategy.discard(arch)
        self._log_round(self.round, n_pool=len(plan.pool), picks=plan.pairs)
        self.plan = None

    def _round_pick(self) -> tuple[Hashable, float, float] | None:
        plan = self.plan
        plan.left -= 1
        if plan.local_left > 0:
            plan.local_left -= 1
            near = self._local_candidates()
            if near:
                near_mean, near_std = self._score(near)
                i = self.policy.pick_one(near_mean, near_std, plan.rng)
                return near[i], float(near_mean[i]), float(near_std[i])
        return self._pool_pick(plan)

    def _pool_pick(self, plan: _Round) -> tuple[Hashable, float, float] | None:
        """The best-ranked pool cell that is untaken, of a new class and not next to a pending cell;
        when none is left, the best-ranked untaken one."""
        if plan.ranked is None:
            plan.ranked = self.policy.rank(plan.pool, plan.mean, plan.std, plan.rng, self._taken)
        i = self.policy.next_pool_pick(plan.ranked, plan.pool, self._taken, self.pending_classes, self.near_pending)
        return None if i is None else (plan.pool[i], float(plan.mean[i]), float(plan.std[i]))

    # --- what summary.json adds ----------------------------------------------------------------------
    def parallel_summary(self) -> dict[str, Any]:
        """Workers, time to the best result, makespan and the idle share of worker time."""
        finishes = [float(r.extra.get("finish", r.time)) for r in self.records]
        makespan = max(finishes, default=0.0)
        n = self.executor.n_workers
        capacity = n * makespan
        best = self.best
        return {
            "workers": n,
            "simulated": bool(getattr(self.executor, "simulated", False)),
            "time_to_best": None if best is None else float(best.extra.get("finish", best.time)),
            "makespan": round(makespan, 6),
            "busy": round(self.busy_s, 6),
            "idle_share": round(1.0 - self.busy_s / capacity, 6) if capacity > 0 else None,
            "retries": self.retries,
            "failed": sum(1 for r in self.records if r.extra.get("status") == "failed"),
        }
