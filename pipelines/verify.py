"""``gen verify``: read every finished scene or shard of a store, report the damaged ones
(a chunk missing or failing its crc32c), and with ``repair`` clear their done flags so that
``--resume`` renders or builds exactly those again.  Batches run on Dask for big stores.

A scene store's driver-written arrays (done flags, tables, specs: one chunk for many
scenes) are checked chunk by chunk first and repaired as scenes/store_repair.py says:
rebuilt where the per-pixel arrays show their content, else cleared with their scenes
marked for re-rendering."""
from __future__ import annotations

import sys

import numpy as np

from scenes.store import ChunkError, StoreError

BATCH = {"rgsd.scenes": 32, "rgsd.shards": 2}  # scenes or shards per task


def _open(url: str, kind: str, mode: str = "r"):
    if kind == "rgsd.shards":
        from composer.shard_store import open_shards
        return open_shards(url, mode=mode)
    from scenes.store import open_store
    return open_store(url, mode=mode)


def check_batch(url: str, kind: str, indices: list[int]) -> dict[int, str]:
    """{index: one-line reason} for the damaged scenes or shards among ``indices``."""
    st = _open(url, kind)
    bad = {}
    for i in indices:
        try:
            if kind == "rgsd.shards":
                s, c = st.shard_size, st.chunk_size
                starts = list(range(i * s, (i + 1) * s, c))
                for k in range(0, len(starts), 8):  # a few chunks at a time bounds the memory
                    st.read_blocks(starts[k:k + 8], c)
            else:  # the tables' chunks are checked whole, before (scenes/store_repair.py)
                from scenes.safety import checked, missing_chunks
                from scenes.store import PIXEL_ARRAYS
                for n in PIXEL_ARRAYS:
                    st._read(n, i)
                gone = missing_chunks(st.group, PIXEL_ARRAYS, i) if checked(st.group) else []
                if gone:  # only finished scenes are checked
                    raise ChunkError(f"{url}: array '{gone[0]}' of scene {i} has no stored chunk although "
                                     f"the scene is done; see gen verify {url}")
        except ChunkError as exc:
            bad[i] = str(exc)
    return bad


def verify(url: str, repair: bool = False, workers: int | None = None, scheduler: str | None = None,
           out=None) -> int:
    """Exit status: 0 when every finished item reads back intact (or was repaired), 1 when
    damage was found and left as it is.  --repair writes: it holds the store's writer lease."""
    from scenes import store_lock
    held = store_lock.lease(url, "gen verify --repair") if repair else None
    if held is None:
        return _verify(url, repair, workers, scheduler, out)
    with held:
        return _verify(url, repair, workers, scheduler, out)


