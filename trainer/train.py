"""Two-stage training of the layered refiner (maskdepth §3.2) straight from a shard store.

Stage I: input D' with M or 1-M at random, target D1 or D2.  Stage II: input P(D'), two
passes with M and 1-M, merged D^' = M*D^1 + (1-M)*D^2, losses on D^1, D^2 and D^'.
``mode="direct"`` trains the same network on P(D') + M -> D' (the Direct-composite baseline).
AdamW, lr divided by 10 at 60 % and 80 % of each stage.
"""
from __future__ import annotations

import csv
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from trainer import checkpoint
from trainer.augment import augment
from trainer.losses import refine_loss

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@dataclass
class TrainConfig:
    model: str = "tiny"
    steps: int = 2000  # optimizer steps over both stages
    stage1_fraction: float = 0.5
    batch: int = 8  # per rank, per micro-batch
    accumulate: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.01
    mode: str = "layered"  # layered | direct
    seed: int = 0
    loader_workers: int = 2
    augment: bool = True
    log_every: int = 10
    ckpt_every: int = 200
    init: str | None = None
    residual: bool = True  # False: the paper's plain head (see trainer.model)


class TrainError(RuntimeError):
    pass


def lr_factor(step: int, cfg: TrainConfig) -> float:
    s1 = int(cfg.steps * cfg.stage1_fraction) if cfg.mode == "layered" else 0
    start, length = (0, s1) if step < s1 else (s1, cfg.steps - s1)
    progress = (step - start) / max(length, 1)
    return 1.0 if progress < 0.6 else 0.1 if progress < 0.8 else 0.01


def stage_of(step: int, cfg: TrainConfig) -> int:
    if cfg.mode == "direct":
        return 0
    return 1 if step < int(cfg.steps * cfg.stage1_fraction) else 2


def prepare(batch: dict, device, gen: torch.Generator | None) -> dict:
    """uint8/float16 CPU batch -> float32 device tensors (B, C, H, W), augmented."""
    out = {"rgb": batch["rgb"].to(device, non_blocking=True).float() / 255.0}
    for k in ("mask", "depth", "depth1", "depth2", "perturbed"):
        out[k] = batch[k].to(device, non_blocking=True).float().unsqueeze(1)
    if gen is not None:
        out = augment(out, gen)
        out["mask"] = (out["mask"] > 0.5).float()
    out["rgb_in"] = (out["rgb"] - IMAGENET_MEAN.to(device)) / IMAGENET_STD.to(device)
    return out


def step_loss(model, b: dict, stage: int, gen: torch.Generator) -> torch.Tensor:
    m = b["mask"]
    if stage == 1:
        flip = (torch.rand(m.shape[0], generator=gen) < 0.5).to(m.device).view(-1, 1, 1, 1)
        m_in = torch.where(flip, 1 - m, m)
        target = torch.where(flip, b["depth2"], b["depth1"])
        return refine_loss(model(b["depth"], m_in, b["rgb_in"]), target)
    if stage == 2:
        n = m.shape[0]
        both = model(torch.cat([b["perturbed"]] * 2), torch.cat([m, 1 - m]), torch.cat([b["rgb_in"]] * 2))
        d1, d2 = both[:n], both[n:]
        merged = m * d1 + (1 - m) * d2
        return refine_loss(d1, b["depth1"]) + refine_loss(d2, b["depth2"]) + refine_loss(merged, b["depth"])
    return refine_loss(model(b["perturbed"], m, b["rgb_in"]), b["depth"])


