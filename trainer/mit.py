"""Mix Transformer (MiT) encoder, SegFormer-style (Xie et al. 2021), torch only.

Hierarchical: 4 levels of overlapping patch embedding + efficient self-attention blocks,
strides 4/2/2/2.  No positional embedding: the 3x3 depthwise conv in Mix-FFN leaks enough
position that the encoder works at any input size, which the refiner needs.

Tokens are kept as (B, N, C).  ``tokens_to_map`` turns them into a (B, C, H, W) *view*
whose memory is channels-last, so going back and forth never copies, and nothing calls
``.view`` on a non-contiguous tensor.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def tokens_to_map(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    b, _, c = t.shape
    return t.transpose(1, 2).reshape(b, c, h, w)


def map_to_tokens(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).transpose(1, 2)


def init_mit_weights(m: nn.Module) -> None:
    """SegFormer's init: small (std 0.02) residual-branch weights keep the deep level 3
    (18 blocks in b3) near identity at the start of training from scratch."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class DropPath(nn.Module):
    """Stochastic depth per sample (drops a whole residual branch)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        return x * x.new_empty(shape).bernoulli_(keep) / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class OverlapPatchEmbed(nn.Module):
    """Conv with kernel > stride, so neighbouring patches share pixels (unlike ViT)."""

    def __init__(self, in_ch: int, dim: int, kernel: int, stride: int):
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, kernel, stride, padding=kernel // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        h, w = x.shape[-2:]
        return self.norm(map_to_tokens(x)), h, w


class EfficientSelfAttention(nn.Module):
    """Keys/values come from a map shrunk by ``sr`` per side: cost N*N/sr^2 instead of N^2,
    which is what makes attention at stride 4 affordable."""

    def __init__(self, dim: int, heads: int, sr: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} not divisible by {heads} heads")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.sr = nn.Conv2d(dim, dim, sr, sr) if sr > 1 else None
        self.norm = nn.LayerNorm(dim) if sr > 1 else None

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = x.shape
        nh, hd = self.heads, c // self.heads
        q = self.q(x).reshape(b, n, nh, hd).transpose(1, 2)
        y = x
        if self.sr is not None:
            y = self.norm(map_to_tokens(self.sr(tokens_to_map(x, h, w))))
        k, v = self.kv(y).reshape(b, -1, 2, nh, hd).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class MixFFN(nn.Module):
    def __init__(self, dim: int, ratio: int):
        super().__init__()
        hidden = dim * ratio
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = map_to_tokens(self.dwconv(tokens_to_map(self.fc1(x), h, w)))
        return self.fc2(self.act(x))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, heads: int, sr: int, mlp_ratio: int, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = EfficientSelfAttention(dim, heads, sr)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MixFFN(dim, mlp_ratio)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), h, w))
        return x + self.drop_path(self.mlp(self.norm2(x), h, w))


class MiTStage(nn.Module):
    """One level: patch embedding -> blocks -> LayerNorm; map in, map out."""

    def __init__(self, in_ch: int, dim: int, depth: int, heads: int, sr: int, kernel: int,
                 stride: int, mlp_ratio: int = 4, drop_paths: Sequence[float] | None = None):
        super().__init__()
        drop_paths = list(drop_paths) if drop_paths is not None else [0.0] * depth
        self.embed = OverlapPatchEmbed(in_ch, dim, kernel, stride)
        self.blocks = nn.ModuleList(Block(dim, heads, sr, mlp_ratio, p) for p in drop_paths)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, h, w = self.embed(x)
        for blk in self.blocks:
            t = blk(t, h, w)
        return tokens_to_map(self.norm(t), h, w)


class MiTEncoder(nn.Module):
    """Returns the 4 level maps at strides 4, 8, 16, 32.

    ``level1_extra`` is added to the level-1 output before it feeds level 2 (and the
    decoder): the refiner's RGB branch joins here (maskdepth §3.3, Fig. 5)."""

    def __init__(self, in_ch: int, widths: Sequence[int], depths: Sequence[int],
                 heads: Sequence[int], sr_ratios: Sequence[int], mlp_ratio: int = 4,
                 drop_path_rate: float = 0.0):
        super().__init__()
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        stages, start, prev = [], 0, in_ch
        for i, (w, d, nh, sr) in enumerate(zip(widths, depths, heads, sr_ratios)):
            kernel, stride = (7, 4) if i == 0 else (3, 2)
            stages.append(MiTStage(prev, w, d, nh, sr, kernel, stride, mlp_ratio,
                                   dpr[start:start + d]))
            start, prev = start + d, w
        self.stages = nn.ModuleList(stages)
        self.apply(init_mit_weights)

    def forward(self, x: torch.Tensor,
                level1_extra: torch.Tensor | None = None) -> list[torch.Tensor]:
        feats = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i == 0 and level1_extra is not None:
                x = x + level1_extra
            feats.append(x)
        return feats
