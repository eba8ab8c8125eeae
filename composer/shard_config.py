"""The shard config: composer owns its defaults, its validation and how it is stored.

A shard store keeps ``ShardConfig.to_dict()`` in its ``config`` attribute; a resumed run
compares that dict with the one asked for (pipelines/runner.check_resume).
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field, fields

from composer.shard_store import MASK_KINDS


class ShardConfigError(ValueError):
    """A shard setting out of range (one line for the user)."""


@dataclass(frozen=True)
class ShardConfig:
    patch: int = 320
    shard_size: int = 256
    chunk_size: int = 32
    batch_scenes: int = 12  # source scenes a shard task loads (and samples everything from)
    mask_mix: dict = field(default_factory=lambda: {"object": 0.5, "sky": 0.2, "human": 0.15,
                                                    "human_holes": 0.15})  # maskdepth §4.1
    min_fraction: float = 0.01  # an object must cover >= 1 % of its image (supp. §3)
    human_classes: tuple = ("pedestrian",)
    object_classes: tuple = ("car", "van", "truck", "bus", "traffic_sign", "traffic_light", "pole", "unlabeled")
    near_m: float = 1.0  # depth space: 10 * min(1, near_m / z)
    # Initial-depth degradation families (composer/degrade.py) and their weights; the default
    # is the paper's P(.) alone, drawn exactly as before the families existed.
    degrade_mix: dict = field(default_factory=lambda: {"perturb": 1.0})

    @classmethod
    def build(cls, patch: int = 320, overrides: dict | None = None) -> "ShardConfig":
        """The defaults with ``patch`` and ``overrides`` (name -> value) applied, checked."""
        names = {f.name for f in fields(cls)}
        values = {"patch": patch}
        for k, v in (overrides or {}).items():
            if k not in names:
                raise ShardConfigError(f"unknown shard config key '{k}'")
            values[k] = copy.deepcopy(v)
        for k in ("human_classes", "object_classes"):
            if k in values:
                values[k] = tuple(values[k])
        cfg = cls(**values)
        cfg.check()
        return cfg

    def check(self) -> None:
        if self.patch < 16:
            raise ShardConfigError("--patch must be at least 16")
        mix = self.mask_mix
        if not isinstance(mix, dict) or not mix or set(mix) - set(MASK_KINDS) \
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                           for v in mix.values()) or sum(mix.values()) <= 0:
            raise ShardConfigError(f"mask_mix must map some of {', '.join(MASK_KINDS)} to non-negative weights")
        from composer.degrade import DegradeError, check_mix
        try:
            check_mix(self.degrade_mix)
        except DegradeError as exc:
            raise ShardConfigError(str(exc)) from None
        for name in ("shard_size", "chunk_size", "batch_scenes"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ShardConfigError(f"{name} must be a positive integer")

    def to_dict(self) -> dict:
        """Plain JSON data, as stored in a shard store's ``config`` attribute."""
        d = asdict(self)
        d["human_classes"], d["object_classes"] = list(self.human_classes), list(self.object_classes)
        return d
