"""Training batches straight from a shard store: chunk-aligned block reads, shuffled blocks.

zarr-python costs ~1 ms per read call, so single-sample random reads are slow; instead each
loader worker reads whole chunks (``chunk_size`` samples, one request per array) and
shuffles within a small pool of blocks, as WebDataset shuffles shards.  The order is a
function of (seed, epoch, rank, world size): deterministic, and disjoint across DDP ranks.
"""
from __future__ import annotations

import functools
import mmap

import numpy as np

FIELDS = ("rgb", "mask", "depth", "depth1", "depth2", "perturbed")


def block_starts(store, block: int) -> np.ndarray:
    """First sample of every readable block (blocks of finished shards only)."""
    s = store.shard_size
    starts = [j * s + b for j in np.flatnonzero(store.done()) for b in range(0, s, block)]
    return np.asarray(starts, np.int64)


def epoch_blocks(starts: np.ndarray, seed: int, epoch: int, rank: int = 0, world: int = 1) -> np.ndarray:
    """This rank's blocks for an epoch: a seeded permutation, dealt round-robin to ranks
    (trimmed so every rank gets the same count and DDP steps stay in lockstep)."""
    order = np.random.default_rng([seed, epoch]).permutation(starts)
    per_rank = len(order) // world
    return order[rank:per_rank * world:world]


def iter_batches(store, blocks: np.ndarray, block: int, batch: int, seed: int, pool: int = 4, fields=FIELDS,
                 alloc=None):
    """Yield batches (dicts of stacked arrays) from the given blocks: read ``pool`` blocks
    (one request per array each), shuffle their samples together, and gather each batch
    straight from the block arrays into ``alloc(shape, dtype)`` buffers (one copy per
    sample; a torch loader allocates them in shared memory, so handing the batch to the
    training process copies nothing more).  Leftover samples at the end are dropped."""
    alloc = alloc or (lambda shape, dtype: np.empty(shape, dtype))
    rng = np.random.default_rng([seed, int(blocks[0]) if len(blocks) else 0, len(blocks)])
    carry: list[tuple[dict, np.ndarray]] = []  # (block arrays, rows not yet used)
    for k in range(0, len(blocks), pool):
        group = store.read_blocks(blocks[k:k + pool], block, fields)
        group = [(g, np.arange(len(g[fields[0]]))) for g in group] + carry
        ids = np.concatenate([np.stack([np.full(len(rows), b), rows], 1) for b, (_, rows) in enumerate(group)])
        ids = ids[rng.permutation(len(ids))]
        n_full = len(ids) // batch * batch
        for start in range(0, n_full, batch):
            sel = ids[start:start + batch]
            sel = sel[np.argsort(sel[:, 0], kind="stable")]  # rows of one block together
            bounds = np.flatnonzero(np.diff(sel[:, 0])) + 1
            out = {}
            for f in fields:
                first = group[0][0][f]
                buf = alloc((batch,) + first.shape[1:], first.dtype)
                view = buf.numpy() if hasattr(buf, "numpy") else buf
                for part in np.split(np.arange(batch), bounds):
                    b = sel[part[0], 0]
                    np.take(group[b][0][f], sel[part, 1], axis=0, out=view[part[0]:part[-1] + 1])
                out[f] = buf
            yield out
        rest = ids[n_full:]
        carry = [(group[b][0], rest[rest[:, 0] == b, 1]) for b in np.unique(rest[:, 0])]


@functools.cache
def _libc():
    """glibc, or None where there is none (then the tweaks below do nothing)."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc


def keep_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20) -> bool:
    """glibc malloc: serve blocks up to ``mmap_threshold`` from the heap and keep up to
    ``trim_threshold`` of freed memory, so the loader's same-size block buffers are reused
    instead of mmap'd, page-faulted and unmapped on every read.  (32 MiB is glibc's largest
    mmap threshold on 64-bit.)  Returns False where it does not apply (not glibc)."""
    libc = _libc()
    if libc is None:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, mmap_threshold)) and bool(libc.mallopt(m_trim_threshold, trim_threshold))


_MADV_POPULATE_WRITE = 23  # Linux >= 5.14


def prefault(ptr: int, nbytes: int) -> bool:
    """Map every page of [ptr, ptr + nbytes) writable in one madvise call.  A fresh
    shared-memory batch is otherwise page-faulted 4 KiB at a time by the copy that fills it,
    which cost a loader worker ~20 % of its time.  False where unsupported (old kernels)."""
    libc = _libc()
    if libc is None:
        return False
    page = mmap.PAGESIZE  # 4 KiB here; 16/64 KiB on some arm64 kernels, where 4 KiB alignment fails
    start, end = ptr & ~(page - 1), (ptr + nbytes + page - 1) & ~(page - 1)
    return libc.madvise(start, end - start, _MADV_POPULATE_WRITE) == 0


def shared_batch_buffer(shape, dtype):
    """An uninitialised tensor in shared memory, for a loader worker's batch.

    Allocated in shared memory from the start, as torch's default_collate does, through
    torch's private ``_typed_storage()._new_shared``: the public ``torch.empty(...)
    .share_memory_()`` allocates, then copies into shared memory, and the loader ran 1.6x
    slower with it (benchmarks/RESULTS.md, issue 26).  Should a torch upgrade drop the
    private call, the public one takes over (slower, the same batches)."""
    import torch
    elem = torch.from_numpy(np.empty(0, dtype))
    try:
        t = elem.new(elem._typed_storage()._new_shared(int(np.prod(shape)))).resize_(shape)
    except (AttributeError, TypeError, RuntimeError):
        return torch.empty(tuple(shape), dtype=elem.dtype).share_memory_()
    prefault(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
    return t


def public_batch_buffer(shape, dtype):
    """The public way (benchmarks/bench_loader.py --alloc public compares the two)."""
    import torch
    return torch.empty(tuple(shape), dtype=torch.from_numpy(np.empty(0, dtype)).dtype).share_memory_()


def torch_dataset(url: str, seed: int, batch: int, rank: int = 0, world: int = 1, pool: int = 4):
    """An IterableDataset of whole batches for ``DataLoader(ds, batch_size=None)``; call
    ``set_epoch`` each epoch.  Loader workers split this rank's blocks between them."""
    import torch
    from torch.utils.data import IterableDataset, get_worker_info

    from composer.shard_store import open_shards

    class ShardBatches(IterableDataset):
        def __init__(self):
            self.url, self.seed, self.rank, self.world, self.pool, self.batch = url, seed, rank, world, pool, batch
            st = open_shards(url)
            self.block = int(st.attrs["chunk_size"])
            self.starts = block_starts(st, self.block)
            self.epoch = 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def samples(self) -> int:
            return (len(self.starts) // self.world) * self.block

        def __iter__(self):
            st = open_shards(self.url)  # one handle per loader process
            blocks = epoch_blocks(self.starts, self.seed, self.epoch, self.rank, self.world)
            info = get_worker_info()
            if info is not None:
                blocks = blocks[info.id::info.num_workers]
                keep_freed_memory()  # this loader process only
                import numcodecs.blosc
                numcodecs.blosc.use_threads = False  # one Blosc thread per loader process
            alloc = shared_batch_buffer if info is not None else None
            for b in iter_batches(st, blocks, self.block, self.batch, self.seed + self.epoch, self.pool, alloc=alloc):
                yield {k: v if isinstance(v, torch.Tensor) else torch.from_numpy(v) for k, v in b.items()}

    return ShardBatches()
