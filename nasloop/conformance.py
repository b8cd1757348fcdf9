"""Contract checks for plug-ins: every space, strategy and predictor is run through these.

Each check raises :class:`~nasloop.errors.ContractError` with a message that says what to fix. The
test suite parametrizes them over every registered name; plug-in authors call them directly::

    from nasloop.conformance import check_space
    check_space(MySpace())
"""

from __future__ import annotations

import copy
from collections.abc import Hashable
from typing import Any

import numpy as np

from nasloop.errors import ContractError, InvalidArchitectureError
from nasloop.space import SearchSpace
from nasloop.types import ArchGraph


def check_space(space: SearchSpace, *, n: int = 20, seed: int = 0) -> None:
    """Check ``space`` against the SearchSpace contract on ``n`` sampled architectures."""
    rng = np.random.default_rng(seed)
    name = type(space).__name__
    choices = space.param_choices()
    if not choices or any(not list(v) for v in choices.values()):
        raise ContractError(f"{name}.param_choices() must map every parameter to a non-empty list of values")
    for _ in range(n):
        arch = space.sample(rng)
        _check_hashable(name, arch)
        text = space.to_str(arch)
        if not isinstance(text, str):
            raise ContractError(f"{name}.to_str must return a str, got {type(text).__name__}")
        if space.from_str(text) != arch:
            raise ContractError(f"{name}.from_str(to_str(a)) != a for {text!r}: make the string form round-trip")
        params = space.to_params(arch)
        if set(params) != set(choices):
            raise ContractError(
                f"{name}.to_params keys {sorted(params)} differ from param_choices keys {sorted(choices)}"
            )
        for key, value in params.items():
            if value not in choices[key]:
                raise ContractError(f"{name}.to_params gives {key}={value!r}, not among param_choices()[{key!r}]")
        if space.from_params(params) != arch:
            raise ContractError(
                f"{name}.from_params(to_params(a)) != a for {text!r}: params must round-trip to the same arch"
            )
        mutant = space.mutate(arch, rng)
        _check_hashable(name, mutant)
        if mutant == arch:
            raise ContractError(f"{name}.mutate returned the same architecture {text!r}: it must change it")
        space.to_str(mutant)  # a mutant must be a valid architecture
        for nb in space.neighbours(arch)[:50]:
            if nb == arch:
                raise ContractError(f"{name}.neighbours({text!r}) contains the architecture itself")
        for kind in space.graph_kinds:
            check_graph(space.to_graph(arch, kind), where=f"{name}.to_graph({text!r}, {kind!r})")
        if space.canonical(space.canonical(arch)) != space.canonical(arch):
            raise ContractError(f"{name}.canonical is not idempotent on {text!r}")
    try:
        space.from_str("\x00 not an architecture \x00")
    except InvalidArchitectureError:
        pass
    except Exception as exc:
        raise ContractError(
            f"{name}.from_str must raise InvalidArchitectureError on malformed input, raised {type(exc).__name__}"
        ) from None
    else:
        raise ContractError(f"{name}.from_str accepted a malformed string; raise InvalidArchitectureError")


def check_graph(graph: ArchGraph, *, where: str = "graph") -> None:
    """An ArchGraph must have ops in its vocabulary, in-range edges and no cycle."""
    if not isinstance(graph, ArchGraph):
        raise ContractError(f"{where} must return nasloop.types.ArchGraph, got {type(graph).__name__}")
    n = graph.n_nodes
    if n == 0:
        raise ContractError(f"{where} has no nodes")
    if graph.vocab and any(not 0 <= o < len(graph.vocab) for o in graph.ops):
        raise ContractError(f"{where} has op ids outside its vocab of {len(graph.vocab)} names")
    for i, j in graph.edges:
        if not (0 <= i < n and 0 <= j < n) or i == j:
            raise ContractError(f"{where} has edge {(i, j)} outside 0..{n - 1} or a self-loop")
    indeg = [0] * n
    succ: dict[int, list[int]] = {i: [] for i in range(n)}
    for i, j in graph.edges:
        indeg[j] += 1
        succ[i].append(j)
    frontier = [i for i in range(n) if indeg[i] == 0]
    seen = 0
    while frontier:
        node = frontier.pop()
        seen += 1
        for nxt in succ[node]:
            indeg[nxt] -= 1
            if indeg[nxt] == 0:
                frontier.append(nxt)
    if seen != n:
        raise ContractError(f"{where} has a cycle: predictors need a DAG (edges must point forward)")
    if graph.features is not None and len(graph.features) != n:
        raise ContractError(f"{where} has {len(graph.features)} feature rows for {n} nodes")


