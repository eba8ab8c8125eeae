"""``gen stats``: the figures a dataset paper reports, computed from a scene store's
per-instance tables in blocks of scenes (``SceneStore.table``), so a 40,000-scene store is
read in a few bulk requests per table and never pixel by pixel (unless ``pixels=True``).

Definitions (written into every report, see ``DEFINITIONS``):

* an *instance* is a row ``k < num_instances`` of a done scene: every vehicle, pedestrian,
  sign, light or pole whose amodal mask reaches at least one pixel, hidden or not;
* *occlusion rate* = 1 - modal_area / amodal_area, computed on the integer areas (so bin
  edges are exact); *occluded* = rate > 0.15 among visible instances (the threshold amodal
  papers use); *wholly hidden* = modal_area 0;
* *truncated* = the amodal box touches the image border (x0 = 0, y0 = 0, x1 = W or y1 = H;
  boxes are inclusive-exclusive).  Amodal masks stop at the frame, so an object whose
  silhouette reaches the border almost always continues past it: this is KITTI's
  "truncation > 0", without KITTI's estimate of how much is outside;
* COCO size buckets: small < 32^2 px, medium < 96^2, large >= 96^2, of the modal and amodal
  mask areas and of the modal and amodal box areas (width x height), at the store's own
  resolution (COCO's buckets are absolute pixel counts);
* *occlusion-graph degree*: occluded-by degree of b = number of instances a with
  occlusion[a, b] (a visible inside b's amodal mask); occluder degree of a = number of b;
* *brightness* (``--pixels``): mean over the frame of the Rec. 709 luma of the stored sRGB
  values, Y' = 0.2126 R' + 0.7152 G' + 0.0722 B', R', G', B' in [0, 1].
"""
from __future__ import annotations

import json
import math

import numpy as np

from scenes.store import StoreError, open_store

BLOCK = 4096  # scenes per bulk read
OCCLUDED_RATE = 0.15
OCCLUDED_NUM, OCCLUDED_DEN = 3, 20  # 0.15 as a fraction: the test rate > 0.15 on integer areas
SMALL, MEDIUM = 32 ** 2, 96 ** 2
DIST_EDGES = [float(x) for x in range(0, 105, 5)]  # metres; one more bin for >= 100 m and one for NaN
DEGREE_MAX = 10  # last degree bin is ">= 10"
USABLE_PX = 100  # instances with >= 100 visible pixels at 640x360 (issue 16): what a detector can learn from
USABLE_AT = 640 * 360
LUMA = np.array([0.2126, 0.7152, 0.0722])
DARK = 0.12  # issue 16's "unusably dark" frame
BRIGHT_EDGES = [round(0.05 * i, 2) for i in range(21)]
SPEC_SAMPLE = 1024
SPEC_WINDOWS = 8  # specs are read in a few contiguous runs: on chunked layouts a run is a chunk or two

DEFINITIONS = {
    "instance": "row k < num_instances of a done scene: every object whose amodal mask covers a pixel",
    "occlusion_rate": "1 - modal_area / amodal_area (integer areas)",
    "occluded": f"visible instance with occlusion rate > {OCCLUDED_RATE}",
    "wholly_hidden": "modal_area == 0 (amodal_area > 0)",
    "truncated": "amodal box touches the image border: x0 == 0 or y0 == 0 or x1 == W or y1 == H",
    "coco_sizes": f"small < {SMALL} px, medium < {MEDIUM} px, large >= {MEDIUM} px (areas in store pixels)",
    "occluded_by_degree": "number of instances a with occlusion[a, b] for instance b",
    "occluder_degree": "number of instances b with occlusion[a, b] for instance a",
    "usable": f"instance with >= {USABLE_PX} visible px at 640x360: modal_area >= ceil({USABLE_PX} W H / (640 360)) "
              "in store pixels",
    "brightness": "mean Rec. 709 luma of the stored sRGB values in [0, 1]",
}

TABLE_NAMES = ["num_instances", "instance_class", "modal_box", "amodal_box", "modal_area", "amodal_area",
               "distance", "occlusion"]


class StatsError(ValueError):
    """A store gen stats cannot summarise (one line)."""


def open_for_stats(url: str):
    """The scene store at ``url`` and its done flags; a shard store, an empty store or
    anything else unusable is a StatsError whose message is one line."""
    try:
        st = open_store(url)
    except StoreError as exc:
        raise StatsError(str(exc)) from None
    done = np.asarray(st.done(), bool)
    if not done.any():
        raise StatsError(f"{url} has no finished scenes ({st.n} planned): nothing to summarise")
    return st, done


def _buckets(area: np.ndarray) -> list[int]:
    return [int((area < SMALL).sum()), int(((area >= SMALL) & (area < MEDIUM)).sum()), int((area >= MEDIUM).sum())]


