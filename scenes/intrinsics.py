"""Each scene's camera as numbers: the row of the store's ``intrinsics`` array, from its spec
(scenes.store owns the array; this module needs nothing of the store, so both import it)."""
from __future__ import annotations

import numpy as np


def intrinsics_row(spec_json: str, nominal: dict) -> np.ndarray:
    """[fx, fy, cx, cy, k1, k2, k3] of a scene from its spec JSON (the camera's K and lens);
    ``nominal`` (the store's attribute) for specs without a camera (imported RGB-D)."""
    import json

    from scenes.spec import pinhole_intrinsics
    try:
        cam = json.loads(spec_json).get("camera")
    except (ValueError, AttributeError):
        cam = None
    if isinstance(cam, dict) and cam.get("lens"):
        lens = cam["lens"]
        k = [lens["fx"], lens["fy"], lens["cx"], lens["cy"], lens.get("k1", 0.0), lens.get("k2", 0.0), lens.get("k3", 0.0)]
    elif isinstance(cam, dict) and "hfov_deg" in cam:
        p = pinhole_intrinsics(cam["width"], cam["height"], cam["hfov_deg"])
        k = [p["fx"], p["fy"], p["cx"], p["cy"], 0.0, 0.0, 0.0]
    else:
        k = [nominal.get(n, float("nan")) for n in ("fx", "fy", "cx", "cy")] + [0.0, 0.0, 0.0]
    return np.asarray(k, np.float64)


def intrinsics_dict(row) -> dict:
    fx, fy, cx, cy, k1, k2, k3 = (float(v) for v in row)
    lens = {"model": "radial", "k1": k1, "k2": k2, "k3": k3} if (k1, k2, k3) != (0.0, 0.0, 0.0) else {}
    return {"fx": fx, "fy": fy, "cx": cx, "cy": cy, "lens": lens}
