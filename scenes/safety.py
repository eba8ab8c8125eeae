"""Data safety for every store rgsd writes: what ``--overwrite`` may replace, outputs that
would land on a command's own inputs, and the integrity of stored chunks (a crc32c in
every codec chain; a missing chunk of a finished scene or shard is an error, never the
fill value).  Pure Python plus zarr/fsspec; the store modules call in here.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

RGSD_KINDS = ("rgsd.scenes", "rgsd.shards")


class StoreError(ValueError):
    """A store that cannot be used as asked (exists, wrong kind or version, missing);
    scenes.store re-exports it, where every caller takes it from."""
# Group attribute of stores whose every chunk of a finished scene/shard was written (fill-
# valued ones included), so a missing chunk means damage.  Older stores lack it.
INTEGRITY = {"checksum": "crc32c", "all_chunks_written": True}
# The writer lease at a store's root (scenes/store_lock.py): not part of what a store holds.
LEASE = "writer-lease.json"


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def _fs(url: str):
    import fsspec
    return fsspec.core.url_to_fs(url)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:160]}" if text else type(exc).__name__


def _unreachable(url: str, exc: BaseException):
    return StoreError(f"cannot reach {url}: {first_line(exc)}")


def contents(url: str) -> list[str] | None:
    """Names directly under a store path (a local folder or an object-store prefix); None if
    nothing is there; ``[""]`` for a plain file."""
    if is_local(url):
        p = Path(url.removeprefix("file://"))
        if p.is_dir():
            return sorted(n for n in os.listdir(p) if not n.startswith(LEASE))
        return [""] if p.exists() or p.is_symlink() else None
    fs, path = _fs(url)
    try:
        fs.invalidate_cache(path)  # fsspec caches listings per process; another may have written since
        if not fs.exists(path):
            return None
        if fs.isfile(path):
            return [""]
        names = (e.rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(path, detail=False))
        return sorted(n for n in names if not n.startswith(LEASE))
    except Exception as exc:  # noqa: BLE001 - credentials, refused connections, DNS: all one line
        raise _unreachable(url, exc) from None


def _read_text(url: str, key: str) -> str | None:
    try:
        if is_local(url):
            return (Path(url.removeprefix("file://")) / key).read_text()
        fs, path = _fs(url)
        return fs.cat_file(f"{path.rstrip('/')}/{key}").decode()
    except (OSError, UnicodeDecodeError):
        return None


def rgsd_kind(url: str, names: list[str]) -> str | None:
    """The group's ``kind`` attribute if ``url`` holds nothing but an rgsd store's own
    entries (its zarr.json and array folders that have one), else None."""
    try:
        kind = json.loads(_read_text(url, "zarr.json") or "null")["attributes"]["kind"]
    except (ValueError, KeyError, TypeError):
        return None
    if kind not in RGSD_KINDS:
        return None
    members = [n for n in names if n != "zarr.json"]
    if any(_read_text(url, f"{n}/zarr.json") is None for n in members):
        return None
    return kind


def check_replaceable(url: str, overwrite: bool, hint: str = " or --resume to continue it") -> list[str] | None:
    """Refuse, in one line, to create a store at ``url`` unless nothing is there, it is an
    empty folder, or it is a store of rgsd's own kind and ``overwrite`` is given.  A file,
    or a folder or prefix holding anything else, is never replaced.  Returns what is there."""
    names = contents(url)
    if names is None or not names:
        return names
    if not overwrite:
        raise StoreError(f"{url} already exists (use --overwrite to replace it{hint})")
    if names == [""]:
        raise StoreError(f"{url} is a file, not an rgsd store; --overwrite replaces only rgsd stores "
                         "and empty folders")
    if rgsd_kind(url, names) is None:
        raise StoreError(f"{url} is not an rgsd store (it holds '{names[0]}'); --overwrite replaces only "
                         "rgsd stores and empty folders")
    return names


def prepare_output(url: str, overwrite: bool, hint: str = " or --resume to continue it") -> None:
    """:func:`check_replaceable`, then empty an rgsd store that is there."""
    if check_replaceable(url, overwrite, hint):
        clear(url)


def clear(url: str) -> None:
    """Delete what is under a store path, keeping a local folder itself (it may be the
    working directory) and the writer lease of the run that clears it."""
    if is_local(url):
        p = Path(url.removeprefix("file://"))
        if not p.is_dir():
            if p.exists():
                p.unlink()
            return
        for child in p.iterdir():
            if child.name.startswith(LEASE):
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        return
    fs, path = _fs(url)
    if fs.exists(path):
        keep = [e for e in fs.ls(path, detail=False) if e.rstrip("/").rsplit("/", 1)[-1].startswith(LEASE)]
        if not keep:
            fs.rm(path, recursive=True)
            return
        for e in fs.ls(path, detail=False):
            if e not in keep:
                fs.rm(e, recursive=True)


def _norm(url: str) -> tuple[str, tuple[str, ...]]:
    if is_local(url):
        return "", Path(url.removeprefix("file://")).expanduser().resolve().parts
    scheme, rest = url.split("://", 1)
    return scheme, tuple(p for p in rest.split("/") if p)


def overlapping(out: str, inputs, replaces: bool = True) -> str | None:
    """The first of ``inputs`` that ``out`` would write onto: the same path after resolving,
    ``out`` inside it (an input store or folder), or -- when ``out`` is a store that may be
    replaced, not a file or a folder files are added to -- it inside ``out``."""
    so, po = _norm(out)
    for i in inputs:
        if not i:
            continue
        si, pi = _norm(str(i))
        n = min(len(po), len(pi)) if replaces else len(pi)
        if so == si and len(po) >= n and po[:n] == pi[:n]:
            return str(i)
    return None


def writable(url: str) -> str | None:
    """The first folder of a local store a run would write into that it cannot, else None
    (object stores are not probed)."""
    if not is_local(url):
        return None
    root = Path(url.removeprefix("file://"))
    if not root.exists():
        root = next((p for p in root.absolute().parents if p.exists()), Path("/"))
        return None if os.access(root, os.W_OK | os.X_OK) else str(root)
    if not root.is_dir():
        return None  # a file there is refused as an output elsewhere, with a better message
    dirs = [root] + [d for d in root.iterdir() if d.is_dir()]
    dirs += [d / "c" for d in dirs[1:] if (d / "c").is_dir()]
    return next((str(d) for d in dirs if not os.access(d, os.W_OK | os.X_OK)), None)


def codecs(compressor) -> tuple:
    """The bytes-to-bytes codecs of every rgsd array: its compressor, then a crc32c of the
    compressed chunk (checked before decompression, so damage is found, not decoded)."""
    from zarr.codecs import Crc32cCodec
    return (compressor, Crc32cCodec())


def crc32c(data) -> bytes:
    """The 4 bytes zarr's crc32c codec appends (little-endian uint32)."""
    import google_crc32c
    return int(google_crc32c.value(data)).to_bytes(4, "little")


def checked(group) -> bool:
    return bool((group.attrs.get("integrity") or {}).get("all_chunks_written"))


def missing_chunks(group, names, row: int) -> list[str]:
    """Names of arrays with a stored chunk (or shard) missing among those holding index
    ``row`` of their first dimension -- whatever the chunk layout -- in one round of
    concurrent existence checks (scenes.zarr_chunks: the one user of zarr's private API)."""
    import itertools
    import math

    from scenes.zarr_chunks import chunk_io

    checks = []
    for n in names:
        a = group[n]
        grid = a.metadata.chunk_grid.chunk_shape  # the shard shape for sharded arrays
        rest = [range(math.ceil(s / c)) for s, c in zip(a.shape[1:], grid[1:])]
        checks += [(n, a, coords) for coords in itertools.product([row // grid[0]], *rest)]
    found = chunk_io(exists=[(a, coords) for _, a, coords in checks])[2]
    return list(dict.fromkeys(n for (n, _, _), ok in zip(checks, found) if not ok))


def describe(exc: BaseException) -> str:
    """A short cause for a chunk that failed to decode."""
    text = str(exc)
    if "checksum" in text.lower():
        return "checksum mismatch"
    return first_line(exc)
