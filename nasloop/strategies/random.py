"""Random search: uniform samples from the space, never one already queried."""

from __future__ import annotations

from collections.abc import Hashable

from nasloop.strategies.base import Strategy, unseen_samples


class RandomSearch(Strategy):
    """Uniform random sampling without repeats.

    Args:
        space: the search space.
        seed: seed of the private random generator.

    Example:
        >>> from nasloop.registry import make_space
        >>> s = RandomSearch(make_space("nb201"), seed=0)
        >>> len(s.ask(3))
        3
    """

    name = "random"

    def ask(self, n: int) -> list[Hashable]:
        return unseen_samples(self.space, self.rng, n, exclude=self.queried)
