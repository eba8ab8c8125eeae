"""Opening and creating rgsd's Zarr groups, whatever their kind (scene stores, shard stores):
the kind/version/member checks that make a wrong or damaged store one line, and the
filesystem-level helpers (exists, remove, bytes stored) both stores share."""
from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from scenes import safety

StoreError = safety.StoreError


def bytes_stored(url) -> int:
    """Total bytes of a local store (0 for object stores, where listing costs requests)."""
    if not isinstance(url, str) or not _is_local(url):
        return 0
    p = Path(url.removeprefix("file://"))
    if not p.exists():
        return 0
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def exists(url) -> bool:
    """Anything at ``url`` (a file, a folder, any object under the prefix; a zarr Store
    object is taken to exist)."""
    if not isinstance(url, str):
        return True
    return safety.contents(url) is not None


def remove(url: str) -> None:
    """Delete a store rgsd made (a local folder is emptied, then removed unless it is the
    working directory or holds it)."""
    safety.clear(url)
    if _is_local(url):
        p = Path(url.removeprefix("file://"))
        if p.is_dir() and not Path.cwd().resolve().is_relative_to(p.resolve()):
            p.rmdir()


def new_group(url: str, kind: str):
    """A new empty Zarr v3 group (mode w-: never clears what is there), its kind recorded
    first so that an interrupted creation is still replaceable; or a one-line StoreError."""
    import zarr
    try:
        # "w-" refuses a folder holding anything, the run's own writer lease included: with
        # nothing but that lease there (contents() leaves it out), "a" creates the group.
        mode = "a" if isinstance(url, str) and safety.contents(url) == [] else "w-"
        return zarr.open_group(url, mode=mode, zarr_format=3, attributes={"kind": kind})
    except Exception as exc:  # noqa: BLE001 - permissions, full disks, unreachable object stores
        raise StoreError(f"cannot create a store at {url}: {safety.first_line(exc)}") from None


def open_group_of_kind(url, kind: str, version, required, label: str, mode: str = "r", members: dict | None = None):
    """The Zarr group at ``url`` if it is a complete store of ``kind`` and ``version`` (one
    version or a tuple of readable ones); otherwise a StoreError whose one line says what is wrong.
    ``members``, if given, receives the opened arrays by name."""
    import zarr
    versions = tuple(version) if isinstance(version, (tuple, list)) else (version,)
    try:  # opened first and checked after: on an object store each check is a request
        # Each array's own zarr.json, not the consolidated copy in the root (which is for
        # xarray and other readers): a damaged array's metadata stays a one-line error here.
        g = zarr.open_group(url, mode=mode, zarr_format=3, use_consolidated=False)
    except Exception as exc:  # noqa: BLE001
        if isinstance(url, str) and not safety.contents(url):  # nothing, an empty folder, or a lease alone
            raise StoreError(f"no store at {url}") from None
        raise StoreError(f"{url} is not a readable Zarr group: {safety.first_line(exc)}") from None
    found = g.attrs.get("kind")
    if found != kind:
        raise StoreError(f"{url} is a store of kind {found!r}, not a {label} ({kind!r})")
    found = g.attrs.get("format_version")
    if found not in versions:
        readable = " or ".join(map(str, versions))
        raise StoreError(f"{url} has {label} format version {found}, this rgsd reads version {readable}")
    try:  # one listing, the members' metadata fetched concurrently: not a request per name
        import warnings
        with warnings.catch_warnings():  # a run's writer lease (scenes/store_lock.py) is no member
            warnings.filterwarnings("ignore", message=f"Object at {safety.LEASE}")
            present = dict(g.members(max_depth=0))
    except Exception:  # noqa: BLE001 - a damaged member: the loop below names it
        present = {}
    for name in required:
        if name in present:
            continue
        try:
            present[name] = g[name]
        except KeyError:
            raise StoreError(f"{url} is an incomplete {label}: array '{name}' is missing") from None
        except Exception as exc:  # noqa: BLE001 - a truncated or edited zarr.json
            raise StoreError(f"{url}: the metadata of array '{name}' is damaged ({safety.first_line(exc)})") from None
    if members is not None:
        members.update(present)
    return g


def software_versions() -> dict:
    import zarr
    out = {"python": platform.python_version(), "zarr": zarr.__version__, "numpy": np.__version__}
    from importlib.metadata import PackageNotFoundError, version
    for dist in ("rgsd", "bpy", "dask", "OpenEXR"):  # bpy's wheel version is Blender's version
        try:
            out[dist.lower()] = version(dist)
        except PackageNotFoundError:
            out[dist.lower()] = "source" if dist == "rgsd" else None
    return out
