"""The ``gen`` command line.  User mistakes end in one line on stderr and exit status 2."""
from __future__ import annotations

import sys

import click

from pipelines.cli_base import Command
from pipelines.cli_checks import (
    MAX_SAMPLES,
    MAX_SCENES,
    RUN_SAMPLES,
    RUN_SCENES,
    OneLineErrors,
    OutOfRange,
    UserError,
    _new_file,
    _one_line,
    _store_errors,
    check_outputs,
    index_pairs,
    index_ranges,
)
from pipelines.cluster import ClusterError
from scenes.config import SCENARIOS, ConfigError


class Group(OneLineErrors):
    command_class = Command
    group_class = type  # subgroups make Commands too


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="rgsd", message="rgsd %(version)s")
def cli():
    """rgsd: synthetic street scenes with pixel-accurate depth and amodal masks.

    \b
      gen scenes   render procedural scenes with Blender into a Zarr scene store
      gen shards   composite and perturb training samples from scene stores
      gen import   turn your own RGB-D folders into a scene store (gen import rgbd)
      gen info     summarise a store
      gen verify   check every chunk of a store's finished scenes/shards (--repair)
      gen preview  contact sheet of a store
      gen stats    dataset statistics of scene stores (JSON, Markdown, plots; KINS beside)
      gen train    train the depth refiner, the amodal model or amodal completion (gen train refiner|amodal|completion)
      gen eval     reports: refiner (Table 1), amodal (COCO AP/AR), completion (mIoU), order (gen eval ...)
      gen refine   refine a depth map along a mask with a trained refiner
      gen segment  amodal instance segmentation of a photo with its depth map
      gen complete amodal masks for a photo's visible masks from any segmenter
      gen export   hand results to other tools: KINS / COCO / InstaOrder JSON, region
                   support, weights as safetensors (gen export kins|coco|...|weights)
    """


def _index_list(text: str, out: str) -> list[int]:
    """--only's indices, checked against the store's scene count before the list is made."""
    from scenes.store import StoreError, open_store
    try:  # the syntax first: a typo is named even where the store is missing too
        index_pairs(text)
    except ValueError:
        raise UserError(f"--only expects indices like 17 or 3,5,10-12, got '{text}'") from None
    try:
        limit = open_store(out).n  # --only re-renders scenes of an existing store
    except StoreError as exc:
        raise UserError(_one_line(exc)) from None
    try:
        return index_ranges(text, limit)
    except OutOfRange as exc:
        raise UserError(f"--only: {exc} of {out}") from None


@cli.command()
@click.option("--n", "n", type=click.IntRange(min=1), default=4, show_default=True, help="Number of scenes.")
@click.option("--out", required=True, help="Store path or fsspec URL (e.g. street.zarr, s3://bucket/street.zarr).")
@click.option("--scenario", type=click.Choice(SCENARIOS + ("mix",)), default=None,
              help="Scene family; default from the config (street).")
@click.option("--preset", type=click.Choice(["tiny", "small", "default", "high"]), default="default",
              show_default=True,
              help="tiny: 160x90, 2 spp, seconds per scene (CI); default: 1280x720, 12 spp (adaptive; night frames x2).")
@click.option("--seed", type=int, default=0, show_default=True, help="Scene i depends only on (seed, i, config).")
@click.option("--config", "config_files", multiple=True, type=click.Path(), help="JSON/YAML config file(s), applied in order.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override one config value, e.g. --set render.samples=32 --set street.vehicles=[3,5].")
@click.option("--assets", "assets_dir", default=None, type=click.Path(),
              help="Folder of user assets: subfolders named by kind (car/, van/, bus/, pedestrian/, tree/, ...) "
                   "holding .glb/.gltf/.obj/.blend models, and pedestrian_cutouts/ holding RGBA images.")
@click.option("--overwrite", is_flag=True, help="Replace an existing store.")
@click.option("--resume", is_flag=True, help="Continue an existing store: render only scenes not yet done.")
@click.option("--allow-blender-change", is_flag=True,
              help="Let --resume/--only add scenes to a store rendered by another Blender version (RGB differs).")
