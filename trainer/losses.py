"""The refiner's loss (maskdepth §3.2): L1 + L2 + a 4-scale gradient loss, unit weights."""
from __future__ import annotations

import torch


def gradient_loss(pred: torch.Tensor, target: torch.Tensor, scales: int = 4) -> torch.Tensor:
    """Multi-scale gradient matching (Li & Snavely, MegaDepth): the L1 norm of the x and y
    differences of the residual, at 4 scales obtained by striding (1, 2, 4, 8)."""
    total = pred.new_zeros(())
    for s in range(scales):
        step = 2 ** s
        r = (pred - target)[..., ::step, ::step]
        gx = (r[..., :, 1:] - r[..., :, :-1]).abs().mean()
        gy = (r[..., 1:, :] - r[..., :-1, :]).abs().mean()
        total = total + gx + gy
    return total


def refine_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    diff = pred - target
    return diff.abs().mean() + (diff ** 2).mean() + gradient_loss(pred, target)
