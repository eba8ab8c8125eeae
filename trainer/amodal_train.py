"""Training DAISnet (trainer.amodal_model) straight from scene stores.

AdamW (or SGD with momentum, the paper's detectron2 solver) with the smooth warm-up of eq. 27
as the authors' code has it: factor = ((i + 1) / t)^p * f for i < t, else 1, times 0.1 at
each milestone (fractions of the run).  Checkpoints through trainer.checkpoint
(kind "amodal"): ``last.pt`` every ``ckpt_every`` steps, ``best.pt`` at the lowest logged
mean loss, or with ``val`` at the highest amodal AP on held-out scenes (trainer.watch);
``--resume`` restores weights, optimizer, schedule, RNG and the data position, and
continues exactly.  DDP under torchrun (one process per GPU, the loader sharded by rank).
"""
from __future__ import annotations

import csv
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from trainer import checkpoint
from trainer.amodal_model import DEFAULT_CLASSES, SIZES, build_amodal
from trainer.init_weights import InitError
from trainer.runs import any_rank, restore_run
from trainer.watch import amodal_score, tensorboard, val_problem


@dataclass
class AmodalTrainConfig:
    model: str = "tiny"
    inputs: list = field(default_factory=lambda: ["rgb"])
    occlusion_edge: bool = False
    depth_roi: bool = False
    classes: list = field(default_factory=lambda: list(DEFAULT_CLASSES))
    input_size: list | None = None  # [width, height]; default: the model size's
    sobel: int = 5
    steps: int = 2000
    batch: int = 2  # per rank
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 2e-4
    weight_decay: float = 1e-4
    warmup_steps: int | None = None  # default: min(1000, steps // 5); the paper's random-init runs: 15,000
    warmup_power: float = 1.3
    warmup_factor: float = 1.0
    milestones: list = field(default_factory=lambda: [0.75, 0.9])
    degrade: float = 1.0
    min_visible_area: int = 16
    seed: int = 0
    loader_workers: int = 2
    log_every: int = 10
    ckpt_every: int = 200
    init: str | None = None
    val: str | None = None  # held-out scene store(s), comma-separated: best.pt on amodal AP (trainer.watch)
    val_every: int = 0  # steps between validations; 0: at every checkpoint
    val_scenes: int = 16


class TrainError(RuntimeError):
    pass


def model_config(cfg: AmodalTrainConfig) -> dict:
    return {"size": cfg.model, "classes": list(cfg.classes), "inputs": list(cfg.inputs),
            "occlusion_edge": cfg.occlusion_edge, "depth_roi": cfg.depth_roi,
            "input_size": list(cfg.input_size or SIZES[cfg.model][2]), "ds": 3.0, "dm": 4, "soft_floor": True,
            "sobel": cfg.sobel, "dz": 0.7}