@click.option("--only", default=None, metavar="INDICES",
              help="Re-render these scenes (e.g. 17 or 3,5,10-12) of an existing store from their stored specs.")
@click.option("--frames-per-layout", type=click.IntRange(min=1), default=None,
              help="Render several camera frames per built layout (camera and traffic move); "
                   "same as --set scene.frames_per_layout=N.")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Use an existing Dask cluster (tcp://head:8786).")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="LocalCluster worker processes [default: fill the cores, see --threads-per-worker]; "
                   "0 renders in this process without Dask.")
@click.option("--threads-per-worker", type=click.IntRange(min=1), default=None,
              help="Cycles threads per worker process [default: 1 for light frames (tiny preset: one "
                   "worker per core); up to 4, with fewer workers, for frames of >= 0.5 M pixels x samples (small "
                   "and default presets); 1 with --scheduler].")
@click.option("--blender", "blender_mode", type=click.Choice(["worker", "subprocess"]), default="worker",
              show_default=True, help="worker: bpy imported once per Dask worker and reused; "
                                      "subprocess: a fresh Blender process per task.")
@click.option("--recycle-after", type=click.IntRange(min=0), default=200, show_default=True,
              help="Restart a worker after this many scenes (Blender leaks over long loops); 0 = never.")
@click.option("--max-rss", "max_rss_mib", type=click.FloatRange(min=0), default=3072, show_default=True,
              help="Restart a worker whose memory exceeds this many MiB after a task; 0 = no limit.")
@click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="Retries of a failing task before its scenes go to the store's failure log.")
@click.option("--force", is_flag=True, help=f"Allow --n above {RUN_SCENES:,} (a store holds at most {MAX_SCENES:,}).")
@click.option("--gpus-per-worker", type=click.IntRange(min=0), default=0, show_default=True,
              help="With render.device=gpu (or auto on a GPU machine): LocalCluster worker k renders on GPUs "
                   "k*G..k*G+G-1 only, instead of every worker on every GPU; 0 = all.  Pair with --workers.")
@click.option("--estimate", is_flag=True,
              help="Render 3 scenes of this config in this process and print the run's projected core-hours "
                   "(GPU-hours on a GPU) and disk for --n scenes; writes nothing to --out.")
