"""Training batches straight from a shard store: chunk-aligned block reads, shuffled blocks.

zarr-python costs ~1 ms per read call, so single-sample random reads are slow; instead each
loader worker reads whole chunks (``chunk_size`` samples, one request per array) and
shuffles within a small pool of blocks, as WebDataset shuffles shards.  The order is a
function of (seed, epoch, rank, world size): deterministic, and disjoint across DDP ranks.
"""
from __future__ import annotations

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


def iter_samples(store, blocks: np.ndarray, block: int, seed: int, pool: int = 4, fields=FIELDS):
    """Yield dicts of numpy arrays, one per sample, from the given blocks in a shuffled stream."""
    rng = np.random.default_rng([seed, int(blocks[0]) if len(blocks) else 0, len(blocks)])
    buf: list[dict] = []
    for start in blocks:
        data = store.read(int(start), int(start) + block, fields)
        n = len(data[fields[0]])
        buf += [{f: data[f][k] for f in fields} for k in range(n)]
        if len(buf) >= pool * block:
            rng.shuffle(buf)
            while len(buf) > (pool - 1) * block:
                yield buf.pop()
    rng.shuffle(buf)
    yield from buf


def torch_dataset(url: str, seed: int, rank: int = 0, world: int = 1, pool: int = 4):
    """An IterableDataset for torch.utils.data.DataLoader; call ``set_epoch`` each epoch.
    Loader workers split this rank's blocks between them."""
    import torch
    from torch.utils.data import IterableDataset, get_worker_info

    from composer.shard_store import open_shards

    class ShardBlocks(IterableDataset):
        def __init__(self):
            self.url, self.seed, self.rank, self.world, self.pool = url, seed, rank, world, pool
            st = open_shards(url)
            self.block = int(st.attrs["chunk_size"])
            self.starts = block_starts(st, self.block)
            self.epoch = 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __len__(self):
            return (len(self.starts) // self.world) * self.block

        def __iter__(self):
            st = open_shards(self.url)  # one handle per loader process
            blocks = epoch_blocks(self.starts, self.seed, self.epoch, self.rank, self.world)
            info = get_worker_info()
            if info is not None:
                blocks = blocks[info.id::info.num_workers]
            for s in iter_samples(st, blocks, self.block, self.seed + self.epoch, self.pool):
                yield {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in s.items()}

    return ShardBlocks()
