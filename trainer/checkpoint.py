"""The checkpoint format: the one module that writes and reads model checkpoints.

A checkpoint is a ``torch.save`` file of plain data only -- tensors, numbers, strings,
bools, None, lists, tuples and dicts -- so it loads with ``torch.load(weights_only=True)``
and never runs code from the file (pickle's ``__reduce__`` is refused by the loader):

    {"format": "rgsd.checkpoint", "version": 2,
     "kind": "refiner" | "amodal" | "completion",  # which model family
     "model_config": {...},                # plain data: what build_<kind>(**model_config) needs
     "model": state_dict,                  # tensors
     ...training state (optimizer, scheduler, step, rng as tensors/ints), all plain data,
     "checksum": "blake2b:<hex>"}         # of everything above, in order (see content_digest)

Every loader checks the checksum, so a flipped byte in the weights is refused in one line
instead of loading and running (the zip container's CRCs are not checked by torch.load).
Checkpoints written before the checksum load as they did.

Loading one from plain PyTorch:

    ck = torch.load("best.pt", map_location="cpu", weights_only=True)
    ck["model"]          # the state dict; ck["model_config"] says how to build the model

For other tools, :func:`export_safetensors` writes the weights alone as safetensors plus
a JSON sidecar with the model config (``gen export weights``).  Checkpoints written before
this format (full pickles) are refused with a line naming ``python -m
trainer.convert_checkpoint``, which the user runs knowingly on files they trust.
"""
from __future__ import annotations

import io
from pathlib import Path

from scenes import atomic

FORMAT = "rgsd.checkpoint"
VERSION = 2
CONVERT_HINT = "python -m trainer.convert_checkpoint OLD NEW"
KINDS = ("refiner", "amodal", "completion")
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
    ck["checksum"] = content_digest(ck)
    buf = io.BytesIO()  # serialised in memory: a full disk fails in the write below, in one line
    torch.save(ck, buf)
    atomic.write_bytes(Path(path), buf.getbuffer())


def content_digest(ck: dict) -> str:
    """A blake2b digest of a checkpoint's contents without its ``checksum`` entry: keys in
    their order, each tensor's dtype, shape and bytes, each plain value's type and repr."""
    import hashlib

    import torch
    h = hashlib.blake2b(digest_size=32)

    def walk(v):
        if isinstance(v, torch.Tensor):
            t = v.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
        elif isinstance(v, dict):
            h.update(f"D{len(v)}".encode())
            for k, x in v.items():
                h.update(f"K{type(k).__name__}:{k!r}".encode())
                walk(x)
        elif isinstance(v, (list, tuple)):
            h.update(f"{type(v).__name__[0]}{len(v)}".encode())
            for x in v:
                walk(x)
        else:
            h.update(f"P{type(v).__name__}:{v!r};".encode())

    walk({k: v for k, v in ck.items() if k != "checksum"})
    return "blake2b:" + h.hexdigest()