class Accumulator:
    """Counters over blocks of scenes; ``result()`` turns them into the report's numbers."""

    def __init__(self, classes: list[str], width: int, height: int, kmax: int):
        self.classes, self.w, self.h, self.kmax = list(classes), int(width), int(height), int(kmax)
        c = len(classes)
        self.images = 0
        self.per_image = np.zeros(kmax + 1, np.int64)  # histogram of instances per image
        self.per_image_visible = np.zeros(kmax + 1, np.int64)
        self.per_image_usable = np.zeros(kmax + 1, np.int64)
        self.cls_all = np.zeros(c, np.int64)
        self.cls_visible = np.zeros(c, np.int64)
        self.cls_hidden = np.zeros(c, np.int64)
        self.cls_occluded = np.zeros(c, np.int64)
        self.cls_truncated = np.zeros(c, np.int64)
        self.cls_usable = np.zeros(c, np.int64)
        self.cls_images = np.zeros(c, np.int64)  # images holding at least one instance of the class
        self.rate_hist = np.zeros(10, np.int64)  # all instances
        self.rate_hist_visible = np.zeros(10, np.int64)
        self.sizes = {k: np.zeros(3, np.int64) for k in ("modal_area", "amodal_area", "modal_box", "amodal_box")}
        self.dist_hist = np.zeros(len(DIST_EDGES) + 1, np.int64)  # [0,5), ..., [95,100), >=100, NaN last
        self.occluded_by = np.zeros(DEGREE_MAX + 1, np.int64)
        self.occluder = np.zeros(DEGREE_MAX + 1, np.int64)
        self.pairs = 0
        self.usable_px = max(1, math.ceil(USABLE_PX * self.w * self.h / USABLE_AT))

    def add(self, t: dict, done: np.ndarray) -> None:
        """One block: ``t`` maps TABLE_NAMES to arrays with the block's scenes first."""
        k = np.where(done, t["num_instances"].astype(np.int64), 0)
        kmax = t["instance_class"].shape[1]
        valid = np.arange(kmax)[None, :] < k[:, None]  # (scenes, slots)
        self.images += int(done.sum())
        cls = t["instance_class"].astype(np.int64)[valid]
        modal = t["modal_area"].astype(np.int64)[valid]
        amodal = t["amodal_area"].astype(np.int64)[valid]
        visible, hidden = modal > 0, modal == 0
        usable = modal >= self.usable_px
        # rate in tenths, exact on integers: floor(10 * (amodal - modal) / amodal), 1.0 in the last bin
        a = np.maximum(amodal, 1)
        tenth = np.minimum((10 * (amodal - modal)) // a, 9)
        occluded = visible & (OCCLUDED_DEN * (amodal - modal) > OCCLUDED_NUM * amodal)
        box = t["amodal_box"].astype(np.int64)[valid]
        truncated = (box[:, 2] > box[:, 0]) & ((box[:, 0] <= 0) | (box[:, 1] <= 0) | (box[:, 2] >= self.w)
                                               | (box[:, 3] >= self.h))
        c = len(self.classes)
        for arr, mask in ((self.cls_all, None), (self.cls_visible, visible), (self.cls_hidden, hidden),
                          (self.cls_occluded, occluded), (self.cls_truncated, truncated), (self.cls_usable, usable)):
            arr += np.bincount(cls if mask is None else cls[mask], minlength=c)[:c]
        self.rate_hist += np.bincount(tenth, minlength=10)
        self.rate_hist_visible += np.bincount(tenth[visible], minlength=10)
        # per-image counts: scatter instance flags back onto the (scene, slot) grid
        scene_of = np.nonzero(valid)[0]
        nb = len(done)
        for hist, mask in ((self.per_image, None), (self.per_image_visible, visible), (self.per_image_usable, usable)):
            per = np.bincount(scene_of if mask is None else scene_of[mask], minlength=nb)[done]
            hist += np.bincount(per, minlength=self.kmax + 1)[: self.kmax + 1]
        present = np.zeros((nb, c), bool)
        present[scene_of, cls] = True
        self.cls_images += present.sum(0)
        mb = t["modal_box"].astype(np.int64)[valid]
        self.sizes["modal_area"] += _buckets(modal[visible])
        self.sizes["amodal_area"] += _buckets(amodal)
        self.sizes["modal_box"] += _buckets(((mb[:, 2] - mb[:, 0]) * (mb[:, 3] - mb[:, 1]))[visible])
        self.sizes["amodal_box"] += _buckets((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]))
        d = t["distance"].astype(np.float64)[valid]
        fin = np.isfinite(d)
        bins = np.minimum(np.floor(np.maximum(d[fin], 0) / 5.0).astype(np.int64), len(DIST_EDGES) - 1)
        self.dist_hist[: len(DIST_EDGES)] += np.bincount(bins, minlength=len(DIST_EDGES))
        self.dist_hist[-1] += int((~fin).sum())
        occ = np.array(t["occlusion"], bool)  # a copy: masked in place
        occ &= valid[:, :, None]
        occ &= valid[:, None, :]
        u8 = occ.view(np.uint8)  # degrees <= 1023 slots would overflow uint8 only past 255 instances
        acc = np.uint8 if kmax < 256 else np.int32
        by = u8.sum(1, dtype=acc)[valid].astype(np.int64)  # column sums: how many occlude b
        of = u8.sum(2, dtype=acc)[valid].astype(np.int64)  # row sums: how many a occludes
        self.occluded_by += np.bincount(np.minimum(by, DEGREE_MAX), minlength=DEGREE_MAX + 1)
        self.occluder += np.bincount(np.minimum(of, DEGREE_MAX), minlength=DEGREE_MAX + 1)
        self.pairs += int(occ.sum())

    def result(self) -> dict:
        n = max(self.images, 1)
        total = int(self.cls_all.sum())
        vis = int(self.cls_visible.sum())
        used = [i for i in range(len(self.classes)) if self.cls_all[i]]

        def share(x, of):
            return float(x) / of if of else None

        per_class = {
            self.classes[i]: {
                "instances": int(self.cls_all[i]), "share_of_instances": share(self.cls_all[i], total),
                "visible": int(self.cls_visible[i]), "share_of_visible": share(self.cls_visible[i], vis),
                "per_image": self.cls_all[i] / n, "visible_per_image": self.cls_visible[i] / n,
                "usable_per_image": self.cls_usable[i] / n, "images_with": int(self.cls_images[i]),
                "wholly_hidden": int(self.cls_hidden[i]), "wholly_hidden_share": share(self.cls_hidden[i], self.cls_all[i]),
                "occluded_share_of_visible": share(self.cls_occluded[i], self.cls_visible[i]),
                "truncated_share": share(self.cls_truncated[i], self.cls_all[i]),
            } for i in used}
        counts = np.arange(self.kmax + 1)
        return {
            "images": self.images, "usable_min_px": self.usable_px,
            "instances": total, "visible_instances": vis, "usable_instances": int(self.cls_usable.sum()),
            "instances_per_image": total / n, "visible_per_image": vis / n,
            "usable_per_image": int(self.cls_usable.sum()) / n,
            "per_image_histogram": _trim(self.per_image), "visible_per_image_histogram": _trim(self.per_image_visible),
            "usable_per_image_histogram": _trim(self.per_image_usable),
            "max_instances_in_an_image": int(counts[self.per_image > 0].max()) if self.per_image.any() else 0,
            "images_without_visible_instances": int(self.per_image_visible[0]),
            "classes": per_class,
            "wholly_hidden": int(self.cls_hidden.sum()), "wholly_hidden_share": share(self.cls_hidden.sum(), total),
            "occluded": int(self.cls_occluded.sum()), "occluded_share_of_visible": share(self.cls_occluded.sum(), vis),
            "truncated": int(self.cls_truncated.sum()), "truncated_share": share(self.cls_truncated.sum(), total),
            "occlusion_rate_edges": [round(0.1 * i, 1) for i in range(11)],
            "occlusion_rate_histogram": self.rate_hist.tolist(),
            "occlusion_rate_histogram_visible": self.rate_hist_visible.tolist(),
            "coco_sizes": {k: dict(zip(("small", "medium", "large"), v.tolist())) for k, v in self.sizes.items()},
            "distance_edges_m": DIST_EDGES,
            "distance_histogram": self.dist_hist[: len(DIST_EDGES)].tolist(),  # last of these bins is >= 100 m
            "distance_missing": int(self.dist_hist[-1]),
            "occluded_by_degree_histogram": self.occluded_by.tolist(),
            "occluder_degree_histogram": self.occluder.tolist(),
            "occlusion_pairs_per_image": self.pairs / n,
        }


