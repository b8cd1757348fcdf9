"""The Strategy contract.

``ask(n)`` proposes up to ``n`` architectures never queried before; ``tell(arch, value)`` reports a
true result (higher is better); ``discard(arch)`` says a proposal was not evaluated (e.g. the
predictor turned it down) so the strategy may forget it. Strategies never see predicted values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Hashable

import numpy as np

from nasloop.space import SearchSpace


class Strategy(ABC):
    """Base class of every search strategy.

    Args:
        space: the search space to propose from.
        seed: seed of the strategy's private random generator.
    """

    name: str = "strategy"

    def __init__(self, space: SearchSpace, *, seed: int = 0) -> None:
        self.space = space
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.queried: set[Hashable] = set()

    @abstractmethod
    def ask(self, n: int) -> list[Hashable]:
        """Up to ``n`` distinct proposals, none of them already queried."""

    def tell(self, arch: Hashable, value: float) -> None:
        """Record a true result; subclasses extend this and call ``super().tell``."""
        self.queried.add(arch)

    def discard(self, arch: Hashable) -> None:
        """A proposal that was not evaluated; the default forgets nothing."""


def unseen_samples(
    space: SearchSpace, rng: np.random.Generator, n: int, *, exclude: Collection[Hashable] = (), n_tries: int = 20
) -> list[Hashable]:
    """Up to ``n`` distinct random architectures, none of them in ``exclude``.

    Rejection sampling first (``n_tries`` draws per wanted architecture); a finite space that is
    nearly used up is then enumerated, so the result falls short of ``n`` only when fewer than ``n``
    unseen architectures exist.
    """
    out: list[Hashable] = []
    taken = set(exclude)
    size = space.size()
    # Asking for most of what is left of a small finite space (a pool of 1,000 from 168 cells):
    # rejection sampling would spend n·n_tries draws finding nothing new, so enumerate at once.
    mostly_asked = size is not None and 2 * n >= size - len(taken) and space.enumerate() is not None
    draws = 0 if mostly_asked else max(n, 0) * n_tries
    for _ in range(draws):
        if len(out) >= n:
            return out
        arch = space.sample(rng)
        if arch not in taken:
            out.append(arch)
            taken.add(arch)
    if len(out) < n:
        everything = space.enumerate()
        if everything is not None:
            rest = [a for a in everything if a not in taken]
            if rest:
                picks = rng.choice(len(rest), size=min(n - len(out), len(rest)), replace=False)
                out.extend(rest[int(i)] for i in picks)
    return out
