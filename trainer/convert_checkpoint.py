"""One-off converter: an rgsd refiner checkpoint of the old format (a full pickle, written
before trainer/checkpoint.py) to the weights-only format.

    python -m trainer.convert_checkpoint OLD.pt NEW.pt [--overwrite]

Reading OLD unpickles it (``weights_only=False``), which runs any code the file holds: run
this only on files you trust (ones you trained yourself).  Every other rgsd command reads
only the weights-only format.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trainer import checkpoint


def convert(old: dict) -> dict:
    """The old checkpoint dict -> keyword arguments of ``checkpoint.save`` (pure function)."""
    from trainer.train import plain_rng
    if not isinstance(old, dict) or "model_name" not in old or not isinstance(old.get("model"), dict):
        raise checkpoint.CheckpointError("not an old-format rgsd refiner checkpoint (no model_name/model)")
    # Checkpoints from before model_config was saved are all non-residual.
    model_config = {"name": old["model_name"], **(old.get("model_config") or {"residual": False})}
    new = {"kind": "refiner", "model_config": model_config, "model": old["model"], "mode": old.get("mode", "layered")}
    for key in ("optimizer", "scheduler", "step", "epoch", "consumed", "best", "config"):
        if key in old:
            new[key] = old[key]
    if "rng" in old:
        r = old["rng"]
        new["rng"] = plain_rng(r["torch"], tuple(r["numpy"]), tuple(r["python"]))
    return new


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainer.convert_checkpoint", description=__doc__.split("\n\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--overwrite", action="store_true", help="replace NEW if it exists")
    a = ap.parse_args(argv)
    import torch
    try:
        if not Path(a.old).is_file():
            raise checkpoint.CheckpointError(f"no checkpoint at {a.old}")
        if Path(a.new).exists() and not a.overwrite:
            raise checkpoint.CheckpointError(f"{a.new} exists (use --overwrite to replace it)")
        if Path(a.new).resolve() == Path(a.old).resolve():
            raise checkpoint.CheckpointError("NEW must be another file than OLD")
        print(f"warning: unpickling {a.old} with weights_only=False runs any code it holds; "
              "convert only files you trust", file=sys.stderr)
        try:
            old = torch.load(a.old, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - an unreadable file is the user's to fix
            raise checkpoint.CheckpointError(f"cannot read {a.old}: {str(exc).strip()[:160] or type(exc).__name__}") \
                from None
        new = convert(old)
        checkpoint.save(a.new, **new)
        checkpoint.load(a.new, kind="refiner")  # what every rgsd command will read
    except (checkpoint.CheckpointError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {a.new} (weights-only rgsd checkpoint, step {new.get('step', '?')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