def _trim(hist: np.ndarray) -> list[int]:
    nz = np.flatnonzero(hist)
    return hist[: (nz[-1] + 1 if len(nz) else 1)].tolist()


def _flat_numbers(d: dict, prefix: str, out: dict) -> None:
    for key, v in d.items():
        name = f"{prefix}.{key}"
        if isinstance(v, bool):
            out.setdefault(name, []).append(float(v))
        elif isinstance(v, (int, float)) and math.isfinite(v):
            out.setdefault(name, []).append(float(v))
        elif isinstance(v, dict):
            _flat_numbers(v, name, out)


def spec_sample_indices(done_idx: np.ndarray, sample: int) -> np.ndarray:
    """Up to ``sample`` done scenes in SPEC_WINDOWS contiguous runs spread over the store."""
    if sample <= 0 or sample >= len(done_idx):
        return done_idx
    w = min(SPEC_WINDOWS, sample)
    run = sample // w
    starts = np.linspace(0, len(done_idx) - run, w).astype(np.int64)
    return np.unique(np.concatenate([done_idx[s:s + run] for s in starts]))


def spec_header(text: str) -> dict:
    """A spec's JSON without its ``objects`` list (~99 % of its bytes, and nothing gen stats
    reads): the text before ``,"objects":`` and after the list's closing ``],"version":``
    parsed alone, falling back to the whole text when that split does not parse."""
    i, j = text.find(',"objects":'), text.rfind('],"version":')
    if 0 < i < j:
        try:
            return {**json.loads(text[:i] + "}"), **json.loads("{" + text[j + 2:])}
        except ValueError:
            pass
    return json.loads(text)


