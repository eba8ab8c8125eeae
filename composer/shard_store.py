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

from composer.depth_space import DEPTH_SCALE, FORMULA
from scenes import safety
from scenes.groups import exists, new_group, open_group_of_kind, remove, software_versions  # noqa: F401
from scenes.store import ChunkError, StoreError  # noqa: F401

KIND = "rgsd.shards"
FORMAT_VERSION = 1
MASK_KINDS = ("object", "sky", "human", "human_holes")
# Initial-depth degradation families (composer/degrade.py), in the order the "degradation"
# array indexes them; each sample's family parameters are "degradation_params" (NaN = unused).
DEGRADATIONS = ("perturb", "edge_bleed", "resolution", "thin_lost", "warp", "misalign", "smooth")
N_DEGRADATION_PARAMS = 4

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
    "degradation": ((), "uint8", 0),  # index into DEGRADATIONS; P(.) in stores made before issue 27
    "degradation_params": (("param",), "float32", 0.0),
}
# Stores made before the degradation families lack these two (every sample there is P(.)).
_LATER_ARRAYS = ("degradation", "degradation_params")
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
        try:
            return self.group["done"][:]
        except Exception as exc:  # noqa: BLE001 - a damaged chunk of the flags themselves
            raise ChunkError(f"{self.url}: array 'done' is damaged ({safety.describe(exc)})") from None

    def is_done(self, j: int) -> bool:
        return bool(self.group["done"][j])

    def write_samples(self, j: int, arrays: dict, first: int, stop: int) -> None:
        """Samples first..stop-1 (chunk-aligned) of shard j; no other task touches them.

        Whole chunks of plain Blosc arrays are compressed here, with the array's own Blosc
        settings, and stored under their chunk keys: zarr's general write path copies each
        chunk twice on the way and cost 4x the compression itself.  The bytes are exactly
        what zarr writes (tested), so zarr reads them back as usual.  (Zarr would skip a
        chunk that equals the fill value; here it is written, which reads back the same.)"""
        from scenes.zarr_chunks import chunk_io

        base = j * self.shard_size
        size = self.chunk_size
        arrs = {name: self.group[name] for name in SAMPLE_ARRAYS}
        if first % size or (stop - first) % size or not all(_plain_blosc(a) for a in arrs.values()):
            for name, a in arrs.items():  # every chunk stored, fill-valued ones too: missing = damage
                a.with_config({"write_empty_chunks": True})[base + first:base + stop] = arrays[name][first:stop]
            return
        puts = []
        for name, a in arrs.items():
            cname, clevel, shuffle, typesize, blocksize = _blosc_settings(a)
            for c in range(first, stop, size):
                chunk = np.ascontiguousarray(arrays[name][c:c + size], a.dtype)
                frame = _blosc().compress(chunk, cname, clevel, shuffle, blocksize, typesize)
                if _has_crc(a):
                    frame += safety.crc32c(frame)
                puts.append((a, ((base + c) // size,) + (0,) * (a.ndim - 1), frame))
        chunk_io(puts=puts)

    def write_shard(self, j: int, arrays: dict) -> None:
        """Every array of shard j, then done[j]."""
        self.write_samples(j, arrays, 0, self.shard_size)
        self.mark_done(j)

    def mark_done(self, j: int) -> None:
        self.group["done"][j] = True

    def read(self, start: int, stop: int, names=None) -> dict:
        """A contiguous block of samples: one read per array.  A chunk of a done shard that
        is missing or fails its checksum is a ChunkError naming the array and shard."""
        out = {}
        names = list(names or SAMPLE_ARRAYS)
        for n in names:
            try:
                out[n] = self.group[n][start:stop]
            except Exception as exc:  # noqa: BLE001 - any undecodable chunk is damage
                raise ChunkError(f"{self.url}: array '{n}' of samples {start}..{stop - 1} (shard "
                                 f"{start // self.shard_size}) is damaged ({safety.describe(exc)}); "
                                 f"see gen verify {self.url}") from None
        if safety.checked(self.group) and stop > start:
            size, done = self.chunk_size, self.done()
            for c in range(start // size, (stop - 1) // size + 1):
                if done[c * size // self.shard_size]:
                    self._check_present(names, c)
        return out

    def _check_present(self, names, c: int) -> None:
        gone = safety.missing_chunks(self.group, names, c * self.chunk_size)
        if gone:
            raise ChunkError(f"{self.url}: array '{gone[0]}' of shard {c * self.chunk_size // self.shard_size} "
                             f"has no stored chunk {c} although the shard is done; see gen verify {self.url}")

    def read_blocks(self, starts, length: int, names=None) -> list[dict]:
        """Several contiguous blocks (``starts[i]`` .. ``+ length``) of every named array,
        all requested at once on zarr's event loop (one round trip, not one per array and
        block).  Chunk-aligned blocks of plain Blosc chunks -- what :func:`create` writes --
        are decompressed by Blosc straight into their arrays: zarr's general path decodes
        into a buffer and copies that into the result, which cost a third of the loader's
        time.  Anything else goes through zarr."""
        from scenes.zarr_chunks import chunk_io

        names = list(names or SAMPLE_ARRAYS)
        arrays = [self.group[n] for n in names]
        fast = length == self.chunk_size and all(int(s) % length == 0 for s in starts) \
            and all(_plain_blosc(a) for a in arrays)
        try:
            if not fast:
                _, flat = chunk_io(reads=[(a, slice(int(s), int(s) + length)) for s in starts for a in arrays])
            else:
                raws, _ = chunk_io(gets=[(a, (int(s) // length,) + (0,) * (a.ndim - 1)) for s in starts for a in arrays])
        except Exception as exc:  # noqa: BLE001 - zarr's own path: a failed checksum or decode
            raise ChunkError(f"{self.url}: a chunk of samples {[int(s) for s in starts][:4]} is damaged "
                             f"({safety.describe(exc)}); see gen verify {self.url}") from None
        if fast:
            flat = []
            for k, raw in enumerate(raws):
                a = arrays[k % len(arrays)]
                out = np.empty(a.chunks, a.dtype)
                start = int(starts[k // len(arrays)])
                if raw is None:  # never written: zarr's fill value, unless the shard is done
                    if self.is_done(start // self.shard_size):
                        self._check_present([names[k % len(arrays)]], start // length)
                    out.fill(a.fill_value)
                else:
                    self._decode_into(raw, out, a, names[k % len(arrays)], start)
                flat.append(out)
        k = len(names)
        return [dict(zip(names, flat[i * k:(i + 1) * k])) for i in range(len(starts))]

    def _decode_into(self, raw: np.ndarray, out: np.ndarray, array, name: str, start: int) -> None:
        if _has_crc(array):
            if len(raw) < 4 or safety.crc32c(raw[:-4]) != raw[-4:].tobytes():
                raise ChunkError(f"{self.url}: array '{name}' of shard {start // self.shard_size} (samples from "
                                 f"{start}) is damaged (checksum mismatch); see gen verify {self.url}")
            raw = raw[:-4]
        try:
            _blosc().decompress(raw, out)
        except Exception as exc:  # noqa: BLE001 - stores without checksums: a truncated frame
            raise ChunkError(f"{self.url}: array '{name}' of shard {start // self.shard_size} (samples from "
                             f"{start}) is damaged ({safety.describe(exc)}); see gen verify {self.url}") from None

    @property
    def chunk_size(self) -> int:
        return int(self.group.attrs["chunk_size"])


def _blosc():
    import numcodecs.blosc
    return numcodecs.blosc


def _blosc_settings(array) -> tuple[bytes, int, int, int, int]:
    """(cname, clevel, shuffle, typesize, blocksize) of the array's BloscCodec, as numcodecs'
    ``blosc.compress`` takes them."""
    from zarr.codecs import BloscShuffle

    codec = array.metadata.codecs[1]
    shuffle = {BloscShuffle.noshuffle: 0, BloscShuffle.shuffle: 1, BloscShuffle.bitshuffle: 2}[codec.shuffle]
    return (codec.cname.value.encode(), int(codec.clevel), shuffle, int(codec.typesize or array.dtype.itemsize),
            int(codec.blocksize))


def _plain_blosc(array) -> bool:
    """Chunks of ``array`` are one Blosc frame of its little-endian values (no sharding, no
    other codec), so Blosc alone can decode them, on a little-endian machine."""
    import sys

    from zarr.codecs import BloscCodec, BytesCodec

    codecs = array.metadata.codecs
    return (sys.byteorder == "little" and len(codecs) in (2, 3) and isinstance(codecs[0], BytesCodec)
            and isinstance(codecs[1], BloscCodec) and (len(codecs) == 2 or _has_crc(array))
            and array.metadata.chunk_grid.chunk_shape == array.chunks)


def _has_crc(array) -> bool:
    """The codec chain ends in zarr's crc32c (4 little-endian bytes after the Blosc frame)."""
    from zarr.codecs import Crc32cCodec
    return isinstance(array.metadata.codecs[-1], Crc32cCodec)


def create(url: str, n_shards: int, shard_size: int, patch: int, cfg: dict, sources: list[str], seed: int,
           overwrite: bool = False, chunk_size: int = 32) -> ShardStore:
    import zarr

    chunk_size = min(chunk_size, shard_size)
    if shard_size % chunk_size:
        raise StoreError(f"shard size {shard_size} must be a multiple of the chunk size {chunk_size}")
    safety.prepare_output(url, overwrite)
    n = n_shards * shard_size
    sizes = {"channel": 3, "y": patch, "x": patch, "role": 3, "box": 4, "param": N_DEGRADATION_PARAMS}
    g = new_group(url, KIND)
    for name, (dims, dtype, fill) in ARRAYS.items():
        shape = (n,) + tuple(sizes[d] for d in dims)
        g.create_array(name, shape=shape, dtype=dtype, fill_value=fill, dimension_names=("sample",) + dims,
                       chunks=(chunk_size,) + shape[1:],
                       compressors=safety.codecs(zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")))
    g.create_array("done", shape=(n_shards,), dtype="bool", fill_value=False, chunks=(1,),
                   dimension_names=("shard",), compressors=safety.codecs(zarr.codecs.ZstdCodec(level=0)))
    g.attrs.update({
        "kind": KIND, "format_version": FORMAT_VERSION, "patch": patch, "shard_size": shard_size,
        "chunk_size": chunk_size, "n_shards": n_shards, "seed": int(seed), "config": cfg,
        "integrity": safety.INTEGRITY,
        "sources": list(sources), "mask_kinds": list(MASK_KINDS), "degradations": list(DEGRADATIONS),
        "depth_space": {"kind": "inverse", "scale": DEPTH_SCALE, "near_m": cfg["near_m"], "formula": FORMULA},
        "roles": ["D1/I1 (inside the mask)", "D2/I2 (outside)", "mask"],
        "software": software_versions(),
    })
    return ShardStore(g, url)


def open_shards(url: str, mode: str = "r") -> ShardStore:
    required = [a for a in ARRAYS if a not in _LATER_ARRAYS] + ["done"]
    return ShardStore(open_group_of_kind(url, KIND, FORMAT_VERSION, required, "shard store", mode), url)
