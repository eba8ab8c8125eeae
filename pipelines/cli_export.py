"""``gen export kins|coco|instaorder|region-support`` and ``gen eval order`` (registered on
the ``export`` and ``eval`` groups of pipelines/cli.py)."""
from __future__ import annotations

import click


def _user_error(exc):
    from pipelines.cli_base import UserError
    return UserError(str(exc))


@click.command("order")
@click.argument("pred", metavar="PRED.json", type=click.Path(dir_okay=False))
@click.option("--scenes", "scene_store", required=True, help="The scene store the orders are about.")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Also write the figures as JSON here.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
def eval_order(pred, scene_store, out, overwrite):
    """Occlusion-order recall/precision/F1 and depth-order WHDR (InstaOrder supp. A1).

    \b
    PRED.json has the structure gen export instaorder writes (InstaOrder's release):
    per image, image_id, instance_ids and "occlusion"/"depth" order strings.  WHDR is
    split into distinct (no occlusion between the two), overlap and all pairs.

    \b
    Example:
      gen export instaorder street.zarr --out street_order.json
      gen eval order my_predictions.json --scenes street.zarr
    """
    import json as _json

    from pipelines.cli_checks import check_outputs
    from pipelines.export_common import ExportError
    from pipelines.export_order import evaluate, report_text
    from scenes.atomic import write_text
    check_outputs([("--out", out, "file")], [pred, scene_store], overwrite)
    try:
        m = evaluate(pred, scene_store)
    except ExportError as exc:
        raise _user_error(exc) from None
    if out:
        write_text(out, _json.dumps(m, indent=1))
    click.echo(report_text(m))


def _export_options(f):
    for opt in reversed([
        click.argument("store"),
        click.option("--out", required=True, type=click.Path(dir_okay=False), help="JSON file to write."),
        click.option("--images-dir", default=None, type=click.Path(file_okay=False),
                     help="Also write each scene's RGB here as {scene:06d}.png (the file_name in the JSON)."),
        click.option("--image-format", type=click.Choice(["png", "jpg"]), default="png", show_default=True),
        click.option("--classes", default=None, metavar="NAMES",
                     help="Comma-separated classes to export (e.g. car,pedestrian) [default: the store's "
                          "instance classes].  Category ids are 1..K in this order (each category's rgsd_class "
                          "is its index in the store's class table)."),
        click.option("--table-ids", is_flag=True,
                     help="Category id = 1 + index in the store's class table instead (sparse; the same in every "
                          "export, as rgsd wrote them before)."),
        click.option("--depth", type=click.Choice(["png", "exr"]), default=None,
                     help="With --images-dir: also each scene's depth, {scene:06d}.depth.png (uint16 millimetres, "
                          "0 = sky or beyond 65.5 m) or .exr (float32 metres in channel Z, inf = sky)."),
        click.option("--normals", type=click.Choice(["png", "exr"]), default=None,
                     help="With --images-dir: also camera-space normals, {scene:06d}.normals.png (uint16 RGB = "
                          "(n + 1) / 2 * 65535, 0 = no surface) or .exr (float32 RGB = n)."),
        click.option("--scenes", default=None, metavar="INDICES", help="Scenes to export, e.g. 0-999 [default: all done]."),
        click.option("--polygons", is_flag=True, help="Polygons instead of compressed RLE, for loaders that need them."),
        click.option("--workers", type=click.IntRange(min=0), default=None,
                     help="Dask LocalCluster worker processes [default: one per core]; 0 = in this process."),
        click.option("--scheduler", default=None, metavar="ADDRESS", help="Use an existing Dask cluster."),
        click.option("--overwrite", is_flag=True, help="Replace an existing --out (and write into a non-empty --images-dir)."),
    ]):
        f = opt(f)
    return f


def _run_export(kind, store, out, masks, **kw):
    from pipelines.cli_checks import check_outputs
    from pipelines.export_coco import export
    from pipelines.export_common import ExportError
    check_outputs([("--out", out, "file"), ("--images-dir", kw["images_dir"], "dir")], [store], kw["overwrite"])
    try:
        export(store, out, kind=kind, masks=masks, **kw)
    except ExportError as exc:
        raise _user_error(exc) from None


