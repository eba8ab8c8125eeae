"""The refiner's inference contract, written once for training, evaluation and ``gen refine``.

* Depth space: inverse depth scaled to [0, DEPTH_SCALE] (``composer.depth_space``: the
  shards are made in it, so the composer owns the constant; composer never imports torch).
* RGB: [0, 1] then ImageNet mean/std (what the MiT encoders were designed around).
* Mask: {0, 1}, 1 = "trust this region".
* Two passes (maskdepth eqs. 1-3): D1 = R(D, I, M), D2 = R(D, I, 1-M), merged
  D' = M*D1 + (1-M)*D2.  A ``direct`` refiner is one pass on (D, I, M).
"""
from __future__ import annotations

import numpy as np
import torch

from composer.depth_space import DEPTH_SCALE

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
MODES = ("layered", "direct")


def normalise_rgb(rgb01: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> the network's RGB input."""
    return (rgb01 - IMAGENET_MEAN.to(rgb01.device)) / IMAGENET_STD.to(rgb01.device)


def two_passes(model, depth: torch.Tensor, mask: torch.Tensor,
               rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(D1, D2): the M pass and the 1-M pass.  Both go through the model as one batch of 2B:
    the model has no batch-coupled layers (no BatchNorm), so this equals two calls, with
    half the kernel launches."""
    b = depth.shape[0]
    out = model(torch.cat([depth, depth]), torch.cat([mask, 1 - mask]), torch.cat([rgb, rgb]))
    return out[:b], out[b:]


def merge(mask, d1, d2):
    """D' = M*D1 + (1-M)*D2 (tensors or arrays; a soft mask blends the layers)."""
    return mask * d1 + (1 - mask) * d2


def layered_forward(model, depth: torch.Tensor, mask: torch.Tensor,
                    rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eqs. (1)-(3): (D1, D2, M*D1 + (1-M)*D2)."""
    d1, d2 = two_passes(model, depth, mask, rgb)
    return d1, d2, merge(mask, d1, d2)


def to_model_space(inv: np.ndarray) -> tuple[np.ndarray, float]:
    """Any non-negative inverse depth -> the model's space, scaled so its maximum is
    DEPTH_SCALE; returns the scale ``top`` that :func:`from_model_space` undoes."""
    top = float(inv.max())
    return (inv / top * DEPTH_SCALE).astype(np.float32), top


def from_model_space(x: np.ndarray, top: float) -> np.ndarray:
    return np.maximum(x, 0) / DEPTH_SCALE * top
