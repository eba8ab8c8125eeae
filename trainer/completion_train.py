"""Training the amodal completion network (trainer.completion_model) straight from scene stores.

AdamW, linear warm-up then cosine decay to 5 % over ``steps``.  Checkpoints through
trainer.checkpoint (kind "completion"): ``last.pt`` every ``ckpt_every`` steps and when the
run stops; ``--resume`` restores weights, optimizer, schedule, RNG and the data position and
continues exactly.  DDP under torchrun (the loader sharded by rank, gloo on CPU).

A run can also stop on a budget: ``minutes`` of wall time or ``cpu_minutes`` of CPU time of
this process and its loader workers (the ablation's equal-compute rule); the step it
reached is in the checkpoint and the log.
"""
from __future__ import annotations

import csv
import math
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from scenes.atomic import write_text
from trainer import checkpoint
from trainer.completion_crops import check_inputs
from trainer.completion_data import DEFAULT_CLASSES
from trainer.completion_model import build_completion, loss_fn
from trainer.runs import any_rank, restore_run


@dataclass
class CompletionTrainConfig:
    inputs: list = field(default_factory=lambda: ["visible", "rgb"])
    classes: list = field(default_factory=lambda: list(DEFAULT_CLASSES))
    size: int = 64
    factor: float = 2.0
    widths: list = field(default_factory=lambda: [16, 32, 64, 96])
    steps: int = 2000
    scenes_per_step: int = 4  # per rank
    max_instances: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    degrade: float = 1.0
    min_visible_area: int = 32
    seed: int = 0
    loader_workers: int = 1
    log_every: int = 10
    ckpt_every: int = 200


class TrainError(RuntimeError):
    pass


def model_config(cfg: CompletionTrainConfig) -> dict:
    return {"inputs": list(cfg.inputs), "classes": list(cfg.classes), "size": cfg.size, "factor": cfg.factor,
            "min_side": 16.0, "widths": list(cfg.widths)}


def lr_factor(step: int, cfg: CompletionTrainConfig) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished and running children's
    reaped time; loader workers are counted when they exit, i.e. at every epoch end, so the
    trainer also counts its own live threads only -- use loader_workers=0 for an exact budget."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _plain(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _check(cfg: CompletionTrainConfig) -> None:
    try:
        check_inputs(cfg.inputs)
    except ValueError as exc:
        raise TrainError(f"--inputs: {exc}") from None
    if cfg.size < 16 or cfg.size % 8:
        raise TrainError(f"--size must be a multiple of 8 and at least 16, got {cfg.size}")
    if not 1.0 <= cfg.factor <= 8.0:
        raise TrainError(f"--crop-factor must lie in [1, 8], got {cfg.factor}")


