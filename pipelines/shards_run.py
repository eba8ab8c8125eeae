"""``gen shards``: composited, perturbed training shards from scene stores, on Dask."""
from __future__ import annotations

import copy
import math
import sys
import time

import numpy as np

from composer import shard_store
from composer.sampler import DEFAULTS
from scenes import store as scene_store


class RunError(ValueError):
    pass


def shard_config(patch: int, overrides: dict | None = None) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    cfg["patch"] = patch
    for k, v in (overrides or {}).items():
        if k not in cfg:
            raise RunError(f"unknown shard config key '{k}'")
        cfg[k] = v
    if cfg["patch"] < 16:
        raise RunError("--patch must be at least 16")
    mix = cfg["mask_mix"]
    if not isinstance(mix, dict) or not mix or set(mix) - set(shard_store.MASK_KINDS) \
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                       for v in mix.values()) or sum(mix.values()) <= 0:
        raise RunError(f"mask_mix must map some of {', '.join(shard_store.MASK_KINDS)} to non-negative weights")
    return cfg


def _open_sources(urls: list[str], patch: int):
    stores, refs = [], []
    for si, url in enumerate(urls):
        try:
            st = scene_store.open_store(url)
        except scene_store.StoreError as exc:
            raise RunError(str(exc)) from None
        r = st.attrs["resolution"]
        if patch > min(r["width"], r["height"]):
            raise RunError(f"--patch {patch} is larger than the {r['width']}x{r['height']} scenes of {url}")
        done = np.flatnonzero(st.done())
        if len(done) == 0:
            raise RunError(f"{url} has no finished scenes")
        stores.append(st)
        refs += [(si, int(i)) for i in done]
    if len({tuple(s.attrs["classes"]) for s in stores}) > 1:
        raise RunError("source stores have different class tables")
    return stores, refs


def _check_mask_kinds(stores, refs, cfg) -> None:
    """Refuse a run whose sources cannot give a requested mask kind (from a sample of scenes)."""
    from composer.sampler import load_scene, mask_candidates
    rng = np.random.default_rng(0)
    found = {k: 0 for k in shard_store.MASK_KINDS}
    for p in rng.permutation(len(refs))[:64]:
        si, i = refs[int(p)]
        c = mask_candidates([load_scene(stores[si], i, cfg["near_m"])], stores[0].attrs["classes"], cfg)
        for k, v in c.items():
            found[k] += len(v)
        if all(found[k] for k, w in cfg["mask_mix"].items() if w > 0):
            return
    missing = [k for k, w in cfg["mask_mix"].items() if w > 0 and not found[k]]
    if len(missing) == len([k for k, w in cfg["mask_mix"].items() if w > 0]):
        raise RunError(f"the sources have no masks of any requested kind ({', '.join(missing)})")
    if missing:
        raise RunError(f"the sources have no '{missing[0]}' masks (objects >= {cfg['min_fraction']:.0%} of "
                       f"the image); set its weight to 0 with --mask-mix")


def build_shard_task(out_url: str, source_urls: list[str], refs, j: int, cfg: dict, seed: int) -> dict:
    """Runs in a worker: build shard j and write it (whole Zarr shards), then done[j]."""
    from composer.sampler import build_shard
    t0 = time.perf_counter()
    stores = [scene_store.open_store(u) for u in source_urls]
    out = shard_store.open_shards(out_url, mode="r+")
    if out.is_done(j):
        return {"shard": j, "skipped": True}
    # Chunks are written from a second thread while the next ones are built: compression and
    # file writes release the GIL, so the two overlap.
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as writer:
        pending = []
        try:
            build_shard(stores, refs, j, cfg, seed,
                        on_chunk=lambda arrays, a, b: pending.append(writer.submit(out.write_samples, j, arrays, a, b)))
        except scene_store.ChunkError as exc:  # a damaged source: returned, not raised, so that
            return {"shard": j, "error": str(exc)}  # Dask neither retries nor logs a traceback
        t1 = time.perf_counter()
        for f in pending:
            f.result()
    out.mark_done(j)
    import resource
    return {"shard": j, "build": t1 - t0, "write": time.perf_counter() - t1, "samples": cfg["shard_size"],
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _ok(result: dict) -> dict:
    if "error" in result:
        raise RunError(f"{result['error']} (shards written so far are kept: --resume once it is repaired)")
    return result


def run(out_url: str, sources: list[str], *, samples: int, cfg: dict, seed: int, overwrite=False, resume=False,
        workers=None, scheduler=None) -> int:
    from tqdm import tqdm

    if scheduler:
        from pipelines.cluster import reachable
        reachable(scheduler)
    if scene_store.safety.writable(out_url):
        raise RunError(f"cannot write to {scene_store.safety.writable(out_url)} (read-only)")
    stores, refs = _open_sources(sources, cfg["patch"])
    n_shards = math.ceil(samples / cfg["shard_size"])
    try:
        if resume:
            st = shard_store.open_shards(out_url, mode="r+")
            if st.attrs["config"] != cfg or st.attrs["seed"] != seed or st.attrs["sources"] != list(sources) \
                    or st.n_shards != n_shards:
                diff = scene_store.config_diff(st.attrs["config"], cfg) or \
                    ("seed" if st.attrs["seed"] != seed else "sources" if st.attrs["sources"] != list(sources)
                     else "samples")
                raise RunError(f"--resume: '{diff}' differs from the store's; rerun with its settings")
        else:
            _check_mask_kinds(stores, refs, cfg)
            st = shard_store.create(out_url, n_shards, cfg["shard_size"], cfg["patch"], cfg, sources, seed,
                                    overwrite=overwrite, chunk_size=cfg["chunk_size"])
    except shard_store.StoreError as exc:
        raise RunError(str(exc)) from None
    todo = [int(j) for j in np.flatnonzero(~st.done())]
    if not todo:
        print(f"{out_url}: all {n_shards} shards already done", file=sys.stderr)
        return 0
    bar = tqdm(total=len(todo) * cfg["shard_size"], unit="sample", desc="samples", dynamic_ncols=True,
               file=sys.stderr, delay=0 if workers == 0 else 1e9, smoothing=0.05)
    t0 = time.perf_counter()
    results: list[dict] = []
    run.last_results = results  # for benchmarks: per-shard timings and worker peak memory
    try:
        if workers == 0 and not scheduler:
            for j in todo:
                results.append(_ok(build_shard_task(out_url, sources, refs, j, cfg, seed)))
                bar.update(cfg["shard_size"])
        else:
            from distributed import as_completed

            from pipelines.cluster import connect
            with connect(scheduler, workers, 1) as client:
                bar.delay = 0
                bar.refresh()
                [refs_f] = client.scatter([refs], broadcast=True)
                futures = [client.submit(build_shard_task, out_url, sources, refs_f, j, cfg, seed, pure=False,
                                         retries=1, key=f"shard-{j}") for j in todo]
                try:
                    for f in as_completed(futures):
                        results.append(_ok(f.result()))
                        bar.update(cfg["shard_size"])
                except BaseException:
                    client.cancel(futures)
                    raise
    except KeyboardInterrupt:
        bar.close()
        print(f"\ninterrupted: {int(st.done().sum())}/{n_shards} shards done; continue with --resume",
              file=sys.stderr)
        return 130
    except RunError:
        bar.leave = False  # the error line alone, not a stalled bar above it
        raise
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    n = sum(r.get("samples", 0) for r in results)
    print(f"{out_url}: {int(st.done().sum())}/{n_shards} shards ({st.n_samples} samples) done; "
          f"{n / wall:.0f} samples/s", file=sys.stderr)
    return 0