def check_strategy(strategy: Any, *, n_rounds: int = 5, n_per_round: int = 4) -> None:
    """A strategy proposes distinct, never-queried architectures and accepts true results."""
    name = type(strategy).__name__
    queried: set[Hashable] = set()
    for r in range(n_rounds):
        proposals = strategy.ask(n_per_round)
        if not isinstance(proposals, list):
            raise ContractError(f"{name}.ask must return a list, got {type(proposals).__name__}")
        if len(proposals) > n_per_round:
            raise ContractError(f"{name}.ask({n_per_round}) returned {len(proposals)} proposals")
        if len(set(proposals)) != len(proposals):
            raise ContractError(f"{name}.ask returned duplicates in round {r}")
        again = [p for p in proposals if p in queried]
        if again:
            raise ContractError(f"{name}.ask proposed already-queried architectures: {again[:3]}")
        for i, arch in enumerate(proposals):
            if i % 2 == 0:
                strategy.tell(arch, float(r * n_per_round + i))
                queried.add(arch)
            else:
                strategy.discard(arch)


def check_predictor(predictor: Any, graphs: list[ArchGraph], y: np.ndarray) -> None:
    """scikit-learn contract: predict before fit fails, fit returns self, predictions are finite; the
    same fit of a copy (same seed) gives the same predictions, and so does a clone built from
    ``get_params()`` (a resumed search rebuilds its predictor that way). ``predictor`` must be unfitted."""
    from nasloop.errors import NotFittedError

    name = type(predictor).__name__
    try:
        predictor.predict(graphs[:2])
    except NotFittedError:
        pass
    else:
        raise ContractError(f"{name}.predict before fit must raise NotFittedError")
    twin = copy.deepcopy(predictor)
    if predictor.fit(graphs, y) is not predictor:
        raise ContractError(f"{name}.fit must return self")
    pred = np.asarray(predictor.predict(graphs))
    if pred.shape != (len(graphs),) or not np.all(np.isfinite(pred)):
        raise ContractError(f"{name}.predict must return {len(graphs)} finite values, got shape {pred.shape}")
    mean, std = predictor.predict_dist(graphs)
    if np.shape(mean) != (len(graphs),) or np.shape(std) != (len(graphs),) or np.any(np.asarray(std) < 0):
        raise ContractError(f"{name}.predict_dist must return (mean, std) of shape (n,), std >= 0")
    params = predictor.get_params()
    if not isinstance(params, dict):
        raise ContractError(f"{name}.get_params must return a dict")
    if not np.array_equal(np.asarray(twin.fit(graphs, y).predict(graphs)), pred):
        raise ContractError(f"{name}: the same fit with the same seed gave other predictions; derive every "
                            "random draw from the seed (no global RNG, no time-dependent choices)")
    try:
        clone = type(predictor)(**params)
    except TypeError as exc:
        raise ContractError(f"{name}(**get_params()) failed ({exc}): get_params must return the constructor's "
                            "arguments") from None
    if not np.array_equal(np.asarray(clone.fit(graphs, y).predict(graphs)), pred):
        raise ContractError(f"{name}(**get_params()) fitted the same way gave other predictions: get_params must "
                            "return every constructor argument, stored unchanged under its own name")


def _check_hashable(name: str, arch: Any) -> None:
    try:
        hash(arch)
    except TypeError:
        raise ContractError(
            f"{name} produced an unhashable architecture ({type(arch).__name__}); use tuples or frozen dataclasses"
        ) from None
