"""The shard store: the one module that reads and writes composited training samples.

Zarr v3.  Samples are stored in chunks of ``chunk_size`` samples (one request per array
reads a contiguous block), grouped into "shards" of ``shard_size`` samples, each the unit
one Dask task builds: every chunk of a shard is written by that task alone, chunk by chunk
while the next one is built, and ``done[shard]`` is set last.  (Zarr's own sharding codec
would pack a shard into one file, but then it can only be written whole, after building;
overlapping the writes is worth more here, see benchmarks/RESULTS.md.)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scenes.store import StoreError, exists, open_group_of_kind, remove, software_versions  # noqa: F401

KIND = "rgsd.shards"
FORMAT_VERSION = 1
MASK_KINDS = ("object", "sky", "human", "human_holes")

# name -> (dims after "sample", dtype, fill)
ARRAYS = {
    "rgb": (("channel", "y", "x"), "uint8", 0),
    "mask": (("y", "x"), "uint8", 0),
    "depth": (("y", "x"), "float16", 0.0),  # D'
    "depth1": (("y", "x"), "float16", 0.0),  # D1 (inside the mask)
    "depth2": (("y", "x"), "float16", 0.0),  # D2 (outside)
    "perturbed": (("y", "x"), "float16", 0.0),  # P(D')
    "mask_kind": ((), "uint8", 255),
    "source_store": (("role",), "int16", -1),  # role: D1/I1, D2/I2, mask
    "source_scene": (("role",), "int32", -1),
    "source_crop": (("role", "box"), "int32", -1),
    "mask_instance": ((), "int16", -1),
    "k_dilate": ((), "uint8", 0),
    "k_erode": ((), "uint8", 0),
    "dilate_first": ((), "bool", False),
    "blur_sigma": ((), "float32", 0.0),
    "hole_t": ((), "float32", 0.0),
    "holes": ((), "int16", 0),
    "sample_seed": ((), "uint64", 0),
}
SAMPLE_ARRAYS = list(ARRAYS)


@dataclass
class ShardStore:
    group: object
    url: str

    @property
    def attrs(self) -> dict:
        return dict(self.group.attrs)

    @property
    def shard_size(self) -> int:
        return int(self.group.attrs["shard_size"])

    @property
    def n_shards(self) -> int:
        return int(self.group["done"].shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.group["mask"].shape[0])

    def done(self) -> np.ndarray:
        return self.group["done"][:]

    def is_done(self, j: int) -> bool:
        return bool(self.group["done"][j])

    def write_samples(self, j: int, arrays: dict, first: int, stop: int) -> None:
        """Samples first..stop-1 (chunk-aligned) of shard j; no other task touches them."""
        base = j * self.shard_size
        for name in SAMPLE_ARRAYS:
            self.group[name][base + first:base + stop] = arrays[name][first:stop]

    def write_shard(self, j: int, arrays: dict) -> None:
        """Every array of shard j, then done[j]."""
        self.write_samples(j, arrays, 0, self.shard_size)
        self.mark_done(j)

    def mark_done(self, j: int) -> None:
        self.group["done"][j] = True

    def read(self, start: int, stop: int, names=None) -> dict:
        """A contiguous block of samples: one read per array."""
        return {n: self.group[n][start:stop] for n in (names or SAMPLE_ARRAYS)}

    def read_blocks(self, starts, length: int, names=None) -> list[dict]:
        """Several contiguous blocks (``starts[i]`` .. ``+ length``), every array of every
        block requested at once on zarr's event loop: one round trip instead of one per
        array and block, and the chunks decompress concurrently on zarr's threads."""
        import asyncio

        from zarr.core.sync import sync  # zarr's own runner for its async API

        names = list(names or SAMPLE_ARRAYS)
        arrays = [self.group[n].async_array for n in names]

        async def gather():
            return await asyncio.gather(*(a.getitem(slice(int(s), int(s) + length))
                                          for s in starts for a in arrays))

        flat = sync(gather())
        k = len(names)
        return [dict(zip(names, flat[i * k:(i + 1) * k])) for i in range(len(starts))]


def create(url: str, n_shards: int, shard_size: int, patch: int, cfg: dict, sources: list[str], seed: int,
           overwrite: bool = False, chunk_size: int = 32) -> ShardStore:
    import zarr

    if exists(url):
        if not overwrite:
            raise StoreError(f"{url} already exists (use --overwrite to replace it or --resume to continue it)")
        remove(url)
    chunk_size = min(chunk_size, shard_size)
    if shard_size % chunk_size:
        raise StoreError(f"shard size {shard_size} must be a multiple of the chunk size {chunk_size}")
    n = n_shards * shard_size
    sizes = {"channel": 3, "y": patch, "x": patch, "role": 3, "box": 4}
    g = zarr.open_group(url, mode="w", zarr_format=3)
    for name, (dims, dtype, fill) in ARRAYS.items():
        shape = (n,) + tuple(sizes[d] for d in dims)
        g.create_array(name, shape=shape, dtype=dtype, fill_value=fill, dimension_names=("sample",) + dims,
                       chunks=(chunk_size,) + shape[1:],
                       compressors=zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"))
    g.create_array("done", shape=(n_shards,), dtype="bool", fill_value=False, chunks=(1,),
                   dimension_names=("shard",))
    g.attrs.update({
        "kind": KIND, "format_version": FORMAT_VERSION, "patch": patch, "shard_size": shard_size,
        "chunk_size": chunk_size, "n_shards": n_shards, "seed": int(seed), "config": cfg,
        "sources": list(sources), "mask_kinds": list(MASK_KINDS),
        "depth_space": {"kind": "inverse", "scale": 10.0, "near_m": cfg["near_m"],
                        "formula": "10 * min(1, near_m / z_metres); sky (z = inf) -> 0"},
        "roles": ["D1/I1 (inside the mask)", "D2/I2 (outside)", "mask"],
        "software": software_versions(),
    })
    return ShardStore(g, url)


def open_shards(url: str, mode: str = "r") -> ShardStore:
    required = list(ARRAYS) + ["done"]
    return ShardStore(open_group_of_kind(url, KIND, FORMAT_VERSION, required, "shard store", mode), url)