def _verify(url: str, repair: bool, workers: int | None, scheduler: str | None, out) -> int:
    from tqdm import tqdm

    from pipelines.inspect_store import store_kind

    out = out or sys.stdout  # looked up now: click's test runner swaps it
    from scenes.safety import writable

    kind = store_kind(url)
    if kind not in BATCH:
        raise StoreError(f"{url} is a store of kind {kind!r}, not an rgsd scene or shard store")
    if repair and writable(url):
        raise StoreError(f"--repair: cannot write to {writable(url)} (read-only)")
    st = _open(url, kind)
    what = "shard" if kind == "rgsd.shards" else "scene"
    meta_notes, redo, meta_bad = [], [], []
    if kind == "rgsd.scenes":
        from scenes import store_repair
        meta_bad = store_repair.find(st)
        for d in meta_bad:
            print(d.line(url), file=out)
        if meta_bad and repair:
            meta_notes, redo = store_repair.repair(_open(url, kind, mode="r+"), meta_bad)
            st = _open(url, kind)
        if meta_bad and not repair:
            st = _Estimated(st, meta_bad)
    else:  # a shard's done flag is its own chunk: a damaged one means building that shard again
        meta_bad = _damaged_flags(st)
        for j in meta_bad:
            print(f"{url}: array 'done' of shard {j} is damaged", file=out)
        if meta_bad and repair:
            rw = _open(url, kind, mode="r+")
            for j in meta_bad:
                rw.group["done"][j] = False  # the whole chunk: its damaged bytes are not read
            meta_notes, redo = [f"'done' of shard(s) {_ranges(meta_bad)} rewritten"], list(meta_bad)
        elif meta_bad:
            st = _FlagsAs(st, meta_bad)
    done = np.flatnonzero(st.done())
    batches = [[int(i) for i in done[k:k + BATCH[kind]]] for k in range(0, len(done), BATCH[kind])]
    bad: dict[int, str] = {}
    bar = tqdm(total=len(done), unit=what, desc="verify", file=sys.stderr, dynamic_ncols=True,
               delay=0 if workers == 0 and not scheduler else 1e9)
    try:
        if workers == 0 and not scheduler:
            for b in batches:
                bad.update(check_batch(url, kind, b))
                bar.update(len(b))
        else:
            from distributed import as_completed

            from pipelines.cluster import connect
            with connect(scheduler, workers, 1) as client:
                bar.delay = 0
                bar.refresh()
                futures = {client.submit(check_batch, url, kind, b, pure=False): b for b in batches}
                for f in as_completed(futures):
                    bad.update(f.result())
                    bar.update(len(futures[f]))
    finally:
        bar.close()
    cmd = "gen shards" if kind == "rgsd.shards" else "gen scenes"
    idx = sorted(bad)
    if idx:
        print(f"{url}: {len(idx)} of {len(done)} finished {what}s damaged: {_ranges(idx)}", file=out)
        for i in idx[:10]:
            print(f"  {what} {i}: {bad[i]}", file=out)
    if (idx or meta_bad) and not repair:
        print("rerun with --repair to rebuild or mark them not done, then --resume to redo them", file=out)
        return 1
    if idx:
        rw = _open(url, kind, mode="r+")
        if kind == "rgsd.scenes":
            rw.set_done(idx, False)
        else:
            for i in idx:
                rw.group["done"][i] = False
    for note in meta_notes:
        print(f"repaired: {note}", file=out)
    flags = _open(url, kind).done()
    pending, total = np.flatnonzero(~flags), len(flags)
    if idx or meta_bad:
        print(f"repaired: {len(idx) + len(redo)} {what}(s) marked not done; {len(pending)} of {total} {what}s pending "
              f"(re-)render{_listed(pending)}; '{cmd} ... --resume' redoes exactly those", file=out)
    elif len(pending):  # never "intact" about a store with scenes still to render
        print(f"{url}: no damage in the {len(done)} finished {what}s; {len(pending)} of {total} {what}s pending "
              f"(re-)render{_listed(pending)}; '{cmd} ... --resume' renders them", file=out)
    else:
        print(f"{url}: all {len(done)} finished {what}s intact", file=out)
    return 0


def _damaged_flags(st) -> list[int]:
    try:
        st.group["done"][:]
        return []
    except Exception:  # noqa: BLE001 - find which below
        pass
    bad = []
    for j in range(st.n_shards):
        try:
            st.group["done"][j]
        except Exception:  # noqa: BLE001 - any undecodable chunk is damage
            bad.append(j)
    return bad


class _FlagsAs:
    """A shard store whose damaged done flags read as not done (a report without --repair)."""

    def __init__(self, st, bad):
        self._st, self._bad = st, bad

    def __getattr__(self, name):
        return getattr(self._st, name)

    def done(self):
        flags = np.zeros(self._st.n_shards, bool)
        for j in range(self._st.n_shards):
            flags[j] = j not in self._bad and self._st.is_done(j)
        return flags


class _Estimated:
    """A read-only look at a scene store whose damaged ``done`` chunks read as rebuilt (so
    that a report without --repair still checks the finished scenes' pixels)."""

    def __init__(self, st, damage):
        self._st, self._damage = st, [d for d in damage if d.name == "done"]

    def __getattr__(self, name):
        return getattr(self._st, name)

    def done(self):
        from scenes import store_repair
        if not self._damage:
            return self._st.done()
        flags = np.zeros(self._st.n, bool)
        for lo, hi in store_repair._spans(self._st, "done"):
            bad = any(d.lo == lo for d in self._damage)
            flags[lo:hi] = store_repair.rebuilt_done(self._st, lo, hi) if bad else self._st.array("done")[lo:hi]
        return flags


def _listed(idx) -> str:
    return f": {_ranges([int(i) for i in idx])}" if 0 < len(idx) <= 1000 else ""


def _ranges(idx: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3,7'."""
    parts, start = [], idx[0]
    for a, b in zip(idx, idx[1:] + [None]):
        if b != a + 1:
            parts.append(f"{start}-{a}" if a > start else f"{a}")
            start = b
    return ",".join(parts)
