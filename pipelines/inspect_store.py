"""``gen info`` and ``gen preview``: read-only views of a scene store."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np

from scenes.store import StoreError, open_store  # noqa: F401 - StoreError is re-raised by callers


def info_text(url: str) -> str:
    st = open_store(url)
    a = st.attrs
    done = st.done()
    nd = int(done.sum())
    idx = np.flatnonzero(done)
    classes = a["classes"]
    counts: Counter = Counter()
    scenarios: Counter = Counter()
    if nd:
        k = st.group["num_instances"][:]
        cls = st.group["instance_class"][:]
        for i in idx:
            counts.update(classes[c] for c in cls[i, : k[i]])
        for i in idx[:2000]:  # specs are large; a sample tells the mix
            scenarios[json.loads(st.spec(int(i)))["scenario"]] += 1
    size = st.bytes_stored()
    r = a["resolution"]
    lines = [
        f"store       {url}",
        f"kind        {a['kind']} v{a['format_version']}",
        f"scenes      {nd}/{st.n} done" + (f" ({st.n - nd} to go: gen scenes --resume)" if nd < st.n else ""),
        f"resolution  {r['width']}x{r['height']}, fx={a['intrinsics']['fx']:.2f}",
        f"seed        {a['seed']}",
        f"scenarios   " + (", ".join(f"{s} {c}" for s, c in sorted(scenarios.items())) or "-"),
        f"instances   " + (", ".join(f"{c} {n}" for c, n in counts.most_common()) or "-"),
        f"per scene   " + (f"{sum(counts.values()) / max(nd, 1):.1f} instances, {size / max(nd, 1) / 1e6:.2f} MB stored"
                           if nd else "-"),
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


def preview(url: str, out: str, rows: int = 4, width: int = 320) -> str:
    import cv2
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
    sheet = np.concatenate(tiles, 0)
    from PIL import Image
    Image.fromarray(sheet).save(out)
    return out
