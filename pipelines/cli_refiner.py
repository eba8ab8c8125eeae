"""``gen train refiner``, ``gen eval refiner``, ``gen refine`` (the layered depth refiner) and
``gen export weights`` (either model), registered on the groups of pipelines/cli.py.  torch
is imported inside the command functions, so ``gen --help`` stays fast."""
from __future__ import annotations

from pathlib import Path

import click

from pipelines.cli_base import Command, UserError, needs
from pipelines.cli_checks import (
    RUN_SCRATCH,
    _checkpoint_errors,
    _new_file,
    _one_line,
    _store_errors,
    check_outputs,
    folder_files,
    removed_if_failed,
)
from pipelines.train_options import build_train_config, train_options


@click.command("refiner", cls=Command)
@click.option("--shards", required=True, help="Shard store (gen shards) to train from.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder: checkpoints and logs.")
@click.option("--model", type=click.Choice(["tiny", "small", "b0", "b3"]), default="tiny", show_default=True,
              help="tiny/small for CPU, b3 is the paper's.")
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Optimizer steps over both stages (paper: 500k + 500k).")
@click.option("--stage1-fraction", type=click.FloatRange(0, 1), default=0.5, show_default=True)
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True, help="Per rank (paper: 32).")
@click.option("--accumulate", type=click.IntRange(min=1), default=1, show_default=True, help="Gradient accumulation.")
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option("--mode", type=click.Choice(["layered", "direct"]), default="layered", show_default=True,
              help="direct: the Direct-composite baseline (no layering).")
@click.option("--loader-workers", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--ckpt-every", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--init", type=click.Path(dir_okay=False), default=None,
              help="Initial weights: an rgsd checkpoint, a state dict saved with torch.save, or .safetensors "
                   "(all read weights-only), in rgsd's layout or a SegFormer/MiT encoder's (Hugging Face or NVlabs "
                   "keys; --model b0 matches MiT-b0).  Prints the tensors loaded and skipped; refused unless at least "
                   "half of the encoder's tensors load.")
@click.option("--residual/--plain-head", default=True, show_default=True,
              help="Predict a correction to the input depth (starts as the identity), or the depth itself "
                   "as the paper's head does.")
