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
from trainer.contract import layered_forward, normalise_rgb
from trainer.init_weights import InitError
from trainer.losses import refine_loss
from trainer.runs import resume_mismatch
from trainer.watch import refiner_score, tensorboard, val_problem


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
    val: str | None = None  # held-out scene store(s), comma-separated: best.pt on its RMSE (trainer.watch)
    val_every: int = 0  # steps between validations; 0: at every checkpoint
    val_scenes: int = 16
    # CPU only: channels_last weights/activations and bf16 autocast (benchmarks/bench_refiner_step.py,
    # RESULTS.md issue 27).  Off by default: bf16 changes the numbers, and its quality is unmeasured.
    cpu_fast: bool = False


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
    out["rgb_in"] = normalise_rgb(out["rgb"])
    return out


def step_loss(model, b: dict, stage: int, gen: torch.Generator) -> torch.Tensor:
    m = b["mask"]
    if stage == 1:
        flip = (torch.rand(m.shape[0], generator=gen) < 0.5).to(m.device).view(-1, 1, 1, 1)
        m_in = torch.where(flip, 1 - m, m)
        target = torch.where(flip, b["depth2"], b["depth1"])
        return refine_loss(model(b["depth"], m_in, b["rgb_in"]), target)
    if stage == 2:
        d1, d2, merged = layered_forward(model, b["perturbed"], m, b["rgb_in"])
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


@dataclass
class _Run:
    """What one training process holds; the counters are what a checkpoint resumes."""
    cfg: TrainConfig
    out: Path
    model: torch.nn.Module
    net: torch.nn.Module  # the model, or its DDP wrapper
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    device: torch.device
    world: int = 1
    rank: int = 0
    trained_on: dict | None = None  # the shards' degradation mixture, recorded in every checkpoint
    step: int = 0
    epoch: int = 0
    consumed: int = 0  # micro-batches of the current epoch already trained on
    best: float = math.inf


def train(shards_url: str, out_dir: str, cfg: TrainConfig, resume: bool = False, progress: bool = True) -> dict:
    """Train from ``shards_url`` into the run folder ``out_dir`` (last.pt, best.pt, log.csv,
    config.json); ``resume`` continues its last.pt exactly.  Everything the user can get
    wrong (run folder, checkpoint, --init, too small a store) is refused before any write."""
    out = Path(out_dir)
    ck = _read_resume(out, cfg) if resume else None
    if not resume and (out / "last.pt").exists():
        raise TrainError(f"{out} already holds a run (use --resume to continue it or another --out)")
    if cfg.val and (problem := val_problem(cfg.val)):
        raise TrainError(problem)
    model = _build_model(cfg, resume)
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    ds = _dataset(shards_url, cfg, rank, world)
    out.mkdir(parents=True, exist_ok=True)
    run = _setup(cfg, out, model, world, rank)
    run.trained_on = trained_on(shards_url)
    if ck is not None:
        _restore(run, ck)
    else:
        from scenes.atomic import write_text
        write_text(out / "config.json", json.dumps(asdict(cfg), indent=2))
    log = _Log(run, resume, progress)
    try:
        _loop(run, ds, log)
    finally:
        log.close()
    return {"steps": run.step, "best": run.best}


def trained_on(shards_url: str) -> dict:
    """What the checkpoint says it was trained on: the shard store and its initial-depth
    degradation mixture (stores made before the families existed are P(.) alone)."""
    from composer.shard_store import open_shards
    cfg = open_shards(shards_url).attrs.get("config") or {}
    mix = cfg.get("degrade_mix") or {"perturb": 1.0}
    return {"shards": str(shards_url), "degrade_mix": {str(k): float(v) for k, v in mix.items()},
            "families": [k for k, v in mix.items() if v > 0]}


def _read_resume(out: Path, cfg: TrainConfig) -> dict:
    """last.pt, read weights-only and checked against ``cfg`` before anything is built."""
    last = out / "last.pt"
    if not last.exists():
        raise TrainError(f"--resume: no checkpoint at {last}")
    try:
        ck = checkpoint.load(last, kind="refiner")
    except checkpoint.CheckpointError as exc:
        raise TrainError(f"--resume: {exc}") from None
    if not isinstance(ck.get("config"), dict):
        raise TrainError(f"--resume: {last} holds no run config")
    why = resume_mismatch(ck["config"], asdict(cfg), asdict(TrainConfig()))
    if why:
        raise TrainError(why)
    return ck


