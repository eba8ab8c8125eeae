"""``gen train amodal``, ``gen eval amodal`` and ``gen segment`` (registered on the groups of
pipelines/cli.py).  torch is imported inside the command functions."""
from __future__ import annotations

from pathlib import Path

import click

from pipelines.cli_base import Command, UserError, needs
from pipelines.cli_checks import RUN_SCRATCH, check_outputs, folder_files, removed_if_failed
from pipelines.train_options import build_train_config, train_options

# Input sides above this are refused: a 4096x4096 image through Mask R-CNN already needs
# tens of GB for activations; 100000x100000 would try to allocate terabytes.
MAX_SIDE = 4096


def _scene_list(first, more) -> list[str]:
    """--scenes A B C and --scenes A --scenes B both work; commas split too."""
    out = [u for part in list(first) + list(more) for u in part.split(",") if u]
    if not out:
        raise UserError("give at least one scene store with --scenes")
    return out


def _size(text):
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--size expects WIDTHxHEIGHT like 640x360, got '{text}'") from None
    if w < 32 or h < 32:
        raise UserError(f"--size {text} is too small (at least 32x32)")
    if w > MAX_SIDE or h > MAX_SIDE:
        raise UserError(f"--size {text} is too large (at most {MAX_SIDE}x{MAX_SIDE}: memory)")
    return [w, h]


@click.command("amodal", cls=Command)
@click.argument("more_scenes", nargs=-1, metavar="")
@click.option("--scenes", "scene_stores", multiple=True, required=True,
              help="Scene store(s) to train from: --scenes a.zarr b.zarr, local paths or fsspec URLs.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder: checkpoints and logs.")
@click.option("--model", type=click.Choice(["tiny", "r50"]), default="tiny", show_default=True,
              help="tiny: ResNet-18-FPN at 640x360 (CPU); r50: the paper's ResNet-50-FPN at 1280x720.")
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True, help="Optimizer steps.")
@click.option("--batch", type=click.IntRange(min=1), default=2, show_default=True, help="Images per step per rank.")
@click.option("--inputs", default="rgb", show_default=True,
              help="Backbone inputs, comma-separated: rgb, rdn (regional depth normalisation, 4 maps), tangent "
                   "(normals from depth, generalised Sobel), normals (the store's true normals).")
@click.option("--occlusion-edge", is_flag=True, help="The occlusion-edge head and occlusion refinement (§3.7).")
@click.option("--depth-roi", is_flag=True, help="Pool depth with the RoIs into the mask heads (§3.6).")
@click.option("--classes", default="car,van,truck,bus,pedestrian", show_default=True, help="Classes to learn.")
@click.option("--size", "size_text", default=None, metavar="WxH", help="Input size [default: the model's].")
@click.option("--sobel", type=int, default=5, show_default=True, help="Tangent-normal Sobel size (odd; paper: 5, 21, 71).")
@click.option("--optimizer", type=click.Choice(["adamw", "sgd"]), default="adamw", show_default=True)
@click.option("--lr", type=float, default=2e-4, show_default=True, help="Final learning rate after warm-up.")
@click.option("--warmup-steps", type=click.IntRange(min=0), default=None,
              help="Smooth warm-up length (eq. 27, power 1.3) [default: min(1000, steps/5)].")
