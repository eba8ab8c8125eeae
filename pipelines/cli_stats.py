"""``gen stats``: its click definition, registered on the ``gen`` group by pipelines/cli.py."""
from __future__ import annotations

import click

from pipelines.cli_base import Command, UserError


@click.command("stats", cls=Command)
@click.argument("stores", nargs=-1, required=True)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Report folder (stats.json, stats.md, PNGs).")
@click.option("--pixels", is_flag=True, help="Also read every frame's RGB for per-scene brightness (slower: one read per scene).")
@click.option("--spec-sample", type=click.IntRange(min=0), default=1024, show_default=True,
              help="Scene specs read for the camera/lighting histograms (in a few contiguous runs); 0 = all.")
@click.option("--no-plots", is_flag=True, help="JSON and Markdown only.")
@click.option("--overwrite", is_flag=True, help="Write into a report folder that already holds files.")
def stats(stores, out, pixels, spec_sample, no_plots, overwrite):
    """What a dataset paper reports, for one scene store or several side by side.

    \b
    From the per-instance tables (no per-pixel reads unless --pixels): instances per image
    by class, class mix, occlusion-rate histogram (0.1 bins; occluded = rate > 0.15),
    wholly hidden and truncated instances, COCO size buckets of modal and amodal masks and
    boxes, distance histogram, occlusion-graph degree; camera and lighting parameters from
    a sample of the specs; with --pixels, each frame's mean luma.  KINS's published figures
    stand beside rgsd's where they compare.  Definitions are written into stats.md.

    \b
    Examples:
      gen stats street.zarr --out report/
      gen stats day.zarr variety.zarr --out compare/ --pixels
    """
    from pathlib import Path

    from pipelines.cli_checks import check_outputs, folder_files, removed_if_failed
    from pipelines.stats import StatsError, open_for_stats, summarise

    check_outputs([("--out", out, "dir"), *folder_files("--out", out, ["stats.json", "stats.md"])], stores,
                  overwrite=True)  # the folder's own rule, below
    d = Path(out)
    if d.exists() and any(d.iterdir()) and not overwrite:
        raise UserError(f"{out} already holds files (use --overwrite to write the report into it)")
    try:
        for u in stores:  # every store checked before anything is read at length or written
            open_for_stats(u)
        summaries = [summarise(u, pixels=pixels, spec_sample=spec_sample) for u in stores]
    except StatsError as exc:
        raise UserError(str(exc)) from None
    with_plots = not no_plots
    if with_plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            click.echo("warning: matplotlib is not installed: no PNG plots (pip install matplotlib)", err=True)
            with_plots = False
    from pipelines.stats_report import derived, write
    with removed_if_failed(out):
        write(summaries, out, with_plots=with_plots)
    for s in summaries:
        t, k = s["tables"], derived(s)
        occluded, hidden = 100 * (t["occluded_share_of_visible"] or 0), 100 * (t["wholly_hidden_share"] or 0)
        click.echo(f"{s['store']}: {t['images']} images, {t['visible_per_image']:.1f} visible instances/image "
                   f"({k['road_users_visible_per_image']:.1f} road users), occluded {occluded:.1f} %, "
                   f"wholly hidden {hidden:.1f} %")
    click.echo(f"wrote {Path(out) / 'stats.md'}")
