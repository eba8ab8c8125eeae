"""The amodal completion network: a small U-Net from an instance crop's channels
(trainer.completion_crops) to its amodal mask's logits, S x S.

Three resolutions (S, S/2, S/4) plus a bottleneck at S/8, two 3x3 conv + BatchNorm + ReLU per
level, skip connections, bilinear upsampling: ~0.3 M parameters at the default widths, a few
milliseconds per 64x64 crop on one CPU core.  The prediction is the thresholded output OR the
visible mask (an amodal mask holds its visible part by definition), applied by ``predict``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from trainer.completion_crops import input_channels


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CompletionNet(nn.Module):
    def __init__(self, in_channels: int, widths=(16, 32, 64, 96)):
        super().__init__()
        w = list(widths)
        self.down = nn.ModuleList([_block(in_channels, w[0])] + [_block(w[k - 1], w[k]) for k in range(1, len(w))])
        self.up = nn.ModuleList([_block(w[k] + w[k - 1], w[k - 1]) for k in range(len(w) - 1, 0, -1)])
        self.head = nn.Conv2d(w[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for k, block in enumerate(self.down):
            x = block(x if k == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return self.head(x)[:, 0]


def build_completion(inputs, size: int = 64, widths=(16, 32, 64, 96), **_) -> CompletionNet:
    """The network for a model config (extra keys -- factor, classes, ... -- are the data's)."""
    if size % 2 ** (len(widths) - 1):
        raise ValueError(f"crop size {size} must be a multiple of {2 ** (len(widths) - 1)}")
    return CompletionNet(input_channels(inputs), widths)


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice per crop (Dice keeps small instances from being
    drowned by the background pixels of large crops)."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).sum((1, 2))
    dice = 1 - (2 * inter + 1) / (p.sum((1, 2)) + target.sum((1, 2)) + 1)
    return bce + dice.mean()


@torch.no_grad()
def predict(model: CompletionNet, x, visible_channel: int | None = 0, chunk: int = 256):
    """Amodal probabilities (B, S, S) numpy of inputs (B, C, S, S); where the visible mask is
    an input (channel ``visible_channel``) its pixels are set to 1."""
    import numpy as np
    model.eval()
    out = []
    for a in range(0, len(x), chunk):
        xb = torch.as_tensor(x[a:a + chunk])
        p = torch.sigmoid(model(xb))
        if visible_channel is not None:
            p = torch.maximum(p, xb[:, visible_channel])
        out.append(p.numpy())
    return np.concatenate(out) if out else np.zeros((0,) + tuple(x.shape[2:]), np.float32)