@click.option("--degrade", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Strength of the train-time depth degradation (noise, blur, down/up-sampling); 0 = exact depth.")
@click.option("--min-visible-area", type=click.IntRange(min=0), default=16, show_default=True,
              help="Instances with fewer visible pixels are amodal targets only.")
@click.option("--loader-workers", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--ckpt-every", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--init", type=click.Path(dir_okay=False), default=None,
              help="Initial weights: an rgsd checkpoint, a state dict (torch.save) or .safetensors, in rgsd's layout "
                   "or torchvision's ResNet / Mask R-CNN layout (fills backbone.body; the RGB first conv is widened "
                   "for the depth channels, DAISnet §3.5).  Prints the tensors loaded and skipped; refused unless "
                   "at least half of the backbone's tensors load.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@train_options
@needs("torch", "torchvision")
@click.pass_context
def train_amodal(ctx, more_scenes, scene_stores, out, model, steps, batch, inputs, occlusion_edge, depth_roi, classes,
                 size_text, sobel, optimizer, lr, warmup_steps, degrade, min_visible_area, loader_workers, seed,
                 ckpt_every, init, resume, val, val_every, val_scenes, config_files, overrides):
    """DAISnet-style amodal instance segmentation (Mask R-CNN + depth) straight from scene stores.

    \b
    Examples:
      gen train amodal --scenes street.zarr city.zarr --out runs/a1 --model tiny --steps 2000
      gen train amodal --scenes street.zarr --out runs/a2 --inputs rgb,rdn,tangent --occlusion-edge --depth-roi
      torchrun --nproc-per-node 8 -m pipelines.cli train amodal --scenes s3://b/rgsd.zarr --model r50 --out runs/r50
      gen train amodal --scenes street.zarr --out runs/a1 --resume
      gen train amodal --scenes street.zarr --out runs/a3 --val held_out.zarr --config amodal.json --set milestones=[0.6,0.9]
    """
    import math

    from trainer.amodal_train import AmodalTrainConfig, TrainError
    from trainer.amodal_train import train as run_train
    cfg = build_train_config(ctx, AmodalTrainConfig, dict(
        model=model, inputs=[k.strip() for k in inputs.split(",") if k.strip()], occlusion_edge=occlusion_edge,
        depth_roi=depth_roi, classes=[c.strip() for c in classes.split(",") if c.strip()], input_size=_size(size_text),
        sobel=sobel, steps=steps, batch=batch, optimizer=optimizer, lr=lr, warmup_steps=warmup_steps, degrade=degrade,
        min_visible_area=min_visible_area, seed=seed, loader_workers=loader_workers, ckpt_every=ckpt_every, init=init,
        val=val, val_every=val_every, val_scenes=val_scenes), config_files, overrides, {"input_size": "size_text"})
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise UserError(f"--lr must be a positive number, not {cfg.lr}")
    stores = _scene_list(scene_stores, more_scenes)
    check_outputs([("--out", out, "dir")], [*stores, cfg.init])
    try:
        with removed_if_failed(out, RUN_SCRATCH):
            result = run_train(stores, out, cfg, resume=resume)
    except TrainError as exc:
        raise UserError(str(exc)) from None
    click.echo(f"trained {result['steps']} steps; checkpoints in {out}", err=True)


@click.command("amodal", cls=Command)
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.argument("more_scenes", nargs=-1, metavar="")
@click.option("--scenes", "scene_stores", multiple=True, required=True, help="Held-out scene store(s).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Report folder.")
@click.option("--max-scenes", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--degrade", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Degrade the ground-truth depth as in training (0: exact depth).")
@click.option("--min-visible-area", type=click.IntRange(min=0), default=16, show_default=True,
              help="Visible tasks count instances (and predictions) with at least this many visible pixels.")
@click.option("--overlays", type=click.IntRange(min=0), default=4, show_default=True, help="Overlay PNGs to write.")
@click.option("--overwrite", is_flag=True, help="Replace the report files of an earlier run in --out.")
@needs("torch", "torchvision")
def eval_amodal(checkpoint, more_scenes, scene_stores, out, max_scenes, degrade, min_visible_area, overlays, overwrite):
    """COCO AP/AR (stock pycocotools) of amodal and visible masks and boxes, per class, and amodal AP
    on occluded instances only (visible fraction < 0.9, < 0.5): report.md, report.json, overlays.

    \b
    Example:
      gen eval amodal runs/a1/best.pt --scenes test.zarr --out report/
    """
    from trainer.amodal_eval import InputError, evaluate
    stores = _scene_list(scene_stores, more_scenes)
    names = ["report.json", "report.md", *(f"overlay_{n}.png" for n in range(min(overlays, max_scenes)))]
    check_outputs([("--out", out, "dir"), *folder_files("--out", out, names)], [checkpoint, *stores], overwrite)
    try:
        with removed_if_failed(out):
            report = evaluate(checkpoint, stores, out, max_scenes=max_scenes, degrade=degrade,
                              min_visible_area=min_visible_area, overlays=overlays)
    except InputError as exc:
        raise UserError(str(exc)) from None
    click.echo((Path(out) / "report.md").read_text())
    del report


@click.command("segment", cls=Command)
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("--depth", required=True, help="Depth map of the photo (any monocular estimator): 16-bit PNG, NPY or PFM; "
                                             "0 = unknown/sky.  Units do not matter (log depth is standardised).")
@click.option("--checkpoint", required=True, help="An amodal checkpoint (gen train amodal).")
@click.option("--out", required=True, help="JSON to write (COCO RLE masks); an overlay PNG is written beside it.")
@click.option("--depth-kind", type=click.Choice(["depth", "inverse"]), default="depth", show_default=True)
@click.option("--normals", default=None, help="Camera-space normals (.npy, H x W x 3) for models trained on true normals.")
@click.option("--min-score", type=click.FloatRange(0, 1), default=0.5, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace existing files at --out and its overlay.")
@needs("torch", "torchvision")
def segment(image, depth, checkpoint, out, depth_kind, normals, min_score, overwrite):
    """Amodal and visible instance masks of a photo with its depth map.

    \b
    Example:
      gen segment photo.png --depth photo_depth.png --checkpoint runs/a1/best.pt --out seg.json
    """
    from trainer.amodal_eval import InputError, overlay_path, segment_files
    check_outputs([("--out", out, "file"), ("the overlay", str(overlay_path(out)), "file")],
                  [image, depth, checkpoint, normals], overwrite)
    try:
        js, png = segment_files(image, depth, checkpoint, out, normals=normals, depth_kind=depth_kind,
                                min_score=min_score)
    except InputError as exc:
        raise UserError(str(exc)) from None
    click.echo(f"wrote {js} and {png}")
