"""The round policy alone: a 4×3 space, a fake predictor (score = a + b/10), no files, no benchmark."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from nasloop.round_policy import RoundPolicy
from nasloop.search_config import SearchConfig
from nasloop.space import SearchSpace
from nasloop.types import ArchGraph


class GridSpace(SearchSpace):
    """Cells (a, b) with a in 0..3 and b in 0..2; b = 1 and b = 2 compute the same function."""

    name = "grid"

    def __init__(self) -> None:
        self.neighbour_calls: Counter = Counter()

    def param_choices(self):
        return {"a": [0, 1, 2, 3], "b": [0, 1, 2]}

    def to_params(self, arch):
        return {"a": arch[0], "b": arch[1]}

    def from_params(self, params):
        return (params["a"], params["b"])

    def to_graph(self, arch, kind=None):
        return ArchGraph(ops=(0, 1 + arch[0], 5 + arch[1]), edges=((0, 1), (1, 2)), vocab=tuple("abcdefgh"))

    def neighbours(self, arch):
        self.neighbour_calls[arch] += 1
        return super().neighbours(arch)

    def enumerate(self):
        return iter([(a, b) for a in range(4) for b in range(3)])

    def __len__(self):
        return 12

    def canonical(self, arch):
        return (arch[0], min(arch[1], 1))


def fake_scores(archs):
    """The fake predictor: mean a + b/10, no uncertainty."""
    mean = np.array([a + b / 10 for a, b in archs], dtype=np.float64)
    return mean, np.zeros_like(mean)


def policy(skip_equivalent=True, **cfg):
    return RoundPolicy(GridSpace(), SearchConfig(n_per_round=2, n_pool=cfg.pop("n_pool", 4), **cfg),
                       skip_equivalent=skip_equivalent)


def rng():
    return np.random.default_rng(0)


def test_the_pool_is_the_strategys_fresh_proposals_topped_up_with_unseen_cells():
    p = policy()
    seen = {(0, 0): None, (1, 1): None}
    asked = []

    def ask(n):
        asked.append(n)
        return [(3, 2), (0, 0), (3, 2), (2, 0)]

    assert p.round_pool(ask, 2, rng(), seen) == [(3, 2), (2, 0)]
    assert asked == [4]  # n_pool proposals
    short = p.round_pool(lambda n: [(3, 2)], 5, rng(), seen)
    assert short[0] == (3, 2) and len(short) == 5 and len(set(short)) == 5
    assert not set(short) & set(seen)


def test_n_pool_all_takes_every_unseen_cell_in_the_spaces_order_without_asking():
    p = policy(n_pool="all")
    pool = p.round_pool(lambda n: pytest.fail("the strategy is not asked"), 2, rng(), {(0, 0), (0, 1)})
    assert pool == [(a, b) for a in range(4) for b in range(3)][2:]


def test_a_round_without_predictor_takes_the_proposal_or_a_random_unseen_cell():
    p = policy()
    assert p.plain_proposals(lambda n: [(1, 0)], rng(), set()) == [(1, 0)]
    every_but_one = {cell for cell in GridSpace().enumerate() if cell != (2, 2)}
    assert p.plain_proposals(lambda n: [(1, 0)], rng(), every_but_one) == [(2, 2)]


def test_local_candidates_are_the_untaken_open_neighbours_of_the_best_incumbent_that_has_any():
    p = policy()
    incumbents = p.incumbents([(True, 0.5, "a=1;b=0"), (False, 0.9, "a=3;b=0"), (True, 0.7, "a=2;b=0")])
    assert incumbents == ["a=2;b=0", "a=1;b=0", "a=3;b=0"]  # feasible first, then by value
    taken = {(2, 0), (1, 0), (3, 0)}
    for arch in taken:
        p.note_queried(arch)
    near = p.local_candidates(incumbents, taken.__contains__)
    assert near == [(0, 0), (2, 1), (2, 2)]  # the space's order; no repeats
    # (2, 1) pending: its class (and (2, 2)'s) is busy, and it is taken
    busy = Counter({p.cls((2, 1)): 1})
    assert p.local_candidates(incumbents, {*taken, (2, 1)}.__contains__, busy) == [(0, 0)]
    # every neighbour of the best taken: the next incumbent's
    all_near_best = {*taken, (0, 0), (2, 1), (2, 2)}
    assert p.local_candidates(incumbents, all_near_best.__contains__) == [(1, 1), (1, 2)]


def test_equivalent_cells_are_passed_over_only_while_something_else_is_left():
    p = policy()
    pool = [(3, 1), (3, 2), (2, 1), (1, 0)]
    mean, std = fake_scores(pool)
    ranked = p.rank(pool, mean, std, rng(), lambda a: False)
    assert ranked == [1, 0, 2, 3]  # greedy: best mean first
    assert p.prefer_new_classes(ranked, pool, 2) == [1, 2]  # (3, 1) is (3, 2)'s class
    p.note_queried((2, 2))
    assert p.prefer_new_classes(ranked, pool, 2) == [1, 3]
    assert p.prefer_new_classes(ranked, pool, 4) == [1, 3, 0, 2]  # the equivalent ones fill up last
    assert policy(skip_equivalent=False).prefer_new_classes(ranked, pool, 2) == [1, 0]


def test_a_pending_aware_pick_skips_taken_busy_and_near_pending_cells_then_falls_back():
    p = policy()
    pool = [(3, 2), (3, 0), (2, 2), (0, 0)]
    mean, std = fake_scores(pool)
    ranked = p.rank(pool, mean, std, rng(), lambda a: False)
    nothing = Counter()
    # nothing pending: the serial pick
    assert p.next_pool_pick(ranked, pool, lambda a: False, nothing, nothing) == p.prefer_new_classes(ranked, pool, 1)[0]
    pending = (3, 2)
    taken = {pending}.__contains__
    near = Counter(p.neighbours(pending))
    assert p.next_pool_pick(ranked, pool, taken, nothing, near) == 3  # (3, 0) and (2, 2) are next to it
    busy = Counter({p.cls((0, 1)): 1})  # (0, 1) pending elsewhere: (0, 0) is not of its class
    assert p.next_pool_pick(ranked, pool, taken, busy, Counter()) == 1
    busy = Counter({p.cls((3, 1)): 1})  # (3, 1) pending: (3, 2) is of its class
    assert p.next_pool_pick(ranked, pool, lambda a: False, busy, Counter()) == 1
    every = {(3, 2), (3, 0), (2, 2), (0, 0)}
    assert p.next_pool_pick(ranked, pool, every.__contains__, nothing, near) is None
    assert p.next_pool_pick(ranked, pool, {(3, 2), (0, 0)}.__contains__, nothing, near) == 1  # fallback
    assert p.rank(pool, mean, std, rng(), taken) == [1, 2, 3]


def test_neighbours_are_computed_once_per_architecture():
    p = policy()
    assert p.neighbours((0, 0)) == p.neighbours((0, 0))
    assert p.space.neighbour_calls[(0, 0)] == 1


def test_the_acquisition_rule_decides_the_single_pick():
    mean, std = np.array([0.1, 0.5, 0.4]), np.array([0.0, 0.0, 1.0])
    assert policy().pick_one(mean, std, rng()) == 1
    assert policy(acquisition="ucb").pick_one(mean, std, rng()) == 2
