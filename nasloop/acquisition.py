"""Choosing which ``k`` of the scored candidates to query (higher scores are better).

Rules:
    ``greedy``   the ``k`` highest predicted means.
    ``ucb``      the ``k`` highest ``mean + beta * std`` (upper confidence bound).
    ``thompson`` one draw from ``N(mean, std)`` per candidate, the ``k`` highest draws.

UCB and Thompson sampling need a predictor with uncertainty (``predict_dist`` of an ensemble or a
forest); with ``std == 0`` both reduce to greedy. Ties keep the candidates' pool order.
"""

from __future__ import annotations

import numpy as np

from nasloop.errors import ConfigError, UnknownNameError

RULES = ("greedy", "ucb", "thompson")


def check_rule(rule: str) -> str:
    """Return ``rule`` or raise ``UnknownNameError`` listing the known ones."""
    if rule not in RULES:
        raise UnknownNameError(f"unknown acquisition {rule!r}; available: {', '.join(RULES)}")
    return rule


def select(
    mean: np.ndarray,
    std: np.ndarray | None,
    k: int,
    *,
    rule: str = "greedy",
    beta: float = 1.0,
    rng: np.random.Generator | None = None,
) -> list[int]:
    """Indices of the ``k`` candidates to query, best first.

    Args:
        mean: predicted means, shape (n,).
        std: predicted standard deviations, shape (n,), or ``None`` (no uncertainty).
        k: how many to choose (at most ``n`` are returned).
        rule: ``greedy``, ``ucb`` or ``thompson``.
        beta: exploration weight of UCB.
        rng: random generator of Thompson sampling (required for that rule).

    Example:
        >>> select(np.array([0.1, 0.9, 0.5]), None, 2)
        [1, 2]
    """
    check_rule(rule)
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    std = np.zeros_like(mean) if std is None else np.nan_to_num(np.asarray(std, dtype=np.float64).reshape(-1))
    if std.shape != mean.shape:
        raise ConfigError(f"acquisition got {mean.shape[0]} means but {std.shape[0]} standard deviations")
    if rule == "greedy":
        score = mean
    elif rule == "ucb":
        score = mean + beta * np.maximum(std, 0.0)
    else:
        if rng is None:
            raise ConfigError("Thompson sampling needs a random generator (rng=...)")
        score = rng.normal(mean, np.maximum(std, 0.0))
    score = np.where(np.isfinite(score), score, -np.inf)
    order = np.argsort(-score, kind="stable")
    return [int(i) for i in order[: max(int(k), 0)]]
