"""The checkpoint format: the one module that writes and reads model checkpoints.

A checkpoint is a ``torch.save`` file of plain data only -- tensors, numbers, strings,
bools, None, lists, tuples and dicts -- so it loads with ``torch.load(weights_only=True)``
and never runs code from the file (pickle's ``__reduce__`` is refused by the loader):

    {"format": "rgsd.checkpoint", "version": 2,
     "kind": "refiner" | "amodal",         # which model family
     "model_config": {...},                # plain data: what build_<kind>(**model_config) needs
     "model": state_dict,                  # tensors
     ...training state (optimizer, scheduler, step, rng as tensors/ints), all plain data}

Loading one from plain PyTorch:

    ck = torch.load("best.pt", map_location="cpu", weights_only=True)
    ck["model"]          # the state dict; ck["model_config"] says how to build the model
"""
from __future__ import annotations

import os
from pathlib import Path

FORMAT = "rgsd.checkpoint"
VERSION = 2
KINDS = ("refiner", "amodal")
_PLAIN = (str, int, float, bool, type(None))


class CheckpointError(ValueError):
    """A file that is not an rgsd checkpoint of the kind asked for (one line, exit 2)."""


def _check_plain(value, where: str) -> None:
    import torch
    if isinstance(value, _PLAIN) or isinstance(value, torch.Tensor):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"checkpoint key {where}[{k!r}] is a {type(k).__name__}, not str or int")
            _check_plain(v, f"{where}.{k}")
        return
    if isinstance(value, (list, tuple)):
        for j, v in enumerate(value):
            _check_plain(v, f"{where}[{j}]")
        return
    raise TypeError(f"checkpoint value {where} is a {type(value).__name__}; only tensors and plain data are saved")


def save(path, *, kind: str, model_config: dict, model: dict, **state) -> None:
    """Write a checkpoint atomically (a crash never leaves a half-written file).

    ``state`` holds the rest (optimizer/scheduler state dicts, step, rng, run config), all
    plain data: a value that would need pickle to load is refused here, at save time."""
    import torch
    if kind not in KINDS:
        raise ValueError(f"unknown checkpoint kind {kind!r}")
    ck = {"format": FORMAT, "version": VERSION, "kind": kind, "model_config": dict(model_config),
          "model": dict(model), **state}
    _check_plain(ck, "checkpoint")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ck, tmp)
    os.replace(tmp, path)


def load(path, *, kind: str | None = None, device="cpu") -> dict:
    """The checkpoint at ``path`` as a dict, read with ``weights_only=True``.

    Raises CheckpointError with one line for a missing file, a file that is not an rgsd
    checkpoint (including any pickle that would run code), or a checkpoint of another kind."""
    import torch
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        ck = torch.load(p, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable or unsafe file is refused the same way
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise CheckpointError(f"{path} holds objects other than tensors and plain data; rgsd loads only "
                                  "weights-only checkpoints (if you trust the file and it is an old rgsd "
                                  "checkpoint: python -m trainer.convert_checkpoint OLD NEW)") from None
        raise CheckpointError(f"{path} is not a readable checkpoint: {first}") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an rgsd checkpoint")
    if ck.get("version") != VERSION:
        raise CheckpointError(f"{path} is rgsd checkpoint version {ck.get('version')}, this rgsd reads {VERSION}")
    if kind is not None and ck.get("kind") != kind:
        raise CheckpointError(f"{path} is a checkpoint of the {ck.get('kind')} model, not the {kind} model")
    if not isinstance(ck.get("model"), dict) or not isinstance(ck.get("model_config"), dict):
        raise CheckpointError(f"{path} is an incomplete rgsd checkpoint (no model weights or config)")
    return ck

