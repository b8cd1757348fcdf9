"""Search strategies: propose architectures, learn from true results only."""

from nasloop.strategies.base import Strategy

__all__ = ["Strategy"]
