"""Mask-guided layered depth refiner (maskdepth §3.3, Fig. 5), torch only.

    depth+mask ──► MiT level 1 ──(+)──► levels 2..4 ─┐
    rgb+mask ───► RGB level (1 stage) ─┘             ├─► DPT fusion decoder (stride 2)
                                                     │        │
    depth+mask ──► low-level encoder (full, 1/2) ────┴──cat──►head──► refined (B,1,H,W)

Units: depth and the output are inverse depth in [0, max_depth] (max_depth = DEPTH_SCALE = 10
as in §4.1); the mask is {0, 1} with 1 = "trust this region"; rgb is ImageNet-normalised.
trainer/contract.py states this contract and the two-pass merge once.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .contract import DEPTH_SCALE, layered_forward  # noqa: F401 - layered_forward: the contract's, re-exported
from .mit import MiTEncoder, MiTStage, init_mit_weights

# Level-4 stride; padding to it makes every level (and every sr-conv) divide evenly.
STRIDE = 32


@dataclass(frozen=True)
class RefinerConfig:
    widths: tuple[int, int, int, int] = (64, 128, 320, 512)
    depths: tuple[int, int, int, int] = (3, 4, 18, 3)
    heads: tuple[int, int, int, int] = (1, 2, 5, 8)
    sr_ratios: tuple[int, int, int, int] = (8, 4, 2, 1)
    mlp_ratio: int = 4
    rgb_blocks: int = 3          # blocks of the single-level RGB branch (level-1 width)
    decoder_width: int = 256
    lowlevel_width: int = 32     # low-level encoder: this at full res, 2x at half res
    head_width: int = 32
    drop_path_rate: float = 0.0
    max_depth: float = DEPTH_SCALE  # the shards' depth space (composer.ops)
    clamp_eval: bool = True      # clamp to [0, max_depth] in eval mode only (see head)
    residual: bool = True        # predict a correction to the input depth (see forward)
    # Negative slope of the head's hidden activation.  With the zero-initialised residual
    # output, no gradient reaches that layer at first, and with a plain ReLU 99.94 % of it
    # was dead after a CPU run (the network stayed the identity; RESULTS.md issue 27).
    # Checkpoints from before this field have 0.0 (ReLU), see refiner_from_config.
    head_leaky: float = 0.1

    def __post_init__(self):
        for f in ("widths", "depths", "heads", "sr_ratios"):
            if len(getattr(self, f)) != 4:
                raise ValueError(f"{f} needs 4 levels, got {getattr(self, f)}")
        for w, h in zip(self.widths, self.heads):
            if w % h:
                raise ValueError(f"width {w} not divisible by {h} heads")


CONFIGS: dict[str, RefinerConfig] = {
    # CPU smoke/training in minutes.
    "tiny": RefinerConfig(widths=(16, 32, 64, 96), depths=(1, 1, 1, 1), heads=(1, 1, 2, 2),
                          rgb_blocks=1, decoder_width=32, lowlevel_width=8, head_width=16),
    "small": RefinerConfig(widths=(32, 64, 160, 256), depths=(2, 2, 2, 2), rgb_blocks=1,
                           decoder_width=96, lowlevel_width=16),
    # SegFormer MiT-B0 encoder.
    "b0": RefinerConfig(widths=(32, 64, 160, 256), depths=(2, 2, 2, 2), rgb_blocks=2,
                        decoder_width=128, lowlevel_width=16),
    # The paper's model: MiT-B3 encoder, DPT decoder width 256.
    "b3": RefinerConfig(drop_path_rate=0.1),
}


class ResidualConvUnit(nn.Module):
    """DPT/RefineNet RCU; ReLUs are not in-place because ``x`` is also the skip."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


def up2(x: torch.Tensor) -> torch.Tensor:
    # align_corners=False keeps pixel centres consistent with the stride-2 encoder grids.
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class FusionBlock(nn.Module):
    """DPT feature fusion: (coarse + RCU(skip)) -> RCU -> x2 -> 1x1.  The coarsest block
    has no skip, so unlike DPT it owns no skip RCU (which would never receive grads)."""

    def __init__(self, ch: int, has_skip: bool):
        super().__init__()
        self.skip_rcu = ResidualConvUnit(ch) if has_skip else None
        self.rcu = ResidualConvUnit(ch)
        self.out = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            x = x + self.skip_rcu(skip)
        return self.out(up2(self.rcu(x)))


class FusionDecoder(nn.Module):
    """Reassemble (1x1 to a common width; the MiT levels are already multi-scale so DPT's
    token resampling is not needed) + fusion from the coarsest level.  Output: stride 2."""

    def __init__(self, in_widths: tuple[int, ...], width: int):
        super().__init__()
        self.reassemble = nn.ModuleList(nn.Conv2d(w, width, 1) for w in in_widths)
        n = len(in_widths)
        self.fusion = nn.ModuleList(FusionBlock(width, has_skip=i < n - 1) for i in range(n))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        r = [proj(f) for proj, f in zip(self.reassemble, feats)]
        x = self.fusion[-1](r[-1])
        for i in range(len(r) - 2, -1, -1):
            x = self.fusion[i](x, r[i])
        return x