def spec_values(st, indices) -> tuple[dict, dict, dict]:
    """Numeric spec parameters of the sampled scenes: camera (plus its height, position z),
    lighting and any other top-level table a newer spec adds (weather, lens, ...), each a
    list of values; the scenario counts; and scene -> sun elevation for the brightness split."""
    values: dict = {}
    scenarios: dict = {}
    sun: dict = {}
    for i in indices:
        d = spec_header(st.spec(int(i)))
        scenarios[d.get("scenario", "?")] = scenarios.get(d.get("scenario", "?"), 0) + 1
        cam = d.get("camera") or {}
        if isinstance(cam.get("position"), list) and len(cam["position"]) == 3:
            values.setdefault("camera.height_m", []).append(float(cam["position"][2]))
        for key, v in d.items():
            if isinstance(v, dict):
                _flat_numbers(v, key, values)
        elev = (d.get("lighting") or {}).get("sun_elevation_deg")
        if isinstance(elev, (int, float)):
            sun[int(i)] = float(elev)
    drop = {"camera.width", "camera.height"}  # constant per store: in the store summary instead
    return {k: v for k, v in values.items() if k not in drop}, scenarios, sun


def brightness(st, done_idx, progress=None) -> np.ndarray:
    out = np.empty(len(done_idx), np.float64)
    for j, i in enumerate(done_idx):
        rgb = np.asarray(st.read_scene(int(i), ["rgb"])["rgb"], np.float64)
        out[j] = float((rgb[..., :3] @ LUMA).mean() / 255.0)
        if progress:
            progress(1)
    return out


def summarise(url: str, pixels: bool = False, spec_sample: int = SPEC_SAMPLE, progress: bool = True) -> dict:
    """Every figure of one store (the report's per-store section)."""
    import sys

    from tqdm import tqdm
    st, done = open_for_stats(url)
    a = st.attrs
    res = a.get("resolution", {})
    w, h = int(res.get("width", 0)), int(res.get("height", 0))
    acc = Accumulator(a["classes"], w, h, st.max_instances)
    n = st.n
    done_idx = np.flatnonzero(done)
    steps = math.ceil(n / BLOCK) + (len(done_idx) if pixels else 0)
    with tqdm(total=steps, desc=f"stats {url}", unit="step", file=sys.stderr, delay=2.0, disable=not progress,
              dynamic_ncols=True) as bar:
        for lo in range(0, n, BLOCK):
            hi = min(lo + BLOCK, n)
            dn = done[lo:hi]
            if dn.any():
                acc.add({name: np.asarray(st.table(name, lo, hi)) for name in TABLE_NAMES}, dn)
            bar.update(1)
        sampled = spec_sample_indices(done_idx, spec_sample)
        params, scenarios, sun = spec_values(st, sampled)
        out = {
            "store": url, "scenes": n, "done": int(len(done_idx)), "resolution": [w, h],
            "intrinsics": a.get("intrinsics"), "seed": a.get("seed"),
            "tables": acc.result(),
            "specs": {"sampled": int(len(sampled)), "scenarios": scenarios, "parameters": params},
        }
        if pixels:
            lum = brightness(st, done_idx, bar.update)
            day = [j for j, i in enumerate(done_idx) if sun.get(int(i), -1.0) > 0]
            out["brightness"] = {
                "scenes": done_idx.tolist(), "mean_luma": lum.tolist(),
                "edges": BRIGHT_EDGES,
                "histogram": np.histogram(np.clip(lum, 0, 1), bins=BRIGHT_EDGES)[0].tolist(),
                "mean": float(lum.mean()), "dark_threshold": DARK, "dark_share": float((lum < DARK).mean()),
                "daylight_sampled": len(day),
                "daylight_dark_share": float((lum[day] < DARK).mean()) if day else None,
            }
    return out
