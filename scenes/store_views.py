"""The scene store as an xarray Dataset, beside scenes.store's arrays (which owns the format)."""
from __future__ import annotations

from scenes.store import DIM_ON_DISK, PER_SCENE


def open_xarray(url):
    """The store as an ``xarray.Dataset`` (lazy, dask-backed): every array a data variable,
    whatever the store's age (older stores named two dimensions like arrays), and the
    attributes that hold structures as JSON text, so ``to_netcdf`` can write them (float16
    arrays are written there as float32, which netCDF has; in memory they stay float16)."""
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
    for var in ds.data_vars.values():
        if var.dtype == "float16":
            var.encoding["dtype"] = "float32"
    ds.attrs = {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in ds.attrs.items()}
    return ds