class LowLevelEncoder(nn.Module):
    """A few convs on the raw input so the head still sees the exact initial depth values
    (the transformer path only sees them through a stride-4 patch embedding)."""

    def __init__(self, in_ch: int, ch: int):
        super().__init__()
        self.full_res = nn.Sequential(nn.Conv2d(in_ch, ch, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU())
        self.half_res = nn.Sequential(nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        full = self.full_res(x)
        return full, self.half_res(full)


class DepthHead(nn.Module):
    """DPT's head (3x3 to width/2, x2, 3x3, ReLU, 1x1) with low-level features concatenated
    at half and full resolution.  The last layer is linear, not DPT's ReLU: a ReLU output
    gives zero gradient to every pixel whose pre-activation goes negative, and those pixels
    can stay stuck there.  Clamping to [0, max_depth] at inference gives the same range
    (0 = sky at infinity) without that failure mode in training."""

    def __init__(self, dec_w: int, low_w: int, head_w: int, leaky: float = 0.0):
        super().__init__()
        self.leaky = leaky
        self.conv_half = nn.Conv2d(dec_w + 2 * low_w, dec_w // 2, 3, padding=1)
        self.conv_full = nn.Conv2d(dec_w // 2 + low_w, head_w, 3, padding=1)
        self.out = nn.Conv2d(head_w, 1, 1)

    def forward(self, x: torch.Tensor, low_full: torch.Tensor,
                low_half: torch.Tensor) -> torch.Tensor:
        x = up2(self.conv_half(torch.cat([x, low_half], 1)))
        x = F.leaky_relu(self.conv_full(torch.cat([x, low_full], 1)), self.leaky)
        return self.out(x)


class LayeredRefiner(nn.Module):
    def __init__(self, cfg: RefinerConfig = RefinerConfig()):
        super().__init__()
        self.cfg = cfg
        w1 = cfg.widths[0]
        self.encoder = MiTEncoder(2, cfg.widths, cfg.depths, cfg.heads, cfg.sr_ratios,
                                  cfg.mlp_ratio, cfg.drop_path_rate)
        # Same geometry as level 1 so its output can be summed with it.
        self.rgb_branch = MiTStage(4, w1, cfg.rgb_blocks, cfg.heads[0], cfg.sr_ratios[0],
                                   kernel=7, stride=4, mlp_ratio=cfg.mlp_ratio)
        self.rgb_branch.apply(init_mit_weights)
        self.decoder = FusionDecoder(cfg.widths, cfg.decoder_width)
        self.lowlevel = LowLevelEncoder(2, cfg.lowlevel_width)
        self.head = DepthHead(cfg.decoder_width, cfg.lowlevel_width, cfg.head_width, cfg.head_leaky)
        if cfg.residual:
            # Start as the identity: an untrained refiner returns its input unchanged.
            nn.init.zeros_(self.head.out.weight)
            nn.init.zeros_(self.head.out.bias)

    def forward(self, depth: torch.Tensor, mask: torch.Tensor,
                rgb: torch.Tensor) -> torch.Tensor:
        h, w = depth.shape[-2:]
        half = self.cfg.max_depth / 2
        # Depth to ~[-1, 1], the scale of the normalised RGB; the output uses the same map,
        # so an untrained head starts mid-range (5) rather than at 0.
        dm = torch.cat([depth / half - 1.0, mask], 1)
        rm = torch.cat([rgb, mask], 1)
        ph, pw = (-h) % STRIDE, (-w) % STRIDE
        if ph or pw:
            # Replicate, not zeros: zero depth/mask at the border would look like a real
            # far-plane / untrusted region to the network.
            dm = F.pad(dm, (0, pw, 0, ph), mode="replicate")
            rm = F.pad(rm, (0, pw, 0, ph), mode="replicate")
        feats = self.encoder(dm, level1_extra=self.rgb_branch(rm))
        low_full, low_half = self.lowlevel(dm)
        y = self.head(self.decoder(feats), low_full, low_half)[..., :h, :w]
        # Residual output: most pixels of the initial depth are already right (P(D') or a
        # SIDE map is wrong near boundaries and in holes), and the layered merge only ever
        # takes each pass's *trusted* region (M from the M pass, 1-M from the 1-M pass), so
        # predicting a correction keeps those pixels exactly and spends capacity on the
        # edges.  This strengthens the paper's low-level depth encoder, there "so that the
        # network does not forget the initial depth values".  A plain head repaints every
        # pixel slightly off and, after short training, worsens far more pixels than it
        # improves (R3 0.13 after 13 CPU-minutes).  (Gating the residual to the trusted
        # region and predicting the rest afresh trained worse: the region to complete
        # starts far from its target and its loss swamps the rest.)
        out = depth + y * half if self.cfg.residual else (y + 1.0) * half
        if self.cfg.clamp_eval and not self.training:
            out = out.clamp(0.0, self.cfg.max_depth)
        return out


def param_counts(model: LayeredRefiner) -> dict[str, int]:
    counts = {name: sum(p.numel() for p in m.parameters())
              for name, m in model.named_children()}
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts


def refiner_config(name: str, model: LayeredRefiner) -> dict:
    """The checkpoint's ``model_config``: plain data that :func:`refiner_from_config` rebuilds."""
    return {"name": name, **dataclasses.asdict(model.cfg)}


def refiner_from_config(model_config: dict) -> LayeredRefiner:
    """The inverse of :func:`refiner_config` (lists from a JSON sidecar become tuples)."""
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in model_config.items()}
    cfg.setdefault("head_leaky", 0.0)  # checkpoints from before the field: a plain ReLU head
    return build_refiner(cfg.pop("name"), **cfg)


def build_refiner(name: str, init: str | None = None, **overrides) -> LayeredRefiner:
    """Build a named config (``overrides`` replace RefinerConfig fields) and optionally load
    weights from a local file.  Never downloads anything."""
    if name not in CONFIGS:
        raise ValueError(f"unknown refiner {name!r}; choose from {sorted(CONFIGS)}")
    cfg = dataclasses.replace(CONFIGS[name], **overrides) if overrides else CONFIGS[name]
    model = LayeredRefiner(cfg)
    if init is not None:
        from trainer.init_weights import load_init
        # Counts on the model, for the trainer to print: a file that fits badly is refused.
        model.init_report = load_init(model, init, kind="refiner")
    return model
