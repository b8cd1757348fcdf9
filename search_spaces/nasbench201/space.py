"""NAS-Bench-201: a 4-node cell whose 6 edges each carry one of 5 ops (5^6 = 15,625 cells).

An architecture is a tuple of 6 op names in the order of the official string
``|o1~0|+|o2~0|o3~1|+|o4~0|o5~1|o6~2|``, i.e. edges 1←0, 2←0, 2←1, 3←0, 3←1, 3←2.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from nasloop.errors import InvalidArchitectureError
from nasloop.space import MAX_STRING, SearchSpace
from nasloop.types import ArchGraph

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (target node, source node) of each edge, in arch-string order.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
PARAM_NAMES: tuple[str, ...] = tuple(f"edge_{t}_{s}" for t, s in EDGES)
N_CELLS = len(OPS) ** len(EDGES)

# Node vocabulary of both predictor graphs (spec §1.2): op ids as in the NN-Former / NAR-Former V2 code.
GRAPH_VOCAB: tuple[str, ...] = (
    "input", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "none", "output",
)
_GRAPH_OP_ID = {name: i for i, name in enumerate(GRAPH_VOCAB)}
# Edge-as-node graph over 8 nodes [input, o1..o6, output]: o(i→j) feeds every op leaving node j.
_FULL_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (0, 4),  # input → ops leaving cell node 0
    (1, 3), (1, 5),  # o1 (0→1) → ops leaving node 1
    (2, 6), (3, 6),  # o2 (0→2), o3 (1→2) → op leaving node 2
    (4, 7), (5, 7), (6, 7),  # ops entering node 3 → output
)

_TOKEN = re.compile(r"([a-z0-9_]+)~([0-9]+)")

Arch = tuple[str, ...]


class NasBench201Space(SearchSpace):
    """The NAS-Bench-201 cell space.

    Graph kinds: ``"pruned"`` (NN-Former: ``none`` ops and dangling nodes removed, 2–8 nodes),
    ``"full"`` (NAR-Former V2: all 8 nodes, ``none`` kept as an op) and ``"executed"`` (NN-Former's
    latency graph: ``none`` ops removed, dangling ops kept, since they still run).

    Example:
        >>> space = NasBench201Space()
        >>> arch = space.from_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
        ...                       "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
        >>> space.index_of(arch)
        6111
    """

    name = "nb201"
    graph_kinds = ("pruned", "full", "executed")

    def __len__(self) -> int:
        return N_CELLS

    # --- string form ---------------------------------------------------------------------------
    def to_str(self, arch: Arch) -> str:
        o = self._check(arch)
        return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"

    def from_str(self, text: str) -> Arch:
        expected = "expected the official form |op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
        if not isinstance(text, str):
            raise InvalidArchitectureError(f"architecture must be a string, got {type(text).__name__}")
        if len(text) > MAX_STRING:
            raise InvalidArchitectureError(f"a {len(text):,}-character string is not an nb201 cell; {expected}")
        nodes = text.strip().split("+")
        if len(nodes) != 3:
            raise InvalidArchitectureError(
                f"{text!r} has {len(nodes)} node groups separated by '+'; {expected}"
            )
        ops: list[str] = []
        for target, group in enumerate(nodes, start=1):
            if not (group.startswith("|") and group.endswith("|")) or len(group) < 2:
                raise InvalidArchitectureError(f"bad node group {group!r} in {text!r}; {expected}")
            tokens = group[1:-1].split("|")
            if len(tokens) != target:
                raise InvalidArchitectureError(
                    f"node {target} in {text!r} has {len(tokens)} inputs, needs {target}; {expected}"
                )
            for source, token in enumerate(tokens):
                m = _TOKEN.fullmatch(token)
                if not m:
                    raise InvalidArchitectureError(f"bad token {token!r} in {text!r}; {expected}")
                op, src = m.group(1), m.group(2)
                if op not in OPS:
                    raise InvalidArchitectureError(
                        f"unknown op {op!r} in token {token!r} of {text!r}; ops are {', '.join(OPS)}"
                    )
                if src != str(source):
                    raise InvalidArchitectureError(
                        f"token {token!r} of {text!r} names input node {src}, expected ~{source}"
                    )
                ops.append(op)
        return tuple(ops)

    # --- parameter view (6 categoricals, for TPE) ------------------------------------------------
    def param_choices(self) -> dict[str, list[Any]]:
        return {name: list(OPS) for name in PARAM_NAMES}

    def to_params(self, arch: Arch) -> dict[str, Any]:
        return dict(zip(PARAM_NAMES, self._check(arch), strict=True))

    def from_params(self, params: Mapping[str, Any]) -> Arch:
        missing = [p for p in PARAM_NAMES if p not in params]
        if missing:
            raise InvalidArchitectureError(f"parameters lack {missing}; expected {list(PARAM_NAMES)}")
        return self._check(tuple(str(params[p]) for p in PARAM_NAMES))

    # --- sampling, mutation, enumeration ---------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Arch:
        return tuple(OPS[int(i)] for i in rng.integers(len(OPS), size=len(EDGES)))

    def neighbours(self, arch: Arch) -> list[Arch]:
        """The 24 cells that differ from ``arch`` on exactly one edge."""
        arch = self._check(arch)
        return [
            arch[:e] + (op,) + arch[e + 1 :]
            for e in range(len(EDGES))
            for op in OPS
            if op != arch[e]
        ]

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """One-edge mutation: a random edge gets a different random op."""
        arch = self._check(arch)
        edge = int(rng.integers(len(EDGES)))
        others = [op for op in OPS if op != arch[edge]]
        return arch[:edge] + (others[int(rng.integers(len(others)))],) + arch[edge + 1 :]

    def enumerate(self) -> Iterator[Arch]:
        """All 15,625 cells in the official NAS-Bench-201 index order."""
        return iter(_official_order())

    def index_of(self, arch: Arch) -> int:
        """Official NAS-Bench-201 index of ``arch``."""
        return _official_index()[self._check(arch)]

    def from_index(self, index: int) -> Arch:
        if not 0 <= int(index) < N_CELLS:
            raise InvalidArchitectureError(f"index {index} out of range: expected 0..{N_CELLS - 1}")
        return _official_order()[int(index)]

    # --- isomorphism ------------------------------------------------------------------------------
    def canonical(self, arch: Arch) -> Arch:
        """The lowest-index cell computing the same function as ``arch`` (see :func:`cell_function`)."""
        return _canonical_map()[cell_function(self._check(arch))]

    # --- graphs for predictors -----------------------------------------------------------------------
    def to_graph(self, arch: Arch, kind: str | None = None) -> ArchGraph:
        kind = kind or self.graph_kinds[0]
        ops = ("input", *self._check(arch), "output")
        if kind == "full":
            return ArchGraph(tuple(_GRAPH_OP_ID[o] for o in ops), _FULL_EDGES, GRAPH_VOCAB)
        if kind == "pruned":
            return _pruned_graph(ops)
        if kind == "executed":
            return _pruned_graph(ops, keep_dangling=True)
        raise InvalidArchitectureError(f"unknown graph kind {kind!r}; nb201 offers {self.graph_kinds}")

    def _check(self, arch: Any) -> Arch:
        if isinstance(arch, str):
            raise InvalidArchitectureError(
                f"got the string {arch!r} where an architecture tuple was expected; use space.from_str"
            )
        arch = tuple(arch)
        if len(arch) != len(EDGES) or any(op not in OPS for op in arch):
            raise InvalidArchitectureError(
                f"an nb201 architecture is a tuple of {len(EDGES)} ops from {OPS}, got {arch!r}"
            )
        return arch


def _pruned_graph(ops: tuple[str, ...], keep_dangling: bool = False) -> ArchGraph:
    """NN-Former's graph: drop ``none`` nodes, then (unless ``keep_dangling``) every node not on an
    input→output path."""
    keep = [o != "none" for o in ops]
    succ: dict[int, list[int]] = {i: [] for i in range(8)}
    for i, j in _FULL_EDGES:
        if keep[i] and keep[j]:
            succ[i].append(j)
    forward = _reachable(0, succ)
    pred: dict[int, list[int]] = {i: [] for i in range(8)}
    for i, js in succ.items():
        for j in js:
            pred[j].append(i)
    backward = _reachable(7, pred)
    nodes = [i for i in range(8) if keep[i] and (keep_dangling or i in (0, 7) or (i in forward and i in backward))]
    new_id = {old: new for new, old in enumerate(nodes)}
    edges = tuple(
        (new_id[i], new_id[j]) for i, j in _FULL_EDGES if i in new_id and j in new_id and j in succ[i]
    )
    return ArchGraph(tuple(_GRAPH_OP_ID[ops[i]] for i in nodes), edges, GRAPH_VOCAB)


def _reachable(start: int, nbrs: Mapping[int, list[int]]) -> set[int]:
    seen, stack = {start}, [start]
    while stack:
        for nxt in nbrs[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def cell_function(arch: Arch) -> tuple:
    """A hashable form of what the cell computes; equal for cells that are isomorphic.

    Node 0 is the input ``x``; node j is the sum over its incoming edges of op(node i). We expand
    that into a sorted multiset of terms: ``skip_connect`` passes its input's terms through
    (identity), ``none`` contributes nothing, and an op applied to a zero input contributes nothing.
    Two cells with the same expansion of node 3 compute the same function for any weights.
    """
    terms: dict[int, tuple] = {0: ("x",)}
    for node in (1, 2, 3):
        acc: list = []
        for (target, source), op in zip(EDGES, arch, strict=True):
            if target != node or op == "none" or not terms[source]:
                continue
            acc.extend(terms[source] if op == "skip_connect" else [(op, terms[source])])
        terms[node] = tuple(sorted(acc, key=repr))
    return terms[3]


@cache
def _official_order() -> tuple[Arch, ...]:
    text = resources.files("search_spaces.nasbench201").joinpath("official_order.txt").read_text()
    codes = [line for line in text.splitlines() if line and not line.startswith("#")]
    return tuple(tuple(OPS[int(c)] for c in code) for code in codes)


@cache
def _official_index() -> dict[Arch, int]:
    return {arch: i for i, arch in enumerate(_official_order())}


@cache
def _canonical_map() -> dict[tuple, Arch]:
    out: dict[tuple, Arch] = {}
    for arch in _official_order():
        out.setdefault(cell_function(arch), arch)
    return out