def _build_model(cfg: TrainConfig, resume: bool):
    from trainer.model import build_refiner
    torch.manual_seed(cfg.seed)
    try:
        # A resumed run takes its weights from last.pt, so --init is not read again.
        model = build_refiner(cfg.model, init=None if resume else cfg.init, residual=cfg.residual)
    except checkpoint.CheckpointError as exc:
        raise TrainError(f"--init: {exc}") from None
    except InitError as exc:
        raise TrainError(f"--init {exc}") from None
    if getattr(model, "init_report", None) is not None:
        print(model.init_report.line(cfg.init), file=sys.stderr)
    return model


def _dataset(shards_url: str, cfg: TrainConfig, rank: int, world: int):
    from trainer.data import torch_dataset
    ds = torch_dataset(shards_url, cfg.seed, cfg.batch, rank, world)
    if ds.samples() < cfg.batch * max(cfg.loader_workers, 1):
        raise TrainError(f"{shards_url} has {ds.samples()} samples per rank, too few for batches of {cfg.batch} "
                         f"in {max(cfg.loader_workers, 1)} loader worker(s)")
    return ds


def _setup(cfg: TrainConfig, out: Path, model, world: int, rank: int) -> _Run:
    """Device, DDP (under torchrun), optimizer and schedule."""
    if world > 1:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    model = model.to(device)
    if device.type == "cuda" or cfg.cpu_fast:
        model = model.to(memory_format=torch.channels_last)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    return _Run(cfg, out, model, net, opt, sched, device, world, rank)


def _restore(run: _Run, ck: dict) -> None:
    run.model.load_state_dict(ck["model"])
    run.opt.load_state_dict(ck["optimizer"])
    run.sched.load_state_dict(ck["scheduler"])
    run.step, run.epoch, run.consumed, run.best = ck["step"], ck["epoch"], ck["consumed"], ck["best"]
    _set_rng_state(ck["rng"])


def _loop(run: _Run, ds, log: _Log) -> None:
    """Epochs of micro-batches until cfg.steps optimizer steps; a resumed run continues its
    epoch where it stopped (the loader order depends only on seed and epoch)."""
    from torch.utils.data import DataLoader
    cfg = run.cfg
    amp = (torch.autocast("cuda", dtype=torch.bfloat16) if run.device.type == "cuda"
           else torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.cpu_fast))
    run.net.train()
    while run.step < cfg.steps:
        ds.set_epoch(run.epoch)
        it = iter(DataLoader(ds, batch_size=None, num_workers=cfg.loader_workers, persistent_workers=False,
                             pin_memory=run.device.type == "cuda"))
        for _ in range(run.consumed):
            next(it)
        for raw in it:
            log.add(_micro_step(run, raw, amp), cfg.batch)
            if run.consumed % cfg.accumulate:
                continue
            run.opt.step()
            run.opt.zero_grad(set_to_none=True)
            run.sched.step()
            run.step += 1
            log.stepped()
            val_due = bool(cfg.val) and (run.step % (cfg.val_every or cfg.ckpt_every) == 0 or run.step == cfg.steps)
            if run.rank == 0 and (run.step % cfg.ckpt_every == 0 or run.step == cfg.steps or val_due):
                _checkpoint(run, log.last_mean, log.validate() if val_due else None)
            if run.step >= cfg.steps:
                break
        else:
            run.epoch, run.consumed = run.epoch + 1, 0


def _micro_step(run: _Run, raw: dict, amp) -> float:
    """Forward and backward of one micro-batch; augmentation and stage-I flips are seeded by
    (seed, step, micro-batch), so a resumed run draws them exactly as the first did."""
    cfg = run.cfg
    micro = run.consumed % cfg.accumulate
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + run.step * 131 + micro)
    b = prepare(raw, run.device, gen if cfg.augment else None)
    with amp:
        loss = step_loss(run.net, b, stage_of(run.step, cfg), gen)
    if not torch.isfinite(loss):
        raise TrainError(f"loss became {loss.item()} at step {run.step}; "
                         f"the last good checkpoint is {run.out / 'last.pt'}")
    (loss / cfg.accumulate).backward()
    run.consumed += 1
    return loss.item()


