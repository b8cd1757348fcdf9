"""The round policy: which architectures a round considers and which it picks. Pure decisions.

Given the space, the loop settings and the state it is handed (what is taken, the scores, the
round's generator), the policy answers:

* the round's pool: the strategy's proposals, or every unqueried cell under ``n_pool="all"``,
  topped up with random unseen cells when the strategy runs short (:meth:`RoundPolicy.round_pool`);
* local candidates: the untaken neighbours of the best architecture that has any
  (:meth:`RoundPolicy.local_candidates`);
* the acquisition choice among scored candidates (:meth:`RoundPolicy.pick_one`, :meth:`RoundPolicy.rank`);
* equivalence classes (``skip_equivalent``): picks pass over architectures computing the same
  function as a queried one (by ``space.canonical``), and prefer new classes
  (:meth:`RoundPolicy.prefer_new_classes`, :meth:`RoundPolicy.next_pool_pick`).

The policy owns only caches (canonical forms, neighbour lists) and the set of queried classes; it
reads no files, calls no benchmark and fits nothing, so it is tested on a tiny space with a fake
predictor (tests/test_round_policy.py). The serial driver and the parallel one use the same methods:
the parallel one passes ``taken`` (queried *or* pending) and the classes of pending cells, which is
all that makes the policy pending-aware.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from typing import Any

import numpy as np

from nasloop.acquisition import select
from nasloop.search_config import SearchConfig
from nasloop.strategies.base import unseen_samples

log = logging.getLogger(__name__)

Taken = Callable[[Hashable], bool]


class RoundPolicy:
    """The pick decisions of one run.

    Args:
        space: the search space (``neighbours``, ``canonical``, ``enumerate``, ``from_str``).
        cfg: the loop settings (``n_pool``, ``n_local``, ``acquisition``, ``ucb_beta``).
        skip_equivalent: pass over architectures equivalent to a queried (or pending) one.
    """

    def __init__(self, space: Any, cfg: SearchConfig, *, skip_equivalent: bool) -> None:
        self.space, self.cfg, self.skip_equivalent = space, cfg, skip_equivalent
        self.seen_classes: set[Hashable] = set()
        # Canonical forms cost milliseconds on NB101; neighbour lists are asked for again and again.
        self.class_cache: dict[Hashable, Hashable] = {}
        self.neighbour_cache: dict[Hashable, tuple[Hashable, ...]] = {}

    # --- what the driver tells it -----------------------------------------------------------------------
    def note_queried(self, arch: Hashable) -> None:
        """``arch`` has a true result: its equivalence class is taken."""
        if self.skip_equivalent:
            self.seen_classes.add(self.cls(arch))

    # --- equivalence classes and neighbours -----------------------------------------------------------
    def cls(self, arch: Hashable) -> Hashable:
        out = self.class_cache.get(arch)
        if out is None:
            out = self.class_cache[arch] = self.space.canonical(arch)
        return out

    def open_class(self, arch: Hashable, busy: Mapping[Hashable, int] | None = None) -> bool:
        """Whether ``arch`` may be picked: with ``skip_equivalent``, no queried architecture (and no
        pending one, whose classes ``busy`` counts) is equivalent to it."""
        if not self.skip_equivalent:
            return True
        cls = self.cls(arch)
        return cls not in self.seen_classes and not (busy and busy.get(cls, 0) > 0)

    def neighbours(self, arch: Hashable) -> tuple[Hashable, ...]:
        """``space.neighbours(arch)`` without repeats, in the space's order (ties in the picks depend on
        it), computed once per architecture."""
        out = self.neighbour_cache.get(arch)
        if out is None:
            out = self.neighbour_cache[arch] = tuple(dict.fromkeys(self.space.neighbours(arch)))
        return out

    # --- the pool -------------------------------------------------------------------------------------------
    @staticmethod
    def fresh(proposals: Iterable[Hashable], exclude: Collection[Hashable]) -> list[Hashable]:
        """``proposals`` without repeats and without the architectures in ``exclude``."""
        proposals = list(proposals)
        out = [a for a in dict.fromkeys(proposals) if a not in exclude]
        if len(out) < len(proposals):
            log.debug("dropped %d repeated or already-queried proposals", len(proposals) - len(out))
        return out

    def plain_proposals(self, ask: Callable[[int], list[Hashable]], rng: np.random.Generator,
                        exclude: Collection[Hashable]) -> list[Hashable]:
        """A round without a predictor: the strategy's proposal, or a random unseen cell."""
        proposals = self.fresh(ask(1), exclude)
        return proposals or unseen_samples(self.space, rng, 1, exclude=exclude)

    def round_pool(self, ask: Callable[[int], list[Hashable]], k: int, rng: np.random.Generator,
                   exclude: Collection[Hashable]) -> list[Hashable]:
        """The round's candidates: the strategy's proposals (``ask(n_pool)``), or every cell not in
        ``exclude`` under ``n_pool="all"``; topped up to ``k`` with random cells when short."""
        if self.cfg.n_pool == "all":
            pool = [a for a in self.space.enumerate() if a not in exclude]
        else:
            pool = self.fresh(ask(self.cfg.n_pool), exclude)
        if len(pool) < k:  # a strategy short of ideas: top up with random unseen cells
            pool += unseen_samples(self.space, rng, k - len(pool), exclude={*exclude, *pool})
        return pool

    # --- local picks ------------------------------------------------------------------------------------------
    @staticmethod
    def incumbents(results: Iterable[tuple[bool, float, str]]) -> list[str]:
        """Architecture strings of ``(feasible, value, arch)`` results, best first (feasible before
        infeasible; ties keep the given order)."""
        return [key for _, _, key in sorted(results, key=lambda r: (r[0], r[1]), reverse=True)]

    def local_candidates(self, incumbents: Iterable[str], taken: Taken,
                         busy: Mapping[Hashable, int] | None = None) -> list[Hashable]:
        """The untaken neighbours of an open class of the first of ``incumbents`` (best first) that has
        any; none when no incumbent has."""
        for key in incumbents:
            near = [a for a in self.neighbours(self.space.from_str(key)) if not taken(a) and self.open_class(a, busy)]
            if near:
                return near
        return []

    # --- acquisition ----------------------------------------------------------------------------------------------
    def pick_one(self, mean: np.ndarray, std: np.ndarray, rng: np.random.Generator) -> int:
        """The index of the acquisition rule's choice among scored candidates."""
        return int(select(mean, std, 1, rule=self.cfg.acquisition, beta=self.cfg.ucb_beta, rng=rng)[0])

    def rank(self, pool: list[Hashable], mean: np.ndarray, std: np.ndarray, rng: np.random.Generator,
             taken: Taken) -> list[int]:
        """The pool indices of the untaken cells, best first by the acquisition rule."""
        rest = [i for i, arch in enumerate(pool) if not taken(arch)]
        if not rest:
            return []
        order = select(mean[rest], std[rest], len(rest), rule=self.cfg.acquisition, beta=self.cfg.ucb_beta, rng=rng)
        return [rest[i] for i in order]

    def prefer_new_classes(self, ranked: list[int], pool: list[Hashable], n: int) -> list[int]:
        """The first ``n`` of the pool indices ``ranked`` (best first), passing over architectures
        equivalent to a queried one or to an earlier pick; those fill up only when nothing else is left."""
        if not self.skip_equivalent:
            return ranked[:n]
        picks: list[int] = []
        chosen_classes: set[Hashable] = set()
        for i in ranked:
            if len(picks) == n:
                return picks
            cls = self.cls(pool[i])
            if cls not in self.seen_classes and cls not in chosen_classes:
                picks.append(i)
                chosen_classes.add(cls)
        chosen = set(picks)
        return picks + [i for i in ranked if i not in chosen][: n - len(picks)]

    def next_pool_pick(self, ranked: list[int], pool: list[Hashable], taken: Taken,
                       busy: Mapping[Hashable, int], near_busy: Mapping[Hashable, int]) -> int | None:
        """One pick at a time with picks pending (parallel runs): the best-ranked untaken pool cell of an
        open class and not next to a pending cell (``near_busy`` counts them); when none is left, the
        best-ranked untaken one (``None``: the pool is used up)."""
        fallback = None
        for i in ranked:
            arch = pool[i]
            if taken(arch):
                continue
            if fallback is None:
                fallback = i
            if self.open_class(arch, busy) and near_busy.get(arch, 0) <= 0:
                return i
        return fallback
