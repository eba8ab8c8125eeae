"""Views of a scene store beside scenes.store's arrays (which owns the format): each scene's
camera as numbers, and the store as an xarray Dataset."""
from __future__ import annotations

import numpy as np

from scenes.store import DIM_ON_DISK, PER_SCENE


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


def open_xarray(url):
    """The store as an ``xarray.Dataset`` (lazy, dask-backed): every array a data variable,
    whatever the store's age (older stores named two dimensions like arrays), and the
    attributes that hold structures as JSON text, so ``to_netcdf`` can write them."""
    import json

    import xarray as xr
    try:
        ds = xr.open_zarr(url, consolidated=True)
    except Exception:  # noqa: BLE001 - a store written before consolidated metadata
        ds = xr.open_zarr(url, consolidated=False)
    old = {old: new for old, new in DIM_ON_DISK.items() if old in ds.dims}
    if old:
        ds = ds.rename_dims(old)
    clash = [n for n in ds.coords if n in PER_SCENE]
    if clash:
        ds = ds.reset_coords(clash)
    ds.attrs = {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in ds.attrs.items()}
    return ds
