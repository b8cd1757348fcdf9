"""NAR-Former V2 (Yi et al., NeurIPS 2023): a transformer whose attention is a graph aggregation.

Spec: ``../shared/specs/predictors.md`` §3 (the released code ``yuny220/NAR-Former-V2`` at ``c6cbc83``).

A node token is ``nerf(op id) ⊕ nerf(node index)`` (linearly spaced frequencies, sin/cos interleaved).
Each layer: degree gating ``x ⊙ σ(w·deg + b)``; one shared sigmoid query/key ``q = σ(W x + b)``;
scores ``q_i·q_j/√D`` kept only on graph edges (multiplied by the symmetric adjacency) and
sum-normalised (not softmax); aggregation of the raw features plus a root term
``W_l Σ_j α_ij x_j + W_r x_i``; L2 norm, ReLU, dropout (no residual); then a grouped FFN (8 groups,
per-group LayerNorm) with layer scale. The readout weights each layer's node mean with learned
sigmoid gates; the head ends in ``−log σ(·)`` (positive outputs, used for latency targets).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from nasloop.types import ArchGraph
from predictors.graphs import GraphBatch, isomorphic_relabel
from predictors.training import Dropout, TorchPredictor, TrainConfig


@dataclass
class NARFormerV2Config:
    d_model: int = 512  # token width after the first layer
    n_layers: int = 6
    ffn_ratio: int = 4  # grouped FFN hidden = ffn_ratio * d_model
    n_groups: int = 8  # groups of the grouped linear transforms
    multires_op: int = 32  # nerf frequencies of the op id (2× dims)
    multires_pos: int = 32  # nerf frequencies of the node index (2× dims)
    dropout: float = 0.05
    layer_scale: float = 1e-4  # initial γ of the FFN branch
    head_hidden: int = 512
    use_degree: bool = True  # degree gating before each attention
    positive_output: bool = True  # ŷ = −log σ(out); False: ŷ = out (standardised accuracy targets)


def nerf(x: torch.Tensor, n_freqs: int) -> torch.Tensor:
    """V2's ``nerf`` code: [sin(π f_k x), cos(π f_k x)] for f = linspace(1, 2^(L−1), L), interleaved.

    Args:
        x: values, any shape (...).
    Returns:
        Codes of shape (..., 2 * n_freqs), float32 (computed in float64: the top frequency is 2^31).
    """
    freqs = torch.linspace(1.0, 2.0 ** (n_freqs - 1), n_freqs, dtype=torch.float64, device=x.device)
    angles = math.pi * x.to(torch.float64)[..., None] * freqs  # (..., L)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2).float()  # (..., 2L)


def _thomas_init(linear: nn.Linear, generator: torch.Generator | None) -> None:
    """V2's init of ``nn.Linear``: uniform(±1/√in) weights and uniform(±1/√out) biases."""
    nn.init.uniform_(linear.weight, -1 / math.sqrt(linear.in_features), 1 / math.sqrt(linear.in_features),
                     generator=generator)
    if linear.bias is not None:
        bound = 1 / math.sqrt(linear.out_features)
        nn.init.uniform_(linear.bias, -bound, bound, generator=generator)


def _default_init(linear: nn.Linear, generator: torch.Generator | None) -> None:
    """torch's / PyG's default Linear init (kaiming-uniform, a=√5), drawn from ``generator``."""
    nn.init.kaiming_uniform_(linear.weight, a=math.sqrt(5), generator=generator)
    if linear.bias is not None:
        bound = 1 / math.sqrt(linear.in_features)
        nn.init.uniform_(linear.bias, -bound, bound, generator=generator)


