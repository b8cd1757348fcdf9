"""Predictor priors: one transformer pre-trained on many targets, adapted to a new one from a few cells.

Pre-training (:func:`pretrain`) fits the encoder of NN-Former or NAR-Former V2 shared across
targets, with one linear output per target (every device column of a latency table, or an accuracy
column of a dataset). Each table row gives all targets of a cell at once, so one forward pass serves
every target. Targets are standardised per target, latency in log space (devices differ by orders
of magnitude; ratios between cells are what transfers).

Adaptation (:class:`PriorPredictor`) fits a new target from ``k`` measured cells by ridge
regression on the prior's outputs: the per-target predictions (a new device as a weighted mix of
known devices, the idea behind HELP's hardware embedding) and, where it helps, the encoder's
embedding of the cell. The prior's outputs get a fixed penalty, the embedding's is chosen by exact
leave-one-out error, so adaptation is closed-form, deterministic and takes milliseconds once the
cells are encoded.

A prior is a folder holding ``weights.pt`` (a ``torch.save`` of plain tensors, read back with
``weights_only=True``, so loading never runs code) and ``prior.json`` (its settings). Its identity
is the SHA-256 of both files (:func:`prior_digest`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from nasloop.errors import ConfigError
from nasloop.predictor import Predictor, validate_training_data
from nasloop.types import ArchGraph
from predictors.graphs import GraphEncoder, n_op_types
from predictors.training import attach_generator, cpu_threads, lr_factor, param_groups, predict_batches

WEIGHTS_FILE = "weights.pt"
SETTINGS_FILE = "prior.json"
FORMAT_VERSION = 1
PRIOR_PREDICTORS = ("nnformer", "narformer2")
KINDS = ("accuracy", "latency")
FEATURE_SETS = ("auto", "targets", "targets+embedding")
RIDGE_PENALTIES = tuple(float(x) for x in np.logspace(-3, 4, 15))
# Ridge penalty per standardised feature. With 10 cells a leave-one-out choice overfits (too small a
# penalty); a fixed one does not (docs/decisions.md).
DEFAULT_PENALTY = 0.3
# Candidate penalties per embedding column, chosen by leave-one-out: with few cells a large one keeps
# the prior's ranking, with more cells the embedding corrects it.
EMBEDDING_PENALTIES = (1.0, 3.0, 10.0, 30.0, 100.0, 1000.0)


@dataclass
class PretrainConfig:
    """Optimisation of a pre-training run (the model's sizes are the predictor's ``fast`` preset)."""

    steps: int = 3000  # optimiser steps
    batch_size: int = 64  # cells per step
    lr: float = 2e-3  # peak learning rate (warm-up, then cosine)
    weight_decay: float = 0.01
    max_cells: int | None = 4000  # cells drawn at random for pre-training (None: every row)
    seed: int = 0
    n_threads: int = 1  # torch CPU threads


# --- the model ---------------------------------------------------------------------------------------
def _predictor_class(name: str) -> type:
    if name == "nnformer":
        from predictors.nnformer import NNFormerPredictor

        return NNFormerPredictor
    if name == "narformer2":
        from predictors.narformer2 import NARFormerV2Predictor

        return NARFormerV2Predictor
    raise ConfigError(f"a prior is built on one of {PRIOR_PREDICTORS}, got {name!r}")


def _output_layer(model: nn.Module) -> tuple[nn.Module, str]:
    """(module that holds the final linear layer, attribute name) of NN-Former or NAR-Former V2."""
    head = model.head
    if isinstance(head, nn.Linear):
        return model, "head"
    if isinstance(head, nn.Sequential) and isinstance(head[-1], nn.Linear):
        return head, str(len(head) - 1)
    raise ConfigError(f"{type(model).__name__} has no final linear layer to widen")  # pragma: no cover


def build_network(predictor: str, preset: str, n_targets: int, n_ops: int, max_nodes: int,
                  generator: torch.Generator) -> nn.Module:
    """The predictor's network with its final linear layer widened to ``n_targets`` outputs.

    The accuracy preset is used for every target (no positive output: targets are standardised).
    """
    cls = _predictor_class(predictor)
    maker = cls(preset=preset)
    model_cfg, _ = maker._preset(preset, "accuracy")
    capacity = maker._capacity(model_cfg, n_ops, max_nodes)
    with torch.random.fork_rng(devices=[]):
        model = maker._build_model(model_cfg, *capacity, generator)
        owner, attr = _output_layer(model)
        old = getattr(owner, attr)
        new = nn.Linear(old.in_features, n_targets)
        nn.init.trunc_normal_(new.weight, std=0.02, generator=generator)
        nn.init.zeros_(new.bias)
        setattr(owner, attr, new)
    if hasattr(model, "cfg") and hasattr(model.cfg, "head_bias"):
        model.cfg = dataclasses.replace(model.cfg, head_bias=0.0)
    return model


class _Embedding:
    """Captures the input of the final linear layer (the cell's embedding) during a forward pass."""

    def __init__(self, model: nn.Module) -> None:
        owner, attr = _output_layer(model)
        self.value: torch.Tensor | None = None
        self._handle = getattr(owner, attr).register_forward_pre_hook(self._keep)

    def _keep(self, _module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self.value = inputs[0].detach()


class _WithEmbedding(nn.Module):
    """Forward returns [target outputs | embedding] per cell, so one pass gives both."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.hook = _Embedding(model)

    def forward(self, batch: Any) -> torch.Tensor:
        out = self.model(batch)
        out = out[:, None] if out.ndim == 1 else out
        return torch.cat([out, self.hook.value], dim=1)


# --- the prior on disk --------------------------------------------------------------------------------
@dataclass
class Prior:
    """A loaded prior: its settings and network, scoring cells as standardised per-target outputs."""

    settings: dict[str, Any]
    network: nn.Module
    digest: str

    @property
    def targets(self) -> list[str]:
        return list(self.settings["targets"])

    @property
    def graph_kind(self) -> str | None:
        return self.settings["graph_kind"]

    def features(self, batch: Any, batch_size: int = 256) -> np.ndarray:
        """Per cell: the standardised outputs of every target, then the embedding, shape (n, T + D)."""
        with cpu_threads(1, torch.device("cpu")):
            return predict_batches(_WithEmbedding(self.network), batch, batch_size, torch.device("cpu"))

    def predict_targets(self, batch: Any) -> np.ndarray:
        """Each target in its own units, shape (n, T)."""
        z = self.features(batch)[:, : len(self.targets)]
        mean, std = np.asarray(self.settings["mean"]), np.asarray(self.settings["std"])
        t = z * std + mean
        logged = np.asarray([k == "latency" for k in self.settings["kinds"]])
        return np.where(logged, np.exp(t), t)


def prior_digest(folder: str | Path) -> str:
    """SHA-256 over the prior's settings and weights files (its identity in run configs)."""
    h = hashlib.sha256()
    for name in (SETTINGS_FILE, WEIGHTS_FILE):
        h.update(name.encode())
        h.update((Path(folder) / name).read_bytes())
    return h.hexdigest()


def save_prior(folder: str | Path, settings: dict[str, Any], network: nn.Module) -> str:
    """Write ``prior.json`` and ``weights.pt`` into ``folder``; returns the prior's digest."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone().contiguous() for k, v in network.state_dict().items()}
    torch.save(state, out / WEIGHTS_FILE)
    (out / SETTINGS_FILE).write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    return prior_digest(out)


def load_prior(folder: str | Path) -> Prior:
    """Read a prior folder; plain tensors only (a file holding code is refused)."""
    path = Path(folder)
    settings_path, weights_path = path / SETTINGS_FILE, path / WEIGHTS_FILE
    if not path.is_dir() or not settings_path.is_file() or not weights_path.is_file():
        raise ConfigError(f"--prior {str(path)!r} is not a prior folder (it needs {SETTINGS_FILE} and "
                          f"{WEIGHTS_FILE}; make one with `nasloop predictor pretrain`)")
    try:
        settings = json.loads(settings_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{settings_path}: not valid JSON ({exc})") from None
    _check_settings(settings, settings_path)
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{weights_path}: refused, not a file of plain tensors ({first[:200]})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{weights_path}: expected a mapping of names to tensors")
    network = build_network(settings["predictor"], settings["preset"], len(settings["targets"]),
                            settings["n_ops"], settings["max_nodes"], torch.Generator().manual_seed(0))
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ConfigError(f"{weights_path}: does not match the settings in {SETTINGS_FILE} "
                          f"({str(exc).splitlines()[0]})") from None
    network.eval()
    return Prior(settings, network, prior_digest(path))


def _check_settings(settings: Any, where: Path) -> None:
    required = {"format": int, "predictor": str, "preset": str, "targets": list, "kinds": list, "mean": list,
                "std": list, "n_ops": int, "max_nodes": int}
    if not isinstance(settings, dict):
        raise ConfigError(f"{where}: expected a JSON object")
    for key, kind in required.items():
        if not isinstance(settings.get(key), kind):
            raise ConfigError(f"{where}: field {key!r} is missing or not a {kind.__name__}")
    if settings["format"] != FORMAT_VERSION:
        raise ConfigError(f"{where}: prior format {settings['format']}, this nasloop reads {FORMAT_VERSION}")
    n = len(settings["targets"])
    if n < 1 or not all(len(settings[k]) == n for k in ("kinds", "mean", "std")):
        raise ConfigError(f"{where}: targets, kinds, mean and std must have the same, non-zero length")
    if settings["predictor"] not in PRIOR_PREDICTORS:
        raise ConfigError(f"{where}: predictor {settings['predictor']!r} is not one of {PRIOR_PREDICTORS}")


# --- pre-training ---------------------------------------------------------------------------------
def standardise(values: np.ndarray, kinds: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z, mean, std) per column; latency columns in log space. NaN stays NaN (masked in the loss)."""
    t = values.astype(np.float64).copy()
    for j, kind in enumerate(kinds):
        if kind == "latency":
            col = t[:, j]
            if np.any(col[np.isfinite(col)] <= 0):
                raise ConfigError(f"latency target {j} has values <= 0")
            t[:, j] = np.log(col)
    mean = np.nanmean(t, axis=0)
    std = np.nanstd(t, axis=0)
    std = np.where(std > 0, std, 1.0)
    return (t - mean) / std, mean, std


def pretrain(
    graphs: Sequence[ArchGraph],
    values: np.ndarray,
    targets: Sequence[str],
    kinds: Sequence[str],
    *,
    predictor: str = "nnformer",
    preset: str = "fast",
    graph_kind: str | None,
    config: PretrainConfig | None = None,
    sources: Sequence[str] = (),
    callback: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, Any], nn.Module]:
    """Fit one shared network on every target; returns (settings, network) for :func:`save_prior`.

    Args:
        graphs: one graph per row, in the predictor's graph kind.
        values: targets, shape (rows, T); NaN where a row lacks a target.
        targets / kinds: a name and ``"accuracy"`` or ``"latency"`` per column.
        sources: where the targets came from (recorded in the settings).
    """
    cfg = config or PretrainConfig()
    if cfg.steps < 1 or cfg.batch_size < 1:
        raise ConfigError(f"steps and batch size must be >= 1, got {cfg.steps} and {cfg.batch_size}")
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape != (len(graphs), len(targets)) or len(kinds) != len(targets):
        raise ConfigError("pretrain needs one row of values per graph and one column per target")
    z, mean, std = standardise(values, kinds)
    keep = np.flatnonzero(np.isfinite(z).any(axis=1))
    rng = np.random.default_rng(cfg.seed)
    if cfg.max_cells is not None and len(keep) > cfg.max_cells:
        keep = np.sort(rng.choice(keep, size=cfg.max_cells, replace=False))
    if len(keep) < 2:
        raise ConfigError("pretrain needs at least 2 cells with a target value")
    chosen = [graphs[i] for i in keep]
    n_ops, max_nodes = n_op_types(chosen), max(g.n_nodes for g in chosen)
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    network = build_network(predictor, preset, len(targets), n_ops, max_nodes, gen)
    batch = GraphEncoder().encode(chosen)
    y = torch.as_tensor(z[keep], dtype=torch.float32)
    observed = torch.isfinite(y)
    y = torch.nan_to_num(y)
    start = time.perf_counter()
    with cpu_threads(cfg.n_threads, torch.device("cpu")):
        _train(network, batch, y, observed, cfg, rng, gen, callback)
    settings = {
        "format": FORMAT_VERSION, "predictor": predictor, "preset": preset, "graph_kind": graph_kind,
        "targets": list(targets), "kinds": list(kinds), "mean": mean.tolist(), "std": std.tolist(),
        "n_ops": int(n_ops), "max_nodes": int(max_nodes), "vocab": list(chosen[0].vocab),
        "n_cells": len(keep), "sources": list(sources),
        "training": dataclasses.asdict(cfg), "fit_seconds": round(time.perf_counter() - start, 1),
    }
    return settings, network


def _train(network: nn.Module, batch: Any, y: torch.Tensor, observed: torch.Tensor, cfg: PretrainConfig,
           rng: np.random.Generator, gen: torch.Generator, callback: Callable[[int, int], None] | None) -> None:
    """Masked MSE over every observed target, AdamW, warm-up and cosine decay (the predictors' schedule)."""
    from predictors.training import TrainConfig

    schedule = TrainConfig(lr=cfg.lr)
    attach_generator(network, gen)
    opt = torch.optim.AdamW(param_groups(network, cfg.weight_decay), lr=cfg.lr, foreach=True)
    n = len(batch)
    bs = min(cfg.batch_size, n)
    perm, pos = rng.permutation(n), 0
    network.train()
    for step in range(cfg.steps):
        if pos + bs > n:
            perm, pos = rng.permutation(n), 0
        idx = torch.from_numpy(perm[pos : pos + bs])
        pos += bs
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(step, cfg.steps, schedule)
        out = network(batch.index(idx).trim())
        out = out[:, None] if out.ndim == 1 else out
        mask = observed[idx]
        loss = (((out - y[idx]) ** 2) * mask).sum() / mask.sum().clamp(min=1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if callback is not None and (step % 20 == 0 or step == cfg.steps - 1):
            callback(step + 1, cfg.steps)
    network.eval()
    attach_generator(network, None)


# --- adaptation ---------------------------------------------------------------------------------------
@dataclass
class RidgeFit:
    """A ridge regression on standardised features, chosen by leave-one-out error."""

    columns: np.ndarray  # feature columns used
    x_mean: np.ndarray
    x_std: np.ndarray
    weights: np.ndarray
    y_mean: float
    penalty: float | np.ndarray
    loo_mse: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        x = (features[:, self.columns] - self.x_mean) / self.x_std
        return x @ self.weights + self.y_mean


def fit_ridge(features: np.ndarray, y: np.ndarray, columns: np.ndarray,
              penalties: Sequence[float | np.ndarray] = RIDGE_PENALTIES) -> RidgeFit:
    """Ridge on standardised ``features[:, columns]``, the penalty of least exact leave-one-out error.

    Each candidate penalty is a number or one number per column (a column with a larger penalty is
    trusted less). Works in the dual (an ``n × n`` kernel), so it is cheap for few cells and many
    features; the intercept is not penalised.
    """
    x = features[:, columns]
    x_mean, x_std = x.mean(axis=0), x.std(axis=0)
    x_std = np.where(x_std > 1e-12, x_std, 1.0)
    xs = (x - x_mean) / x_std
    y_mean = float(y.mean())
    yc = y - y_mean
    n = len(y)
    best: tuple[float, int, np.ndarray] | None = None
    for k, penalty in enumerate(penalties):
        scale = np.sqrt(np.broadcast_to(np.asarray(penalty, dtype=np.float64), (len(columns),)))
        z = xs / scale  # ridge with per-column penalties = unit-penalty ridge on rescaled columns
        eigval, eigvec = np.linalg.eigh(z @ z.T)
        eigval = np.clip(eigval, 0.0, None)
        proj = eigvec.T @ yc
        shrink = eigval / (eigval + 1.0)
        fitted = eigvec @ (shrink * proj)
        # Hat matrix of ridge with an unpenalised intercept: H + 11ᵀ/n (columns are centred).
        leverage = (eigvec**2) @ shrink + 1.0 / n
        mse = float(np.mean(((yc - fitted) / np.clip(1.0 - leverage, 1e-6, None)) ** 2))
        if best is None or mse < best[0] - 1e-12:
            weights = (z.T @ (eigvec @ (proj / (eigval + 1.0)))) / scale
            best = (mse, k, weights)
    assert best is not None
    mse, k, weights = best
    return RidgeFit(columns, x_mean, x_std, weights, y_mean, penalties[k], mse)


class PriorPredictor(Predictor):
    """A pre-trained prior adapted to a new target from a few cells (ridge on the prior's outputs).

    Args:
        prior: the prior's folder (made by ``nasloop predictor pretrain``).
        prior_sha256: the digest the prior must have (runs record it so that ``--resume`` refuses
            a prior that changed); None accepts any.
        target: ``"accuracy"`` or ``"latency"`` (fits in log space; predictions positive).
        features: ``"targets"`` (the prior's per-target outputs), ``"targets+embedding"`` (also the
            encoder's embedding, whose penalty is chosen by exact leave-one-out error) or ``"auto"``
            (targets when the prior has several, else both).
        penalty: ridge penalty of the prior's outputs, per output on standardised features (each
            output's penalty is this times their count), or ``"loo"`` to choose it by leave-one-out.
        preset, seed: accepted for the registry's factory convention; adaptation is closed-form and
            does not depend on the seed.

    Example:
        >>> from predictors.prior import PriorPredictor
        >>> model = PriorPredictor(prior="priors/latency_all", target="latency")  # doctest: +SKIP
        >>> model.fit(ten_graphs, ten_latencies).predict(all_graphs)  # doctest: +SKIP
    """

    caller_options: ClassVar[frozenset[str]] = frozenset({"target"})

    def __init__(self, *, prior: str | None = None, prior_sha256: str | None = None, target: str = "accuracy",
                 features: str = "auto", penalty: float | str = DEFAULT_PENALTY, preset: str = "fast",
                 seed: int = 0) -> None:
        self.prior = prior
        self.prior_sha256 = prior_sha256
        self.target = target
        self.features = features
        self.penalty = penalty
        self.preset = preset
        self.seed = seed

    def _loaded(self) -> Prior:
        cached = getattr(self, "_prior", None)
        if cached is not None and cached[0] == self.prior:
            return cached[1]
        if not self.prior:
            raise ConfigError("PriorPredictor needs prior=<folder made by `nasloop predictor pretrain`>")
        loaded = load_prior(self.prior)
        if self.prior_sha256 and loaded.digest != self.prior_sha256:
            raise ConfigError(f"prior {self.prior!r} has SHA-256 {loaded.digest[:12]}…, the run recorded "
                              f"{self.prior_sha256[:12]}…; the prior changed since")
        self._prior = (self.prior, loaded)
        self._cache: dict[ArchGraph, np.ndarray] = {}
        return loaded

    @property
    def graph_kind(self) -> str | None:  # type: ignore[override]
        return self._loaded().graph_kind

    def __getstate__(self) -> dict[str, Any]:
        # The network and the feature cache are rebuilt from the prior folder; pickles stay small.
        return {k: v for k, v in self.__dict__.items() if k not in ("_prior", "_cache")}

    def prior_features(self, graphs: Sequence[ArchGraph]) -> np.ndarray:
        """The prior's features of each graph (cached per graph: the prior never changes)."""
        prior = self._loaded()
        missing = list(dict.fromkeys(g for g in graphs if g not in self._cache))
        if missing:
            vocab = prior.settings.get("vocab")
            if vocab is not None and any(list(g.vocab) != vocab for g in missing):
                other = next(g.vocab for g in missing if list(g.vocab) != vocab)
                raise ConfigError(f"the prior was trained on graphs with ops {vocab}, these have {list(other)} "
                                  "(another space or graph kind); pre-train a prior on this space")
            n_ops, max_nodes = n_op_types(missing), max(g.n_nodes for g in missing)
            if n_ops > prior.settings["n_ops"] or max_nodes > prior.settings["max_nodes"]:
                raise ConfigError(f"the prior knows {prior.settings['n_ops']} op types and "
                                  f"{prior.settings['max_nodes']} nodes; these graphs need {n_ops} and {max_nodes}")
            order = sorted(range(len(missing)), key=lambda i: missing[i].n_nodes)
            feats = prior.features(GraphEncoder().encode([missing[i] for i in order]))
            for row, i in enumerate(order):
                self._cache[missing[i]] = feats[row]
        return np.stack([self._cache[g] for g in graphs])

    def fit(self, graphs: Sequence[ArchGraph], y: Sequence[float]) -> PriorPredictor:
        y_arr = validate_training_data(graphs, y)
        if self.target not in KINDS:
            raise ConfigError(f"unknown target {self.target!r}; expected one of {KINDS}")
        if self.features not in FEATURE_SETS:
            raise ConfigError(f"unknown features {self.features!r}; expected one of {FEATURE_SETS}")
        if self.target == "latency":
            if np.any(y_arr <= 0):
                raise ConfigError("target='latency' needs positive values; got values <= 0")
            y_arr = np.log(y_arr)
        feats = self.prior_features(list(graphs))
        n_targets = len(self._loaded().targets)
        name = self.features
        if name == "auto":
            name = "targets" if n_targets > 1 else "targets+embedding"
        n_embedding = feats.shape[1] - n_targets if name == "targets+embedding" else 0
        columns = np.arange(n_targets + n_embedding)
        self.ridge_ = fit_ridge(feats, y_arr, columns, self._penalties(n_targets, n_embedding))
        penalty = np.asarray(self.ridge_.penalty, dtype=float)
        self.fit_info_ = {"features": name, "target_penalty": float(penalty.flat[0]),
                          "embedding_penalty": float(penalty.flat[-1]) if n_embedding else None,
                          "loo_mse": self.ridge_.loo_mse, "prior_sha256": self._loaded().digest}
        return self

    def _penalties(self, n_targets: int, n_embedding: int) -> list[np.ndarray]:
        """Candidate per-column penalties: the prior's outputs get ``penalty`` × their count (the
        ridge penalty per feature); the embedding's penalty is chosen by leave-one-out error."""
        if self.penalty == "loo":
            target_penalties = [p / n_targets for p in RIDGE_PENALTIES]
        elif isinstance(self.penalty, bool) or not isinstance(self.penalty, int | float) or not self.penalty > 0:
            raise ConfigError(f"penalty must be a positive number or 'loo', got {self.penalty!r}")
        else:
            target_penalties = [float(self.penalty)]
        embedding_penalties = EMBEDDING_PENALTIES if n_embedding else (0.0,)
        return [np.concatenate([np.full(n_targets, t * n_targets), np.full(n_embedding, e)])
                for t in target_penalties for e in embedding_penalties]

    def predict(self, graphs: Sequence[ArchGraph]) -> np.ndarray:
        self._check_fitted("ridge_")
        graphs = list(graphs)
        if not graphs:
            return np.zeros(0)
        z = self.ridge_.predict(self.prior_features(graphs))
        return np.exp(z) if self.target == "latency" else z


def target_kinds(columns: Sequence[str], labels: Sequence[str]) -> list[str]:
    """Accuracy or latency per column (the rule ``predictor eval`` uses)."""
    from nasloop.predictor_eval import infer_kind

    return [infer_kind(c, lab) for c, lab in zip(columns, labels)]


def default_graph_kind(predictor: str, kinds: Sequence[str]) -> str | None:
    """The predictor's graph kind for latency when any target is a latency, else for accuracy."""
    maker = _predictor_class(predictor)(target="latency" if "latency" in kinds else "accuracy")
    return maker.graph_kind



# Random queries before the first fit of a search with a prior (without one: SearchConfig's n_warmup).
# The prior already ranks cells, and its ridge adaptation is well posed from a handful of results.
PRIOR_WARMUP = 5


def prior_options(folder: str | Path) -> dict[str, Any]:
    """Predictor options of a search with the prior in ``folder``: its absolute path and digest.

    The digest goes into the run's config.json; a resumed run refuses a prior whose files changed.
    """
    loaded = load_prior(folder)
    return {"prior": str(Path(folder).expanduser().resolve()), "prior_sha256": loaded.digest}
