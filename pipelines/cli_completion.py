"""``gen train completion``, ``gen eval completion`` and ``gen complete`` (registered on the
groups of pipelines/cli.py).  torch is imported inside the command functions."""
from __future__ import annotations

from pathlib import Path

import click

from pipelines.cli_amodal import _scene_list
from pipelines.cli_base import Command, UserError, needs
from pipelines.cli_checks import RUN_SCRATCH, check_outputs, folder_files, removed_if_failed

INPUT_HELP = ("Input channels, comma-separated: visible (the visible mask), rgb, depth (log2 depth relative to the "
              "instance's median visible depth), rdn (regional depth normalisation, 4 maps), tangent (normals from "
              "depth), infront (pixels nearer than the instance's visible surface).")


@click.command("completion", cls=Command)
@click.argument("more_scenes", nargs=-1, metavar="")
@click.option("--scenes", "scene_stores", multiple=True, required=True,
              help="Scene store(s) to train from: --scenes a.zarr b.zarr, local paths or fsspec URLs.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder: checkpoints and logs.")
@click.option("--inputs", default="visible,rgb", show_default=True, help=INPUT_HELP)
@click.option("--classes", default="car,van,truck,bus,pedestrian", show_default=True, help="Classes to learn.")
@click.option("--size", type=int, default=64, show_default=True,
              help="Crop side S in pixels (a multiple of 8); the true mask resampled to 64x64 and back keeps 96 %% IoU, "
                   "at 28x28 80 %% (benchmarks/RESULTS.md).")
@click.option("--crop-factor", type=float, default=2.0, show_default=True,
              help="Crop side / the visible box's longer side; 2.0 holds 99.0 %% of occluded instances' amodal pixels.")
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True, help="Optimizer steps.")
@click.option("--scenes-per-step", type=click.IntRange(min=1), default=4, show_default=True,
              help="Scenes per step per rank; a step trains on all their instances (at most --max-instances).")
@click.option("--max-instances", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--lr", type=float, default=2e-3, show_default=True, help="Peak learning rate (AdamW, cosine decay).")
@click.option("--degrade", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Strength of the train-time depth degradation (noise, blur, down/up-sampling); 0 = exact depth.")
@click.option("--min-visible-area", type=click.IntRange(min=1), default=32, show_default=True,
              help="Instances with fewer visible pixels are skipped.")
@click.option("--loader-workers", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--ckpt-every", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--cpu-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop (with a checkpoint) after this much CPU time: an equal-compute budget.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@needs("torch")
def train_completion(more_scenes, scene_stores, out, inputs, classes, size, crop_factor, steps, scenes_per_step,
                     max_instances, lr, degrade, min_visible_area, loader_workers, seed, ckpt_every, cpu_minutes, resume):
    """Amodal completion (a visible mask + its surroundings -> the whole mask) straight from scene stores.

    \b
    Examples:
      gen train completion --scenes street.zarr --out runs/c1
      gen train completion --scenes street.zarr --out runs/c2 --inputs visible,rgb,depth,rdn,tangent,infront
      torchrun --nproc-per-node 8 -m pipelines.cli train completion --scenes s3://b/rgsd.zarr --out runs/c3
      gen train completion --scenes street.zarr --out runs/c1 --resume
    """
    from trainer.completion_train import CompletionTrainConfig, TrainError
    from trainer.completion_train import train as run_train
    cfg = CompletionTrainConfig(inputs=[k.strip() for k in inputs.split(",") if k.strip()],
                                classes=[c.strip() for c in classes.split(",") if c.strip()], size=size,
                                factor=crop_factor, steps=steps, scenes_per_step=scenes_per_step,
                                max_instances=max_instances, lr=lr, degrade=degrade, min_visible_area=min_visible_area,
                                seed=seed, loader_workers=loader_workers, ckpt_every=ckpt_every)
    stores = _scene_list(scene_stores, more_scenes)
    check_outputs([("--out", out, "dir")], stores)
    try:
        with removed_if_failed(out, RUN_SCRATCH):
            result = run_train(stores, out, cfg, resume=resume, cpu_minutes=cpu_minutes)
    except TrainError as exc:
        raise UserError(str(exc)) from None
    click.echo(f"trained {result['steps']} steps; checkpoints in {out}", err=True)


@click.command("completion", cls=Command)
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.argument("more_scenes", nargs=-1, metavar="")
@click.option("--scenes", "scene_stores", multiple=True, required=True, help="Held-out scene store(s).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Report folder.")
@click.option("--max-scenes", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--degrade", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Degrade the ground-truth depth as in training, seeded per scene (0: exact depth).")
@click.option("--min-visible-area", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace the report files of an earlier run in --out.")
@needs("torch")
def eval_completion(checkpoint, more_scenes, scene_stores, out, max_scenes, degrade, min_visible_area, overwrite):
    """Full and occluded-part mIoU (C2F-Seg's definitions) per occlusion-rate bin and class, with the
    visible-mask and convex-hull baselines in the same table: report.md and report.json.

    \b
    Example:
      gen eval completion runs/c1/last.pt --scenes test.zarr --out report/
    """
    from trainer.completion_eval import REPORT_FILES, InputError, evaluate
    stores = _scene_list(scene_stores, more_scenes)
    check_outputs([("--out", out, "dir"), *folder_files("--out", out, REPORT_FILES)], [checkpoint, *stores], overwrite)
    try:
        with removed_if_failed(out):
            evaluate(checkpoint, stores, out, max_scenes=max_scenes, degrade=degrade, min_visible_area=min_visible_area)
    except InputError as exc:
        raise UserError(str(exc)) from None
    click.echo((Path(out) / "report.md").read_text())


@click.command("complete", cls=Command)
@click.argument("photo", type=click.Path(dir_okay=False))
@click.option("--visible", required=True,
              help="Visible masks: a COCO JSON (the annotations of the image named like the photo, or of its only "
                   "image; KINS's inmodal_seg if present) or an instance-id PNG (0 = background).")
@click.option("--depth", default=None, help="Depth map (16-bit PNG, NPY or PFM; 0 = unknown/sky; any units). "
                                            "Needed for models trained with depth inputs.")
@click.option("--depth-kind", type=click.Choice(["depth", "inverse"]), default="depth", show_default=True)
@click.option("--checkpoint", required=True, help="A completion checkpoint (gen train completion).")
@click.option("--out", required=True, help="JSON to write (COCO RLE, KINS-2020 layout); the overlay PNG goes beside it.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@needs("torch")
def complete(photo, visible, depth, depth_kind, checkpoint, out, overwrite):
    """Amodal (whole) masks of a photo's visible instance masks, from any segmenter.

    \b
    Example:
      gen complete photo.png --visible masks.json --depth depth.png --checkpoint runs/c1/last.pt --out amodal.json
    """
    from trainer.completion_infer import InputError, complete_files, overlay_path
    if not out.lower().endswith(".json"):
        raise UserError(f"--out {out} must end in .json (the overlay goes beside it as .png)")
    check_outputs([("--out", out, "file"), ("the overlay", str(overlay_path(out)), "file")],
                  [photo, visible, depth, checkpoint], overwrite)
    try:
        js, png = complete_files(photo, visible, checkpoint, out, depth=depth, depth_kind=depth_kind)
    except InputError as exc:
        raise UserError(str(exc)) from None
    click.echo(f"wrote {js} and {png}")
