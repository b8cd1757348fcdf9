"""A complete custom search space: multi-layer perceptrons for scikit-learn's digits.

An architecture is 1 to 3 hidden layers, each 16, 32, 64 or 128 units wide, and one activation
(``relu`` or ``tanh``) for all of them: 2 x (4 + 16 + 64) = 168 architectures. The evaluator trains a
real network (``sklearn.neural_network.MLPClassifier``) on the 1,797 8x8 digit images bundled with
scikit-learn and reports its validation accuracy.

The space implements only the four required methods; sampling, mutation, neighbours and the string
form come from :class:`nasloop.space.SearchSpace`'s defaults, built on :meth:`param_choices`.

Run a search (from the repository root)::

    nasloop search --space examples.custom_space.mlp_space:MLPSpace \\
        --benchmark examples.custom_space.mlp_space:make_benchmark --metric val_acc --budget 20
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from nasloop.errors import ConfigError, InvalidArchitectureError
from nasloop.plugins import FunctionBenchmark
from nasloop.space import SearchSpace
from nasloop.types import ArchGraph

WIDTHS = (16, 32, 64, 128)
ACTIVATIONS = ("relu", "tanh")
MAX_LAYERS = 3
VOCAB = ("input", *(f"linear_{w}" for w in WIDTHS), *ACTIVATIONS, "output")


class MLP(NamedTuple):
    """An architecture: hidden layer widths (1 to 3 of them) and their activation. Immutable, hashable."""

    widths: tuple[int, ...]
    activation: str


class MLPSpace(SearchSpace):
    """MLPs with 1-3 hidden layers of 16-128 units and a relu/tanh activation (168 architectures).

    Example:
        >>> import numpy as np
        >>> space = MLPSpace()
        >>> arch = space.from_params({"n_layers": 2, "width_1": 64, "width_2": 32, "width_3": 16,
        ...                           "activation": "relu"})
        >>> arch
        MLP(widths=(64, 32), activation='relu')
        >>> space.to_graph(arch).op_names()
        ('input', 'linear_64', 'relu', 'linear_32', 'relu', 'output')
    """

    name = "mlp-digits"

    # 1. The flat categorical view: strategies (and TPE) sample and mutate through it.
    def param_choices(self) -> dict[str, list[Any]]:
        return {
            "n_layers": list(range(1, MAX_LAYERS + 1)),
            **{f"width_{i}": list(WIDTHS) for i in range(1, MAX_LAYERS + 1)},
            "activation": list(ACTIVATIONS),
        }

    # 2. Architecture → parameters. Widths of absent layers get a fixed value so that
    #    from_params(to_params(arch)) == arch (the conformance checks test this round trip).
    def to_params(self, arch: MLP) -> dict[str, Any]:
        arch = self._check(arch)
        params: dict[str, Any] = {"n_layers": len(arch.widths), "activation": arch.activation}
        for i in range(1, MAX_LAYERS + 1):
            params[f"width_{i}"] = arch.widths[i - 1] if i <= len(arch.widths) else WIDTHS[0]
        return params

    # 3. Parameters → architecture; invalid combinations raise InvalidArchitectureError.
    def from_params(self, params: Mapping[str, Any]) -> MLP:
        try:
            n = int(params["n_layers"])
            widths = tuple(int(params[f"width_{i}"]) for i in range(1, n + 1))
            return self._check(MLP(widths, str(params["activation"])))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidArchitectureError):
                raise
            raise InvalidArchitectureError(f"bad MLP parameters {dict(params)!r}: {exc}") from None

    # 4. The graph predictors see: a chain input → linear → activation → ... → output.
    def to_graph(self, arch: MLP, kind: str | None = None) -> ArchGraph:
        arch = self._check(arch)
        names = ["input"]
        for w in arch.widths:
            names += [f"linear_{w}", arch.activation]
        names.append("output")
        edges = tuple((i, i + 1) for i in range(len(names) - 1))
        return ArchGraph(tuple(VOCAB.index(n) for n in names), edges, VOCAB)

    # Optional: the space is small and finite, so offer enumeration.
    def enumerate(self) -> Iterator[MLP]:
        for n in range(1, MAX_LAYERS + 1):
            for widths in itertools.product(WIDTHS, repeat=n):
                for act in ACTIVATIONS:
                    yield MLP(widths, act)

    def __len__(self) -> int:
        return len(ACTIVATIONS) * sum(len(WIDTHS) ** n for n in range(1, MAX_LAYERS + 1))

    def _check(self, arch: Any) -> MLP:
        if isinstance(arch, str):
            raise InvalidArchitectureError(f"got the string {arch!r}; use space.from_str")
        widths, activation = arch
        if not 1 <= len(widths) <= MAX_LAYERS or any(w not in WIDTHS for w in widths):
            raise InvalidArchitectureError(
                f"an MLP has 1..{MAX_LAYERS} hidden layers with widths from {WIDTHS}, got {widths!r}"
            )
        if activation not in ACTIVATIONS:
            raise InvalidArchitectureError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        return MLP(tuple(int(w) for w in widths), str(activation))


# --- the evaluator: real training on a real (small) data set -------------------------------------------------
@lru_cache(maxsize=1)
def _digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = x / 16.0  # pixel values 0..16 → 0..1
    return train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)


def evaluate(arch: MLP) -> dict[str, float]:
    """Train ``arch`` on 70% of the digits (fixed split, fixed seed) and measure the other 30%.

    Returns:
        ``val_acc`` (percent) and ``params`` (number of weights and biases).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    arch = MLPSpace()._check(arch)
    x_train, x_val, y_train, y_val = _digits_split()
    model = MLPClassifier(hidden_layer_sizes=arch.widths, activation=arch.activation, max_iter=40,
                          random_state=0)
    # One BLAS thread: matrices this small gain nothing from more, and on a busy machine extra
    # threads made training several times slower.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)  # a short, fixed epoch budget is deliberate
        model.fit(x_train, y_train)
    params = sum(w.size for w in model.coefs_) + sum(b.size for b in model.intercepts_)
    return {"val_acc": 100.0 * model.score(x_val, y_val), "params": float(params)}


def make_benchmark(data: str | None = None, dataset: str | None = None) -> FunctionBenchmark:
    """The benchmark factory that ``--benchmark`` names: ``evaluate`` wrapped as a Benchmark.

    The cost of a query is the seconds ``evaluate`` took (FunctionBenchmark measures it).
    """
    if data is not None or dataset not in (None, "digits"):
        raise ConfigError("the MLP example trains on scikit-learn's digits; drop --data/--dataset")
    return FunctionBenchmark(
        MLPSpace(), evaluate, label="MLP trained on scikit-learn digits (70/30 split, 40 epochs)",
        metrics=("val_acc", "params"),
    )
