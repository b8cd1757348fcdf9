"""The shared fit loop of the torch predictors: losses, schedule, EMA, early stopping, warm start,
seeds and ensembles.

A model file (``nnformer.py``, ``narformer2.py``, ``baselines.py``) defines an ``nn.Module`` that maps
a :class:`~predictors.graphs.GraphBatch` to one normalised score per graph, plus a small
:class:`TorchPredictor` subclass that says how to build it and which presets it has. Everything
else (target normalisation, batching, optimisation, ensembles, caching) lives here.

Losses (spec §2.4 and §3.4):

* accuracy targets (standardised inside ``fit``):
  ``λ_mse·MSE(ŷ, y) + λ_rank·L1((ŷ−ŷ[π]) − (y−y[π])) + λ_cons·L1(ŷ, ŷ')`` where π is a random
  permutation of the batch and ŷ' the prediction for the consistency partner (the same cell under
  other dropout masks for NN-Former, an isomorphic relabelling for NAR-Former V2);
* latency targets (divided by their mean inside ``fit``; must be positive): relative error
  ``MSE(ŷ/y, 1)`` plus the same consistency term; the models then use a positive output.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from nasloop.errors import ConfigError
from nasloop.predictor import Predictor, validate_training_data
from nasloop.types import ArchGraph
from predictors.graphs import GraphBatch, GraphEncoder, n_op_types

log = logging.getLogger(__name__)

TARGETS = ("accuracy", "latency")
PRESETS = ("fast", "paper")


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
    # Peak lr and epochs of the search loop's fits (those capped by ``max_fit_steps``: short, most of
    # them warm-started, one every round), when a preset tunes them apart from a stand-alone fit;
    # None: ``lr`` and ``epochs``. A caller's own ``lr`` / ``epochs`` override these too.
    loop_lr: float | None = None
    loop_epochs: int | None = None


def lr_factor(step: int, n_steps: int, cfg: TrainConfig) -> float:
    """Multiplier of the peak lr at ``step`` (0-based): linear warm-up, then cosine or linear decay."""
    warmup = max(1, round(cfg.warmup_frac * n_steps))
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, n_steps - warmup))
    if cfg.schedule == "linear":
        return 1.0 - progress
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class Dropout(nn.Module):
    """Dropout drawing its masks from a private ``torch.Generator`` (set by the trainer), so a seed
    reproduces a fit without touching torch's global RNG."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0.0:
            return x
        return x * keep_mask(x.shape, self.p, self.generator, x.device) / (1.0 - self.p)


