"""``list[ArchGraph]`` → padded batch tensors (ops, adjacency, mask), with a per-graph cache.

Every model in this package consumes a :class:`GraphBatch`: graphs padded to a common node count
``N`` with a boolean ``mask`` marking real nodes. Models must mask padding out of attention, graph
aggregation and readouts; the padding-invariance tests check that a graph predicted alone equals
the same graph inside a padded batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from nasloop.errors import ConfigError
from nasloop.types import ArchGraph


@dataclass
class GraphBatch:
    """Padded tensors of ``B`` graphs with at most ``N`` nodes.

    Attributes:
        ops: op id per node, 0 on padding, shape (B, N), long.
        adj: directed adjacency, ``adj[b, i, j] = 1`` for an edge i→j, shape (B, N, N), float.
        mask: True on real nodes, shape (B, N), bool.
        n_nodes: real node count per graph, shape (B,), long.
    """

    ops: torch.Tensor
    adj: torch.Tensor
    mask: torch.Tensor
    n_nodes: torch.Tensor

    def __len__(self) -> int:
        return int(self.ops.shape[0])

    def index(self, idx: torch.Tensor | np.ndarray | slice) -> GraphBatch:
        """The sub-batch of rows ``idx`` (keeps the padded width)."""
        if isinstance(idx, np.ndarray):
            idx = torch.from_numpy(idx)
        return GraphBatch(self.ops[idx], self.adj[idx], self.mask[idx], self.n_nodes[idx])

    def to(self, device: torch.device | str) -> GraphBatch:
        return GraphBatch(self.ops.to(device), self.adj.to(device), self.mask.to(device), self.n_nodes.to(device))

    def trim(self) -> GraphBatch:
        """Drop padding columns that no graph in the batch uses."""
        n = int(self.n_nodes.max())
        return GraphBatch(self.ops[:, :n], self.adj[:, :n, :n], self.mask[:, :n], self.n_nodes)


class GraphEncoder:
    """Encodes ArchGraphs into :class:`GraphBatch` tensors, caching each graph's arrays.

    ArchGraph is a frozen (hashable) dataclass, so repeated calls over the same pool of candidate
    cells only pay for stacking.

    Example:
        >>> enc = GraphEncoder()
        >>> g = ArchGraph(ops=(0, 1, 2), edges=((0, 1), (1, 2)), vocab=("in", "conv", "out"))
        >>> enc.encode([g]).adj.shape
        torch.Size([1, 3, 3])
    """

    def __init__(self, max_cache: int = 200_000) -> None:
        self.max_cache = max_cache
        self._cache: dict[ArchGraph, tuple[np.ndarray, np.ndarray]] = {}

    def __getstate__(self) -> dict:
        # The cache is rebuilt on demand; leaving it out keeps pickled predictors small (the search
        # loop snapshots its predictor after every fit, and the cache grows with every pool scored).
        return {"max_cache": self.max_cache, "_cache": {}}

    def arrays(self, graph: ArchGraph) -> tuple[np.ndarray, np.ndarray]:
        """(ops (n,), adjacency (n, n)) of one graph, cached."""
        hit = self._cache.get(graph)
        if hit is None:
            if not isinstance(graph, ArchGraph):
                raise ConfigError(f"predictors take nasloop.types.ArchGraph objects, got {type(graph).__name__}")
            hit = (np.asarray(graph.ops, dtype=np.int64), graph.adjacency())
            if len(self._cache) >= self.max_cache:
                self._cache.clear()
            self._cache[graph] = hit
        return hit

    def encode(self, graphs: Sequence[ArchGraph], pad_to: int | None = None) -> GraphBatch:
        """Pad ``graphs`` to ``max(pad_to, largest graph)`` nodes."""
        pairs = [self.arrays(g) for g in graphs]
        sizes = np.array([len(o) for o, _ in pairs], dtype=np.int64)
        n = int(max(sizes.max(initial=1), pad_to or 0))
        b = len(pairs)
        ops = np.zeros((b, n), dtype=np.int64)
        adj = np.zeros((b, n, n), dtype=np.float32)
        for k, (o, a) in enumerate(pairs):
            m = len(o)
            ops[k, :m] = o
            adj[k, :m, :m] = a
        mask = np.arange(n)[None, :] < sizes[:, None]
        return GraphBatch(torch.from_numpy(ops), torch.from_numpy(adj), torch.from_numpy(mask), torch.from_numpy(sizes))


def n_op_types(graphs: Sequence[ArchGraph]) -> int:
    """Size of the op vocabulary the graphs need (vocab length, or the largest id + 1)."""
    return max(max(len(g.vocab), max(g.ops, default=0) + 1) for g in graphs)


def isomorphic_relabel(graph: ArchGraph, *, max_tries: int = 5000) -> ArchGraph:
    """NAR-Former V2's consistency partner: the same cell with its middle nodes renumbered.

    Tries permutations of nodes ``1..n-2`` in lexicographic order and returns the first one that
    changes ``(ops, edges)`` while keeping every edge pointing forward (an upper-triangular
    adjacency), so the positional codes of the relabelled graph differ but the computation does
    not. Returns ``graph`` itself when no such permutation exists within ``max_tries``.
    """
    n = graph.n_nodes
    if n <= 3:
        return graph
    edges = set(graph.edges)
    for perm in itertools.islice(itertools.permutations(range(1, n - 1)), 1, max_tries):
        new_of = (0, *perm, n - 1)  # old node k becomes new node new_of[k]
        new_edges = {(new_of[i], new_of[j]) for i, j in edges}
        if any(i >= j for i, j in new_edges):
            continue
        ops = [0] * n
        for old, new in enumerate(new_of):
            ops[new] = graph.ops[old]
        if tuple(ops) == graph.ops and new_edges == edges:
            continue
        return ArchGraph(tuple(ops), tuple(sorted(new_edges)), graph.vocab, _permute_features(graph, new_of))
    return graph


def _permute_features(graph: ArchGraph, new_of: Sequence[int]) -> tuple[tuple[float, ...], ...] | None:
    if graph.features is None:
        return None
    out: list[tuple[float, ...]] = [()] * graph.n_nodes
    for old, new in enumerate(new_of):
        out[new] = graph.features[old]
    return tuple(out)