@click.command("kins")
@_export_options
def export_kins(store, out, **kw):
    """KINS-style amodal instance JSON (pycocotools / Detectron2 / mmdetection / KINS code).

    \b
    Every annotation carries KINS's original keys (a_segm, i_segm, a_bbox, i_bbox, a_area,
    i_area, oco_id, ico_id) and its 2020 update's COCO-compatible ones (segmentation, bbox,
    area = amodal; inmodal_seg, inmodal_bbox = visible), plus occlude_rate, category_id and
    iscrowd.  Masks are COCO compressed RLE; wholly hidden instances have an empty visible mask.

    \b
    Example:
      gen export kins street.zarr --out street_kins.json --images-dir street_images/ --classes car,pedestrian
    """
    _run_export("kins", store, out, "amodal", **kw)


@click.command("coco")
@_export_options
@click.option("--masks", type=click.Choice(["visible", "amodal"]), default="visible", show_default=True,
              help="visible: modal masks, wholly hidden instances left out; amodal: whole silhouettes.")
def export_coco(store, out, masks, **kw):
    """Plain COCO instances JSON with visible or amodal masks.

    \b
    Example:
      gen export coco street.zarr --out street_coco.json --masks visible
    """
    _run_export("coco", store, out, masks, **kw)


@click.command("instaorder")
@click.argument("store")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="JSON file to write.")
@click.option("--classes", default=None, metavar="NAMES", help="Comma-separated classes [default: instance classes].")
@click.option("--scenes", default=None, metavar="INDICES", help="Scenes to export, e.g. 0-999 [default: all done].")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
def export_instaorder(store, out, classes, scenes, overwrite):
    """Occlusion and depth orders of every instance pair, in InstaOrder's JSON structure.

    \b
    instance_ids are the annotation ids of gen export kins/coco for the same store, so
    the two files pair up as InstaOrder_{split}.json and instances_{split}.json do.

    \b
    Example:
      gen export instaorder street.zarr --out street_order.json
    """
    from pipelines.cli_checks import check_outputs
    from pipelines.export_common import ExportError
    from pipelines.export_order import export
    check_outputs([("--out", out, "file")], [store], overwrite)
    try:
        export(store, out, classes=classes, scenes=scenes, overwrite=overwrite)
    except ExportError as exc:
        raise _user_error(exc) from None


@click.command("region-support")
@click.argument("store")
@click.option("--scenes", default=None, metavar="INDICES", help="Scenes to process [default: all done].")
@click.option("--bins", type=click.IntRange(min=1), default=10, show_default=True,
              help="Depth bin width = (max - min depth of the image) / BINS (RSN Algorithm 1 uses 10).")
@click.option("--connectivity", type=click.Choice(["4", "8"]), default="8", show_default=True,
              help="Pixel neighbourhood of a connected region.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Dask LocalCluster worker processes [default: one per core]; 0 = in this process.")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Use an existing Dask cluster.")
@click.option("--overwrite", is_flag=True, help="Recompute every scene (replaces existing region support).")
def export_region_support(store, scenes, bins, connectivity, workers, scheduler, overwrite):
    """Add RSN region support (Algorithm 1) to a scene store: region_support + region_id.

    \b
    Connected regions of each semantic class, split into depth bins where a region's
    depth spans two bins or more, each labelled by its mean depth (float32 metres).
    Resumable: rerunning computes only the scenes not yet written.

    \b
    Example:
      gen export region-support street.zarr
    """
    from pipelines.export_common import ExportError
    from pipelines.region_support_run import run
    try:
        run(store, scenes=scenes, bins=bins, connectivity=int(connectivity), workers=workers, scheduler=scheduler,
            overwrite=overwrite)
    except ExportError as exc:
        raise _user_error(exc) from None


EXPORT_COMMANDS = (export_kins, export_coco, export_instaorder, export_region_support)
