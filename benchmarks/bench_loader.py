"""Training-data loader: samples/s from the shard store into ready batches, against a folder
of PNGs holding the same samples, and against what the tiny model consumes.

    python benchmarks/bench_loader.py --shards /tmp/rgsd-bench-shards.zarr

(benchmarks/bench_shards.py leaves that store behind.)
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def png_dataset(folder: str, n: int):
    import cv2
    import torch
    from torch.utils.data import Dataset

    class Pngs(Dataset):
        def __len__(self):
            return n

        def __getitem__(self, i):
            rgb = cv2.imread(f"{folder}/{i}_rgb.png", cv2.IMREAD_COLOR)[..., ::-1].transpose(2, 0, 1)
            out = {"rgb": torch.from_numpy(np.ascontiguousarray(rgb)),
                   "mask": torch.from_numpy(cv2.imread(f"{folder}/{i}_mask.png", cv2.IMREAD_GRAYSCALE))}
            for k in ("depth", "depth1", "depth2", "perturbed"):
                d = cv2.imread(f"{folder}/{i}_{k}.png", cv2.IMREAD_ANYDEPTH).astype(np.float32) / 6553.5
                out[k] = torch.from_numpy(d.astype(np.float16))
            return out
    return Pngs()


def rate(loader, limit: int) -> float:
    n, t0 = 0, None
    for b in loader:
        if t0 is None:  # start after the first batch: worker start-up is not throughput
            t0 = time.perf_counter()
            continue
        n += len(b["mask"])
        if n >= limit:
            break
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", default="/tmp/rgsd-bench-shards.zarr")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--png-samples", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=3, help="epochs of the shard store for the zarr figure")
    ap.add_argument("--alloc", choices=["private", "public", "both"], default="private",
                    help="batch buffers: torch's private _new_shared (trainer.data's choice) or the public "
                         "torch.empty().share_memory_(); both = alternate them --rounds times, zarr loader only")
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    if args.alloc == "both":
        return compare_alloc(args)
    import cv2
    import torch
    from torch.utils.data import DataLoader

    from composer.shard_store import open_shards
    from trainer.data import torch_dataset
    from trainer.model import build_refiner
    from trainer.train import TrainConfig, prepare, step_loss

    torch.set_num_threads(2)
    st = open_shards(args.shards)
    ds = torch_dataset(args.shards, seed=0, batch=args.batch)
    # Several epochs through persistent workers, so the figure is not a one-second sample.
    loader = DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=True)
    epochs = (loader for _ in range(args.epochs))
    zarr_rate = rate((b for e in epochs for b in e), args.epochs * (ds.samples() - 4 * args.batch))
    with tempfile.TemporaryDirectory() as tmp:
        block = st.read(0, args.png_samples)
        for i in range(args.png_samples):
            cv2.imwrite(f"{tmp}/{i}_rgb.png", block["rgb"][i].transpose(1, 2, 0)[..., ::-1])
            cv2.imwrite(f"{tmp}/{i}_mask.png", block["mask"][i])
            for k in ("depth", "depth1", "depth2", "perturbed"):
                cv2.imwrite(f"{tmp}/{i}_{k}.png", np.clip(block[k][i].astype(np.float32) * 6553.5, 0, 65535)
                            .astype(np.uint16))
        png = png_dataset(tmp, args.png_samples)
        png_rate = rate(DataLoader(png, batch_size=args.batch, num_workers=2, shuffle=True),
                        args.png_samples - 2 * args.batch)
    torch.manual_seed(0)
    model = build_refiner("tiny")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = next(iter(DataLoader(torch_dataset(args.shards, seed=0, batch=8), batch_size=None, num_workers=0)))
    cfg = TrainConfig()
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(6):
        t0 = time.perf_counter()
        b = prepare(batch, "cpu", gen)
        loss = step_loss(model, b, 2, gen)
        loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
    model_rate = 8 / float(np.median(times[1:]))
    del cfg
    print(f"shard store {args.shards}: {st.n_samples} samples of {st.attrs['patch']}x{st.attrs['patch']}, "
          f"batch {args.batch}, 2 loader workers, {os.cpu_count()} cores")
    print(f"  zarr block loader     {zarr_rate:8.0f} samples/s ({args.epochs} epochs)")
    print(f"  PNG-folder loader     {png_rate:8.0f} samples/s   -> zarr is {zarr_rate / png_rate:.1f}x")
    print(f"  tiny model, stage II  {model_rate:8.1f} samples/s (train step, batch 8) -> loader is "
          f"{zarr_rate / model_rate:.0f}x what it consumes")


def zarr_rate(shards: str, batch: int, epochs: int) -> float:
    from torch.utils.data import DataLoader

    from trainer.data import torch_dataset
    ds = torch_dataset(shards, seed=0, batch=batch)
    loader = DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=True)
    return rate((b for _ in range(epochs) for b in loader), epochs * (ds.samples() - 4 * batch))


def compare_alloc(args) -> None:
    """The loader with each way of allocating shared batch buffers, alternated so that a busy
    machine's drift hits both alike; medians."""
    import trainer.data as data
    private = data.shared_batch_buffer
    rates = {"private": [], "public": []}
    for _ in range(args.rounds):
        for name, fn in (("private", private), ("public", data.public_batch_buffer)):
            data.shared_batch_buffer = fn  # loader workers are forked: they inherit the choice
            rates[name].append(zarr_rate(args.shards, args.batch, args.epochs))
    data.shared_batch_buffer = private
    for name, r in rates.items():
        print(f"  {name:8s} batch buffers: median {np.median(r):7.0f} samples/s  (runs: {', '.join(f'{v:.0f}' for v in r)})")
    print(f"  private / public: {np.median(rates['private']) / np.median(rates['public']):.3f}x")


if __name__ == "__main__":
    main()
