"""The SearchSpace contract.

A space owns its architectures: immutable, hashable values with a canonical string form. Everything
else in nasloop (strategies, the loop, predictors) reaches architectures only through this interface.

A new space implements four methods (``param_choices``, ``to_params``, ``from_params``, ``to_graph``);
sampling, mutation, neighbours and the string form have working defaults built on the flat
categorical parameter view, which a space overrides when it knows better (NAS-Bench-201 does).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from nasloop.errors import InvalidArchitectureError
from nasloop.types import ArchGraph

Arch = Hashable
Params = Mapping[str, Any]
# Longest architecture string the built-in parsers read; real ones are well under 1,000 characters.
MAX_STRING = 10_000


class SearchSpace(ABC):
    """Base class of every search space.

    Subclasses set ``name`` and may list several graph conversions in ``graph_kinds`` (the first is
    the default); a predictor asks for the kind it was designed for via :func:`graph_for`.
    """

    name: str = "space"
    graph_kinds: tuple[str, ...] = ("default",)

    # --- the four methods every space implements -------------------------------------------
    @abstractmethod
    def param_choices(self) -> dict[str, list[Any]]:
        """Flat categorical view: parameter name → allowed values (sorted, stable order)."""

    @abstractmethod
    def to_params(self, arch: Arch) -> dict[str, Any]:
        """Architecture → parameter dict (every key of :meth:`param_choices`)."""

    @abstractmethod
    def from_params(self, params: Params) -> Arch:
        """Parameter dict → architecture. Raises ``InvalidArchitectureError`` for invalid combos."""

    @abstractmethod
    def to_graph(self, arch: Arch, kind: str | None = None) -> ArchGraph:
        """Architecture → node-op DAG for predictors; ``kind`` selects one of ``graph_kinds``."""

    # --- defaults built on the parameter view ------------------------------------------------
    def to_str(self, arch: Arch) -> str:
        """Canonical string (default: ``name=value`` pairs joined by ``;``, keys sorted)."""
        params = self.to_params(arch)
        return ";".join(f"{k}={params[k]}" for k in sorted(params))

    def from_str(self, text: str) -> Arch:
        """Inverse of :meth:`to_str`; raises ``InvalidArchitectureError`` naming the bad part."""
        if not isinstance(text, str):
            raise InvalidArchitectureError(f"architecture must be a string, got {type(text).__name__}")
        if len(text) > MAX_STRING:
            raise InvalidArchitectureError(f"a {len(text):,}-character string is not a {self.name} architecture")
        choices = self.param_choices()
        params: dict[str, Any] = {}
        for part in filter(None, text.strip().split(";")):
            key, sep, raw = part.partition("=")
            if not sep or key not in choices:
                raise InvalidArchitectureError(
                    f"bad part {part!r} in architecture string {text!r}: expected name=value with "
                    f"name one of {sorted(choices)}"
                )
            by_str = {str(c): c for c in choices[key]}
            if raw not in by_str:
                raise InvalidArchitectureError(
                    f"bad value {raw!r} for {key!r} in {text!r}: expected one of {list(by_str)}"
                )
            params[key] = by_str[raw]
        missing = sorted(set(choices) - set(params))
        if missing:
            raise InvalidArchitectureError(f"architecture string {text!r} lacks {missing}")
        return self.from_params(params)

    def sample(self, rng: np.random.Generator) -> Arch:
        """A random valid architecture (default: uniform parameters, rejecting invalid ones)."""
        choices = self.param_choices()
        for _ in range(10_000):
            params = {k: v[int(rng.integers(len(v)))] for k, v in sorted(choices.items())}
            try:
                return self.from_params(params)
            except InvalidArchitectureError:
                continue
        raise InvalidArchitectureError(f"{self.name}: no valid architecture in 10,000 samples")

    def neighbours(self, arch: Arch) -> list[Arch]:
        """Every valid architecture one parameter change away (default: via the parameter view)."""
        params = self.to_params(arch)
        out: list[Arch] = []
        for key, values in sorted(self.param_choices().items()):
            for v in values:
                if v == params[key]:
                    continue
                try:
                    cand = self.from_params({**params, key: v})
                except InvalidArchitectureError:
                    continue
                if cand != arch:
                    out.append(cand)
        return out

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """A random neighbour: never returns ``arch`` itself."""
        options = self.neighbours(arch)
        if not options:
            raise InvalidArchitectureError(f"{self.name}: {self.to_str(arch)} has no neighbours")
        return options[int(rng.integers(len(options)))]

    # --- optional hooks for finite / symmetric spaces ----------------------------------------
    def enumerate(self) -> Iterator[Arch] | None:
        """All architectures in a fixed order, or ``None`` when the space is not enumerable."""
        return None

    def size(self) -> int | None:
        """How many architectures a finite space holds; ``None`` (the default) when unknown or
        infinite. A space that defines ``__len__`` gets its length here."""
        length = getattr(type(self), "__len__", None)
        return None if length is None else int(length(self))

    def canonical(self, arch: Arch) -> Arch:
        """Representative of the isomorphism class (default: the architecture itself)."""
        return arch

    def describe(self) -> str:
        return self.name


def graph_for(space: SearchSpace, arch: Arch, wanted: str | None) -> ArchGraph:
    """The graph of ``arch`` in the kind a predictor wants, or the space's default kind."""
    kind = wanted if wanted in space.graph_kinds else space.graph_kinds[0]
    return space.to_graph(arch, kind)


def graphs_for(space: SearchSpace, archs: Sequence[Arch], wanted: str | None) -> list[ArchGraph]:
    return [graph_for(space, a, wanted) for a in archs]
