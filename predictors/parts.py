"""The named parts of a torch fit, each small enough to read at a glance: seeded dropout, batching,
the EMA of the weights, early stopping, the optimiser and its schedule, and CPU threads.

:func:`predictors.training.train_member` puts them together.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from predictors.graphs import GraphBatch

if TYPE_CHECKING:
    from predictors.training import TrainConfig


# --- dropout with a private generator ----------------------------------------------------------------
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


# --- batching ----------------------------------------------------------------------------------------
def split_validation(n: int, val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(held-out rows for early stopping, sorted; rows to fit on). No hold-out below 20 cells."""
    order = rng.permutation(n)
    n_val = round(val_fraction * n) if val_fraction > 0 and n >= 20 else 0
    return np.sort(order[:n_val]), order[n_val:]


class Batches:
    """Shuffled mini-batches of ``rows``, epoch after epoch; an epoch's partial tail joins the next
    shuffle, so every batch has ``batch_size`` rows (fewer only when there are fewer rows)."""

    def __init__(self, rows: np.ndarray, batch_size: int, rng: np.random.Generator) -> None:
        self.rows, self.rng = rows, rng
        self.size = max(1, min(batch_size, len(rows)))
        self.perm, self.pos = rng.permutation(rows), 0

    def next(self) -> torch.Tensor:
        if self.pos + self.size > len(self.perm):
            self.perm, self.pos = np.concatenate([self.perm[self.pos:], self.rng.permutation(self.rows)]), 0
        idx = torch.from_numpy(self.perm[self.pos : self.pos + self.size])
        self.pos += self.size
        return idx


class FitData:
    """The encoded training cells and their normalised targets, served as (optionally paired) batches.

    Paired (consistency loss on): a batch is [B cells; their B partners] with the targets twice. The
    partners are ``partner`` row by row (NAR-Former V2's relabelled cells) or, without it, the same
    cells again under fresh dropout masks (NN-Former).
    """

    def __init__(self, train: GraphBatch, y: np.ndarray, target: str, *, paired: bool,
                 partner: GraphBatch | None = None) -> None:
        self.train, self.y, self.target, self.paired, self.partner = train, y, target, paired, partner
        self.y_t = torch.as_tensor(y, dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.train)

    def batch(self, idx: torch.Tensor, device: torch.device) -> tuple[GraphBatch, torch.Tensor]:
        xb, yb = self.train.index(idx), self.y_t[idx]
        if self.paired:
            other = self.partner.index(idx) if self.partner is not None else xb
            xb = GraphBatch(*(torch.cat([a, b]) for a, b in zip(
                (xb.ops, xb.adj, xb.mask, xb.n_nodes), (other.ops, other.adj, other.mask, other.n_nodes))))
            yb = torch.cat([yb, yb])
        return xb.trim().to(device), yb.to(device)


@torch.no_grad()
def predict_batches(model: nn.Module, batch: GraphBatch, batch_size: int, device: torch.device) -> np.ndarray:
    model.eval()
    out = []
    for start in range(0, len(batch), batch_size):
        part = batch.index(slice(start, start + batch_size)).trim().to(device)
        out.append(model(part).float().cpu())
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


# --- EMA of the weights --------------------------------------------------------------------------------
class EMA:
    """An exponential moving average of ``model``'s weights, the copy used for prediction.

    ``previous`` continues a warm-started fit's average; ``decay`` None or 0 turns it off (the model
    then predicts with its raw weights).
    """

    def __init__(self, model: nn.Module, decay: float | None, previous: nn.Module | None,
                 device: torch.device) -> None:
        self.model, self.decay = model, decay
        self.module = (previous if previous is not None else copy.deepcopy(model)) if decay else None
        if self.module is not None:
            self.module.to(device).eval()
            for p in self.module.parameters():
                p.requires_grad_(False)
        self._pairs = (list(self.module.parameters()), list(model.parameters())) if self.module is not None else None

    @property
    def scorer(self) -> nn.Module:
        """The module whose predictions count: the average, or the model itself without one."""
        return self.module if self.module is not None else self.model

    def update(self) -> None:
        if self._pairs is not None:
            with torch.no_grad():
                torch._foreach_lerp_(self._pairs[0], self._pairs[1], 1.0 - self.decay)


# --- early stopping ------------------------------------------------------------------------------------
def validation_score(pred: np.ndarray, y: np.ndarray, target: str) -> float:
    """Higher is better: Kendall's tau for accuracy, minus MAPE for latency."""
    if target == "latency":
        return -float(np.mean(np.abs(pred - y) / y))
    from scipy.stats import kendalltau

    tau = kendalltau(pred, y).statistic
    return float(tau) if np.isfinite(tau) else -1.0


class EarlyStopping:
    """Scores the held-out rows every ``eval_every`` steps (and at the last), keeps the best weights,
    and says stop after ``patience`` evaluations without improvement. Without held-out rows it
    never evaluates."""

    def __init__(self, data: FitData, val_rows: np.ndarray, cfg: TrainConfig, device: torch.device) -> None:
        self.data, self.val_rows, self.cfg, self.device = data, val_rows, cfg, device
        self.best, self.best_state, self.bad, self.stopped_at = -math.inf, None, 0, None

    def due(self, step: int, n_steps: int) -> bool:
        return len(self.val_rows) > 0 and ((step + 1) % self.cfg.eval_every == 0 or step == n_steps - 1)

    def should_stop(self, step: int, scorer: nn.Module, model: nn.Module) -> bool:
        pred = predict_batches(scorer, self.data.train.index(self.val_rows), self.cfg.predict_batch_size, self.device)
        score = validation_score(pred, self.data.y[self.val_rows], self.data.target)
        model.train()
        if score > self.best:
            self.best, self.bad = score, 0
            self.best_state = copy.deepcopy(scorer.state_dict())
            return False
        self.bad += 1
        if self.bad >= self.cfg.patience:
            self.stopped_at = step + 1
            return True
        return False

    def restore_best(self, scorer: nn.Module) -> None:
        if self.best_state is not None:
            scorer.load_state_dict(self.best_state)

    def info(self, n_steps: int) -> dict[str, Any]:
        return {"steps": self.stopped_at or n_steps, "planned_steps": n_steps, "n_val": len(self.val_rows),
                "val_score": None if self.best == -math.inf else self.best}


# --- optimiser and schedule ----------------------------------------------------------------------------
def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """timm's rule: no weight decay on 1-D parameters (biases, norms, layer scales, tokens)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (decay skips 1-D parameters) or Adam (no decay), as ``cfg.optimizer`` says."""
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, foreach=True)
    return torch.optim.Adam(param_groups(model, 0.0), lr=cfg.lr, foreach=True)


def lr_factor(step: int, n_steps: int, cfg: Any) -> float:
    """Multiplier of the peak lr at ``step`` (0-based): linear warm-up, then cosine or linear decay.

    ``cfg`` has ``warmup_frac``, ``schedule`` (``"cosine"`` or ``"linear"``) and ``min_lr_ratio``.
    """
    warmup = max(1, round(cfg.warmup_frac * n_steps))
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, n_steps - warmup))
    if cfg.schedule == "linear":
        return 1.0 - progress
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


def report_progress(callback: Callable[[int, int], None] | None, step: int, n_steps: int) -> None:
    """``callback(done, total)`` every 20 steps and at the last."""
    if callback is not None and (step % 20 == 0 or step == n_steps - 1):
        callback(step + 1, n_steps)


# --- CPU threads ------------------------------------------------------------------------------------------
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