class GraphAttention(nn.Module):
    """Degree gating, shared sigmoid query/key, adjacency-restricted sum-normalised scores, root term."""

    def __init__(self, d_in: int, d_out: int, cfg: NARFormerV2Config, generator: torch.Generator | None) -> None:
        super().__init__()
        self.degree = nn.Linear(1, d_in) if cfg.use_degree else None
        self.qk = nn.Linear(d_in, d_in)
        self.lin_l = nn.Linear(d_in, d_out)
        self.lin_r = nn.Linear(d_in, d_out, bias=False)
        self.drop = Dropout(cfg.dropout)
        for lin in (self.degree, self.qk, self.lin_l, self.lin_r):
            if lin is not None:
                _default_init(lin, generator)

    def forward(self, x: torch.Tensor, adj: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.degree is not None:
            deg = adj.sum(dim=-1, keepdim=True)  # (B, N, 1)
            x = x * torch.sigmoid(self.degree(deg))  # (B, N, Din)
        q = torch.sigmoid(self.qk(x))  # (B, N, Din), serves as query and key
        scores = (q @ q.transpose(1, 2)) / math.sqrt(x.shape[-1]) * adj  # (B, N, N), neighbours only
        alpha = scores / (scores.sum(dim=-1, keepdim=True) + 1e-6)  # sum-normalised, not softmax
        m = self.lin_l(alpha @ x) + self.lin_r(x)  # (B, N, Dout)
        m = F.normalize(m, dim=-1, eps=1e-12)
        return self.drop(F.relu(m)) * mask[..., None]


class GroupedLinear(nn.Module):
    """Grouped linear transform: 8 independent dense maps over channel chunks, each with its own LayerNorm.

    Works in group-major layout, (G, M, D/G) in and out, so that the FFN's two grouped layers chain
    without reshuffling the hidden layer; :class:`GroupedFFN` converts from and to (..., D).
    """

    def __init__(self, d_in: int, d_out: int, groups: int, generator: torch.Generator | None) -> None:
        super().__init__()
        if d_in % groups or d_out % groups:
            raise ValueError(f"GroupedLinear: {d_in} and {d_out} must both be divisible by {groups} groups")
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(groups, d_in // groups, d_out // groups))
        self.bias = nn.Parameter(torch.zeros(groups, d_out // groups))
        self.norm_weight = nn.Parameter(torch.ones(groups, d_out // groups))
        self.norm_bias = nn.Parameter(torch.zeros(groups, d_out // groups))
        for g in range(groups):  # Xavier-uniform over each group's (in, out) map
            nn.init.xavier_uniform_(self.weight.data[g], generator=generator)

    def forward(self, xg: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            y = torch.baddbmm(self.bias[:, None], xg, self.weight)  # (G, M, Dout/G)
            return F.layer_norm(y, y.shape[-1:]) * self.norm_weight[:, None] + self.norm_bias[:, None]
        # Scoring: the same maths, faster. Centring is linear, so it is folded into the weights
        # (each output column minus the row mean of its group), and what remains of the norm is one
        # scale per row. torch's layer_norm over rows of 8 or 32 values was a third of V2's scoring
        # time (docs/results.md); training keeps it, since its backward is one kernel.
        weight = self.weight - self.weight.mean(dim=-1, keepdim=True)
        bias = self.bias - self.bias.mean(dim=-1, keepdim=True)
        centred = torch.baddbmm(bias[:, None], xg, weight)  # (G, M, Dout/G), rows of mean 0
        inv_std = torch.rsqrt(centred.square().mean(dim=-1, keepdim=True) + 1e-5)
        return torch.addcmul(self.norm_bias[:, None], centred * inv_std, self.norm_weight[:, None])


class GroupedFFN(nn.Module):
    def __init__(self, cfg: NARFormerV2Config, generator: torch.Generator | None) -> None:
        super().__init__()
        hidden = cfg.ffn_ratio * cfg.d_model
        self.fc1 = GroupedLinear(cfg.d_model, hidden, cfg.n_groups, generator)
        self.fc2 = GroupedLinear(hidden, cfg.d_model, cfg.n_groups, generator)
        self.drop1 = Dropout(cfg.dropout)
        self.drop2 = Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *lead, d = x.shape
        g = self.fc1.groups
        xg = x.reshape(-1, g, d // g).transpose(0, 1)  # (G, M, D/G): channel chunk k is group k
        # The hidden layer stays group-major: fc1's group k output is exactly fc2's group k input
        # (chunk k of the hidden channels), so no transpose-and-copy in between (the profiler put a
        # quarter of V2's scoring time, 256 graphs a batch, in those copies). Bit-identical results.
        h = self.drop1(F.relu(self.fc1(xg)))  # (G, M, H/G)
        y = self.fc2(h).transpose(0, 1).reshape(*lead, d)  # (..., D)
        return self.drop2(y)


class Layer(nn.Module):
    def __init__(self, d_in: int, cfg: NARFormerV2Config, generator: torch.Generator | None) -> None:
        super().__init__()
        self.attn = GraphAttention(d_in, cfg.d_model, cfg, generator)
        self.ln = nn.LayerNorm(cfg.d_model)
        self.ffn = GroupedFFN(cfg, generator)
        self.gamma = nn.Parameter(torch.full((cfg.d_model,), cfg.layer_scale))

    def forward(self, x: torch.Tensor, adj: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.attn(x, adj, mask)  # (B, N, D); the root term replaces a residual
        return (x + self.gamma * self.ffn(self.ln(x))) * mask[..., None]


class NARFormerV2(nn.Module):
    """NAR-Former V2 over a padded :class:`GraphBatch`; returns one score per graph."""

    def __init__(self, cfg: NARFormerV2Config, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        d_in = 2 * (cfg.multires_op + cfg.multires_pos)
        self.layers = nn.ModuleList(Layer(d_in if i == 0 else cfg.d_model, cfg, generator)
                                    for i in range(cfg.n_layers))
        n, d = cfg.n_layers, cfg.d_model
        self.gate_a = nn.Linear(n * d, max(1, n * d // 4))
        self.gate_b = nn.Linear(max(1, n * d // 4), n)
        self.head = nn.Sequential(
            nn.Linear(d, cfg.head_hidden), nn.ReLU(), Dropout(cfg.dropout),
            nn.Linear(cfg.head_hidden, cfg.head_hidden), nn.ReLU(), Dropout(cfg.dropout),
            nn.Linear(cfg.head_hidden, 1),
        )
        for lin in (self.gate_a, self.gate_b, *(m for m in self.head if isinstance(m, nn.Linear))):
            _thomas_init(lin, generator)

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        cfg = self.cfg
        b, n = batch.ops.shape
        mask = batch.mask
        # Op ids and node indices are small integers: code each distinct value once and look the
        # codes up (the same numbers as coding every token; sin/cos in float64 were a tenth of scoring).
        n_ids = int(batch.ops.max()) + 1 if batch.ops.numel() else 1
        op_codes = nerf(torch.arange(n_ids, device=mask.device), cfg.multires_op)[batch.ops]
        pos_codes = nerf(torch.arange(n, device=mask.device), cfg.multires_pos).expand(b, n, -1)
        x = torch.cat([op_codes, pos_codes], dim=-1)  # (B, N, Din)
        x = x * mask[..., None]
        adj = ((batch.adj + batch.adj.transpose(1, 2)) > 0).to(x.dtype)  # (B, N, N) symmetric, no self-loops
        count = mask.sum(dim=1, keepdim=True).clamp(min=1).to(x.dtype)  # (B, 1)
        means = []
        for layer in self.layers:
            x = layer(x, adj, mask)
            means.append(x.sum(dim=1) / count)  # (B, D) node mean over real nodes
        stacked = torch.stack(means, dim=1)  # (B, L, D)
        weights = torch.sigmoid(self.gate_b(F.relu(self.gate_a(stacked.flatten(1)))))  # (B, L)
        z = (weights[..., None] * stacked).sum(dim=1)  # (B, D)
        out = self.head(z).squeeze(-1)  # (B,)
        return -F.logsigmoid(out) if cfg.positive_output else out


def narformer2_presets(preset: str, target: str) -> tuple[NARFormerV2Config, TrainConfig]:
    """(model, training) configs: "paper" is V2's NB201 script (§3.4), "fast" the CPU default."""
    latency = target == "latency"
    if preset == "paper":
        model = NARFormerV2Config(positive_output=latency)
        if latency:  # V2's NNLQP script: 2 layers, Adam 1e-3, batch 16, relative MSE only
            model = replace(model, n_layers=2)
            train = TrainConfig(epochs=50, batch_size=16, lr=1e-3, optimizer="adam", schedule="linear",
                                ema_decay=None, lambda_cons=0.0)
        else:
            train = TrainConfig(epochs=1000, batch_size=8, lr=1e-4, optimizer="adam", schedule="linear",
                                ema_decay=None, lambda_rank=0.1, lambda_cons=0.5)
        return model, train
    # Accuracy: 4 layers rank better than 3 at every N tried, on CIFAR-10 and CIFAR-100, for about 40%
    # more fit time; 6 (the paper's) gave no more (docs/decisions.md). Latency keeps the 3
    # layers its MAPE figures were measured with.
    model = NARFormerV2Config(d_model=64, n_layers=3 if latency else 4, head_hidden=64, dropout=0.0,
                              positive_output=latency)
    # Latency: clip gradients as NN-Former's latency recipe does. NB201's device columns hold cells
    # with almost no compute (pixel3: 0.003 ms against a 10.7 ms median); their relative errors blew up
    # the first steps and drove the −log σ output into saturation, where every prediction was ~0
    # and the gradient vanished (pixel3, N=1563: MAPE 101%, Acc(10%) 0%). Clipped at 5: MAPE 11.7%,
    # Acc(10%) 69.2% (docs/results.md).
    # Accuracy: 8,000 steps at most. At N=1563 (49 steps an epoch) 3,000 steps stopped at tau 0.831
    # (seed 0), 8,000 reach 0.893 ± 0.006 (3 seeds, docs/results.md); N=156 runs its 300 epochs
    # (1,500 steps) either way. Latency keeps the 3,000 its MAPE figures were measured with.
    # Scoring in batches of 128 graphs instead of 256: scoring all NB201 cells took a median of 3.08 s
    # against 3.93 s (7 alternations, one process). Presumably a cache effect: V2's grouped FFN holds
    # 4·d hidden channels for 8 tokens a graph (not measured); NN-Former was not faster at 128.
    train = TrainConfig(epochs=300, min_steps=0, max_steps=3000 if latency else 8000, batch_size=32,
                        lr=1e-3, optimizer="adam", schedule="linear", ema_decay=0.99, lambda_rank=0.1,
                        lambda_cons=0.5 if not latency else 0.0, grad_clip=5.0 if latency else None,
                        n_threads=1, predict_batch_size=128)
    return model, train


class NARFormerV2Predictor(TorchPredictor):
    """NAR-Former V2 as a :class:`~nasloop.predictor.Predictor` (graph kind ``"full"``).

    The consistency loss pairs every training cell with an isomorphic relabelling of itself (see
    :func:`~predictors.graphs.isomorphic_relabel`), whose positional codes differ.

    Example:
        >>> from nasloop.registry import make_predictor
        >>> model = make_predictor("narformer2", preset="fast", seed=0, target="latency")
    """

    ModelConfig = NARFormerV2Config
    graph_kind = "full"

    def _preset(self, preset: str, target: str) -> tuple[NARFormerV2Config, TrainConfig]:
        return narformer2_presets(preset, target)

    def _build_model(self, cfg: NARFormerV2Config, n_ops: int, max_nodes: int,
                     generator: torch.Generator) -> NARFormerV2:
        return NARFormerV2(cfg, generator)

    def _capacity(self, cfg: NARFormerV2Config, n_ops: int, max_nodes: int) -> tuple[int, int]:
        return 2**31, 2**31  # sinusoidal codes take any op id and node count

    def _partners(self, graphs: Sequence[ArchGraph]) -> list[ArchGraph]:
        cache = self.__dict__.setdefault("_relabel_cache", {})
        out = []
        for g in graphs:
            if g not in cache:
                cache[g] = isomorphic_relabel(g)
            out.append(cache[g])
        return out

