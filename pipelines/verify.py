"""``gen verify``: read every finished scene or shard of a store, report the damaged ones
(a chunk missing or failing its crc32c), and with ``repair`` clear their done flags so that
``--resume`` renders or builds exactly those again.  Batches run on Dask for big stores."""
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
            else:
                from scenes.store import PER_SCENE
                st.read_scene(i, [n for n in PER_SCENE if n != "done"])
        except ChunkError as exc:
            bad[i] = str(exc)
    return bad


def verify(url: str, repair: bool = False, workers: int | None = None, scheduler: str | None = None,
           out=None) -> int:
    """Exit status: 0 when every finished item reads back intact (or was repaired), 1 when
    damage was found and left as it is."""
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
    if not bad:
        print(f"{url}: all {len(done)} finished {what}s intact", file=out)
        return 0
    idx = sorted(bad)
    print(f"{url}: {len(idx)} of {len(done)} finished {what}s damaged: {_ranges(idx)}", file=out)
    for i in idx[:10]:
        print(f"  {what} {i}: {bad[i]}", file=out)
    if not repair:
        print("rerun with --repair to mark them not done, then --resume to redo them", file=out)
        return 1
    rw = _open(url, kind, mode="r+")
    for i in idx:
        rw.group["done"][i] = False
    cmd = "gen shards" if kind == "rgsd.shards" else "gen scenes"
    print(f"repaired: {len(idx)} {what}(s) marked not done; '{cmd} ... --resume' redoes exactly those", file=out)
    return 0


def _ranges(idx: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3,7'."""
    parts, start = [], idx[0]
    for a, b in zip(idx, idx[1:] + [None]):
        if b != a + 1:
            parts.append(f"{start}-{a}" if a > start else f"{a}")
            start = b
    return ",".join(parts)