def scenes(n, out, scenario, preset, seed, config_files, overrides, assets_dir, overwrite, resume,
           allow_blender_change, only, frames_per_layout, scheduler, workers, threads_per_worker, blender_mode,
           recycle_after, max_rss_mib, retries, force, gpus_per_worker, estimate):
    """Render N procedural scenes with RGB, depth, instance, semantic, amodal and normal maps.

    \b
    Runs on a Dask LocalCluster sized to this machine, or on --scheduler's cluster.
    Output may be a local path or an fsspec URL (s3://..., gs://...).

    \b
    Examples:
      gen scenes --n 200 --out street.zarr --scenario street --preset default --seed 7
      gen scenes --n 40000 --out street.zarr --scenario mix
      gen scenes --n 40000 --out s3://bucket/street.zarr --scheduler tcp://head:8786
      gen scenes --n 40000 --out street.zarr --resume
      gen scenes --out street.zarr --only 17 --overwrite
      gen scenes --n 40000 --out street.zarr --scenario mix --estimate    # cost first
    """
    from pipelines import scenes_run
    from scenes.config import build_config

    if resume and overwrite:
        raise UserError("--resume and --overwrite contradict each other")
    if not scheduler or assets_dir:  # this process (or its LocalCluster) runs Blender
        from pipelines.requires import MissingDependency, require
        try:
            require("bpy", "gen scenes")
        except MissingDependency as exc:
            raise UserError(str(exc)) from None
    if n > MAX_SCENES:
        raise UserError(f"--n {n} is more scenes than one store holds (at most {MAX_SCENES:,}); split the run")
    if n > RUN_SCENES and not force:
        raise UserError(f"--n {n} is more than {RUN_SCENES:,} scenes (weeks of rendering, terabytes); "
                        "add --force if that is meant")
    check_outputs([("--out", out, "store")], [*config_files, assets_dir])
    extra = list(overrides)
    if scenario:
        extra.insert(0, f"scene.scenario={scenario}")
    if assets_dir:
        extra.insert(0, f"assets.dir={assets_dir}")
    if frames_per_layout:
        extra.insert(0, f"scene.frames_per_layout={frames_per_layout}")
    cluster = scenes_run.ClusterOptions(scheduler, workers, threads_per_worker, blender_mode, recycle_after,
                                        max_rss_mib, retries, gpus_per_worker=gpus_per_worker)
    try:
        cfg = build_config(preset, config_files, extra)
        if cfg["assets"]["dir"] and only is None:
            cfg = scenes_run.index_assets(cfg)
        if estimate:
            if resume or only is not None:
                raise UserError("--estimate plans a new run: leave out --resume and --only")
            from pipelines.estimate import main_estimate
            main_estimate(n, cfg, seed, threads_per_worker)
            return
        indices = _index_list(only, out) if only is not None else None
        code = scenes_run.run(out, n=n, cfg=cfg, seed=seed, overwrite=overwrite, resume=resume, only=indices,
                              cluster=cluster, allow_blender_change=allow_blender_change).code
    except (ConfigError, scenes_run.RunError, ClusterError, *_store_errors()) as exc:
        raise UserError(_one_line(exc)) from None
    sys.exit(code)


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", required=True, help="Shard store path or fsspec URL.")
@click.option("--samples", type=click.IntRange(min=1), default=1024, show_default=True,
              help="Samples to make (rounded up to whole shards).")
@click.option("--patch", type=click.IntRange(min=16), default=320, show_default=True, help="Patch size in pixels.")
@click.option("--shard-size", type=click.IntRange(min=1), default=256, show_default=True,
              help="Samples per shard (one Dask task, one Zarr shard).")
@click.option("--seed", type=int, default=0, show_default=True, help="Shard j depends only on (seed, j, config).")
@click.option("--mask-mix", default=None, metavar="JSON",
              help='Mask kind weights, default {"object": 0.5, "sky": 0.2, "human": 0.15, "human_holes": 0.15}; '
                   'kinds the sources lack are dropped from the default (said in one line), refused from yours.')
@click.option("--degrade-mix", default=None, metavar="MIX",
              help="Initial-depth degradation families and weights, e.g. 'perturb=2,resolution=1,thin_lost=1' "
                   "(or JSON); families: perturb (the paper's P), edge_bleed, resolution, thin_lost, warp, "
                   "misalign, smooth.  Default: perturb alone.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="LocalCluster worker processes [default: one per core]; 0 = in this process.")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Use an existing Dask cluster.")
@click.option("--overwrite", is_flag=True, help="Replace an existing shard store.")
@click.option("--resume", is_flag=True, help="Build only the shards not yet done.")
@click.option("--force", is_flag=True,
              help=f"Allow --samples above {RUN_SAMPLES:,} (a shard store holds at most {MAX_SAMPLES:,}).")
