"""The block loader: disjoint ranks, each sample at most once per epoch, deterministic order."""
import sys

import numpy as np
import pytest

from trainer.data import epoch_blocks, iter_batches, prefault


class FakeStore:
    def __init__(self, n):
        self.ids = np.arange(n)
        self.reads = 0

    def read(self, start, stop, fields):
        self.reads += 1
        return {f: self.ids[start:stop] for f in fields}

    def read_blocks(self, starts, length, fields):
        return [self.read(s, s + length, fields) for s in starts]


def test_ranks_get_disjoint_equal_blocks():
    starts = np.arange(0, 320, 32)
    parts = [epoch_blocks(starts, seed=3, epoch=1, rank=r, world=3) for r in range(3)]
    assert len({len(p) for p in parts}) == 1
    flat = np.concatenate(parts)
    assert len(set(flat.tolist())) == len(flat)
    np.testing.assert_array_equal(parts[0], epoch_blocks(starts, seed=3, epoch=1, rank=0, world=3))
    assert not np.array_equal(epoch_blocks(starts, 3, 1), epoch_blocks(starts, 3, 2))


def test_batches_cover_each_sample_once_and_repeat_exactly():
    store = FakeStore(320)
    blocks = epoch_blocks(np.arange(0, 320, 32), seed=0, epoch=0)
    batches = list(iter_batches(store, blocks, 32, 24, seed=5, pool=3, fields=("x",)))
    seen = np.concatenate([b["x"] for b in batches])
    assert len(seen) == 320 // 24 * 24 and len(set(seen.tolist())) == len(seen)
    assert store.reads == len(blocks)  # one read per block
    again = list(iter_batches(FakeStore(320), blocks, 32, 24, seed=5, pool=3, fields=("x",)))
    assert all(np.array_equal(a["x"], b["x"]) for a, b in zip(batches, again))
    # Shuffled across blocks, not block by block.
    assert len({int(v) // 32 for v in batches[0]["x"]}) > 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise(MADV_POPULATE_WRITE) is Linux's")
def test_prefault_maps_pages_without_touching_their_contents():
    import mmap
    region = mmap.mmap(-1, 5 * mmap.PAGESIZE + 100)  # anonymous shared, like a batch in /dev/shm
    a = np.frombuffer(region, np.uint8)
    a[::7] = 42
    before = a.copy()
    # An unaligned slice in the middle: the call rounds to whole pages of the same mapping.
    assert prefault(a[10:].ctypes.data, a.nbytes - 10)
    np.testing.assert_array_equal(a, before)
    del a
    region.close()