def lr_factor(step: int, cfg: AmodalTrainConfig) -> float:
    """Eq. 27's smooth warm-up (the code's form), then step decay at the milestones."""
    t = cfg.warmup_steps if cfg.warmup_steps is not None else min(1000, cfg.steps // 5)
    f = ((step + 1) / t) ** cfg.warmup_power * cfg.warmup_factor if step < t else 1.0
    return f * 0.1 ** sum(step >= m * cfg.steps for m in cfg.milestones)


def _optimizer(model, cfg):
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _to(batch, device):
    images, targets = batch
    return [x.to(device, non_blocking=True) for x in images], [{k: v.to(device) for k, v in t.items()} for t in targets]


def train(scene_urls, out_dir: str, cfg: AmodalTrainConfig, resume: bool = False, progress: bool = True,
          stop_after: int | None = None, minutes: float | None = None) -> dict:
    """``stop_after``: end after that many steps of this call; ``minutes``: end (with a
    checkpoint) once that much wall time has passed -- a fixed time budget per run."""
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from trainer.amodal_data import DataError, SampleConfig, torch_dataset

    out = Path(out_dir)
    last = out / "last.pt"
    if resume and not last.exists():
        raise TrainError(f"--resume: no checkpoint at {last}")
    if not resume and last.exists():
        raise TrainError(f"{out} already holds a run (use --resume to continue it or another --out)")
    unknown = [k for k in cfg.inputs if k not in ("rgb", "rdn", "tangent", "normals")]
    if unknown or not cfg.inputs:
        raise TrainError(f"--inputs: unknown input '{unknown[0] if unknown else ''}' (choose from rgb,rdn,tangent,normals)")
    if cfg.sobel < 3 or cfg.sobel % 2 == 0:
        raise TrainError(f"--sobel must be odd and >= 3, got {cfg.sobel}")
    if cfg.val and (problem := val_problem(cfg.val)):
        raise TrainError(problem)
    mc = model_config(cfg)
    try:
        ds = torch_dataset(list(scene_urls), SampleConfig.from_model(mc, degrade=cfg.degrade,
                                                                       min_visible_area=cfg.min_visible_area),
                           cfg.seed, cfg.batch, int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")))
    except DataError as exc:
        raise TrainError(str(exc)) from None
    if ds.batches_per_epoch() < 1:
        raise TrainError(f"{len(ds.index)} scenes are too few for batches of {cfg.batch} per rank")
    world, rank = ds.world, ds.rank
    if world > 1:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(cfg.seed)
    try:
        model = build_amodal(init=cfg.init, **mc).to(device)
    except checkpoint.CheckpointError as exc:
        raise TrainError(f"--init: {exc}") from None
    except InitError as exc:
        raise TrainError(f"--init {exc}") from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise TrainError(f"--init {cfg.init}: {str(exc).splitlines()[0][:160]}") from None
    if getattr(model, "init_report", None) is not None and not resume:
        print(model.init_report.line(cfg.init), file=sys.stderr)
    net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True) if world > 1 else model
    opt = _optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    step, epoch, consumed, best = 0, 0, 0, math.inf
    out.mkdir(parents=True, exist_ok=True)
    if resume:
        ck = restore_run(last, kind="amodal", device=device, now=_plain(asdict(cfg)),
                         defaults=_plain(asdict(AmodalTrainConfig())), model=model, opt=opt, sched=sched,
                         error=TrainError)
        step, epoch, consumed, best = ck["step"], ck["epoch"], ck["consumed"], ck["best"]
    log = open(out / "log.csv", "a", newline="")
    writer = csv.writer(log)
    names = ["loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask", "loss_amodal",
             "loss_attention"] + (["loss_edge", "loss_refined"] if cfg.occlusion_edge else [])
    if not resume:
        writer.writerow(["step", "loss", *names, "lr", "images_per_s"])
    bar = tqdm(total=cfg.steps, initial=step, unit="step", desc=f"train amodal {cfg.model}",
               disable=not progress or rank, dynamic_ncols=True, file=sys.stderr,
               delay=1e-3)  # shown from the first step: an error before it stays one line
    window, t_window, n_window, last_mean, start = [], time.perf_counter(), 0, math.inf, step
    tb = tensorboard(out) if rank == 0 else None
    t_start = time.perf_counter()
    net.train()
    try:
        while step < cfg.steps:
            ds.set_epoch(epoch, consumed)
            # Its own generator: a DataLoader draws a base seed when iterated, and drawing it
            # from the global RNG would shift the RPN/RoI samplers' draws on --resume.
            loader = DataLoader(ds, batch_size=None, num_workers=cfg.loader_workers,
                                pin_memory=device.type == "cuda",
                                generator=torch.Generator().manual_seed(cfg.seed * 7919 + epoch))
            for raw in loader:
                images, targets = _to(raw, device)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    parts = net(images, targets)
                loss = sum(parts.values())
                if not torch.isfinite(loss):
                    raise TrainError(f"loss became {loss.item()} at step {step}; the last good checkpoint is {last}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                consumed += 1
                bar.update(1)
                window.append([loss.item()] + [parts[k].item() for k in names])
                n_window += len(images)
                if step % cfg.log_every == 0 or step == cfg.steps:
                    rate = n_window * world / (time.perf_counter() - t_window)
                    mean = np.mean(window, 0)
                    bar.set_postfix(loss=f"{mean[0]:.4f}", images_s=f"{rate:.2f}")
                    if rank == 0:
                        writer.writerow([step, *(f"{v:.6f}" for v in mean), f"{opt.param_groups[0]['lr']:.3g}",
                                         f"{rate:.3f}"])
                        log.flush()
                        if tb:
                            for name, v in zip(["loss", *names], mean):
                                tb.add_scalar(name if name == "loss" else f"loss/{name.removeprefix('loss_')}", v, step)
                            tb.add_scalar("lr", opt.param_groups[0]["lr"], step)
                    window, t_window, n_window, last_mean = [], time.perf_counter(), 0, float(mean[0])
                stopping = (step >= cfg.steps or (stop_after is not None and step - start >= stop_after)
                            or (minutes is not None and time.perf_counter() - t_start > 60 * minutes))
                if world > 1 and minutes is not None:  # every rank stops at the same step
                    stopping = any_rank(stopping, device)
                val_due = bool(cfg.val) and (step % (cfg.val_every or cfg.ckpt_every) == 0 or stopping)
                if rank == 0 and (step % cfg.ckpt_every == 0 or stopping or val_due):
                    if cfg.val:  # best = the lowest -AP: the highest validation AP
                        last_mean = -_validate(model, cfg, step, out, tb) if val_due else math.inf
                    best = min(best, last_mean)
                    state = dict(model=model.state_dict(), optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                                 step=step, epoch=epoch, consumed=consumed, best=best, rng=torch.get_rng_state(),
                                 config=_plain(asdict(cfg)))
                    checkpoint.save(last, kind="amodal", model_config=mc, **state)
                    if best == last_mean and math.isfinite(best):
                        checkpoint.save(out / "best.pt", kind="amodal", model_config=mc, **state)
                if stopping:
                    return {"steps": step, "best": best}
            epoch, consumed = epoch + 1, 0
    finally:
        bar.close()
        log.close()
        if tb:
            tb.close()
    return {"steps": step, "best": best}


def _validate(model, cfg: AmodalTrainConfig, step: int, out: Path, tb) -> float:
    """--val: amodal AP on the held-out scenes, to val.csv and TensorBoard."""
    row = amodal_score(model, cfg.val.split(","), cfg.val_scenes, cfg.seed, cfg.min_visible_area)
    path = out / "val.csv"
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["step", "scenes", "amodal_AP", "amodal_AP50"])
        w.writerow([step, row["scenes"], f"{row['AP']:.6f}", f"{row['AP50']:.6f}"])
    if tb:
        tb.add_scalar("val/amodal_AP", row["AP"], step)
        tb.add_scalar("val/amodal_AP50", row["AP50"], step)
    return row["AP"] if math.isfinite(row["AP"]) else -math.inf


def _plain(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
