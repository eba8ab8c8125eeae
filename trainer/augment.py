"""§4.1 augmentations, applied to whole batches on the training device.

Geometric ones (horizontal flip, resize) act on every map of a sample alike; photometric
ones (contrast, saturation, brightness, JPEG, grayscale) on the RGB only.  Randomness comes
from a torch.Generator the caller seeds per step, so a resumed run augments identically.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_JPEG_LUMA = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], dtype=torch.float32)


def _dct_matrix(n: int = 8) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float32)
    m = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m


def jpeg(rgb: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Approximate JPEG compression of (B, 3, H, W) in [0, 1]: YCbCr, 8x8 DCT, quantisation
    with the standard luma table scaled by quality (chroma quantised with the same table),
    inverse.  No chroma subsampling; enough to teach blocking and ringing artefacts."""
    b, _, h, w = rgb.shape
    ph, pw = (-h) % 8, (-w) % 8
    x = F.pad(rgb, (0, pw, 0, ph), mode="replicate") * 255.0
    r, g, bl = x[:, 0], x[:, 1], x[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * bl
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * bl
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * bl
    ycc = torch.stack([y, cb, cr], 1) - 128
    H, W = ycc.shape[-2:]
    blocks = ycc.reshape(b, 3, H // 8, 8, W // 8, 8).permute(0, 1, 2, 4, 3, 5)
    d = _dct_matrix().to(rgb)
    coef = d @ blocks @ d.T
    q = quality.to(rgb).clamp(1, 100).view(b, 1, 1, 1, 1, 1)
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q) / 100
    table = (_JPEG_LUMA.to(rgb) * scale).clamp(min=1)
    coef = torch.round(coef / table) * table
    blocks = d.T @ coef @ d
    ycc = blocks.permute(0, 1, 2, 4, 3, 5).reshape(b, 3, H, W) + 128
    y, cb, cr = ycc[:, 0], ycc[:, 1] - 128, ycc[:, 2] - 128
    out = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1) / 255.0
    return out[..., :h, :w].clamp(0, 1)


def augment(batch: dict, gen: torch.Generator, p_jpeg: float = 0.3, p_gray: float = 0.1,
            scale_range=(0.8, 1.25)) -> dict:
    """Augment a batch dict of float tensors: 'rgb' (B,3,H,W) in [0,1] and single-channel maps."""
    out = dict(batch)
    rgb = out["rgb"]
    b, _, h, w = rgb.shape
    dev = rgb.device

    def rand(*shape):
        return torch.rand(*shape, generator=gen).to(dev)

    flip = rand(b) < 0.5
    for k, v in out.items():
        out[k] = torch.where(flip.view(b, 1, 1, 1), v.flip(-1), v)
    # One resize factor per batch: zoom in or out around a random centre, back to h x w.
    s = float(scale_range[0] + (scale_range[1] - scale_range[0]) * torch.rand(1, generator=gen))
    if abs(s - 1.0) > 1e-3:
        theta = torch.zeros(b, 2, 3, device=dev)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / s
        shift = (1.0 - 1.0 / s) if s > 1 else 0.0
        theta[:, :, 2] = (rand(b, 2) * 2 - 1) * shift
        grid = F.affine_grid(theta, (b, 1, h, w), align_corners=False)
        for k, v in out.items():
            mode = "nearest" if k == "mask" else "bilinear"
            out[k] = F.grid_sample(v, grid, mode=mode, padding_mode="border", align_corners=False)
    rgb = out["rgb"]
    gray = (0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3])
    contrast = (0.7 + 0.6 * rand(b)).view(b, 1, 1, 1)
    mean = gray.mean((2, 3), keepdim=True)
    rgb = (rgb - mean) * contrast + mean
    sat = (0.7 + 0.6 * rand(b)).view(b, 1, 1, 1)
    rgb = (rgb - gray) * sat + gray
    rgb = rgb * (0.75 + 0.5 * rand(b)).view(b, 1, 1, 1)
    rgb = rgb.clamp(0, 1)
    do_jpeg = rand(b) < p_jpeg
    if do_jpeg.any():
        rgb = torch.where(do_jpeg.view(b, 1, 1, 1), jpeg(rgb, 30 + 65 * rand(b)), rgb)
    g = 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]
    rgb = torch.where((rand(b) < p_gray).view(b, 1, 1, 1), g.expand_as(rgb), rgb)
    out["rgb"] = rgb
    return out
