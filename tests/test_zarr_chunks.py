"""scenes/zarr_chunks.py, the one user of zarr-python's private API: fails loudly when zarr
leaves the tested range, or when the private calls stop storing and returning exactly the
chunk bytes zarr itself writes."""
import filecmp
from pathlib import Path

import numpy as np
import zarr

from scenes.zarr_chunks import TESTED_ZARR, chunk_io


def test_zarr_is_in_the_tested_range():
    version = tuple(int(p) for p in zarr.__version__.split(".")[:2])
    lo, hi = TESTED_ZARR
    assert lo <= version < hi, (
        f"zarr {zarr.__version__} is outside {lo}..{hi} (exclusive), the range scenes/zarr_chunks.py "
        f"was tested with: it uses zarr's private API; check this file's other tests pass, then widen "
        f"TESTED_ZARR and the pin in pyproject.toml")


def _array(root: Path, name: str):
    g = zarr.open_group(root, mode="a", zarr_format=3)
    return g.create_array(name, shape=(8, 3, 5), chunks=(4, 3, 5), dtype="float32", fill_value=-1.0,
                          compressors=zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"))


def test_puts_gets_and_reads_are_zarrs_own_bytes(tmp_path):
    data = np.arange(8 * 3 * 5, dtype=np.float32).reshape(8, 3, 5) / 7
    ref = _array(tmp_path / "ref.zarr", "a")
    ref[4:8] = data[4:8]  # zarr writes chunk 1 itself; chunk 0 stays unwritten
    ref_file = tmp_path / "ref.zarr" / "a" / "c" / "1" / "0" / "0"
    assert ref_file.is_file()
    stored = ref_file.read_bytes()

    got, read = chunk_io(gets=[(ref, (1, 0, 0)), (ref, (0, 0, 0))], reads=[(ref, slice(2, 6))])
    assert got[0].dtype == np.uint8 and got[0].tobytes() == stored  # the raw object, byte for byte
    assert got[1] is None  # never written
    np.testing.assert_array_equal(read[0], np.concatenate([np.full((2, 3, 5), -1, np.float32), data[4:6]]))

    out = _array(tmp_path / "out.zarr", "a")
    got, read = chunk_io(puts=[(out, (1, 0, 0), stored)])
    assert got == [] and read == []
    assert filecmp.cmp(ref_file, tmp_path / "out.zarr" / "a" / "c" / "1" / "0" / "0", shallow=False)
    np.testing.assert_array_equal(out[4:8], data[4:8])  # zarr decodes what was put
    assert (out[0:4] == -1).all()


def test_exists_tells_stored_chunks_from_unwritten_ones(tmp_path):
    a = _array(tmp_path / "e.zarr", "a")
    a[4:8] = np.ones((4, 3, 5), np.float32)
    got, read, found = chunk_io(exists=[(a, (1, 0, 0)), (a, (0, 0, 0))])
    assert (got, read, found) == ([], [], [True, False])
