"""``gen info`` and ``gen preview``: read-only views of a scene store."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np

from scenes import safety
from scenes.store import StoreError, bytes_stored, open_store  # noqa: F401 - StoreError is re-raised by callers

SPEC_SAMPLE = 256


def store_kind(url: str) -> str:
    import zarr

    from scenes.store import exists
    try:
        return zarr.open_group(url, mode="r", zarr_format=3).attrs.get("kind", "?")
    except Exception as exc:  # noqa: BLE001
        if not exists(url):
            raise StoreError(f"no store at {url}") from None
        raise StoreError(f"{url} is not a readable Zarr group: {safety.first_line(exc)}") from None


def info_text(url: str) -> str:
    if store_kind(url) == "rgsd.shards":
        return shards_info_text(url)
    st = open_store(url)
    a = st.attrs
    done = st.done()
    nd = int(done.sum())
    idx = np.flatnonzero(done)
    classes = a["classes"]
    counts: Counter = Counter()
    scenarios: Counter = Counter()
    if nd:
        # Only the metadata chunks that hold finished scenes (1024 scenes per chunk).
        k = st.rows("num_instances", idx)
        cls = st.rows("instance_class", idx)
        for row, kk in zip(cls, k):
            counts.update(classes[c] for c in row[:kk])
        for i in idx[:SPEC_SAMPLE]:  # specs are ~40 kB of JSON each; a sample tells the mix
            scenarios[json.loads(st.spec(int(i)))["scenario"]] += 1
    size = st.bytes_stored()
    r = a["resolution"]
    lines = [
        f"store       {url}",
        f"kind        {a['kind']} v{a['format_version']}",
        f"scenes      {nd}/{st.n} done" + (f" ({st.n - nd} to go: gen scenes --resume)" if nd < st.n else ""),
        f"resolution  {r['width']}x{r['height']}, fx={a['intrinsics']['fx']:.2f}"
        + (" (nominal: the field of view and lens vary per scene)" if a["intrinsics"].get("per_scene") else ""),
        f"seed        {a['seed']}",
        "scenarios   " + (", ".join(f"{s} {c}" for s, c in sorted(scenarios.items())) or "-")
        + (f" (first {SPEC_SAMPLE} done scenes)" if nd > SPEC_SAMPLE else ""),
        "instances   " + (", ".join(f"{c} {n}" for c, n in counts.most_common()) or "-"),
        "per scene   " + (f"{sum(counts.values()) / max(nd, 1):.1f} instances, {size / max(nd, 1) / 1e6:.2f} MB stored"
                           if nd else "-"),
        "failures    " + (f"{len(a['failures'])} scene(s), e.g. scene {next(iter(a['failures']))}: "
                           f"{next(iter(a['failures'].values()))}" if a.get("failures") else "none"),
        f"classes     {', '.join(f'{i}:{c}' for i, c in enumerate(classes))}",
        f"software    {json.dumps(a['software'])}",
        f"config      {json.dumps(a['config'], separators=(',', ':'))}",
    ]
    return "\n".join(lines)


def _palette(n: int) -> np.ndarray:
    rng = np.random.default_rng(12345)
    p = rng.integers(60, 256, (n + 1, 3), dtype=np.uint8)
    p[0] = 0
    return p


def depth_image(depth: np.ndarray) -> np.ndarray:
    import cv2
    inv = np.where(np.isfinite(depth), 1.0 / np.maximum(depth, 1e-3), 0.0)
    hi = np.percentile(inv[inv > 0], 99) if (inv > 0).any() else 1.0
    u8 = np.clip(inv / hi * 255, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(u8, cv2.COLORMAP_MAGMA)[..., ::-1]


def shards_info_text(url: str) -> str:
    from composer.shard_store import MASK_KINDS, open_shards
    st = open_shards(url)
    a = st.attrs
    done = st.done()
    kinds = Counter()
    s = st.shard_size
    for j in np.flatnonzero(done)[:50]:
        kinds.update(MASK_KINDS[k] for k in st.read(j * s, (j + 1) * s, ["mask_kind"])["mask_kind"])
    size = bytes_stored(url)
    nd = int(done.sum())
    return "\n".join([
        f"store       {url}",
        f"kind        {a['kind']} v{a['format_version']}",
        f"shards      {nd}/{st.n_shards} done, {st.shard_size} samples each ({nd * st.shard_size} samples)",
        f"patch       {a['patch']}x{a['patch']}, chunks of {a['chunk_size']} samples",
        f"depth       {a['depth_space']['formula']}",
        "mask kinds  " + ", ".join(f"{k} {v}" for k, v in kinds.most_common()) + (" (first 50 shards)" if nd > 50 else ""),
        f"sources     {', '.join(a['sources'])}",
        f"per sample  {size / max(nd * st.shard_size, 1) / 1e3:.1f} kB stored" if size else "per sample  -",
        f"seed        {a['seed']}",
        "failures    " + (f"{len(a['failures'])} shard(s), e.g. shard {next(iter(a['failures']))}: "
                           f"{next(iter(a['failures'].values()))}" if a.get("failures") else "none"),
        f"config      {json.dumps(a['config'], separators=(',', ':'))}",
    ])


def preview_shards(url: str, out: str, rows: int, width: int) -> str:
    import cv2

    from composer.shard_store import open_shards
    st = open_shards(url)
    done = np.flatnonzero(st.done())
    if not len(done):
        raise StoreError(f"{url} has no finished shards to preview")
    s = st.shard_size
    block = st.read(int(done[0]) * s, int(done[0]) * s + min(rows, s))
    tiles = []
    for k in range(len(block["mask"])):
        hi = max(float(np.percentile(block["depth"][k].astype(np.float32), 99)), 1e-3)  # one scale per row

        def dep(d, hi=hi):
            u8 = np.clip(d.astype(np.float32) / hi * 255, 0, 255).astype(np.uint8)
            return cv2.applyColorMap(u8, cv2.COLORMAP_MAGMA)[..., ::-1]
        m = np.repeat((block["mask"][k] * 255)[..., None], 3, -1)
        row = np.concatenate([block["rgb"][k].transpose(1, 2, 0), m, dep(block["depth"][k]), dep(block["depth1"][k]),
                              dep(block["depth2"][k]), dep(block["perturbed"][k])], 1)
        tiles.append(cv2.resize(row, (6 * width, width), interpolation=cv2.INTER_NEAREST))
    from scenes.atomic import write_rgb
    write_rgb(out, np.concatenate(tiles, 0))
    return out


def preview(url: str, out: str, rows: int = 4, width: int = 320) -> str:
    import cv2
    if store_kind(url) == "rgsd.shards":
        return preview_shards(url, out, rows, width)
    st = open_store(url)
    idx = np.flatnonzero(st.done())[:rows]
    if not len(idx):
        raise StoreError(f"{url} has no finished scenes to preview")
    pal = _palette(st.max_instances)
    tiles = []
    for i in idx:
        s = st.read_scene(int(i), ["rgb", "depth", "instance", "amodal", "num_instances"])
        rgb = s["rgb"]
        inst = pal[s["instance"]]
        outl = (rgb * 0.45).astype(np.uint8)
        for k, m in enumerate(s["amodal"]):
            contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(outl, contours, -1, tuple(int(c) for c in pal[k + 1]), 1)
        row = np.concatenate([rgb, depth_image(s["depth"]), inst, outl], 1)
        h = int(round(row.shape[0] * (4 * width) / row.shape[1]))
        tiles.append(cv2.resize(row, (4 * width, h), interpolation=cv2.INTER_NEAREST))
    from scenes.atomic import write_rgb
    write_rgb(out, np.concatenate(tiles, 0))
    return out