@click.option("--cpu-fast", is_flag=True,
              help="On CPU: channels_last and bf16 autocast (1.3-1.6x a step in benchmarks/bench_refiner_step.py; "
                   "changes the numbers).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@train_options
@needs("torch")
@click.pass_context
def train_refiner(ctx, shards, out, model, steps, stage1_fraction, batch, accumulate, lr, mode, loader_workers, seed,
                  ckpt_every, init, residual, cpu_fast, resume, val, val_every, val_scenes, config_files, overrides):
    """Two-stage layered refiner training (maskdepth §3.2) straight from a shard store.

    \b
    Examples:
      gen train refiner --shards train.shards.zarr --out runs/r1 --model tiny --steps 2000
      torchrun --nproc-per-node 8 -m pipelines.cli train refiner --shards s3://b/train.shards.zarr --model b3 --out runs/b3
      gen train refiner --shards train.shards.zarr --out runs/r2 --val held_out.zarr --set weight_decay=0.05
      tensorboard --logdir runs/r2/tb
    """
    import math

    from composer.shard_store import StoreError, open_shards
    from trainer.train import TrainConfig, TrainError
    from trainer.train import train as run_train
    cfg = build_train_config(ctx, TrainConfig, dict(
        model=model, steps=steps, stage1_fraction=stage1_fraction, batch=batch, accumulate=accumulate, lr=lr, mode=mode,
        loader_workers=loader_workers, seed=seed, ckpt_every=ckpt_every, init=init, residual=residual, cpu_fast=cpu_fast,
        val=val, val_every=val_every, val_scenes=val_scenes), config_files, overrides)
    lr, init = cfg.lr, cfg.init
    if not (math.isfinite(lr) and lr > 0):
        raise UserError(f"--lr must be a positive number, not {lr}")
    if init is not None and not Path(init).is_file():
        raise UserError(f"--init: no file at {init}")
    check_outputs([("--out", out, "dir")], [shards, init])
    try:
        open_shards(shards)
    except StoreError as exc:
        raise UserError(str(exc)) from None
    try:
        with removed_if_failed(out, RUN_SCRATCH):
            result = run_train(shards, out, cfg, resume=resume)
    except (TrainError, *_checkpoint_errors(), *_store_errors()) as exc:
        raise UserError(_one_line(exc)) from None
    click.echo(f"trained {result['steps']} steps; checkpoints in {out}", err=True)


@click.command("refiner", cls=Command)
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--scenes", "scene_stores", multiple=True, required=True, help="Held-out scene store(s).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Report folder.")
@click.option("--direct", default=None, type=click.Path(dir_okay=False),
              help="A --mode direct checkpoint for the Direct-composite row.")
@click.option("--initial", "initial", default="perturb", show_default=True, metavar="FAMILY",
              help="Initial-depth degradation family (composer/degrade.py): perturb (the paper's P), edge_bleed "
                   "(RGB-guided filter), resolution (2-8x down/up), thin_lost (thin structures eroded), warp "
                   "(low-frequency scale/shift), misalign (edges shifted 1-4 px), smooth (bilateral + 4x). "
                   "The report says whether the checkpoint was trained on it.")
@click.option("--max-scenes", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds each scene's initial depth.")
@click.option("--overwrite", is_flag=True, help="Replace the report files of an earlier run in --out.")
@needs("torch")
def eval_refiner(checkpoint, scene_stores, out, direct, initial, max_scenes, seed, overwrite):
    """Table-1-style report: R3 at t = 0.5 and 0.05, MBE, eps_acc, eps_comp, WHDR, RMSE (Markdown + CSV + maps).

    \b
    Rows: the initial depth, Layered-propagation, Guided filter (He et al., RGB guide, inside
    the mask band), Direct-composite (with --direct) and Ours; degradations.csv records each
    scene's initial-depth parameters.

    \b
    Depth space 10 * min(1, 1 m / z): MBE and RMSE are 10x the same errors in 1/m; R3@0.5 is
    t = 0.05 1/m (MiDaS/MaskDepth). WHDR leaves out sky and pairs tied in ground truth.
    """
    from composer.degrade import DegradeError, check_family
    from scenes.store import open_store
    from trainer.infer import InputError
    try:
        check_family(initial)
    except DegradeError as exc:
        raise UserError(f"--initial: {exc}") from None
    check_outputs([("--out", out, "dir"), *folder_files("--out", out, ["report.md", "report.csv", "degradations.csv"])],
                  [checkpoint, direct, *scene_stores], overwrite)
    for ck in (checkpoint, direct):
        if ck is not None and not Path(ck).is_file():
            raise UserError(f"no checkpoint at {ck}")
    try:
        for u in scene_stores:
            open_store(u)
        from trainer.evaluate import evaluate
        with removed_if_failed(out):
            table = evaluate(checkpoint, list(scene_stores), out, direct=direct, degradation=initial,
                             max_scenes=max_scenes, seed=seed)
    except (InputError, *_checkpoint_errors(), *_store_errors()) as exc:
        raise UserError(_one_line(exc)) from None
    click.echo((Path(out) / "report.md").read_text())
    del table


@click.command("refine", cls=Command)
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("--depth", required=True, help="Initial depth: 16-bit PNG, NPY or PFM.")
@click.option("--mask", required=True, help="Mask image (binary or soft, 8/16-bit, alpha used if RGBA).")
@click.option("--checkpoint", required=True, help="A refiner checkpoint (gen train refiner).")
@click.option("--out", required=True, help="Refined depth, same format family as --depth (.png/.npy/.pfm).")
@click.option("--depth-kind", type=click.Choice(["depth", "inverse"]), default="depth", show_default=True,
              help="Whether --depth holds depth or inverse depth (disparity).")
@click.option("--overwrite", is_flag=True, help="Replace an existing file at --out.")
@needs("torch")
def refine(image, depth, mask, checkpoint, out, depth_kind, overwrite):
    """Refine a monocular depth map along a mask's edges, at the input resolution."""
    _new_file(out, (".png", ".npy", ".pfm", ".tif", ".tiff"), overwrite, [image, depth, mask, checkpoint])
    from trainer.infer import InputError, refine_files
    try:
        click.echo(f"wrote {refine_files(image, depth, mask, checkpoint, out, depth_kind)}")
    except (InputError, *_checkpoint_errors(), OSError) as exc:
        raise UserError(_one_line(exc)) from None


@click.command("weights", cls=Command)
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The .safetensors file to write.")
@click.option("--overwrite", is_flag=True, help="Replace existing files.")
@needs("torch")
def export_weights(checkpoint, out, overwrite):
    """A checkpoint's weights as safetensors, plus a JSON sidecar (same name, .json) with the
    model config, kind and mode.  The checkpoint is read weights-only.

    \b
    Example:
      gen export weights runs/r1/best.pt --out refiner.safetensors   # + refiner.json
    """
    from trainer.checkpoint import CheckpointError, export_safetensors, sidecar_path
    if Path(out).suffix != ".safetensors":
        raise UserError(f"--out {out} must end in .safetensors")
    check_outputs([("--out", out, "file"), ("the JSON sidecar", str(sidecar_path(out)), "file")], [checkpoint],
                  overwrite)
    try:
        weights, side = export_safetensors(checkpoint, out, overwrite=overwrite)
    except CheckpointError as exc:
        raise UserError(str(exc)) from None
    click.echo(f"wrote {weights} and {side}")