def keep_mask(shape: torch.Size, p: float, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Boolean mask, True with probability 1 - p (to 2⁻¹⁵), drawn from ``generator``.

    With ``torch.rand``, dropout's random numbers took an eighth of an NN-Former ``fast`` step on CPU
    (3.3 s of a 27.5 s, 200-step profile). 15-bit integers cut from 64-bit draws take under a third
    of that (1.0 s). Each draw gives four; bit 63 of a draw is always 0, so the top bit of every
    16-bit lane is masked off.
    """
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(generator=generator)
    lanes = (words & 0x7FFF7FFF7FFF7FFF).view(torch.int16)[:n].view(shape)
    return lanes >= round(p * 32768)


def attach_generator(model: nn.Module, generator: torch.Generator | None) -> None:
    for module in model.modules():
        if isinstance(module, Dropout):
            module.generator = generator


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """timm's rule: no weight decay on 1-D parameters (biases, norms, layer scales, tokens)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


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


@torch.no_grad()
def predict_batches(model: nn.Module, batch: GraphBatch, batch_size: int, device: torch.device) -> np.ndarray:
    model.eval()
    out = []
    for start in range(0, len(batch), batch_size):
        part = batch.index(slice(start, start + batch_size)).trim().to(device)
        out.append(model(part).float().cpu())
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


def _validation_score(pred: np.ndarray, y: np.ndarray, target: str) -> float:
    """Higher is better: Kendall's tau for accuracy, minus MAPE for latency."""
    if target == "latency":
        return -float(np.mean(np.abs(pred - y) / y))
    from scipy.stats import kendalltau

    tau = kendalltau(pred, y).statistic
    return float(tau) if np.isfinite(tau) else -1.0


def train_member(
    model: nn.Module,
    train: GraphBatch,
    y: np.ndarray,
    cfg: TrainConfig,
    *,
    target: str,
    seed: np.random.SeedSequence,
    partner: GraphBatch | None = None,
    duplicate: bool = False,
    n_steps: int,
    device: torch.device,
    ema: nn.Module | None = None,
    callback: Callable[[int, int], None] | None = None,
) -> tuple[nn.Module, nn.Module | None, dict[str, Any]]:
    """Train one ensemble member in place; returns (model, ema model, info).

    Args:
        model: the network (fresh or warm-started).
        train: all training cells, padded to one width; ``y`` their normalised targets.
        partner: consistency partners of ``train`` row by row (NAR-Former V2), or None.
        duplicate: without ``partner``, pair each cell with itself under fresh dropout (NN-Former).
        n_steps: optimiser steps; ``ema``: the EMA copy to continue (warm start) or None for a new one.
    """
    np_seed, torch_seed = seed.spawn(2)
    rng = np.random.default_rng(np_seed)
    gen = torch.Generator().manual_seed(int(torch_seed.generate_state(1)[0]))
    attach_generator(model, gen)
    model.to(device)
    n = len(train)
    order = rng.permutation(n)
    n_val = round(cfg.val_fraction * n) if cfg.val_fraction > 0 and n >= 20 else 0
    val_idx, fit_idx = np.sort(order[:n_val]), order[n_val:]
    paired = cfg.lambda_cons > 0 and (partner is not None or duplicate)
    y_t = torch.as_tensor(y, dtype=torch.float32)
    if not cfg.ema_decay:
        ema = None
    elif ema is None:
        ema = copy.deepcopy(model)
    if ema is not None:
        ema.to(device).eval()
        for p in ema.parameters():
            p.requires_grad_(False)
    model_params = list(model.parameters())
    ema_params = list(ema.parameters()) if ema is not None else []
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    wd = cfg.weight_decay if cfg.optimizer == "adamw" else 0.0
    opt = opt_cls(param_groups(model, wd), lr=cfg.lr, foreach=True)
    bs = max(1, min(cfg.batch_size, len(fit_idx)))
    best, best_state, bad, stopped_at = -math.inf, None, 0, None
    perm, pos = rng.permutation(fit_idx), 0
    model.train()
    for step in range(n_steps):
        if pos + bs > len(perm):  # new epoch; the partial tail joins the next shuffle
            perm, pos = np.concatenate([perm[pos:], rng.permutation(fit_idx)]), 0
        idx = torch.from_numpy(perm[pos : pos + bs])
        pos += bs
        xb = train.index(idx)
        yb = y_t[idx]
        if paired:
            other = partner.index(idx) if partner is not None else xb
            xb = GraphBatch(*(torch.cat([a, b]) for a, b in zip(
                (xb.ops, xb.adj, xb.mask, xb.n_nodes), (other.ops, other.adj, other.mask, other.n_nodes))))
            yb = torch.cat([yb, yb])
        xb, yb = xb.trim().to(device), yb.to(device)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(step, n_steps, cfg)
        loss = compute_loss(model(xb), yb, cfg, target, paired, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if ema is not None:
            with torch.no_grad():
                torch._foreach_lerp_(ema_params, model_params, 1.0 - cfg.ema_decay)
        if callback is not None and (step % 20 == 0 or step == n_steps - 1):
            callback(step + 1, n_steps)
        if n_val and ((step + 1) % cfg.eval_every == 0 or step == n_steps - 1):
            scorer = ema if ema is not None else model
            pred = predict_batches(scorer, train.index(val_idx), cfg.predict_batch_size, device)
            score = _validation_score(pred, y[val_idx], target)
            model.train()
            if score > best:
                best, bad = score, 0
                best_state = copy.deepcopy(scorer.state_dict())
            else:
                bad += 1
                if bad >= cfg.patience:
                    stopped_at = step + 1
                    if callback is not None:
                        callback(n_steps, n_steps)
                    break
    if best_state is not None:
        (ema if ema is not None else model).load_state_dict(best_state)
    model.eval()
    attach_generator(model, None)
    info = {"steps": stopped_at or n_steps, "planned_steps": n_steps, "n_val": n_val,
            "val_score": None if best == -math.inf else best}
    return model, ema, info


@contextlib.contextmanager
def cpu_threads(n: int | None, device: torch.device) -> Iterator[None]:
    """Run with ``n`` torch CPU threads and restore the previous count afterwards.

    The fast models are so small that one thread is as fast as two on an idle machine, and far
    faster on a busy one (threads spin-waiting for a descheduled sibling slow every op down).
    """
    if n is None or device.type != "cpu" or n == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def idle_threads() -> int:
    """Threads for work that may use the cores nobody else is using: this process's own core plus
    the cores the 1-minute load average leaves idle (at least 1, at most the cores this process may run on).

    On this 2-core machine, scoring all NAS-Bench-201 cells took 1.2–1.7 s on two threads against
    1.7–2.2 s on one when idle, but about twice as long on two threads as on one while another process
    kept a core busy (docs/predictors.md), hence the check. The load average lags by up to a minute;
    a wrong guess costs time, never results, because the scores do not depend on the thread count
    (checked on all 15,625 cells for NN-Former and NAR-Former V2).
    """
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform: stay on one thread
        return 1
    # This process counts itself in the load while it works (about 1), so idle cores = cores - load.
    return max(1, min(cores, 1 + round(cores - load)))


def _member_progress(callback: Callable[[int, int], None], offset: int, total: int) -> Callable[[int, int], None]:
    """Progress of one ensemble member as progress of the whole fit."""

    def report(done: int, _member_total: int) -> None:
        callback(offset + done, total)

    return report


class TorchPredictor(Predictor):
    """Base of the torch predictors: ensembles, warm start, target scaling and caching.

    Subclasses set ``ModelConfig`` (a dataclass) and implement ``_preset`` (configs for a preset and
    target) and ``_build_model`` (a fresh module from a config, op/node counts and a generator).

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
            ``warm_start_ratio`` of the capped steps. Set, it also selects the preset's loop
            schedule (``TrainConfig.loop_lr`` and ``loop_epochs``) where the preset has one.
    """

    ModelConfig: ClassVar[type]
    graph_kind: ClassVar[str | None] = None

    def __init__(self, *, preset: str = "fast", seed: int = 0, target: str = "accuracy", n_members: int = 1,
                 warm_start: bool = False, config: Mapping[str, Any] | None = None, device: str = "auto",
                 callback: Callable[[int, int], None] | None = None, max_fit_steps: int | None = None,
                 fit_budget: int | None = None) -> None:
        self.preset = preset
        self.seed = seed
        self.target = target
        self.n_members = n_members
        self.warm_start = warm_start
        self.max_fit_steps = max_fit_steps
        self.fit_budget = fit_budget
        self.config = config
        self.device = device
        self.callback = callback

    # --- hooks ----------------------------------------------------------------------------------
    def _preset(self, preset: str, target: str) -> tuple[Any, TrainConfig]:
        """(model config, train config) of a preset for a target."""
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
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r}; expected one of {PRESETS}")
        if self.target not in TARGETS:
            raise ConfigError(f"unknown target {self.target!r}; expected one of {TARGETS}")
        if int(self.n_members) < 1:
            raise ConfigError(f"n_members must be >= 1, got {self.n_members}")
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
        if self.max_fit_steps is not None:  # a fit inside the search loop: the preset's loop schedule
            loop = {"lr": train_cfg.loop_lr, "epochs": train_cfg.loop_epochs}
            train_cfg = dataclasses.replace(train_cfg, **{k: v for k, v in loop.items() if v is not None})
        train_cfg = dataclasses.replace(train_cfg, **{k: v for k, v in overrides.items() if k in train_fields})
        for name, allowed in (("n_threads", ()), ("predict_threads", ("as_fit", "auto"))):
            value = getattr(train_cfg, name)
            if not (value is None or value in allowed
                    or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)):
                raise ConfigError(f"{name} must be None, a positive integer{''.join(f' or {a!r}' for a in allowed)}; "
                                  f"got {value!r}")
        if self.max_fit_steps is not None:  # the search loop's cap: refits every round must stay cheap
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

    def _encoder(self) -> GraphEncoder:
        if getattr(self, "_graph_encoder", None) is None:
            self._graph_encoder = GraphEncoder()
        return self._graph_encoder

    # --- the scikit-learn contract --------------------------------------------------------------------
    def fit(self, graphs: Sequence[ArchGraph], y: Sequence[float]) -> TorchPredictor:
        """Train ``n_members`` models on ``graphs`` and their targets ``y``; returns ``self``."""
        y_arr = validate_training_data(graphs, y)
        model_cfg, train_cfg = self._configs()
        device = self._torch_device()
        with cpu_threads(train_cfg.n_threads, device):
            return self._fit(graphs, y_arr, model_cfg, train_cfg, device)

    def _fit(self, graphs: Sequence[ArchGraph], y_arr: np.ndarray, model_cfg: Any, train_cfg: TrainConfig,
             device: torch.device) -> TorchPredictor:
        graphs = list(graphs)
        n_ops, max_nodes = n_op_types(graphs), max(g.n_nodes for g in graphs)
        warm = (self.warm_start and hasattr(self, "members_") and len(self.members_) == int(self.n_members)
                and n_ops <= self.capacity_[0] and max_nodes <= self.capacity_[1]
                and self.fitted_target_ == self.target)
        if not warm:
            self.scaler_ = TargetScaler(self.target, y_arr)
            self.capacity_ = self._capacity(model_cfg, n_ops, max_nodes)
        encoder = self._encoder()
        train = encoder.encode(graphs)
        partner_graphs = self._partners(graphs) if train_cfg.lambda_cons > 0 else None
        partner = encoder.encode(partner_graphs, pad_to=train.ops.shape[1]) if partner_graphs else None
        if partner is not None and partner.ops.shape[1] != train.ops.shape[1]:
            train = encoder.encode(graphs, pad_to=partner.ops.shape[1])
        z = self.scaler_.forward(y_arr)
        steps_per_epoch = math.ceil(len(graphs) / max(1, train_cfg.batch_size))
        n_steps = max(train_cfg.min_steps, train_cfg.epochs * steps_per_epoch)
        if train_cfg.max_steps is not None:
            n_steps = min(n_steps, train_cfg.max_steps)
        if warm:
            n_steps = max(1, round(n_steps * train_cfg.warm_start_ratio))
            if self.fit_budget is not None:
                n_new = max(1, len(graphs) - getattr(self, "n_train_", 0))
                n_steps = min(n_steps, int(self.fit_budget) * n_new)
        member_seeds = np.random.SeedSequence(int(self.seed)).spawn(int(self.n_members))
        if warm:  # a warm-started fit must not replay the first fit's batches and dropout masks
            member_seeds = [np.random.SeedSequence([int(self.seed), self.n_fits_, k])
                            for k in range(int(self.n_members))]
        total = n_steps * int(self.n_members)
        members, emas, infos = [], [], []
        start = time.perf_counter()
        for k, member_seed in enumerate(member_seeds):
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
            model, ema, info = train_member(
                model, train, z, train_cfg, target=self.target, seed=train_seed, partner=partner,
                duplicate=partner is None, n_steps=n_steps, device=device, ema=ema, callback=cb)
            members.append(model)
            emas.append(ema)
            infos.append(info)
        self.members_, self.emas_ = members, emas
        self.fitted_target_ = self.target
        self.n_fits_ = getattr(self, "n_fits_", 0) + 1
        self.n_train_ = len(graphs)
        self.fit_info_ = {"warm_start": warm, "n_steps": n_steps, "members": infos,
                          "seconds": time.perf_counter() - start, "device": str(device)}
        self.device_ = device
        self.predict_batch_size_ = train_cfg.predict_batch_size
        self.predict_threads_ = (train_cfg.n_threads if train_cfg.predict_threads == "as_fit"
                                 else train_cfg.predict_threads)
        log.debug("fitted %s: %s", type(self).__name__, self.fit_info_)
        return self

    # --- snapshots: tensors + JSON, no pickle (nasloop.engine.Snapshots) --------------------------
    def snapshot_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The fitted state as named tensors (every member's and EMA's ``state_dict``) and JSON
        settings; ``None`` before the first fit. :meth:`restore_state` rebuilds it exactly."""
        if not hasattr(self, "members_"):
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
        n_ops, max_nodes = n_op_types(graphs), max(g.n_nodes for g in graphs)
        if n_ops > self.capacity_[0] or max_nodes > self.capacity_[1]:
            raise ConfigError(
                f"{type(self).__name__} was fitted for at most {self.capacity_[0]} op types and "
                f"{self.capacity_[1]} nodes, got graphs needing {n_ops} and {max_nodes}; refit on such graphs"
            )
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