def _torch_load(p: Path, device):
    """torch.load with weights_only=True; every failure is one CheckpointError line."""
    import torch
    try:
        return torch.load(p, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable or unsafe file is refused the same way
        text = str(exc)
        if "WeightsUnpickler error:" in text:  # torch's long preamble; the reason follows it
            text = text.split("WeightsUnpickler error:", 1)[1]
        first = text.strip().splitlines()[0][:160] if text.strip() else type(exc).__name__
        if "unsupported global" in str(exc).lower():  # a class or function: pickle would run code
            raise CheckpointError(f"{p} holds objects other than tensors and plain data; rgsd loads only "
                                  "weights-only checkpoints (if you trust the file and it is an old rgsd "
                                  f"checkpoint: {CONVERT_HINT})") from None
        raise CheckpointError(f"{p} is not a readable checkpoint: {first}") from None


def load(path, *, kind: str | None = None, device="cpu") -> dict:
    """The checkpoint at ``path`` as a dict, read with ``weights_only=True``.

    Raises CheckpointError with one line for a missing file, a file that is not an rgsd
    checkpoint (including any pickle that would run code), or a checkpoint of another kind."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    return _validate(_torch_load(p, device), path, kind)


def _validate(ck, path, kind: str | None) -> dict:
    if isinstance(ck, dict) and ck.get("format") is None and "model_name" in ck and "model" in ck:
        # A pre-format rgsd checkpoint that happens to hold no numpy/python objects.
        raise CheckpointError(f"{path} is an rgsd checkpoint of the old format; if you trust it, convert it: "
                              f"{CONVERT_HINT}")
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an rgsd checkpoint")
    if ck.get("version") != VERSION:
        raise CheckpointError(f"{path} is rgsd checkpoint version {ck.get('version')}, this rgsd reads {VERSION}")
    if "checksum" in ck and ck["checksum"] != content_digest(ck):
        raise CheckpointError(f"{path} is damaged: its contents do not match the checksum stored in it "
                              "(a changed or lost byte); use another checkpoint or retrain")
    if kind is not None and ck.get("kind") != kind:
        raise CheckpointError(f"{path} is a checkpoint of the {ck.get('kind')} model, not the {kind} model")
    if not isinstance(ck.get("model"), dict) or not isinstance(ck.get("model_config"), dict):
        raise CheckpointError(f"{path} is an incomplete rgsd checkpoint (no model weights or config)")
    return ck


def read_weights(path, *, kind: str | None = None) -> dict:
    """A state dict for ``--init``: the weights of an rgsd checkpoint, a bare state dict saved
    with ``torch.save`` (or a dict holding one under "model"/"state_dict"), or a
    ``.safetensors`` file -- all read without running code.  CheckpointError otherwise."""
    import torch
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"no weights file at {path}")
    if p.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return load_file(str(p), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path} is not a readable safetensors file: {str(exc).splitlines()[0][:160]}") from None
    raw = _torch_load(p, "cpu")
    if isinstance(raw, dict) and (raw.get("format") == FORMAT or "model_name" in raw):
        return _validate(raw, path, kind)["model"]
    if isinstance(raw, dict):
        for key in ("model", "state_dict"):
            if isinstance(raw.get(key), dict):
                raw = raw[key]
                break
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in raw.items()):
        raise CheckpointError(f"{path} is neither an rgsd checkpoint nor a state dict of tensors")
    return raw


def sidecar_path(weights_path) -> Path:
    """The JSON beside exported weights: model.safetensors -> model.json."""
    return Path(weights_path).with_suffix(".json")


def export_safetensors(path, out, *, overwrite: bool = False) -> tuple[Path, Path]:
    """Write checkpoint ``path``'s weights to ``out`` (safetensors) and its model config,
    kind and mode to the JSON sidecar :func:`sidecar_path` (also stored as the safetensors
    metadata, so the weights file alone says what it is).  Returns both paths."""
    import json

    from safetensors.torch import save as safetensors_bytes
    out = Path(out)
    side = sidecar_path(out)
    if out.suffix != ".safetensors":
        raise CheckpointError(f"--out {out} must end in .safetensors")
    for p in (out, side):
        if p.exists() and not overwrite:
            raise CheckpointError(f"{p} exists (use --overwrite to replace it)")
    ck = load(path)
    meta = {"format": FORMAT, "version": VERSION, "kind": ck["kind"], "model_config": ck["model_config"],
            "mode": ck.get("mode"), "step": ck.get("step"), "source": Path(path).name}
    text = json.dumps(meta, indent=2, sort_keys=True)
    # safetensors refuses views and shared storage; contiguous copies are plain weights.
    state = {k: v.detach().cpu().contiguous().clone() for k, v in ck["model"].items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    from scenes.atomic import write_bytes, write_text
    write_bytes(out, safetensors_bytes(state, metadata={"rgsd": text}))  # bytes first: a failed write is one WriteError
    try:
        write_text(side, text + "\n")
    except BaseException:
        out.unlink(missing_ok=True)  # the two come as a pair
        raise
    return out, side