def shards(sources, out, samples, patch, shard_size, seed, mask_mix, degrade_mix, workers, scheduler, overwrite, resume,
           force):
    """Composited, perturbed training shards for the layered depth refiner (maskdepth §3.1).

    \b
    Each sample: a mask from one scene (object, sky, human, human with holes), two RGB-D
    patches from two others, D' = M*D1 + (1-M)*D2, I' likewise, and P(D') perturbed by
    random dilation/erosion, Gaussian blur and hole filling.  Depth is inverse depth scaled
    to [0, 10]: 10 * min(1, 1 m / z); sky -> 0.

    \b
    Example:
      gen shards street.zarr city.zarr --out train.shards.zarr --samples 200000 --patch 320 --seed 1
    """
    import json as _json

    from pipelines import shards_run
    if resume and overwrite:
        raise UserError("--resume and --overwrite contradict each other")
    if samples > MAX_SAMPLES:
        raise UserError(f"--samples {samples} is more than one shard store holds (at most {MAX_SAMPLES:,})")
    if samples > RUN_SAMPLES and not force:
        raise UserError(f"--samples {samples} is more than {RUN_SAMPLES:,} (terabytes of shards); "
                        "add --force if that is meant")
    check_outputs([("--out", out, "store")], sources)
    over = {"shard_size": shard_size}
    if mask_mix:
        try:
            over["mask_mix"] = _json.loads(mask_mix)
        except ValueError:
            raise UserError(f"--mask-mix is not JSON: {mask_mix}") from None
    if degrade_mix:
        from composer.degrade import DegradeError, parse_mix
        try:
            over["degrade_mix"] = parse_mix(degrade_mix)
        except DegradeError as exc:
            raise UserError(f"--degrade-mix: {exc}") from None
    try:
        cfg = shards_run.shard_config(patch, over)
        code = shards_run.run(out, list(sources), samples=samples, cfg=cfg, seed=seed, overwrite=overwrite,
                              resume=resume, cluster=shards_run.ClusterOptions(scheduler, workers),
                              mix_given=bool(mask_mix)).code
    except (shards_run.RunError, ClusterError, *_store_errors()) as exc:
        raise UserError(_one_line(exc)) from None
    sys.exit(code)


@cli.group(name="import")
def import_():
    """Turn your own data into a scene store that gen shards can use."""


