"""The DARTS evaluation network in PyTorch: a stem, a stack of cells built from a genotype with
reduction cells at 1/3 and 2/3 of the depth, global pooling and a linear classifier.

Follows the structure of the DARTS paper's CIFAR network (without the auxiliary head), scaled by
:class:`NetworkConfig` so that it trains in seconds on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from search_spaces.darts.space import CONCAT, Genotype


@dataclass(frozen=True)
class NetworkConfig:
    channels: int = 8  # C: channels of the first cells (doubled at each reduction)
    layers: int = 5  # number of cells; reductions at layers // 3 and 2 * layers // 3
    in_channels: int = 3  # image channels (3 for CIFAR-10, 1 for digits)
    n_classes: int = 10
    stem_multiplier: int = 3  # the stem outputs stem_multiplier * C channels
    drop_path: float = 0.0  # probability of dropping an op's output during training


# --- operations ---------------------------------------------------------------------------------------------
class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise dilated conv, pointwise conv, BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )


class SepConv(nn.Sequential):
    """Two stacked depthwise-separable convs (the first carries the stride)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, dilation=1),
            DilConv(c_in, c_out, kernel, 1, padding, dilation=1),
        )


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset stride-2 1x1 convs (the skip of a reduction cell)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))  # (B, C, H, W), shifted by one pixel
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))  # (B, C_out, H/2, W/2)


def make_op(name: str, c: int, stride: int) -> nn.Module:
    """One of the 7 DARTS operations on ``c`` channels."""
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    if name == "sep_conv_3x3":
        return SepConv(c, c, 3, stride, 1)
    if name == "sep_conv_5x5":
        return SepConv(c, c, 5, stride, 2)
    if name == "dil_conv_3x3":
        return DilConv(c, c, 3, stride, 2, dilation=2)
    if name == "dil_conv_5x5":
        return DilConv(c, c, 5, stride, 4, dilation=2)
    raise ValueError(f"unknown DARTS op {name!r}")


def drop_path(x: torch.Tensor, p: float) -> torch.Tensor:
    """Zero whole samples with probability ``p`` (scaled to keep the mean)."""
    keep = 1.0 - p
    mask = torch.bernoulli(torch.full((x.shape[0], 1, 1, 1), keep, device=x.device))  # (B, 1, 1, 1)
    return x * mask / keep


# --- cell and network -----------------------------------------------------------------------------------------
class Cell(nn.Module):
    def __init__(self, edges, c_prev_prev: int, c_prev: int, c: int, *, reduction: bool,
                 reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.pre0 = FactorizedReduce(c_prev_prev, c) if reduction_prev else ReLUConvBN(c_prev_prev, c, 1, 1, 0)
        self.pre1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        self.inputs = [inp for _, inp in edges]
        # An edge from a cell input (node 0 or 1) of a reduction cell halves the resolution.
        self.ops = nn.ModuleList(
            make_op(op, c, 2 if reduction and inp < 2 else 1) for op, inp in edges
        )
        self.multiplier = len(CONCAT)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, p_drop: float = 0.0) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]  # each (B, C, H, W)
        for node in range(len(self.ops) // 2):
            total = 0
            for e in (2 * node, 2 * node + 1):
                h = self.ops[e](states[self.inputs[e]])
                if self.training and p_drop > 0 and not isinstance(self.ops[e], nn.Identity):
                    h = drop_path(h, p_drop)
                total = total + h
            states.append(total)
        return torch.cat([states[i] for i in CONCAT], dim=1)  # (B, 4C, H', W')


class DartsNetwork(nn.Module):
    """Stem → ``layers`` cells (reductions at 1/3 and 2/3 of the depth) → pool → linear.

    Example:
        >>> from search_spaces.darts.space import DartsSpace
        >>> import numpy as np
        >>> g = DartsSpace().sample(np.random.default_rng(0))
        >>> net = DartsNetwork(g, NetworkConfig(in_channels=1))
        >>> net(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(self, genotype: Genotype, config: NetworkConfig = NetworkConfig()) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        c_stem = config.stem_multiplier * c
        self.stem = nn.Sequential(
            nn.Conv2d(config.in_channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem),
        )
        c_prev_prev, c_prev, c_cur = c_stem, c_stem, c
        reductions = {config.layers // 3, 2 * config.layers // 3}
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(config.layers):
            reduction = i in reductions
            if reduction:
                c_cur *= 2
            edges = genotype.reduce if reduction else genotype.normal
            cell = Cell(edges, c_prev_prev, c_prev, c_cur, reduction=reduction, reduction_prev=reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_cur
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, config.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)  # (B, 3C, H, W)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, self.config.drop_path)
        return self.classifier(self.pool(s1).flatten(1))  # (B, n_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
