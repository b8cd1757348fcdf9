"""NAS-Bench-101: a 7-node cell (input, 5 op nodes, output), at most 9 edges, 3 operations.

An architecture is a :class:`Cell`: the 7x7 upper-triangular adjacency and the 7 node labels, the
same pair as the official ``nasbench.api.ModelSpec``. Like the benchmark, the space treats a cell
through its *module*: the cell with every node that is not on an input→output path removed. The
official rules apply to the module: input must reach output, at most 9 edges remain. Two cells with
the same module (or isomorphic modules) share the official MD5 module hash (:func:`module_hash`),
which is how the benchmark tables are keyed.

String form (the fields of the official data file): ``"<49 adjacency digits>:<7 comma-separated ops>"``,
e.g. ``"0100001001000100010000010000010000010000010000000:input,conv3x3-bn-relu,...,output"``.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from nasloop.errors import InvalidArchitectureError
from nasloop.space import MAX_STRING, SearchSpace
from nasloop.types import ArchGraph

INPUT, OUTPUT = "input", "output"
CONV3X3, CONV1X1, MAXPOOL3X3 = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
# Order of the official config's ``available_ops``: its index is the op's label in the module hash.
OPS: tuple[str, ...] = (CONV3X3, CONV1X1, MAXPOOL3X3)
N_NODES = 7
MAX_EDGES = 9
N_CELLS = 423_624  # unique modules in the official benchmark
# Upper-triangle positions (i, j), i < j, row by row: the 21 edge parameters.
EDGE_SLOTS: tuple[tuple[int, int], ...] = tuple(
    (i, j) for i in range(N_NODES) for j in range(i + 1, N_NODES)
)
EDGE_PARAMS = tuple(f"edge_{i}_{j}" for i, j in EDGE_SLOTS)
OP_PARAMS = tuple(f"op_{k}" for k in range(1, N_NODES - 1))
# Predictor vocabulary (spec §1.1: input 0, conv1x1 1, conv3x3 2, maxpool 3, output 4).
GRAPH_VOCAB: tuple[str, ...] = (INPUT, CONV1X1, CONV3X3, MAXPOOL3X3, OUTPUT)
_GRAPH_OP_ID = {name: i for i, name in enumerate(GRAPH_VOCAB)}
_HASH_LABEL = {INPUT: -1, OUTPUT: -2, **{op: i for i, op in enumerate(OPS)}}


class Cell(NamedTuple):
    """A NAS-Bench-101 cell: adjacency rows (``matrix[i][j] = 1`` for an edge i→j) and node ops."""

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    @classmethod
    def make(cls, matrix: Iterable[Iterable[int]], ops: Iterable[str]) -> Cell:
        """A cell from any nested sequence / array (values are coerced to 0/1 ints)."""
        return cls(tuple(tuple(int(bool(v)) for v in row) for row in matrix), tuple(str(o) for o in ops))


# --- the official rules and hash ---------------------------------------------------------------------
# Plain Python on 7x7 lists: ~10x faster than numpy at this size, which matters when loading the
# 423,624-row tables.
def prune(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> tuple[list[list[int]], list[str]] | None:
    """The module: drop nodes not on an input→output path. ``None`` when input cannot reach output."""
    rows = [[int(v) for v in row] for row in matrix]
    n = len(rows)
    forward = _reach(n, 0, lambda v: (w for w in range(n) if rows[v][w]))
    backward = _reach(n, n - 1, lambda v: (u for u in range(n) if rows[u][v]))
    keep = sorted(forward & backward)
    if 0 not in keep or n - 1 not in keep:
        return None
    return [[rows[i][j] for j in keep] for i in keep], [ops[i] for i in keep]


def _reach(n: int, start: int, nbrs) -> set[int]:
    seen, stack = {start}, [start]
    while stack:
        for nxt in nbrs(stack.pop()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def hash_module(matrix: Sequence[Sequence[int]], labels: Sequence[int]) -> str:
    """The official NAS-Bench-101 graph-invariant MD5 fingerprint of a (pruned) module.

    Each node starts from the MD5 of ``(out-degree, in-degree, label)``; for as many rounds as there
    are nodes, a node's hash becomes the MD5 of its sorted in-neighbour hashes, its sorted out-neighbour
    hashes and its own hash; the fingerprint is the MD5 of the sorted final hashes. Labels: input -1,
    output -2, ops by their index in :data:`OPS`.
    """
    rows = [[int(v) for v in row] for row in matrix]
    n = len(rows)
    preds = [[u for u in range(n) if rows[u][v]] for v in range(n)]
    succs = [[w for w in range(n) if rows[v][w]] for v in range(n)]
    hashes = [_md5(str((len(succs[v]), len(preds[v]), int(labels[v])))) for v in range(n)]
    for _ in range(n):
        hashes = [
            _md5("".join(sorted(hashes[w] for w in preds[v])) + "|"
                 + "".join(sorted(hashes[w] for w in succs[v])) + "|" + hashes[v])
            for v in range(n)
        ]
    return _md5(str(sorted(hashes)))


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def module_of(cell: Cell) -> tuple[list[list[int]], list[str]]:
    """The pruned module of a valid cell (raises ``InvalidArchitectureError`` for an invalid one)."""
    pruned = prune(cell.matrix, cell.ops)
    if pruned is None:
        raise InvalidArchitectureError("invalid NAS-Bench-101 cell: the input does not reach the output")
    return pruned


@lru_cache(maxsize=200_000)
def module_hash(cell: Cell) -> str:
    """Official module hash of a cell (the key of every NAS-Bench-101 table)."""
    matrix, ops = module_of(cell)
    return hash_module(matrix, [_HASH_LABEL[o] for o in ops])


def validity_error(cell: Cell) -> str | None:
    """Why ``cell`` is not in NAS-Bench-101, or ``None`` when it is (the official ``_check_spec``)."""
    n = len(cell.ops)
    if len(cell.matrix) != n or any(len(row) != n for row in cell.matrix):
        return f"the adjacency must be {n}x{n} to match {n} ops"
    if not 2 <= n <= N_NODES:
        return f"a cell has 2..{N_NODES} nodes, got {n}"
    if any(cell.matrix[i][j] for i in range(n) for j in range(i + 1)):
        return "the adjacency must be strictly upper-triangular (edges i→j with i < j)"
    if cell.ops[0] != INPUT or cell.ops[-1] != OUTPUT:
        return f"the first op must be {INPUT!r} and the last {OUTPUT!r}"
    bad = [o for o in cell.ops[1:-1] if o not in OPS]
    if bad:
        return f"unknown ops {bad}; the ops are {', '.join(OPS)}"
    pruned = prune(cell.matrix, cell.ops)
    if pruned is None:
        return "the input does not reach the output"
    n_edges = sum(map(sum, pruned[0]))
    if n_edges > MAX_EDGES:
        return f"{n_edges} edges remain after pruning, at most {MAX_EDGES} are allowed"
    return None


def pad_module(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> Cell:
    """A 7-node cell holding a (pruned, k-node) module: extra nodes are isolated ``conv3x3`` ops
    placed just before the output, so they are pruned away again."""
    rows = [[int(v) for v in row] for row in matrix]
    k = len(rows)
    if k > N_NODES or k < 2:
        raise InvalidArchitectureError(f"a module has 2..{N_NODES} nodes, got {k}")
    idx = [*range(k - 1), N_NODES - 1]  # module node a → cell node idx[a]
    full = [[0] * N_NODES for _ in range(N_NODES)]
    cell_ops = [CONV3X3] * N_NODES
    for a, i in enumerate(idx):
        cell_ops[i] = ops[a]
        for b, j in enumerate(idx):
            full[i][j] = rows[a][b]
    return Cell(tuple(map(tuple, full)), tuple(cell_ops))


# Every relabelling of the 5 interior nodes (input first, output last): row k is the order in which
# old nodes become new nodes 0..6.
_RELABELLINGS = np.array([(0, *p, N_NODES - 1) for p in itertools.permutations(range(1, N_NODES - 1))])
# Op names ranked by string order, so that comparing ranks compares the names.
_OP_RANK = {name: rank for rank, name in enumerate(sorted((INPUT, OUTPUT, *OPS)))}


@lru_cache(maxsize=50_000)
def canonical_cell(cell: Cell) -> Cell:
    """The smallest (by its string form) padded cell isomorphic to ``cell``'s module.

    All 120 relabellings are built and compared at once: (adjacency digits, op names) as one key
    per relabelling, the smallest among those that keep the matrix upper-triangular. A loop over
    the relabellings in Python took 4.6 ms a cell, which the search loop paid for every neighbour.
    """
    matrix, ops = module_of(cell)
    base = pad_module(matrix, ops)
    a = np.asarray(base.matrix, dtype=np.int8)
    relabelled = a[_RELABELLINGS[:, :, None], _RELABELLINGS[:, None, :]]  # (120, 7, 7)
    # Keep relabellings that preserve the topological order (the identity always does).
    keep = ~np.tril(relabelled).reshape(len(_RELABELLINGS), -1).any(axis=1)
    ranks = np.array([_OP_RANK[o] for o in base.ops])
    keys = np.concatenate([relabelled.reshape(len(_RELABELLINGS), -1), ranks[_RELABELLINGS]], axis=1)[keep]
    best = np.lexsort(keys.T[::-1])[0]  # lexsort's last key is the primary one
    order = _RELABELLINGS[keep][best]
    return Cell.make(relabelled[keep][best], [base.ops[o] for o in order])


# --- the space ---------------------------------------------------------------------------------------------
class NasBench101Space(SearchSpace):
    """The NAS-Bench-101 cell space (423,624 unique modules).

    Args:
        pool: optional cells to restrict the space to (e.g. the cells of a partial table): sampling
            draws from the pool, and mutation moves to a pool cell whose module differs by one edge or op
            where one exists, otherwise to the nearest pool cell by that edit distance.

    Example:
        >>> space = NasBench101Space()
        >>> cell = space.sample(np.random.default_rng(0))
        >>> space.from_str(space.to_str(cell)) == cell
        True
        >>> len(module_hash(cell))
        32
    """

    name = "nb101"
    graph_kinds = ("default",)

    def __init__(self, pool: Iterable[Cell] | None = None) -> None:
        self._pool: tuple[Cell, ...] | None = None
        self._pool_by_hash: dict[str, Cell] = {}
        if pool is not None:
            cells = [self._check(c) for c in pool]
            for c in cells:
                self._pool_by_hash.setdefault(module_hash(c), c)
            self._pool = tuple(self._pool_by_hash.values())
            if not self._pool:
                raise InvalidArchitectureError("the pool of a restricted NasBench101Space is empty")

    @classmethod
    def _from_hash_index(cls, by_hash: Mapping[str, Cell]) -> NasBench101Space:
        """A space restricted to cells whose module hashes are already known (no re-hashing)."""
        space = cls()
        space._pool_by_hash = dict(by_hash)
        space._pool = tuple(space._pool_by_hash.values())
        return space

    def __len__(self) -> int:
        return len(self._pool) if self._pool is not None else N_CELLS

    def describe(self) -> str:
        return self.name if self._pool is None else f"{self.name} (restricted to {len(self._pool)} cells)"

    # --- string form ---------------------------------------------------------------------------------
    def to_str(self, arch: Cell) -> str:
        cell = self._check(arch)
        return "".join(str(v) for row in cell.matrix for v in row) + ":" + ",".join(cell.ops)

    def from_str(self, text: str) -> Cell:
        expected = f"expected '<{N_NODES * N_NODES} adjacency digits>:<{N_NODES} comma-separated ops>'"
        if not isinstance(text, str):
            raise InvalidArchitectureError(f"architecture must be a string, got {type(text).__name__}")
        if len(text) > MAX_STRING:
            raise InvalidArchitectureError(f"a {len(text):,}-character string is not a NAS-Bench-101 cell: {expected}")
        bits, sep, ops = text.strip().partition(":")
        ops_list = ops.split(",")
        n = len(ops_list)
        if not sep or len(bits) != n * n or set(bits) - {"0", "1"}:
            raise InvalidArchitectureError(f"{text!r} is not a NAS-Bench-101 cell: {expected}")
        matrix = [[int(bits[i * n + j]) for j in range(n)] for i in range(n)]
        if n != N_NODES:  # a pruned module from a data file: store it as a 7-node cell
            cell = Cell.make(matrix, ops_list)
            if (why := validity_error(cell)) is not None:
                raise InvalidArchitectureError(f"{text!r}: {why}")
            return pad_module(matrix, ops_list)
        return self._check(Cell.make(matrix, ops_list))

    # --- parameter view: 21 edge bits and 5 ops -------------------------------------------------------
    def param_choices(self) -> dict[str, list[Any]]:
        return {**{p: [0, 1] for p in EDGE_PARAMS}, **{p: list(OPS) for p in OP_PARAMS}}

    def to_params(self, arch: Cell) -> dict[str, Any]:
        cell = self._check(arch)
        params: dict[str, Any] = {p: cell.matrix[i][j] for p, (i, j) in zip(EDGE_PARAMS, EDGE_SLOTS)}
        params.update(zip(OP_PARAMS, cell.ops[1:-1]))
        return params

    def from_params(self, params: Mapping[str, Any]) -> Cell:
        missing = [p for p in (*EDGE_PARAMS, *OP_PARAMS) if p not in params]
        if missing:
            raise InvalidArchitectureError(f"parameters lack {missing[:5]}...; see param_choices()")
        matrix = np.zeros((N_NODES, N_NODES), dtype=np.int64)
        for p, (i, j) in zip(EDGE_PARAMS, EDGE_SLOTS):
            matrix[i, j] = int(params[p])
        ops = (INPUT, *(str(params[p]) for p in OP_PARAMS), OUTPUT)
        return self._check(Cell.make(matrix, ops))

    # --- sampling, mutation ----------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Cell:
        """A uniformly random valid cell (edges and ops drawn uniformly, invalid ones rejected)."""
        if self._pool is not None:
            return self._pool[int(rng.integers(len(self._pool)))]
        while True:
            bits = rng.integers(2, size=len(EDGE_SLOTS))
            matrix = np.zeros((N_NODES, N_NODES), dtype=np.int64)
            for b, (i, j) in zip(bits, EDGE_SLOTS):
                matrix[i, j] = b
            ops = (INPUT, *(OPS[int(k)] for k in rng.integers(len(OPS), size=N_NODES - 2)), OUTPUT)
            cell = Cell.make(matrix, ops)
            if validity_error(cell) is None:
                return cell

    def neighbours(self, arch: Cell) -> list[Cell]:
        """Valid cells one edge flip or one op change away whose module differs from ``arch``'s.

        One cell per distinct module hash, in a fixed order. In a restricted space: the pool cells
        among those (by module hash).
        """
        cell = self._check(arch)
        own = module_hash(cell)
        seen = {own}
        out: list[Cell] = []
        for cand in _one_edit_cells(cell):
            if validity_error(cand) is not None:
                continue
            h = module_hash(cand)
            if h in seen:
                continue
            seen.add(h)
            if self._pool is None:
                out.append(cand)
            elif h in self._pool_by_hash:
                out.append(self._pool_by_hash[h])
        return out

    def mutate(self, arch: Cell, rng: np.random.Generator) -> Cell:
        """A random neighbour (a different module, one edit away); never ``arch`` itself."""
        options = self.neighbours(arch)
        if not options and self._pool is not None:
            options = self._nearest_in_pool(self._check(arch))
        if not options:
            raise InvalidArchitectureError(f"nb101: {self.to_str(arch)} has no valid neighbour")
        return options[int(rng.integers(len(options)))]

    def _nearest_in_pool(self, cell: Cell) -> list[Cell]:
        own = module_hash(cell)
        a = np.asarray(cell.matrix)
        scored: list[tuple[int, Cell]] = []
        for other in self._pool or ():
            if module_hash(other) == own:
                continue
            b = np.asarray(other.matrix)
            dist = int(np.sum(a != b)) + sum(x != y for x, y in zip(cell.ops, other.ops))
            scored.append((dist, other))
        if not scored:
            return []
        best = min(d for d, _ in scored)
        return [c for d, c in scored if d == best]

    def enumerate(self):
        return iter(self._pool) if self._pool is not None else None

    def canonical(self, arch: Cell) -> Cell:
        """One fixed cell per module isomorphism class (equal canonical cells ⇔ equal module hash)."""
        return canonical_cell(self._check(arch))

    def hash_of(self, arch: Cell) -> str:
        """The official NAS-Bench-101 module hash of ``arch``."""
        return module_hash(self._check(arch))

    # --- graph for predictors ------------------------------------------------------------------------------
    def to_graph(self, arch: Cell, kind: str | None = None) -> ArchGraph:
        """The pruned module: 2–7 nodes, ops as ids into :data:`GRAPH_VOCAB`, edges i→j."""
        if kind not in (None, "default"):
            raise InvalidArchitectureError(f"unknown graph kind {kind!r}; nb101 offers {self.graph_kinds}")
        matrix, ops = module_of(self._check(arch))
        edges = tuple((i, j) for i, row in enumerate(matrix) for j, v in enumerate(row) if v)
        return ArchGraph(tuple(_GRAPH_OP_ID[o] for o in ops), edges, GRAPH_VOCAB)

    def _check(self, arch: Any) -> Cell:
        if isinstance(arch, str):
            raise InvalidArchitectureError(
                f"got the string {arch!r} where a Cell was expected; use space.from_str"
            )
        try:
            cell = arch if isinstance(arch, Cell) else Cell.make(*arch)
        except (TypeError, ValueError):
            raise InvalidArchitectureError(
                f"an nb101 architecture is Cell(matrix, ops) (7x7 0/1 rows, 7 op names), got {arch!r}"
            ) from None
        if len(cell.ops) != N_NODES:
            raise InvalidArchitectureError(
                f"an nb101 architecture has {N_NODES} nodes (pad smaller modules with pad_module), "
                f"got {len(cell.ops)}"
            )
        why = validity_error(cell)
        if why is not None:
            raise InvalidArchitectureError(f"invalid NAS-Bench-101 cell: {why}")
        return cell


def _one_edit_cells(cell: Cell) -> Iterable[Cell]:
    rows = [list(r) for r in cell.matrix]
    for i, j in EDGE_SLOTS:
        rows[i][j] ^= 1
        yield Cell.make(rows, cell.ops)
        rows[i][j] ^= 1
    for k in range(1, N_NODES - 1):
        for op in OPS:
            if op != cell.ops[k]:
                yield Cell(cell.matrix, (*cell.ops[:k], op, *cell.ops[k + 1 :]))