def plain_rng(torch_state: torch.Tensor, numpy_state: tuple, python_state: tuple) -> dict:
    """The three global RNG states as plain data (a weights-only checkpoint holds no ndarray
    and no pickled tuples of unknown types): numpy's MT19937 key and python's state as lists."""
    name, key, pos, has_gauss, cached = numpy_state
    version, internal, gauss_next = python_state
    return {"torch": torch_state,
            "numpy": {"bit_generator": str(name), "key": [int(k) for k in key], "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "python": {"version": int(version), "state": [int(k) for k in internal], "gauss_next": gauss_next}}


def _rng_state() -> dict:
    return plain_rng(torch.get_rng_state(), np.random.get_state(), random.getstate())


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    n = s["numpy"]
    np.random.set_state((n["bit_generator"], np.array(n["key"], np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = s["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


def save_checkpoint(path: Path, **state) -> None:
    checkpoint.save(path, kind="refiner", **state)  # atomic: never a half-written checkpoint


def train(shards_url: str, out_dir: str, cfg: TrainConfig, resume: bool = False, progress: bool = True) -> dict:
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from trainer.data import torch_dataset
    from trainer.model import build_refiner, refiner_config

    out = Path(out_dir)
    last = out / "last.pt"
    if resume and not last.exists():
        raise TrainError(f"--resume: no checkpoint at {last}")
    if not resume and last.exists():
        raise TrainError(f"{out} already holds a run (use --resume to continue it or another --out)")
    ck = None
    try:
        if resume:  # read (weights only) and checked before anything is built or written
            ck = checkpoint.load(last, kind="refiner")
            if not isinstance(ck.get("config"), dict):
                raise TrainError(f"--resume: {last} holds no run config")
            now = asdict(cfg)
            if ck["config"] != now:
                key = next(k for k in sorted(set(ck["config"]) | set(now)) if ck["config"].get(k) != now.get(k))
                raise TrainError(f"--resume: setting '{key}' differs from the run's ({ck['config'].get(key)})")
        torch.manual_seed(cfg.seed)
        # A resumed run takes its weights from last.pt, so --init is not read again.
        model = build_refiner(cfg.model, init=None if resume else cfg.init, residual=cfg.residual)
    except checkpoint.CheckpointError as exc:
        raise TrainError(f"--init: {exc}" if not resume else f"--resume: {exc}") from None
    out.mkdir(parents=True, exist_ok=True)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    step, epoch, consumed, best = 0, 0, 0, math.inf
    if resume:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        step, epoch, consumed, best = ck["step"], ck["epoch"], ck["consumed"], ck["best"]
        _set_rng_state(ck["rng"])
    else:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    ds = torch_dataset(shards_url, cfg.seed, cfg.batch, rank, world)
    if ds.samples() < cfg.batch * max(cfg.loader_workers, 1):
        raise TrainError(f"{shards_url} has {ds.samples()} samples per rank, too few for batches of {cfg.batch} "
                         f"in {max(cfg.loader_workers, 1)} loader worker(s)")
    log = open(out / "log.csv", "a", newline="")
    writer = csv.writer(log)
    if not resume:
        writer.writerow(["step", "stage", "loss", "lr", "samples_per_s"])
    tb = _tensorboard(out) if rank == 0 else None
    bar = tqdm(total=cfg.steps, initial=step, unit="step", desc=f"train {cfg.model}", disable=not progress or rank,
               dynamic_ncols=True, file=sys.stderr)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    window, t_window, n_window = [], time.perf_counter(), 0
    last_mean = math.inf
    net.train()
    try:
        while step < cfg.steps:
            ds.set_epoch(epoch)
            loader = DataLoader(ds, batch_size=None, num_workers=cfg.loader_workers,
                                persistent_workers=False, pin_memory=device.type == "cuda")
            it = iter(loader)
            for _ in range(consumed):  # a resumed run continues the epoch where it stopped
                next(it)
            for raw in it:
                micro = consumed % cfg.accumulate
                gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step * 131 + micro)
                b = prepare(raw, device, gen if cfg.augment else None)
                with amp:
                    loss = step_loss(net, b, stage_of(step, cfg), gen)
                if not torch.isfinite(loss):
                    raise TrainError(f"loss became {loss.item()} at step {step}; the last good checkpoint is {last}")
                (loss / cfg.accumulate).backward()
                consumed += 1
                window.append(loss.item())
                n_window += cfg.batch
                if micro != cfg.accumulate - 1:
                    continue
                opt.step()
                opt.zero_grad(set_to_none=True)
                sched.step()
                step += 1
                bar.update(1)
                if step % cfg.log_every == 0 or step == cfg.steps:
                    rate = n_window * world / (time.perf_counter() - t_window)
                    mean = float(np.mean(window))
                    bar.set_postfix(loss=f"{mean:.4f}", samples_s=f"{rate:.1f}")
                    if rank == 0:
                        writer.writerow([step, stage_of(step - 1, cfg), f"{mean:.6f}", opt.param_groups[0]["lr"],
                                         f"{rate:.2f}"])
                        log.flush()
                        if tb:
                            tb.add_scalar("loss", mean, step)
                            tb.add_scalar("lr", opt.param_groups[0]["lr"], step)
                    window, t_window, n_window = [], time.perf_counter(), 0
                    last_mean = mean
                if rank == 0 and (step % cfg.ckpt_every == 0 or step == cfg.steps):
                    state = dict(model=model.state_dict(), optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                                 step=step, epoch=epoch, consumed=consumed, best=best, rng=_rng_state(),
                                 config=asdict(cfg), mode=cfg.mode, model_config=refiner_config(cfg.model, model))
                    save_checkpoint(last, **state)
                    if stage_of(step - 1, cfg) != 1 and last_mean < best:
                        best = last_mean
                        save_checkpoint(out / "best.pt", **dict(state, best=best))
                if step >= cfg.steps:
                    break
            else:
                epoch, consumed = epoch + 1, 0
    finally:
        bar.close()
        log.close()
        if tb:
            tb.close()
    return {"steps": step, "best": best}


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # noqa: BLE001 - tensorboard is optional; the CSV log is always written
        return None
    return SummaryWriter(str(out / "tb"))
