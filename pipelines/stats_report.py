"""``gen stats`` output: stats.json, stats.md and PNG plots for one or more stores side by
side, with KINS's published figures beside rgsd's where a comparable figure exists."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipelines.stats import DEFINITIONS

ROAD_USERS = ("car", "van", "truck", "bus", "pedestrian")  # what KINS annotates (besides cyclists, trams, misc)
VEHICLES = ("car", "van", "truck", "bus")

# KINS (Qi, Jiang, Liu, Shen, Jia: "Amodal Instance Segmentation with KINS Dataset", CVPR 2019;
# 14,991 KITTI images, 8 classes).  Test-split figures as quoted in rgsd issue 16; KINS counts
# only annotated (visible) instances of its road-user classes, so rgsd's comparable figures
# are visible road users.
KINS = {
    "source": "KINS test split (Qi et al., CVPR 2019), figures as quoted in rgsd issue 16",
    "road_users_visible_per_image": 12.3,
    "car_share_of_visible_road_users": 0.688,
    "pedestrian_share_of_visible_road_users": 0.108,
}
PLOTS = ("instances_per_image", "class_mix", "occlusion_rate", "coco_sizes", "distance", "occlusion_degree",
         "parameters", "brightness")


def labels_for(urls: list[str]) -> list[str]:
    names = [Path(u.rstrip("/")).name or u for u in urls]
    return names if len(set(names)) == len(names) else list(urls)


def derived(s: dict) -> dict:
    """The KINS-comparable figures of one store summary."""
    t = s["tables"]
    cls = t["classes"]
    vis = {c: cls[c]["visible"] if c in cls else 0 for c in ROAD_USERS}
    ru = sum(vis.values())
    veh = sum(vis[c] for c in VEHICLES)
    n = max(t["images"], 1)
    return {
        "road_users_visible_per_image": ru / n,
        "car_share_of_visible_road_users": vis["car"] / ru if ru else None,
        "pedestrian_share_of_visible_road_users": vis["pedestrian"] / ru if ru else None,
        "vehicles_per_pedestrian_visible": veh / vis["pedestrian"] if vis["pedestrian"] else None,
    }


def _fmt(v, pct=False) -> str:
    if v is None:
        return "–"
    if pct:
        return f"{100 * v:.1f} %"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def _shares(hist) -> np.ndarray:
    h = np.asarray(hist, float)
    return h / h.sum() if h.sum() else h


def markdown(summaries: list[dict], labels: list[str]) -> str:
    head = "| | " + " | ".join(labels) + " | KINS |"
    sep = "|---" * (len(labels) + 2) + "|"
    L = ["# Dataset statistics (`gen stats`)", "",
         "| store | scenes done | resolution | fx | seed | specs sampled |", "|---|---|---|---|---|---|"]
    for lab, s in zip(labels, summaries):
        fx = (s.get("intrinsics") or {}).get("fx")
        L.append(f"| {lab} | {s['done']}/{s['scenes']} | {s['resolution'][0]}×{s['resolution'][1]} | "
                 f"{_fmt(float(fx)) if fx else '–'} | {s['seed']} | {s['specs']['sampled']} |")
    L += ["", "## Summary", "", head, sep]
    ders = [derived(s) for s in summaries]
    rows = [
        ("images", lambda s, d: s["tables"]["images"], None, False),
        ("instances per image (all, hidden included)", lambda s, d: s["tables"]["instances_per_image"], None, False),
        ("visible instances per image", lambda s, d: s["tables"]["visible_per_image"], None, False),
        ("usable instances per image (≥ 100 visible px at 640×360)", lambda s, d: s["tables"]["usable_per_image"], None, False),
        ("visible road users per image (vehicles + pedestrians)", lambda s, d: d["road_users_visible_per_image"],
         "road_users_visible_per_image", False),
        ("car share of visible road users", lambda s, d: d["car_share_of_visible_road_users"],
         "car_share_of_visible_road_users", True),
        ("pedestrian share of visible road users", lambda s, d: d["pedestrian_share_of_visible_road_users"],
         "pedestrian_share_of_visible_road_users", True),
        ("vehicles per pedestrian (visible)", lambda s, d: d["vehicles_per_pedestrian_visible"], None, False),
        ("occluded share of visible (rate > 0.15)", lambda s, d: s["tables"]["occluded_share_of_visible"], None, True),
        ("wholly hidden share of all", lambda s, d: s["tables"]["wholly_hidden_share"], None, True),
        ("truncated share of all (amodal box on the border)", lambda s, d: s["tables"]["truncated_share"], None, True),
        ("occlusion pairs per image", lambda s, d: s["tables"]["occlusion_pairs_per_image"], None, False),
        ("images without a visible instance", lambda s, d: s["tables"]["images_without_visible_instances"], None, False),
    ]
    for name, get, kins_key, pct in rows:
        vals = [_fmt(get(s, d), pct) for s, d in zip(summaries, ders)]
        L.append(f"| {name} | " + " | ".join(vals) + f" | {_fmt(KINS.get(kins_key), pct) if kins_key else '–'} |")
    L += ["", f"KINS column: {KINS['source']}.", ""]
    classes = sorted({c for s in summaries for c in s["tables"]["classes"]},
                     key=lambda c: -max(s["tables"]["classes"].get(c, {}).get("instances", 0) for s in summaries))
    L += ["## Classes", "", "Per store: instances (share of all) · visible per image · wholly hidden · "
          "occluded of visible · truncated.", "", "| class | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for c in classes:
        cells = []
        for s in summaries:
            x = s["tables"]["classes"].get(c)
            cells.append("–" if not x else
                         f"{x['instances']} ({_fmt(x['share_of_instances'], True)}) · {x['visible_per_image']:.2f}/img · "
                         f"{_fmt(x['wholly_hidden_share'], True)} · {_fmt(x['occluded_share_of_visible'], True)} · "
                         f"{_fmt(x['truncated_share'], True)}")
        L.append(f"| {c} | " + " | ".join(cells) + " |")
    t0 = summaries[0]["tables"]
    L += ["", "## Occlusion rate (share of all instances per 0.1 bin; 1.0 = wholly hidden, in the last bin)", "",
          "| rate | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    edges = t0["occlusion_rate_edges"]
    sh = [_shares(s["tables"]["occlusion_rate_histogram"]) for s in summaries]
    for b in range(10):
        L.append(f"| [{edges[b]:.1f}, {edges[b + 1]:.1f}{']' if b == 9 else ')'} | "
                 + " | ".join(f"{100 * x[b]:.1f} %" for x in sh) + " |")
    L += ["", "## COCO sizes (small < 32², medium < 96², large; share)", "",
          "| measure | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for m in ("modal_area", "amodal_area", "modal_box", "amodal_box"):
        cells = []
        for s in summaries:
            v = s["tables"]["coco_sizes"][m]
            tot = max(sum(v.values()), 1)
            cells.append(" / ".join(f"{100 * v[k] / tot:.1f}" for k in ("small", "medium", "large")) + " %")
        L.append(f"| {m.replace('_', ' ')} (S / M / L) | " + " | ".join(cells) + " |")
    L += ["", "## Distance to the object centre (share per 5 m bin; last bin ≥ 100 m)", "",
          "| metres | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    de = t0["distance_edges_m"]
    sh = [_shares(s["tables"]["distance_histogram"]) for s in summaries]
    for b in range(len(de)):
        name = f"[{de[b]:.0f}, {de[b + 1]:.0f})" if b + 1 < len(de) else f"≥ {de[b]:.0f}"
        L.append(f"| {name} | " + " | ".join(f"{100 * x[b]:.1f} %" for x in sh) + " |")
    L += ["", "## Occlusion graph degree (share of instances; last bin ≥ 10)", "",
          "| degree | " + " | ".join(f"{lab} occluded by / occludes" for lab in labels) + " |",
          "|---" * (len(labels) + 1) + "|"]
    by = [_shares(s["tables"]["occluded_by_degree_histogram"]) for s in summaries]
    of = [_shares(s["tables"]["occluder_degree_histogram"]) for s in summaries]
    for b in range(len(by[0])):
        L.append(f"| {b}{'+' if b == len(by[0]) - 1 else ''} | " +
                 " | ".join(f"{100 * x[b]:.1f} % / {100 * y[b]:.1f} %" for x, y in zip(by, of)) + " |")
    params = sorted({p for s in summaries for p in s["specs"]["parameters"]})
    if params:
        L += ["", "## Scene parameters (sampled specs: min / mean / max)", "",
              "| parameter | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        for p in params:
            cells = []
            for s in summaries:
                v = s["specs"]["parameters"].get(p)
                cells.append("–" if not v else f"{min(v):.3g} / {np.mean(v):.3g} / {max(v):.3g}")
            L.append(f"| {p} | " + " | ".join(cells) + " |")
        L += ["", "Scenarios (sampled): " + "; ".join(
            f"{lab}: " + ", ".join(f"{k} {v}" for k, v in sorted(s['specs']['scenarios'].items()))
            for lab, s in zip(labels, summaries))]
    if any("brightness" in s for s in summaries):
        L += ["", "## Brightness (mean luma per frame, `--pixels`)", "",
              "| | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        for key, name, pct in (("mean", "mean", False), ("dark_share", "frames with luma < 0.12", True),
                               ("daylight_dark_share", "daylight frames (sampled specs) with luma < 0.12", True)):
            L.append(f"| {name} | " + " | ".join(_fmt(s["brightness"][key], pct) if "brightness" in s else "–"
                                                for s in summaries) + " |")
    L += ["", "## Definitions", ""] + [f"* **{k}**: {v}" for k, v in DEFINITIONS.items()]
    return "\n".join(L) + "\n"


def _bars(ax, xs, series, labels, width=0.8):
    k = len(series)
    w = width / k
    x = np.arange(len(xs))
    for j, (ys, lab) in enumerate(zip(series, labels)):
        ax.bar(x - width / 2 + w * (j + 0.5), ys, w, label=lab)
    ax.set_xticks(x, xs, rotation=45 if len(xs) > 8 else 0, ha="right" if len(xs) > 8 else "center", fontsize=8)
    ax.legend(fontsize=8)


def plots(summaries: list[dict], labels: list[str], out: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []

    def save(fig, name, bottom=0.2):
        p = out / f"{name}.png"
        # fixed margins, not tight_layout: the layout pass costs more than drawing (40k-scene budget)
        fig.subplots_adjust(left=0.08, right=0.98, bottom=bottom, top=0.9, wspace=0.25, hspace=0.6)
        import io

        from scenes.atomic import write_bytes
        buf = io.BytesIO()
        fig.savefig(buf, dpi=90, format="png")
        plt.close(fig)
        write_bytes(p, buf.getvalue())
        written.append(p)

    ts = [s["tables"] for s in summaries]
    fig, ax = plt.subplots(figsize=(9, 4))
    m = max(len(t["visible_per_image_histogram"]) for t in ts)
    _bars(ax, [str(i) for i in range(m)],
          [np.pad(_shares(t["visible_per_image_histogram"]), (0, m - len(t["visible_per_image_histogram"]))) for t in ts],
          labels)
    ax.set(xlabel="visible instances in the image", ylabel="share of images", title="Visible instances per image")
    save(fig, "instances_per_image")

    classes = sorted({c for t in ts for c in t["classes"]})
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4), width_ratios=[3, 1])
    series = [[t["classes"].get(c, {}).get("share_of_instances") or 0 for c in classes] for t in ts]
    _bars(ax, classes, series, labels)
    ax.set(ylabel="share of all instances", title="Class mix")
    ders = [derived(s) for s in summaries]
    names = ["car", "pedestrian"]
    _bars(ax2, names, [[d[f"{c}_share_of_visible_road_users"] or 0 for c in names] for d in ders]
          + [[KINS[f"{c}_share_of_visible_road_users"] for c in names]], labels + ["KINS test"])
    ax2.set_title("share of visible road users", fontsize=9)
    save(fig, "class_mix")

    fig, ax = plt.subplots(figsize=(8, 4))
    edges = ts[0]["occlusion_rate_edges"]
    _bars(ax, [f"{edges[b]:.1f}" for b in range(10)], [_shares(t["occlusion_rate_histogram"]) for t in ts], labels)
    ax.axvline(1.0, color="k", ls=":", lw=1)  # rate 0.15 falls inside the [0.1, 0.2) bin
    ax.set(xlabel="occlusion rate bin (lower edge; 1.0 = wholly hidden in the last bin)", ylabel="share of instances",
           title="Occlusion rate")
    save(fig, "occlusion_rate")

    fig, axes = plt.subplots(1, 4, figsize=(12, 3.5), sharey=True)
    for ax, mname in zip(axes, ("modal_area", "amodal_area", "modal_box", "amodal_box")):
        _bars(ax, ["S", "M", "L"], [_shares(list(t["coco_sizes"][mname].values())) for t in ts], labels)
        ax.set_title(mname.replace("_", " "), fontsize=9)
    axes[0].set_ylabel("share of instances")
    save(fig, "coco_sizes")

    fig, ax = plt.subplots(figsize=(9, 4))
    de = ts[0]["distance_edges_m"]
    _bars(ax, [f"{x:.0f}" for x in de], [_shares(t["distance_histogram"]) for t in ts], labels)
    ax.set(xlabel="distance bin (lower edge, m; last ≥ 100 m)", ylabel="share of instances", title="Distance")
    save(fig, "distance")

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    for ax, key, title in zip(axes, ("occluded_by_degree_histogram", "occluder_degree_histogram"),
                              ("occluded by k instances", "occludes k instances")):
        n = len(ts[0][key])
        _bars(ax, [str(i) if i < n - 1 else f"{i}+" for i in range(n)], [_shares(t[key]) for t in ts], labels)
        ax.set_title(title, fontsize=9)
    axes[0].set_ylabel("share of instances")
    save(fig, "occlusion_degree")

    params = [p for p in sorted({p for s in summaries for p in s["specs"]["parameters"]})
              if len({v for s in summaries for v in s["specs"]["parameters"].get(p, [])}) > 1]  # constants: in stats.md
    if params:
        cols = 4
        rows = -(-len(params) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(12, 2.4 * rows), squeeze=False)
        for ax, p in zip(axes.flat, params):
            vals = [s["specs"]["parameters"].get(p, []) for s in summaries]
            allv = np.concatenate([np.asarray(v, float) for v in vals if v])
            lo, hi = float(allv.min()), float(allv.max())
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 11)
            for v, lab in zip(vals, labels):
                if v:
                    ax.hist(v, bins=bins, histtype="step", density=True, label=lab)
            ax.set_title(p, fontsize=8)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(params):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7)
        save(fig, "parameters", bottom=0.06)

    if any("brightness" in s for s in summaries):
        fig, ax = plt.subplots(figsize=(8, 4))
        for s, lab in zip(summaries, labels):
            if "brightness" in s:
                b = s["brightness"]
                ax.stairs(_shares(b["histogram"]), b["edges"], label=lab)
        ax.axvline(0.12, color="k", ls=":", lw=1)
        ax.set(xlabel="mean luma of the frame", ylabel="share of frames", title="Brightness")
        ax.legend(fontsize=8)
        save(fig, "brightness")
    return written


def write(summaries: list[dict], out: str, with_plots: bool = True) -> list[Path]:
    """stats.json, stats.md, brightness_<label>.csv (with --pixels) and the PNGs in ``out``."""
    from scenes.atomic import write_text
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    labels = labels_for([s["store"] for s in summaries])
    written = []
    slim = []
    for lab, s in zip(labels, summaries):
        s = dict(s)
        if "brightness" in s:
            b = dict(s["brightness"])
            p = d / f"brightness_{lab.replace('/', '_')}.csv"
            write_text(p, "scene,mean_luma\n" + "".join(f"{i},{v:.6f}\n" for i, v in zip(b.pop("scenes"), b.pop("mean_luma"))))
            written.append(p)
            s["brightness"] = b
        s["kins_comparable"] = derived(s)
        slim.append(s)
    p = d / "stats.json"
    write_text(p, json.dumps({"kins": KINS, "definitions": DEFINITIONS, "stores": slim}, indent=1))
    written.append(p)
    p = d / "stats.md"
    write_text(p, markdown(slim, labels))
    written.append(p)
    if with_plots:
        written += plots(slim, labels, d)
    return written
