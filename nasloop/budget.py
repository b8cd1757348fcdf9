"""Budget: how many true evaluations a run may spend.

Overshoot rule: the query count never overshoots (the loop stops exactly at ``n_queries``); a cost or
wall-clock limit is checked before each query, so the query that crosses it completes and is kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from nasloop.errors import ConfigError


@dataclass
class Budget:
    """Limits on unique true queries, simulated cost (seconds) and wall-clock time (seconds).

    Repeat queries are answered from the history and never reach :meth:`charge`.
    """

    n_queries: int
    max_cost: float = math.inf
    max_seconds: float = math.inf
    used_queries: int = 0
    used_cost: float = 0.0
    _start: float = field(default_factory=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.n_queries, bool) or not isinstance(self.n_queries, int) or self.n_queries <= 0:
            raise ConfigError(f"budget must be a positive number of queries, got {self.n_queries!r}")
        for name in ("max_cost", "max_seconds"):
            value = getattr(self, name)
            # `not value > 0` also refuses NaN; infinity means "no limit".
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")

    @property
    def remaining(self) -> int:
        return max(self.n_queries - self.used_queries, 0)

    @property
    def exhausted(self) -> bool:
        return (
            self.used_queries >= self.n_queries
            or self.used_cost >= self.max_cost
            or time.monotonic() - self._start >= self.max_seconds
        )

    def charge(self, cost: float = 0.0) -> None:
        """Account for one unique true query of the given cost."""
        self.used_queries += 1
        self.used_cost += float(cost)