@import_.command()
@click.argument("src", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--out", required=True, help="Scene store path or fsspec URL to write (e.g. mydata.zarr).")
@click.option("--overwrite", is_flag=True, help="Replace an existing store.")
@click.option("--depth-scale", type=click.FloatRange(min=0, min_open=True), default=1000.0, show_default=True,
              help="Integer depth (16-bit PNG/TIFF, integer .npy) is divided by this: 1000 = millimetres. "
                   "Float .npy/.pfm/TIFF depth is taken as metres.")
@click.option("--depth-kind", type=click.Choice(["depth", "inverse"]), default="depth", show_default=True,
              help="inverse: the files hold inverse depth (disparity); depth = 1/value, 0 -> no surface.")
@click.option("--sky-value", type=float, default=None,
              help="Raw file value that also means 'no surface' (besides 0), e.g. 65535.")
def rgbd(src, out, overwrite, depth_scale, depth_kind, sky_value):
    """Import folders of RGB + depth (+ instance masks) as a scene store.

    \b
    DIR/rgb/NAME.png|jpg|jpeg       colour images
    DIR/depth/NAME.png|npy|pfm|tif  depth; 0 (or --sky-value) = no surface -> +inf, sky
    DIR/instance/NAME.png           optional instance ids (0 = background) or colours

    \b
    Files pair by NAME and must share one resolution.  Instances are renumbered 1..K
    (at most 64, the smallest dropped), class "unlabeled", amodal = visible mask.

    \b
    Example:
      gen import rgbd mydata/ --out mydata.zarr
      gen shards mydata.zarr --out train.zarr --mask-mix '{"object": 0.7, "sky": 0.3}'
    """
    import math

    from composer.rgbd_import import RGBDImportError, import_rgbd
    from scenes.store import StoreError

    if sky_value is not None and not math.isfinite(sky_value):
        raise UserError(f"--sky-value must be a finite number, not {sky_value}")
    check_outputs([("--out", out, "store")], [src])
    try:
        n = import_rgbd(src, out, overwrite=overwrite, depth_scale=depth_scale, depth_kind=depth_kind,
                        sky_value=sky_value)
    except (RGBDImportError, StoreError, OSError) as exc:
        raise UserError(_one_line(exc)) from None
    click.echo(f"{out}: imported {n} scenes", err=True)


@cli.command()
@click.argument("store")
def info(store):
    """Counts, classes, completion, resolution and config of a scene or shard store."""
    from pipelines import inspect_store
    try:
        click.echo(inspect_store.info_text(store))
    except _store_errors() as exc:
        raise UserError(_one_line(exc)) from None


@cli.command()
@click.argument("store")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
@click.option("--rows", type=click.IntRange(1, 64), default=4, show_default=True, help="Scenes to show.")
@click.option("--width", type=click.IntRange(64, 2048), default=320, show_default=True, help="Width of one panel.")
@click.option("--overwrite", is_flag=True, help="Replace an existing image at --out.")
def preview(store, out, rows, width, overwrite):
    """Contact sheet of a store, one scene or sample per row.

    \b
    scene store: RGB | depth | instances | amodal outlines
    shard store: I' | M | D' | D1 | D2 | P(D')
    """
    from pipelines import inspect_store
    _new_file(out, (".png", ".jpg", ".jpeg"), overwrite, [store])
    try:
        path = inspect_store.preview(store, out, rows=rows, width=width)
    except _store_errors() as exc:
        raise UserError(_one_line(exc)) from None
    click.echo(f"wrote {path}")


@cli.command()
@click.argument("store")
@click.option("--repair", is_flag=True,
              help="Rebuild damaged done/num_instances chunks from the per-pixel arrays; mark the other damaged "
                   "scenes/shards not done, so that --resume renders or builds exactly those.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="LocalCluster worker processes [default: one per core]; 0 = in this process.")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Use an existing Dask cluster.")
def verify(store, repair, workers, scheduler):
    """Read every finished scene or shard of a store and check its chunks.

    \b
    A chunk that is missing, or whose crc32c does not match its bytes, marks its scene or
    shard damaged.  Exit status 1 when damage is found (0 after --repair).
    \b
    Example:
      gen verify street.zarr --repair && gen scenes --n 200 --out street.zarr --seed 7 --resume
    """
    from pipelines.verify import verify as run_verify
    try:
        code = run_verify(store, repair=repair, workers=workers, scheduler=scheduler)
    except (ClusterError, *_store_errors()) as exc:
        raise UserError(_one_line(exc)) from None
    sys.exit(code)


@cli.group()
def train():
    """Train models from stores (PyTorch; GPU and DDP under torchrun when present)."""


@cli.group(name="eval")
def eval_():
    """Evaluate trained models on held-out scene stores."""


@cli.group(name="export")
def export_():
    """Hand rgsd results to other tools: scene stores in the formats they read, weights.

    \b
      gen export kins            KINS amodal JSON (both layouts) + optional PNG images
      gen export coco            plain COCO instances JSON, visible or amodal masks
      gen export instaorder      InstaOrder occlusion / depth order JSON
      gen export region-support  add RSN region support arrays to the store
      gen export weights         a checkpoint's weights as safetensors + JSON sidecar
    """


def _add_subcommands():
    # The commands live in their own files (this one stays short) and import their machinery
    # inside the command functions, so `gen --help` stays fast.
    from pipelines import cli_amodal, cli_completion, cli_export, cli_refiner, cli_stats
    for command in cli_export.EXPORT_COMMANDS:
        export_.add_command(command)
    export_.add_command(cli_refiner.export_weights)
    eval_.add_command(cli_export.eval_order)
    eval_.add_command(cli_amodal.eval_amodal)
    eval_.add_command(cli_completion.eval_completion)
    eval_.add_command(cli_refiner.eval_refiner)
    train.add_command(cli_amodal.train_amodal)
    train.add_command(cli_completion.train_completion)
    train.add_command(cli_refiner.train_refiner)
    cli.add_command(cli_amodal.segment)
    cli.add_command(cli_completion.complete)
    cli.add_command(cli_refiner.refine)
    cli.add_command(cli_stats.stats)


# Under `python -m pipelines.cli` the importable module registers them (below), not this
# __main__ copy; a spawned worker re-runs this file as __mp_main__ and needs none.
if __name__ not in ("__main__", "__mp_main__"):
    _add_subcommands()


def main():
    cli(prog_name="gen")


if __name__ == "__main__":  # torchrun ... -m pipelines.cli: run the importable module, commands and all
    from pipelines.cli import main as _main
    _main()
