"""Whole-chunk I/O on zarr's event loop: the one place rgsd uses zarr-python's private API.

The shard store writes and reads whole Blosc chunks itself (composer/shard_store.py says
why: zarr's general path copies every chunk on the way and cost several times the codec
work), and issues many chunk requests at once.  That needs three things zarr 3 keeps
private: its event-loop runner (``zarr.core.sync.sync``), an array's ``StorePath`` and its
metadata's chunk-key encoding.  They are used here and nowhere else, and
tests/test_zarr_chunks.py fails when zarr leaves ``TESTED_ZARR`` or when these calls stop
storing and returning exactly zarr's own chunk bytes.
"""
from __future__ import annotations

TESTED_ZARR = ((3, 1), (3, 2))  # zarr-python versions [lo, hi) this module is tested with


def chunk_io(puts=(), gets=(), reads=(), exists=()) -> tuple:
    """Run every request at once on zarr's event loop, and wait for all of them.

    ``puts``: (array, chunk coords, encoded bytes): stored as that chunk's object, exactly as
    zarr stores a chunk after its codecs (so the bytes must be what those codecs make).
    ``gets``: (array, chunk coords): that chunk's stored bytes as a uint8 numpy array, or
    None where the chunk was never written (it reads as the fill value).
    ``reads``: (array, selection): values through zarr's own codec pipeline.
    ``exists``: (array, chunk coords): whether that chunk's object is stored.
    Returns (the gets' results, the reads' results), in order, and the existence flags
    third when any were asked for."""
    import asyncio

    from zarr.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    proto = default_buffer_prototype()

    def path(a, coords):
        return a.async_array.store_path / a.metadata.encode_chunk_key(tuple(int(c) for c in coords))

    async def run():
        return await asyncio.gather(
            asyncio.gather(*(path(a, c).set(proto.buffer.from_bytes(b)) for a, c, b in puts)),
            asyncio.gather(*(path(a, c).get(proto) for a, c in gets)),
            asyncio.gather(*(a.async_array.getitem(sel) for a, sel in reads)),
            asyncio.gather(*(path(a, c).exists() for a, c in exists)))

    _, got, read, found = sync(run())
    out = [None if g is None else g.as_numpy_array() for g in got], list(read)
    return out + (list(found),) if exists else out
