"""The DARTS cell space: a normal and a reduction cell, each with 4 intermediate nodes.

Node ``k`` (2..5) of a cell sums two edges from two *different* earlier nodes (0 and 1 are the
outputs of the two previous cells); each edge carries one of the 7 DARTS operations (``none`` is not
an operation of a final genotype). The cell's output concatenates nodes 2..5.

An architecture is a :class:`Genotype` ``(normal, reduce)``, each 8 ``(op, input)`` pairs in the order
of the official DARTS ``genotypes.py`` (pairs ``2k-4`` and ``2k-3`` feed node ``k``). Its string is the
official form ``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], reduce=[...],
reduce_concat=[2, 3, 4, 5])``; NASLib's compact form converts with :func:`from_compact`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from nasloop.errors import InvalidArchitectureError
from nasloop.space import MAX_STRING, SearchSpace
from nasloop.types import ArchGraph

# NASLib's compact op index is the position in this list (DARTS ``PRIMITIVES`` without ``none``).
OPS: tuple[str, ...] = (
    "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)
N_NODES = 4  # intermediate nodes per cell
CONCAT = (2, 3, 4, 5)
CELLS = ("normal", "reduce")

Edge = tuple[str, int]  # (op, input node)
CellGenes = tuple[Edge, ...]  # 8 edges, two per intermediate node


class Genotype(NamedTuple):
    """A DARTS architecture: 8 ``(op, input)`` edges for the normal and for the reduction cell."""

    normal: CellGenes
    reduce: CellGenes


# Predictor graph: one DAG holding both cells, op nodes only (see DartsSpace.to_graph).
GRAPH_VOCAB: tuple[str, ...] = (
    "input", *OPS, "normal_output", *(f"reduce_{op}" for op in OPS), "reduce_output",
)
_VOCAB_ID = {name: i for i, name in enumerate(GRAPH_VOCAB)}


def _param_names() -> list[tuple[str, str, int, int]]:
    """(name, cell, node, slot) for every input and op parameter, in a fixed order."""
    out = []
    for cell in CELLS:
        for node in range(2, 2 + N_NODES):
            for slot in (0, 1):
                out.append((f"{cell}_node{node}_in{slot}", cell, node, slot))
                out.append((f"{cell}_node{node}_op{slot}", cell, node, slot))
    return out


PARAMS = _param_names()


class DartsSpace(SearchSpace):
    """The DARTS (and NAS-Bench-301) cell space: about 10^18 genotypes.

    Args:
        pool: optional genotypes to restrict the space to (e.g. the 725 of a surrogate table):
            sampling draws from the pool, mutation moves to the pool genotype with the fewest
            differing edges.

    Example:
        >>> space = DartsSpace()
        >>> g = space.sample(np.random.default_rng(0))
        >>> space.from_str(space.to_str(g)) == g
        True
        >>> space.to_graph(g).n_nodes
        20
    """

    name = "darts"
    graph_kinds = ("default",)

    def __init__(self, pool: Iterable[Genotype] | None = None) -> None:
        self._pool: tuple[Genotype, ...] | None = None
        if pool is not None:
            self._pool = tuple(dict.fromkeys(self.canonical(g) for g in pool))
            if not self._pool:
                raise InvalidArchitectureError("the pool of a restricted DartsSpace is empty")

    def __len__(self) -> int:
        if self._pool is not None:
            return len(self._pool)
        per_node = [k * (k - 1) // 2 * len(OPS) ** 2 for k in range(2, 2 + N_NODES)]
        return int(np.prod(per_node, dtype=object)) ** 2

    def describe(self) -> str:
        return self.name if self._pool is None else f"{self.name} (restricted to {len(self._pool)} genotypes)"

    # --- string forms ----------------------------------------------------------------------------------
    def to_str(self, arch: Genotype) -> str:
        g = self._check(arch)
        concat = list(CONCAT)
        return (f"Genotype(normal={list(g.normal)!r}, normal_concat={concat}, "
                f"reduce={list(g.reduce)!r}, reduce_concat={concat})")

    def from_str(self, text: str) -> Genotype:
        """The official genotype string (``*_concat`` as a list or ``range(2, 6)``), or NASLib's compact form."""
        if not isinstance(text, str):
            raise InvalidArchitectureError(f"architecture must be a string, got {type(text).__name__}")
        expected = ("expected Genotype(normal=[('op', input), ... 8 pairs], normal_concat=[2, 3, 4, 5], "
                    "reduce=[...], reduce_concat=[2, 3, 4, 5]) or NASLib's compact [[(input, op_id), ...], [...]]")
        if len(text) > MAX_STRING:  # a genotype string is ~500 characters; parsing is not for megabytes
            raise InvalidArchitectureError(f"a {len(text):,}-character string is not a DARTS genotype: {expected}")
        try:
            tree = ast.parse(text.strip(), mode="eval").body
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            raise InvalidArchitectureError(f"{text[:200]!r} is not a DARTS genotype: {expected}") from None
        if isinstance(tree, ast.List | ast.Tuple):
            return from_compact(_literal(tree, text, expected))
        if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "Genotype"):
            raise InvalidArchitectureError(f"{text!r} is not a DARTS genotype: {expected}")
        fields = {kw.arg: kw.value for kw in tree.keywords}
        if set(fields) != {"normal", "normal_concat", "reduce", "reduce_concat"} or tree.args:
            raise InvalidArchitectureError(f"{text!r} needs exactly the four keyword fields: {expected}")
        for key in ("normal_concat", "reduce_concat"):
            if _concat_of(fields[key], text, expected) != CONCAT:
                raise InvalidArchitectureError(f"{key} in {text!r} must be [2, 3, 4, 5] (all intermediate nodes)")
        cells = [_literal(fields[c], text, expected) for c in CELLS]
        try:
            return self._check(Genotype(*(tuple(_edge(pair) for pair in c) for c in cells)))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InvalidArchitectureError):
                raise
            raise InvalidArchitectureError(f"{text!r}: each edge is ('op', input): {expected}") from None

    # --- parameter view ------------------------------------------------------------------------------------
    def param_choices(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for name, _cell, node, _slot in PARAMS:
            out[name] = list(range(node)) if "_in" in name else list(OPS)
        return out

    def to_params(self, arch: Genotype) -> dict[str, Any]:
        g = self._check(arch)
        out: dict[str, Any] = {}
        for name, cell, node, slot in PARAMS:
            op, inp = getattr(g, cell)[2 * (node - 2) + slot]
            out[name] = inp if "_in" in name else op
        return out

    def from_params(self, params: Mapping[str, Any]) -> Genotype:
        missing = [name for name, *_ in PARAMS if name not in params]
        if missing:
            raise InvalidArchitectureError(f"parameters lack {missing[:4]}...; see param_choices()")
        cells = {c: [("", 0)] * (2 * N_NODES) for c in CELLS}
        for name, cell, node, slot in PARAMS:
            pos = 2 * (node - 2) + slot
            op, inp = cells[cell][pos]
            cells[cell][pos] = (op, int(params[name])) if "_in" in name else (str(params[name]), inp)
        return self._check(Genotype(tuple(cells["normal"]), tuple(cells["reduce"])))

    # --- sampling, mutation ----------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Genotype:
        """Uniform: per node two distinct inputs and an op per edge, drawn uniformly."""
        if self._pool is not None:
            return self._pool[int(rng.integers(len(self._pool)))]
        cells = []
        for _ in CELLS:
            edges: list[Edge] = []
            for node in range(2, 2 + N_NODES):
                inputs = rng.choice(node, size=2, replace=False)
                edges.extend((OPS[int(rng.integers(len(OPS)))], int(i)) for i in inputs)
            cells.append(tuple(edges))
        return Genotype(*cells)

    def neighbours(self, arch: Genotype) -> list[Genotype]:
        """Every genotype that differs in one edge's op or one edge's input (distinct inputs kept)."""
        g = self._check(arch)
        out: list[Genotype] = []
        for c, cell in enumerate(CELLS):
            edges = getattr(g, cell)
            for pos, (op, inp) in enumerate(edges):
                node = 2 + pos // 2
                sibling = edges[pos ^ 1][1]
                changes = [(o, inp) for o in OPS if o != op]
                changes += [(op, i) for i in range(node) if i not in (inp, sibling)]
                for new in changes:
                    cells = [g.normal, g.reduce]
                    cells[c] = edges[:pos] + (new,) + edges[pos + 1 :]
                    out.append(Genotype(*cells))
        if self._pool is None:
            return out
        pool = set(self._pool)
        return [self.canonical(n) for n in out if self.canonical(n) in pool]

    def mutate(self, arch: Genotype, rng: np.random.Generator) -> Genotype:
        """One edge changes its op or its input (NASLib's DARTS mutation); never returns ``arch``."""
        g = self._check(arch)
        if self._pool is not None:
            options = self.neighbours(g) or self._nearest_in_pool(g)
            return options[int(rng.integers(len(options)))]
        c = int(rng.integers(2))
        edges = list(g[c])
        pos = int(rng.integers(len(edges)))
        op, inp = edges[pos]
        node, sibling = 2 + pos // 2, edges[pos ^ 1][1]
        free_inputs = [i for i in range(node) if i not in (inp, sibling)]
        if free_inputs and rng.random() < 0.5:
            edges[pos] = (op, free_inputs[int(rng.integers(len(free_inputs)))])
        else:
            others = [o for o in OPS if o != op]
            edges[pos] = (others[int(rng.integers(len(others)))], inp)
        cells = [g.normal, g.reduce]
        cells[c] = tuple(edges)
        return Genotype(*cells)

    def _nearest_in_pool(self, g: Genotype) -> list[Genotype]:
        own = self.canonical(g)
        flat = own.normal + own.reduce
        scored = [(sum(a != b for a, b in zip(flat, p.normal + p.reduce)), p) for p in self._pool or () if p != own]
        best = min(d for d, _ in scored)
        return [p for d, p in scored if d == best]

    def enumerate(self):
        return iter(self._pool) if self._pool is not None else None

    def canonical(self, arch: Genotype) -> Genotype:
        """The same cells with each node's two edges sorted (their order does not change the network)."""
        g = self._check(arch)
        return Genotype(*(_sorted_pairs(cell) for cell in g))

    # --- graph for predictors ----------------------------------------------------------------------------------
    def to_graph(self, arch: Genotype, kind: str | None = None) -> ArchGraph:
        """Both cells in one op-node DAG (20 nodes).

        Nodes: 0 and 1 are the normal cell's inputs (c_{k-2}, c_{k-1}); 2..9 its 8 op nodes; 10 its
        output (concatenation of nodes 2..5, fed by all 8 ops). The reduction cell follows as it does in
        the network: its inputs are node 1 and node 10, its op nodes are 11..18 (tokens ``reduce_*``)
        and 19 its output. An op node on an edge from intermediate node i is fed by the two op nodes
        that sum into node i.
        """
        if kind not in (None, "default"):
            raise InvalidArchitectureError(f"unknown graph kind {kind!r}; darts offers {self.graph_kinds}")
        g = self._check(arch)
        ops = [_VOCAB_ID["input"], _VOCAB_ID["input"]]
        edges: list[tuple[int, int]] = []
        inputs = (0, 1)
        for cell, prefix in (("normal", ""), ("reduce", "reduce_")):
            first = len(ops)  # op node of edge e is first + e
            for e, (op, src) in enumerate(getattr(g, cell)):
                ops.append(_VOCAB_ID[prefix + op])
                feeders = [inputs[src]] if src < 2 else [first + 2 * (src - 2), first + 2 * (src - 2) + 1]
                edges.extend((f, first + e) for f in feeders)
            out = len(ops)
            ops.append(_VOCAB_ID[f"{cell}_output"])
            edges.extend((first + e, out) for e in range(2 * N_NODES))
            inputs = (inputs[1], out)
        return ArchGraph(tuple(ops), tuple(edges), GRAPH_VOCAB)

    def _check(self, arch: Any) -> Genotype:
        if isinstance(arch, str):
            raise InvalidArchitectureError(f"got the string {arch!r} where a Genotype was expected; use space.from_str")
        try:
            g = Genotype(*(tuple((str(op), int(i)) for op, i in cell) for cell in arch))
        except (TypeError, ValueError):
            raise InvalidArchitectureError(
                f"a DARTS architecture is Genotype(normal, reduce), each 8 (op, input) pairs; got {arch!r}"
            ) from None
        for cell, edges in zip(CELLS, g):
            if len(edges) != 2 * N_NODES:
                raise InvalidArchitectureError(f"the {cell} cell has {len(edges)} edges, needs {2 * N_NODES}")
            for pos, (op, inp) in enumerate(edges):
                node = 2 + pos // 2
                if op not in OPS:
                    raise InvalidArchitectureError(f"unknown op {op!r} in the {cell} cell; ops are {', '.join(OPS)}")
                if not 0 <= inp < node:
                    raise InvalidArchitectureError(
                        f"edge {pos} of the {cell} cell feeds node {node} from node {inp}: inputs must be 0..{node - 1}"
                    )
            for node in range(N_NODES):
                if edges[2 * node][1] == edges[2 * node + 1][1]:
                    raise InvalidArchitectureError(
                        f"node {node + 2} of the {cell} cell takes both inputs from node {edges[2 * node][1]}; "
                        "a DARTS node has two different inputs"
                    )
        return g


def _sorted_pairs(edges: CellGenes) -> CellGenes:
    out: list[Edge] = []
    for node in range(N_NODES):
        out.extend(sorted(edges[2 * node : 2 * node + 2], key=lambda e: (e[1], OPS.index(e[0]))))
    return tuple(out)


def _literal(node: ast.AST, text: str, expected: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise InvalidArchitectureError(f"{text!r} is not a DARTS genotype: {expected}") from None


def _edge(pair: Any) -> Edge:
    """``('op', input)`` with a string op and a whole-number input (no floats or booleans)."""
    op, inp = pair
    if not isinstance(op, str) or isinstance(inp, bool) or not isinstance(inp, int):
        raise TypeError(f"{pair!r} is not ('op', input)")
    return op, inp


def _concat_of(node: ast.AST, text: str, expected: str) -> tuple[int, ...]:
    wrong = f"{text!r}: *_concat must be [2, 3, 4, 5] or range(2, 6)"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        args = [_literal(a, text, expected) for a in node.args]
        # Small whole-number arguments only: never build a huge range from a hostile string.
        if node.keywords or not 1 <= len(args) <= 3 or any(type(a) is not int or abs(a) > 100 for a in args):
            raise InvalidArchitectureError(wrong)
        if len(args) == 3 and args[2] == 0:
            raise InvalidArchitectureError(wrong)
        return tuple(range(*args))
    value = _literal(node, text, expected)
    if not isinstance(value, list | tuple) or any(type(v) is not int for v in value):
        raise InvalidArchitectureError(wrong)
    return tuple(value)


# --- NASLib's compact form ---------------------------------------------------------------------------------------
def from_compact(compact: str | Sequence[Sequence[Sequence[int]]]) -> Genotype:
    """NASLib's compact form: two cells of 8 ``(input_node, op_index)`` pairs, ops indexed in :data:`OPS`."""
    try:
        if isinstance(compact, str) and len(compact) > MAX_STRING:
            raise ValueError
        value = ast.literal_eval(compact) if isinstance(compact, str) else compact
        cells = [tuple((OPS[_node_id(op)], _node_id(inp)) for inp, op in cell) for cell in value]
        if len(cells) != 2:
            raise ValueError
    except (TypeError, ValueError, IndexError, SyntaxError, MemoryError, RecursionError):
        raise InvalidArchitectureError(
            f"NASLib's compact DARTS form is two lists of 8 (input_node, op_index) pairs with op_index in "
            f"0..{len(OPS) - 1}; got {compact!r}"
        ) from None
    return DartsSpace()._check(Genotype(*cells))


def _node_id(value: Any) -> int:
    """A non-negative whole number (an op index or input node of the compact form)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{value!r} is not a whole number >= 0")
    return int(value)


def to_compact(arch: Genotype) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Inverse of :func:`from_compact`."""
    g = DartsSpace()._check(arch)
    return tuple(tuple((inp, OPS.index(op)) for op, inp in cell) for cell in g)
