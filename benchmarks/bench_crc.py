"""What the crc32c in every codec chain (issue 13) costs the shard store's hot paths, before
and after in one process.

    python benchmarks/bench_crc.py --shards 4 --rounds 3

Writes two shard stores of the same 320x320 samples (smooth synthetic images and depth, so
they compress like rendered ones), one with the old chain (Blosc) and one with Blosc +
crc32c (what ``gen shards`` writes now), and times, alternating the two stores so that
other load on the machine hits both alike:
  * the shard builder's write (``write_samples``: Blosc, + crc32c, store the chunk),
  * the loader's reads in one process (``iter_batches``: read, check, decompress, batch),
  * the training loader (torch DataLoader, 2 worker processes, as bench_loader.py).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))


def samples(n: int, patch: int) -> dict:
    from composer import shard_store
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:patch, :patch].astype(np.float32) / patch
    out = {}
    for name, (dims, dtype, _) in shard_store.ARRAYS.items():
        shape = (n,) + tuple({"channel": 3, "y": patch, "x": patch, "role": 3, "box": 4}[d] for d in dims)
        if dims[-2:] == ("y", "x"):
            base = (np.sin(6 * xx + 3 * yy) + 1) * (120 if dtype == "uint8" else 4)
            # RGB as noisy as the 1-spp benchmark renders; depth smooth with sub-mm noise.
            a = base + rng.normal(0, 2 if dtype == "uint8" else 0.002, shape)
            if name == "mask":
                a = (np.hypot(xx - 0.5, yy - 0.5) < 0.3) & np.ones(shape, bool)
            out[name] = np.clip(a, 0, 255).astype(dtype)
        else:
            out[name] = (rng.random(shape) * 10).astype(dtype)
    return out


def build(url: str, n_shards: int, size: int, patch: int, data: dict, crc: bool) -> float:
    """Seconds spent in write_samples for the whole store."""
    from composer import shard_store
    from scenes import safety
    original = safety.codecs
    if not crc:
        safety.codecs = lambda compressor: (compressor,)  # the chain before issue 13
    try:
        st = shard_store.create(url, n_shards, size, patch, {"near_m": 1.0}, [], 0, chunk_size=32)
    finally:
        safety.codecs = original
    t0 = time.perf_counter()
    for j in range(n_shards):
        for c in range(0, size, 32):
            st.write_samples(j, data, c, c + 32)
        st.mark_done(j)
    return time.perf_counter() - t0


def read_rate(url: str, epochs: int) -> tuple[float, float]:
    """(samples/s wall, samples per CPU-second of this process) through iter_batches."""
    import numcodecs.blosc

    from composer.shard_store import open_shards
    from trainer.data import block_starts, epoch_blocks, iter_batches
    numcodecs.blosc.use_threads = False  # as in a loader worker
    st = open_shards(url)
    starts = block_starts(st, 32)
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    for e in range(epochs):
        for b in iter_batches(st, epoch_blocks(starts, 0, e), 32, 32, seed=e):
            n += len(b["mask"])
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def loader_rate(url: str, epochs: int) -> float:
    from bench_loader import rate
    from torch.utils.data import DataLoader

    from trainer.data import torch_dataset
    ds = torch_dataset(url, seed=0, batch=32)
    loader = DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=True)
    return rate((b for _ in range(epochs) for b in loader), epochs * (ds.samples() - 4 * 32))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3, help="alternations of the two stores")
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    size, patch = 256, 320
    data = samples(size, patch)
    res = {c: {"write": [], "read": [], "read_cpu": [], "loader": []} for c in (False, True)}
    stored = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", "/tmp")) as tmp:
        n = args.shards * size
        for r in range(args.rounds):
            for crc in ((False, True) if r % 2 == 0 else (True, False)):
                url = os.path.join(tmp, f"crc{int(crc)}-{r}.zarr")
                res[crc]["write"].append(n / build(url, args.shards, size, patch, data, crc))
                wall, cpu = read_rate(url, args.epochs)
                res[crc]["read"].append(wall)
                res[crc]["read_cpu"].append(cpu)
                from scenes.store import bytes_stored
                stored[crc] = bytes_stored(url) / n
                res[crc]["loader"].append(loader_rate(url, args.epochs))
                if r < args.rounds - 1:
                    import shutil
                    shutil.rmtree(url)
    print(f"{args.shards} shards x {size} samples of {patch}x{patch}, {args.rounds} alternating rounds, "
          f"{os.cpu_count()} cores; median samples/s (min-max)")
    print(f"  stored per sample: {stored[False] / 1e3:.0f} kB (Blosc), {stored[True] / 1e3:.0f} kB (+crc32c); "
          f"raw {sum(a[:1].nbytes for a in data.values()) / 1e3:.0f} kB")
    for what, label in (("write", "shard write (write_samples)"), ("read", "block reads, 1 process"),
                        ("read_cpu", "  per CPU-second"), ("loader", "DataLoader, 2 workers")):
        a, b = (np.array(res[c][what]) for c in (False, True))
        print(f"  {label:30s} Blosc {np.median(a):8.0f} ({a.min():.0f}-{a.max():.0f})   "
              f"Blosc+crc32c {np.median(b):8.0f} ({b.min():.0f}-{b.max():.0f})   "
              f"ratio {np.median(b) / np.median(a):.3f}")


if __name__ == "__main__":
    main()
