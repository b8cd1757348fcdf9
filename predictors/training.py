"""The shared fit loop of the torch predictors: the training settings, the losses, one member's
training loop, and :class:`TorchPredictor` (warm start, seeds, ensembles, snapshots).

A model file (``nnformer.py``, ``narformer2.py``, ``baselines.py``) defines an ``nn.Module`` that maps
a :class:`~predictors.graphs.GraphBatch` to one normalised score per graph, plus a small
:class:`TorchPredictor` subclass that says how to build it and which presets it has. The parts of a
fit (batching, EMA, early stopping, optimiser and schedule, threads) are in :mod:`predictors.parts`.

Losses (spec §2.4 and §3.4):

* accuracy targets (standardised inside ``fit``):
  ``λ_mse·MSE(ŷ, y) + λ_rank·L1((ŷ−ŷ[π]) − (y−y[π])) + λ_cons·L1(ŷ, ŷ')`` where π is a random
  permutation of the batch and ŷ' the prediction for the consistency partner (the same cell under
  other dropout masks for NN-Former, an isomorphic relabelling for NAR-Former V2);
* latency targets (divided by their mean inside ``fit``; must be positive): relative error
  ``MSE(ŷ/y, 1)`` plus the same consistency term; the models then use a positive output.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from nasloop.errors import ConfigError
from nasloop.predictor import validate_training_data
from nasloop.types import ArchGraph
from predictors.base import PRESETS, TARGETS, PresetPredictor
from predictors.parts import (
    EMA,
    Batches,
    Dropout,
    EarlyStopping,
    FitData,
    attach_generator,
    cpu_threads,
    idle_threads,
    keep_mask,
    lr_factor,
    make_optimizer,
    param_groups,
    predict_batches,
    report_progress,
    set_lr,
    split_validation,
)

__all__ = ["FIT_SCHEDULES", "PRESETS", "TARGETS", "Dropout", "TargetScaler", "TorchPredictor", "TrainConfig",
           "attach_generator", "compute_loss", "cpu_threads", "idle_threads", "keep_mask", "lr_factor",
           "param_groups", "predict_batches", "train_member"]

log = logging.getLogger(__name__)

# "standalone": a fit on its own; "loop": the search loop's short, capped refits (a preset may tune them apart).
FIT_SCHEDULES = ("standalone", "loop")


@dataclass
class TrainConfig:
    """Optimisation settings shared by all torch predictors (defaults: NN-Former's paper setting)."""

    epochs: int = 3000  # passes over the training set ...
    min_steps: int = 0  # ... but at least this many optimiser steps
    max_steps: int | None = None  # ... and at most this many (None: no cap)
    batch_size: int = 128  # cells per step (before the consistency duplicate)
    lr: float = 1e-4  # peak learning rate
    optimizer: str = "adamw"  # "adamw" (decay skips 1-D params, as timm) or "adam"
    weight_decay: float = 0.01
    schedule: str = "cosine"  # "cosine": warm-up, cosine to min_lr_ratio·lr | "linear": warm-up, linear to 0
    warmup_frac: float = 0.1  # share of the steps spent in linear warm-up
    min_lr_ratio: float = 0.1
    grad_clip: float | None = None  # max gradient norm (None: off)
    ema_decay: float | None = 0.99  # EMA of weights used for prediction (None: raw weights)
    lambda_mse: float = 1.0
    lambda_rank: float = 0.2  # pairwise-difference ("ranking") loss, accuracy targets only
    lambda_cons: float = 1.0  # consistency between the two copies of each cell
    val_fraction: float = 0.0  # held-out share of the training cells for early stopping (0: off)
    eval_every: int = 100  # steps between early-stopping evaluations
    patience: int = 10  # evaluations without improvement before stopping
    warm_start_ratio: float = 0.5  # a warm-started fit runs this share of the steps
    predict_batch_size: int = 256  # small batches stay in cache; faster on CPU than large ones
    n_threads: int | None = None  # torch CPU threads during fit (None: leave torch's setting)
    # torch CPU threads while scoring: "as_fit" follows n_threads, None leaves torch's setting,
    # "auto" takes the cores the load average leaves idle (see idle_threads)
    predict_threads: int | str | None = "as_fit"


class TargetScaler:
    """Normalises targets inside ``fit``: standardise (accuracy) or divide by the mean (latency)."""

    def __init__(self, target: str, y: np.ndarray) -> None:
        self.target = target
        if target == "latency":
            if np.any(y <= 0):
                raise ConfigError("target='latency' needs positive values (relative-error loss); got values <= 0")
            self.shift, self.scale = 0.0, float(np.mean(y))
        else:
            std = float(np.std(y))
            self.shift, self.scale = float(np.mean(y)), (std if std > 0 else 1.0)

    def forward(self, y: np.ndarray) -> np.ndarray:
        return (y - self.shift) / self.scale

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return z * self.scale + self.shift


def compute_loss(pred: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, target: str, paired: bool,
                 generator: torch.Generator) -> torch.Tensor:
    """Loss over a batch; with ``paired`` the batch is [B cells; their B consistency partners]."""
    if target == "latency":
        loss = ((pred / y - 1.0) ** 2).mean()
    else:
        loss = cfg.lambda_mse * ((pred - y) ** 2).mean()
        if cfg.lambda_rank > 0 and len(pred) > 1:
            perm = torch.randperm(len(pred), generator=generator)
            loss = loss + cfg.lambda_rank * ((pred - pred[perm]) - (y - y[perm])).abs().mean()
    if paired and cfg.lambda_cons > 0:
        a, b = pred.chunk(2)
        loss = loss + cfg.lambda_cons * (a - b).abs().mean()
    return loss


def train_member(model: nn.Module, data: FitData, cfg: TrainConfig, *, seed: np.random.SeedSequence, n_steps: int,
                 device: torch.device, ema: nn.Module | None = None, callback: Callable[[int, int], None] | None = None,
                 ) -> tuple[nn.Module, nn.Module | None, dict[str, Any]]:
    """Train one ensemble member in place for ``n_steps``; returns (model, EMA model or None, info).

    ``model`` is fresh or warm-started; ``ema`` the average to continue (warm start) or None for a new one.
    """
    np_seed, torch_seed = seed.spawn(2)
    rng = np.random.default_rng(np_seed)
    gen = torch.Generator().manual_seed(int(torch_seed.generate_state(1)[0]))
    attach_generator(model, gen)
    model.to(device)
    val_rows, fit_rows = split_validation(len(data), cfg.val_fraction, rng)
    batches = Batches(fit_rows, cfg.batch_size, rng)
    average = EMA(model, cfg.ema_decay, ema, device)
    stopping = EarlyStopping(data, val_rows, cfg, device)
    opt = make_optimizer(model, cfg)
    model.train()
    for step in range(n_steps):
        xb, yb = data.batch(batches.next(), device)
        set_lr(opt, cfg.lr * lr_factor(step, n_steps, cfg))
        loss = compute_loss(model(xb), yb, cfg, data.target, data.paired, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        average.update()
        report_progress(callback, step, n_steps)
        if stopping.due(step, n_steps) and stopping.should_stop(step, average.scorer, model):
            report_progress(callback, n_steps - 1, n_steps)  # the steps left are skipped: report them done
            break
    stopping.restore_best(average.scorer)
    model.eval()
    attach_generator(model, None)
    return model, average.module, stopping.info(n_steps)


def _check_threads(train_cfg: TrainConfig) -> None:
    for name, allowed in (("n_threads", ()), ("predict_threads", ("as_fit", "auto"))):
        value = getattr(train_cfg, name)
        if not (value is None or value in allowed
                or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)):
            raise ConfigError(f"{name} must be None, a positive integer{''.join(f' or {a!r}' for a in allowed)}; "
                              f"got {value!r}")


def _member_progress(callback: Callable[[int, int], None], offset: int, total: int) -> Callable[[int, int], None]:
    """Progress of one ensemble member as progress of the whole fit."""

    def report(done: int, _member_total: int) -> None:
        callback(offset + done, total)

    return report


class TorchPredictor(PresetPredictor):
    """Base of the torch predictors: ensembles, warm start, target scaling and caching.

    Subclasses set ``ModelConfig`` (a dataclass) and implement ``_preset`` (configs for a preset and
    target, reading ``self.fit_schedule``) and ``_build_model`` (a fresh module from a config, op/node
    counts and a generator).

    Args:
        preset: ``"fast"`` (CPU default, tuned for a 2-core machine) or ``"paper"`` (the spec's sizes
            and schedules; runs on CUDA when available).
        seed: seeds initialisation, dropout, batching and ensemble members.
        target: ``"accuracy"`` (standardised targets; MSE + ranking + consistency losses) or
            ``"latency"`` (positive targets; relative-error loss and a positive output).
        n_members: ensemble size; ``predict_dist`` returns the members' mean and std.
        warm_start: a later ``fit`` continues from the previous weights (and target scaling) for
            ``warm_start_ratio`` of the steps instead of starting afresh.
        config: overrides of model or training config fields, e.g. ``{"n_layers": 4, "lr": 1e-3}``.
        device: ``"auto"`` (CUDA for the paper preset when available, else CPU), ``"cpu"``, ``"cuda"``.
        callback: called as ``callback(done_steps, total_steps)`` during ``fit`` (progress bars).
        max_fit_steps: cap on optimiser steps per fit (``None``: the preset's schedule). The search
            loop sets it so that refitting every round stays cheap; warm-started fits run
            ``warm_start_ratio`` of the capped steps.
        fit_budget: optimiser steps per new training result of a warm-started fit (``None``: no limit
            beyond the warm share).
        fit_schedule: ``"standalone"`` (a fit on its own) or ``"loop"`` (the search loop's capped refits, which
            a preset may train with another peak lr and epoch count; the loop passes it with
            ``max_fit_steps``).
        fit_threads / predict_threads: torch CPU threads of a fit / while scoring (``None``: the
            preset's); a ``config`` entry ``n_threads`` / ``predict_threads`` wins over these.
    """

    ModelConfig: ClassVar[type]
    graph_kind: ClassVar[str | None] = None
    caller_options: ClassVar[frozenset[str]] = PresetPredictor.caller_options | {
        "max_fit_steps", "fit_budget", "fit_schedule", "fit_threads", "predict_threads"}
    supports_snapshots: ClassVar[bool] = True

    def __init__(self, *, preset: str = "fast", seed: int = 0, target: str = "accuracy", n_members: int = 1,
                 warm_start: bool = False, config: Mapping[str, Any] | None = None, device: str = "auto",
                 callback: Callable[[int, int], None] | None = None, max_fit_steps: int | None = None,
                 fit_budget: int | None = None, fit_schedule: str = "standalone", fit_threads: int | None = None,
                 predict_threads: int | str | None = None) -> None:
        super().__init__(preset=preset, seed=seed, target=target, warm_start=warm_start, config=config,
                         callback=callback)
        self.n_members = n_members
        self.max_fit_steps = max_fit_steps
        self.fit_budget = fit_budget
        self.device = device
        self.fit_schedule = fit_schedule
        self.fit_threads = fit_threads
        self.predict_threads = predict_threads

    # --- hooks ----------------------------------------------------------------------------------
    def _preset(self, preset: str, target: str) -> tuple[Any, TrainConfig]:
        """(model config, train config) of a preset for a target (and ``self.fit_schedule``)."""
        raise ConfigError(f"{type(self).__name__} defines no presets")  # pragma: no cover

    def _build_model(self, cfg: Any, n_ops: int, max_nodes: int, generator: torch.Generator) -> nn.Module:
        raise ConfigError(f"{type(self).__name__} defines no model")  # pragma: no cover

    def _partners(self, graphs: Sequence[ArchGraph]) -> list[ArchGraph] | None:
        """Consistency partners of ``graphs`` (None: pair each cell with itself under new dropout)."""
        return None

    def _capacity(self, cfg: Any, n_ops: int, max_nodes: int) -> tuple[int, int]:
        """(op vocabulary, node count) a model built now can represent; grown as graphs need."""
        return n_ops, max_nodes

    # --- configuration ----------------------------------------------------------------------------
    def validate(self) -> None:
        """Check preset, target and config overrides now (``ConfigError``), not at the first fit."""
        self._configs()

    def _configs(self) -> tuple[Any, TrainConfig]:
        """(model config, train config): the preset's for the fit schedule, then the caller's threads, the
        ``config`` overrides, and the caller's step cap, in that order."""
        self._check_preset_and_target()
        if int(self.n_members) < 1:
            raise ConfigError(f"n_members must be >= 1, got {self.n_members}")
        if self.fit_schedule not in FIT_SCHEDULES:
            raise ConfigError(f"unknown fit_schedule {self.fit_schedule!r}; expected one of {FIT_SCHEDULES}")
        model_cfg, train_cfg = self._preset(self.preset, self.target)
        overrides = dict(self.config or {})
        model_fields = {f.name for f in dataclasses.fields(model_cfg)}
        train_fields = {f.name for f in dataclasses.fields(train_cfg)}
        unknown = sorted(set(overrides) - model_fields - train_fields)
        if unknown:
            raise ConfigError(
                f"{type(self).__name__} config has unknown keys {unknown}; "
                f"model keys: {sorted(model_fields)}; training keys: {sorted(train_fields)}"
            )
        model_cfg = dataclasses.replace(model_cfg, **{k: v for k, v in overrides.items() if k in model_fields})
        threads = {"n_threads": self.fit_threads, "predict_threads": self.predict_threads}
        train_cfg = dataclasses.replace(train_cfg, **{k: v for k, v in threads.items() if v is not None})
        train_cfg = dataclasses.replace(train_cfg, **{k: v for k, v in overrides.items() if k in train_fields})
        _check_threads(train_cfg)
        if self.max_fit_steps is not None:  # the caller's cap: refits every round must stay cheap
            cap = int(self.max_fit_steps)
            if cap < 1:
                raise ConfigError(f"max_fit_steps must be >= 1, got {self.max_fit_steps}")
            train_cfg = dataclasses.replace(train_cfg, min_steps=min(train_cfg.min_steps, cap),
                                            max_steps=min(train_cfg.max_steps or cap, cap))
        budget = self.fit_budget
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise ConfigError(f"fit_budget must be a positive integer or None, got {budget!r}")
        return model_cfg, train_cfg

    def _torch_device(self) -> torch.device:
        if self.device == "auto":
            use_cuda = self.preset == "paper" and torch.cuda.is_available()
            return torch.device("cuda" if use_cuda else "cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device='cuda' but torch sees no CUDA device; use device='cpu' or 'auto'")
        return torch.device(self.device)

    # --- the scikit-learn contract --------------------------------------------------------------------
    def fit(self, graphs: Sequence[ArchGraph], y: Sequence[float]) -> TorchPredictor:
        """Train ``n_members`` models on ``graphs`` and their targets ``y``; returns ``self``."""
        y_arr = validate_training_data(graphs, y)
        model_cfg, train_cfg = self._configs()
        device = self._torch_device()
        with cpu_threads(train_cfg.n_threads, device):
            return self._fit(list(graphs), y_arr, model_cfg, train_cfg, device)

    def _fit(self, graphs: list[ArchGraph], y_arr: np.ndarray, model_cfg: Any, train_cfg: TrainConfig,
             device: torch.device) -> TorchPredictor:
        warm = self._can_warm_start(graphs)
        if not warm:
            self.scaler_ = TargetScaler(self.target, y_arr)
            self.capacity_ = self._capacity(model_cfg, *self._needs(graphs))
        data = self._fit_data(graphs, self.scaler_.forward(y_arr), train_cfg)
        n_steps = self._n_steps(len(graphs), train_cfg, warm)
        total = n_steps * int(self.n_members)
        members, emas, infos = [], [], []
        start = time.perf_counter()
        for k, member_seed in enumerate(self._member_seeds(warm)):
            init_seed, train_seed = member_seed.spawn(2)
            if warm:
                model, ema = self.members_[k], self.emas_[k]
            else:
                gen = torch.Generator().manual_seed(int(init_seed.generate_state(1)[0]))
                # Module constructors draw a default init from torch's global RNG before the model
                # re-initialises every weight from `gen`; fork_rng puts the global state back.
                with torch.random.fork_rng(devices=[]):
                    model, ema = self._build_model(model_cfg, *self.capacity_, gen), None
            cb = None if self.callback is None else _member_progress(self.callback, k * n_steps, total)
            model, ema, info = train_member(model, data, train_cfg, seed=train_seed, n_steps=n_steps, device=device,
                                            ema=ema, callback=cb)
            members.append(model)
            emas.append(ema)
            infos.append(info)
        self.members_, self.emas_ = members, emas
        self.fitted_target_ = self.target
        self.n_fits_ = self.__dict__.get("n_fits_", 0) + 1
        self.n_train_ = len(graphs)
        self.fit_info_ = {"warm_start": warm, "n_steps": n_steps, "members": infos,
                          "seconds": time.perf_counter() - start, "device": str(device)}
        self.device_ = device
        self.predict_batch_size_ = train_cfg.predict_batch_size
        self.predict_threads_ = (train_cfg.n_threads if train_cfg.predict_threads == "as_fit"
                                 else train_cfg.predict_threads)
        log.debug("fitted %s: %s", type(self).__name__, self.fit_info_)
        return self

    def _can_warm_start(self, graphs: Sequence[ArchGraph]) -> bool:
        """Whether this fit continues the previous one: asked for, same ensemble size and target, and
        the graphs fit the models' capacity."""
        if not (self.warm_start and self._is_fitted() and len(self.members_) == int(self.n_members)):
            return False
        n_ops, max_nodes = self._needs(graphs)
        return n_ops <= self.capacity_[0] and max_nodes <= self.capacity_[1] and self.fitted_target_ == self.target

    def _fit_data(self, graphs: list[ArchGraph], z: np.ndarray, train_cfg: TrainConfig) -> FitData:
        """The encoded cells (and consistency partners, padded to one width) with targets ``z``."""
        encoder = self._encoder()
        train = encoder.encode(graphs)
        partner_graphs = self._partners(graphs) if train_cfg.lambda_cons > 0 else None
        partner = encoder.encode(partner_graphs, pad_to=train.ops.shape[1]) if partner_graphs else None
        if partner is not None and partner.ops.shape[1] != train.ops.shape[1]:
            train = encoder.encode(graphs, pad_to=partner.ops.shape[1])
        return FitData(train, z, self.target, paired=train_cfg.lambda_cons > 0, partner=partner)

    def _n_steps(self, n_train: int, train_cfg: TrainConfig, warm: bool) -> int:
        """Optimiser steps of this fit: epochs (at least ``min_steps``, at most ``max_steps``); a warm
        fit runs ``warm_start_ratio`` of them, at most ``fit_budget`` per new training result."""
        steps_per_epoch = math.ceil(n_train / max(1, train_cfg.batch_size))
        n_steps = max(train_cfg.min_steps, train_cfg.epochs * steps_per_epoch)
        if train_cfg.max_steps is not None:
            n_steps = min(n_steps, train_cfg.max_steps)
        if warm:
            n_steps = max(1, round(n_steps * train_cfg.warm_start_ratio))
            if self.fit_budget is not None:
                n_new = max(1, n_train - self.n_train_)
                n_steps = min(n_steps, int(self.fit_budget) * n_new)
        return n_steps

    def _member_seeds(self, warm: bool) -> list[np.random.SeedSequence]:
        """One seed per ensemble member; a warm-started fit must not replay the first fit's batches
        and dropout masks, so its seeds also hold the fit's number."""
        if warm:
            return [np.random.SeedSequence([int(self.seed), self.n_fits_, k]) for k in range(int(self.n_members))]
        return np.random.SeedSequence(int(self.seed)).spawn(int(self.n_members))

    def _is_fitted(self) -> bool:
        return "members_" in self.__dict__

    # --- snapshots: tensors + JSON, no pickle (nasloop.run_store.Snapshots) --------------------------
    def snapshot_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The fitted state as named tensors (every member's and EMA's ``state_dict``) and JSON
        settings; ``None`` before the first fit. :meth:`restore_state` rebuilds it exactly."""
        if not self._is_fitted():
            return None
        tensors: dict[str, torch.Tensor] = {}
        for k, (model, ema) in enumerate(zip(self.members_, self.emas_)):
            for prefix, module in ((f"member.{k}.", model), (f"ema.{k}.", ema)):
                if module is not None:
                    tensors.update({prefix + name: t.detach().cpu() for name, t in module.state_dict().items()})
        meta = {
            "n_members": len(self.members_), "has_ema": [ema is not None for ema in self.emas_],
            "capacity": list(self.capacity_), "scaler": [self.scaler_.target, self.scaler_.shift, self.scaler_.scale],
            "fitted_target": self.fitted_target_, "n_fits": self.n_fits_, "n_train": self.n_train_,
            "fit_info": self.fit_info_,
            "predict_batch_size": self.predict_batch_size_, "predict_threads": self.predict_threads_,
        }
        return tensors, meta

    def restore_state(self, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
        """Load a :meth:`snapshot_state` into this (unfitted) predictor of the same settings."""
        model_cfg, _ = self._configs()
        device = self._torch_device()
        capacity = tuple(int(x) for x in meta["capacity"])
        members, emas = [], []
        for k in range(int(meta["n_members"])):
            built = []
            for prefix, wanted in ((f"member.{k}.", True), (f"ema.{k}.", bool(meta["has_ema"][k]))):
                if not wanted:
                    built.append(None)
                    continue
                with torch.random.fork_rng(devices=[]):  # the weights come from the snapshot
                    module = self._build_model(model_cfg, *capacity, torch.Generator().manual_seed(0))
                state = {name[len(prefix):]: t for name, t in tensors.items() if name.startswith(prefix)}
                module.load_state_dict(state, strict=True)
                module.to(device).eval()
                built.append(module)
            model, ema = built
            if ema is not None:
                for p in ema.parameters():
                    p.requires_grad_(False)
            members.append(model)
            emas.append(ema)
        scaler = TargetScaler.__new__(TargetScaler)
        scaler.target, scaler.shift, scaler.scale = (meta["scaler"][0], float(meta["scaler"][1]),
                                                     float(meta["scaler"][2]))
        self.members_, self.emas_, self.scaler_, self.capacity_ = members, emas, scaler, capacity
        self.fitted_target_, self.n_fits_ = meta["fitted_target"], int(meta["n_fits"])
        self.n_train_ = int(meta["n_train"])  # the fit budget counts new results against it
        self.fit_info_ = dict(meta["fit_info"])
        self.device_ = device
        self.predict_batch_size_ = meta["predict_batch_size"]
        self.predict_threads_ = meta["predict_threads"]

    def _member_predictions(self, graphs: Sequence[ArchGraph]) -> np.ndarray:
        self._check_fitted("members_")
        graphs = list(graphs)
        if not graphs:
            return np.zeros((len(self.members_), 0))
        self._check_capacity(graphs)
        # Score each distinct graph once (NB201 has many cells with the same pruned graph), largest
        # graphs last so that most batches need less padding.
        row_of: dict[ArchGraph, int] = {}
        rows = np.fromiter((row_of.setdefault(g, len(row_of)) for g in graphs), dtype=np.int64, count=len(graphs))
        unique = list(row_of)
        order = np.argsort([g.n_nodes for g in unique], kind="stable")
        batch = self._encoder().encode([unique[i] for i in order])
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        preds = []
        threads = idle_threads() if self.predict_threads_ == "auto" else self.predict_threads_
        with cpu_threads(threads, self.device_):
            for model, ema in zip(self.members_, self.emas_):
                scorer = ema if ema is not None else model
                z = predict_batches(scorer, batch, self.predict_batch_size_, self.device_)[inverse]
                preds.append(self.scaler_.inverse(z)[rows])
        return np.stack(preds)

    def predict(self, graphs: Sequence[ArchGraph]) -> np.ndarray:
        """Predicted target per graph (the ensemble mean), shape (n,)."""
        return self._member_predictions(graphs).mean(axis=0)

    def predict_dist(self, graphs: Sequence[ArchGraph]) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and standard deviation per graph (std is 0 for a single member)."""
        preds = self._member_predictions(graphs)
        return preds.mean(axis=0), preds.std(axis=0)
