"""Refine any depth map with a mask: ``gen refine`` and the evaluation's model runs."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from trainer import contract


class InputError(ValueError):
    """A user mistake in refine inputs (one line, exit 2)."""


def load_checkpoint(path: str, device="cpu"):
    """(model in eval mode, "layered" | "direct") from a refiner checkpoint, read weights-only
    through trainer.checkpoint (raises its one-line CheckpointError)."""
    from trainer.checkpoint import load
    return refiner_from_checkpoint(load(path, kind="refiner", device=device), path, device)


def refiner_from_checkpoint(ck: dict, path: str, device="cpu"):
    """load_checkpoint's model and mode from a checkpoint already read (``path`` names it in errors)."""
    from trainer.checkpoint import CheckpointError
    from trainer.model import refiner_from_config
    try:
        model = refiner_from_config(ck["model_config"])
        model.load_state_dict(ck["model"])
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:  # config or weights that do not fit
        raise CheckpointError(f"{path} is not a usable refiner checkpoint: {str(exc).splitlines()[0][:160]}") from None
    mode = ck.get("mode", "layered")
    if mode not in contract.MODES:
        raise CheckpointError(f"{path} has an unknown refiner mode {mode!r}")
    return model.to(device).eval(), mode


@torch.no_grad()
def refine(model, mode: str, depth: np.ndarray, mask: np.ndarray, rgb: np.ndarray, max_side: int = 1024) -> np.ndarray:
    """Refined depth (model space, H x W) for depth (H, W) in [0, DEPTH_SCALE], mask (H, W) in [0, 1],
    rgb (H, W, 3) uint8.  Large inputs run at ``max_side`` and the two layers are upsampled
    and merged with the full-resolution mask, so the mask's edges stay sharp."""
    h, w = depth.shape
    s = min(1.0, max_side / max(h, w))
    size = (max(16, round(w * s)), max(16, round(h * s)))
    d = cv2.resize(depth.astype(np.float32), size, interpolation=cv2.INTER_AREA) if s < 1 else depth
    m = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) if s < 1 else mask
    c = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if s < 1 else rgb
    dev = next(model.parameters()).device
    dt = torch.from_numpy(np.ascontiguousarray(d, np.float32))[None, None].to(dev)
    mt = torch.from_numpy((np.asarray(m) > 0.5).astype(np.float32))[None, None].to(dev)
    ct = contract.normalise_rgb(torch.from_numpy(np.ascontiguousarray(c)).permute(2, 0, 1)[None].float().to(dev) / 255.0)
    if mode == "direct":
        out = model(dt, mt, ct)[0, 0].cpu().numpy()
        return cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR) if s < 1 else out
    d1, d2 = (x[0, 0].cpu().numpy() for x in contract.two_passes(model, dt, mt, ct))
    if s < 1:
        d1 = cv2.resize(d1, (w, h), interpolation=cv2.INTER_LINEAR)
        d2 = cv2.resize(d2, (w, h), interpolation=cv2.INTER_LINEAR)
    # Merged at full resolution with the full-resolution mask, so its edges stay sharp.
    return contract.merge(np.clip(mask.astype(np.float32), 0, 1), d1, d2)


def read_depth(path: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no depth file at {path}")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            d = np.load(p).astype(np.float32)
        elif suffix == ".pfm":
            d = read_pfm(p)
        else:
            d = cv2.imread(str(p), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_GRAYSCALE)
            if d is None:
                raise ValueError("unreadable image")
            d = d.astype(np.float32)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"cannot read depth {path}: {str(exc).splitlines()[0]}") from None
    if d.ndim != 2:
        raise InputError(f"depth {path} must have one channel, has shape {d.shape}")
    if not np.isfinite(d).all() or (d < 0).any():
        raise InputError(f"depth {path} has negative or non-finite values")
    return d


def read_pfm(path) -> np.ndarray:
    """A PFM's (first) channel through OpenCV's reader (OpenCV returns colour as BGR)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError("not a readable PFM file")
    return img[..., 2].copy() if img.ndim == 3 else img


def write_depth(path: str, depth: np.ndarray, like: np.ndarray) -> None:
    """Written whole or not at all (scenes.atomic): a full disk or a read-only folder is a
    WriteError, never a half-written file or a silent no-op."""
    import io

    from scenes.atomic import write_bytes, write_image
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, depth.astype(np.float32))
        write_bytes(path, buf.getvalue())
    elif suffix == ".pfm":
        write_bytes(path, b"Pf\n%d %d\n-1\n" % (depth.shape[1], depth.shape[0])
                    + np.flipud(depth).astype("<f4").tobytes())
    else:
        top = 65535.0 if like.max() > 255 or suffix == ".png" else 255.0
        write_image(path, np.clip(np.rint(depth), 0, top).astype(np.uint16 if top > 255 else np.uint8))


def to_model_space(d: np.ndarray, kind: str) -> tuple[np.ndarray, float]:
    """Input depth or inverse depth -> the model's space (its maximum at DEPTH_SCALE), and back."""
    inv = np.where(d > 0, 1.0 / np.maximum(d, 1e-12), 0.0) if kind == "depth" else d.astype(np.float64)
    if float(inv.max()) <= 0:
        raise InputError("depth map is empty (all zero)")
    return contract.to_model_space(inv)


def from_model_space(x: np.ndarray, top: float, kind: str) -> np.ndarray:
    inv = contract.from_model_space(x, top)
    return np.where(inv > 0, 1.0 / np.maximum(inv, 1e-12), 0.0) if kind == "depth" else inv


def refine_files(image: str, depth: str, mask: str, checkpoint: str, out: str, kind: str = "depth") -> str:
    rgb = cv2.imread(image, cv2.IMREAD_COLOR)
    if rgb is None:
        raise InputError(f"cannot read image {image}")
    rgb = rgb[..., ::-1]
    d = read_depth(depth)
    mk = cv2.imread(mask, cv2.IMREAD_UNCHANGED)
    if mk is None:
        raise InputError(f"cannot read mask {mask}")
    if mk.ndim == 3:
        mk = mk[..., -1] if mk.shape[2] == 4 else mk[..., 0]
    mk = mk.astype(np.float32) / (65535.0 if mk.dtype == np.uint16 else 255.0 if mk.max() > 1 else 1.0)
    for name, arr in (("depth", d), ("mask", mk)):
        if arr.shape[:2] != rgb.shape[:2]:
            raise InputError(f"{name} is {arr.shape[1]}x{arr.shape[0]} but the image is {rgb.shape[1]}x{rgb.shape[0]}")
    if (mk > 0.5).sum() == 0:
        raise InputError(f"mask {mask} is empty")
    model, mode = load_checkpoint(checkpoint)
    x, top = to_model_space(d, kind)
    y = refine(model, mode, x, mk, np.ascontiguousarray(rgb))
    write_depth(out, from_model_space(y, top, kind), d)
    return out