def _checkpoint(run: _Run, last_mean: float, val_rmse: float | None = None) -> None:
    """last.pt every ckpt_every steps; best.pt when the validation RMSE (with --val) or else
    the logged loss improved (stage I's loss is on another task, so it never counts).
    ``best`` is updated before last.pt is written, so a resumed run compares against the
    same best as an uninterrupted one."""
    from trainer.model import refiner_config
    cfg = run.cfg
    if cfg.val:
        improved = val_rmse is not None and val_rmse < run.best
        last_mean = val_rmse
    else:
        improved = stage_of(run.step - 1, cfg) != 1 and last_mean < run.best
    if improved:
        run.best = last_mean
    state = {"model": run.model.state_dict(), "optimizer": run.opt.state_dict(),
             "scheduler": run.sched.state_dict(), "step": run.step, "epoch": run.epoch,
             "consumed": run.consumed, "best": run.best, "rng": _rng_state(), "config": asdict(cfg),
             "mode": cfg.mode, "model_config": refiner_config(cfg.model, run.model), "trained_on": run.trained_on}
    save_checkpoint(run.out / "last.pt", **state)
    if improved:
        save_checkpoint(run.out / "best.pt", **state)


class _Log:
    """log.csv (rank 0), TensorBoard when installed, and the progress bar: mean loss and
    samples/s over each window of log_every steps."""

    def __init__(self, run: _Run, resume: bool, progress: bool):
        from tqdm import tqdm
        self.run, self.cfg = run, run.cfg
        self.file = open(run.out / "log.csv", "a", newline="")  # noqa: SIM115 - closed by close()
        self.writer = csv.writer(self.file)
        if not resume:
            self.writer.writerow(["step", "stage", "loss", "lr", "samples_per_s"])
        self.tb = tensorboard(run.out) if run.rank == 0 else None
        self.bar = tqdm(total=self.cfg.steps, initial=run.step, unit="step", desc=f"train {self.cfg.model}",
                        disable=not progress or run.rank, dynamic_ncols=True, file=sys.stderr,
                        delay=1e-3)  # shown from the first step: an error before it stays one line
        self.window, self.t0, self.samples = [], time.perf_counter(), 0
        self.last_mean = math.inf

    def add(self, loss: float, samples: int) -> None:
        self.window.append(loss)
        self.samples += samples

    def stepped(self) -> None:
        run, cfg = self.run, self.cfg
        self.bar.update(1)
        if run.step % cfg.log_every and run.step != cfg.steps:
            return
        rate = self.samples * run.world / (time.perf_counter() - self.t0)
        mean = float(np.mean(self.window))
        lr = run.opt.param_groups[0]["lr"]
        self.bar.set_postfix(loss=f"{mean:.4f}", samples_s=f"{rate:.1f}")
        if run.rank == 0:
            self.writer.writerow([run.step, stage_of(run.step - 1, cfg), f"{mean:.6f}", lr, f"{rate:.2f}"])
            self.file.flush()
            if self.tb:
                self.tb.add_scalar("loss", mean, run.step)
                self.tb.add_scalar("lr", lr, run.step)
        self.window, self.t0, self.samples = [], time.perf_counter(), 0
        self.last_mean = mean

    def validate(self) -> float:
        """--val: the evaluation's scores, to val.csv and TensorBoard; returns the RMSE."""
        run, cfg = self.run, self.cfg
        row = refiner_score(run.model, cfg.mode, cfg.val.split(","), cfg.val_scenes, cfg.seed)
        keys = ["RMSE", "MBE", "WHDR", "eps_acc", "eps_comp", "R3@0.5"]
        path = run.out / "val.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["step", "scenes", *keys])
            w.writerow([run.step, row["scenes"], *(f"{row.get(k, float('nan')):.6f}" for k in keys)])
        if self.tb:
            for k in keys:
                if k in row and math.isfinite(row[k]):
                    self.tb.add_scalar(f"val/{k}", row[k], run.step)
        self.bar.set_postfix(val_rmse=f"{row['RMSE']:.4f}")
        return row["RMSE"] if math.isfinite(row["RMSE"]) else math.inf

    def close(self) -> None:
        self.bar.close()
        self.file.close()
        if self.tb:
            self.tb.close()