def train(scene_urls, out_dir: str, cfg: CompletionTrainConfig, resume: bool = False, progress: bool = True,
          stop_after: int | None = None, minutes: float | None = None, cpu_minutes: float | None = None) -> dict:
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from trainer.completion_data import DataError, SampleConfig, torch_dataset

    out = Path(out_dir)
    last = out / "last.pt"
    if resume and not last.exists():
        raise TrainError(f"--resume: no checkpoint at {last}")
    if not resume and last.exists():
        raise TrainError(f"{out} already holds a run (use --resume to continue it or another --out)")
    _check(cfg)
    mc = model_config(cfg)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    sample_cfg = SampleConfig.from_model(mc, degrade=cfg.degrade, min_visible_area=cfg.min_visible_area)
    try:
        ds = torch_dataset(list(scene_urls), sample_cfg, cfg.seed, cfg.scenes_per_step, cfg.max_instances, rank, world)
    except DataError as exc:
        raise TrainError(str(exc)) from None
    if ds.batches_per_epoch() < 1:
        raise TrainError(f"{len(ds.index)} scenes are too few for {cfg.scenes_per_step} scenes per step per rank")
    if world > 1:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(cfg.seed)
    model = build_completion(**mc).to(device)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    step, epoch, consumed, cpu_used = 0, 0, 0, 0.0
    if resume:
        ck = restore_run(last, kind="completion", device=device, now=_plain(asdict(cfg)),
                         defaults=_plain(asdict(CompletionTrainConfig())), model=model, opt=opt, sched=sched,
                         error=TrainError)
        step, epoch, consumed, cpu_used = ck["step"], ck["epoch"], ck["consumed"], ck["cpu_seconds"]
    out.mkdir(parents=True, exist_ok=True)
    if rank == 0 and not resume:  # written whole before the first step: a full disk shows here, in one line
        write_text(out / "log.csv", "step,loss,lr,instances_per_s,cpu_s\r\n")
    log = open(out / "log.csv", "a", newline="") if rank == 0 else None  # noqa: SIM115 - closed below
    writer = csv.writer(log) if log else None
    bar = tqdm(total=cfg.steps, initial=step, unit="step", desc="train completion", disable=not progress or rank,
               dynamic_ncols=True, file=sys.stderr, delay=1e-3)
    window, n_window, t_window, start = [], 0, time.perf_counter(), step
    t0, cpu0 = time.perf_counter(), cpu_seconds()

    def save(stopping: bool) -> None:
        if rank:
            return
        state = dict(model=model.state_dict(), optimizer=opt.state_dict(), scheduler=sched.state_dict(), step=step,
                     epoch=epoch, consumed=consumed, rng=torch.get_rng_state(), config=_plain(asdict(cfg)),
                     cpu_seconds=cpu_used + cpu_seconds() - cpu0)
        checkpoint.save(last, kind="completion", model_config=mc, **state)

    net.train()
    try:
        while step < cfg.steps:
            ds.set_epoch(epoch, consumed)
            loader = DataLoader(ds, batch_size=None, num_workers=cfg.loader_workers,
                                generator=torch.Generator().manual_seed(cfg.seed * 7919 + epoch))
            for x, y in loader:
                consumed += 1
                empty = len(x) == 0
                if world > 1:  # a group without instances on any rank: every rank skips it, in lockstep
                    empty = any_rank(empty, device)
                if empty:
                    continue
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                loss = loss_fn(net(x), y)
                if not torch.isfinite(loss):
                    raise TrainError(f"loss became {loss.item()} at step {step}; the last good checkpoint is {last}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                bar.update(1)
                window.append(loss.item())
                n_window += len(x)
                stopping = (step >= cfg.steps or (stop_after is not None and step - start >= stop_after)
                            or (minutes is not None and time.perf_counter() - t0 > 60 * minutes)
                            or (cpu_minutes is not None and cpu_used + cpu_seconds() - cpu0 > 60 * cpu_minutes))
                if world > 1 and (minutes is not None or cpu_minutes is not None):  # every rank stops at one step
                    stopping = any_rank(stopping, device)
                if step % cfg.log_every == 0 or stopping:
                    rate = n_window * world / (time.perf_counter() - t_window)
                    mean = float(np.mean(window))
                    bar.set_postfix(loss=f"{mean:.4f}", inst_s=f"{rate:.0f}")
                    if rank == 0:
                        writer.writerow([step, f"{mean:.6f}", f"{opt.param_groups[0]['lr']:.3g}", f"{rate:.1f}",
                                         f"{cpu_used + cpu_seconds() - cpu0:.1f}"])
                        log.flush()
                    window, n_window, t_window = [], 0, time.perf_counter()
                if step % cfg.ckpt_every == 0 or stopping:
                    save(stopping)
                if stopping:
                    return {"steps": step, "cpu_seconds": cpu_used + cpu_seconds() - cpu0}
            epoch, consumed = epoch + 1, 0
    finally:
        bar.close()
        if log:
            log.close()
    return {"steps": step, "cpu_seconds": cpu_used + cpu_seconds() - cpu0}
