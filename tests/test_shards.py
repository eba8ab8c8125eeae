"""`gen shards` end to end from the analytic fixture scene store (tests/fixture_store.py), and
once from real renders."""
import numpy as np
import pytest
from click.testing import CliRunner

from composer.shard_store import MASK_KINDS, SAMPLE_ARRAYS, open_shards
from pipelines.cli import cli

MIX = '{"object": 0.5, "sky": 0.2, "human": 0.3}'


def gen(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def scenes(fixture_scenes):
    return fixture_scenes


def make(scenes, out, *extra, mix=MIX):
    return gen("shards", scenes, "--out", out, "--samples", "48", "--patch", "64", "--shard-size", "16",
               "--seed", "4", "--mask-mix", mix, *extra)


def check_composites(da):
    """Every sample is an exact composite of its two sources under its mask."""
    n = len(da["mask"])
    m = da["mask"].astype(bool)
    d = da["depth"]
    assert np.array_equal(d[m], da["depth1"][m]) and np.array_equal(d[~m], da["depth2"][~m])
    assert m.reshape(n, -1).any(1).all()
    assert (da["source_scene"][:, 0] != da["source_scene"][:, 1]).all()


def test_end_to_end_and_identical_for_any_worker_count(scenes, tmp_path):
    a, b = str(tmp_path / "a.zarr"), str(tmp_path / "b.zarr")
    assert make(scenes, a, "--workers", "0").exit_code == 0
    assert make(scenes, b, "--workers", "2").exit_code == 0
    sa, sb = open_shards(a), open_shards(b)
    assert sa.done().all() and sa.n_samples == 48
    da, db = sa.read(0, 48), sb.read(0, 48)
    for name in SAMPLE_ARRAYS:
        np.testing.assert_array_equal(da[name], db[name], err_msg=name)
    check_composites(da)
    assert set(np.unique(da["mask_kind"])) == {MASK_KINDS.index(k) for k in ("object", "sky", "human")}
    assert (da["k_dilate"] >= 1).all() and (da["k_dilate"] <= 5).all()
    assert not np.array_equal(da["perturbed"], da["depth"])
    # The loader's concurrent block reads return exactly what plain reads do.
    for starts in ([32, 0], [16]):
        for got, first in zip(sa.read_blocks(starts, 16), starts):
            for name in SAMPLE_ARRAYS:
                np.testing.assert_array_equal(got[name], da[name][first:first + 16], err_msg=name)


@pytest.mark.blender
@pytest.mark.slow
def test_from_real_renders(tmp_path):
    """Rendered street scenes, not only the analytic fixture, feed the shard builder: the run
    finds every requested mask kind in them (it refuses otherwise) and composites exactly."""
    pytest.importorskip("bpy")
    src = str(tmp_path / "src.zarr")
    r = gen("scenes", "--n", "5", "--out", src, "--preset", "tiny", "--scenario", "street", "--workers", "0",
            "--set", "render.width=192", "--set", "render.height=108")
    assert r.exit_code == 0, r.output
    out = str(tmp_path / "s.zarr")
    r = make(src, out, "--workers", "0")
    assert r.exit_code == 0, r.output
    da = open_shards(out).read(0, 48)
    check_composites(da)
    assert set(np.unique(da["mask_kind"])) <= {MASK_KINDS.index(k) for k in ("object", "sky", "human")}


def test_resume_and_preview(scenes, tmp_path):
    url = str(tmp_path / "r.zarr")
    assert make(scenes, url, "--workers", "0").exit_code == 0
    st = open_shards(url, mode="r+")
    before = st.read(16, 32)["perturbed"]
    st.group["done"][1] = False
    st.group["perturbed"][16:32] = 0
    assert make(scenes, url, "--workers", "0", "--resume").exit_code == 0
    np.testing.assert_array_equal(st.read(16, 32)["perturbed"], before)
    png = tmp_path / "p.png"
    assert gen("preview", url, "--out", str(png), "--rows", "3").exit_code == 0 and png.exists()
    r = gen("info", url)
    assert r.exit_code == 0 and "3/3 done" in r.output


def test_bad_inputs(scenes, tmp_path):
    out = str(tmp_path / "x.zarr")
    r = gen("shards", scenes, "--out", out, "--patch", "512")
    assert r.exit_code == 2 and "larger than" in r.output
    assert make(scenes, out, "--workers", "0").exit_code == 0
    r = gen("shards", out, "--out", str(tmp_path / "y.zarr"))
    assert r.exit_code == 2 and "not a scene store" in r.output
    r = make(scenes, out, "--workers", "0")
    assert r.exit_code == 2 and "already exists" in r.output
    r = gen("shards", scenes, "--out", str(tmp_path / "z.zarr"), "--patch", "64", "--mask-mix", '{"dragons": 1}')
    assert r.exit_code == 2 and "mask_mix" in r.output


def test_direct_chunk_writes_and_reads_are_zarrs_own_bytes(tmp_path):
    """write_samples/read_blocks bypass zarr's codec pipeline for whole Blosc chunks: the
    files must be byte-identical to what zarr writes, and read back equal either way."""
    import filecmp
    import os

    from composer import shard_store

    rng = np.random.default_rng(0)
    n, patch = 16, 24
    arrays = {}
    for name, (dims, dtype, _) in shard_store.ARRAYS.items():
        sizes = {"channel": 3, "y": patch, "x": patch, "role": 3, "box": 4, "param": shard_store.N_DEGRADATION_PARAMS}
        shape = (n,) + tuple(sizes[d] for d in dims)
        arrays[name] = (rng.random(shape) * 50).astype(dtype)
    a = shard_store.create(str(tmp_path / "fast.zarr"), 2, n, patch, {"near_m": 1.0}, [], 0, chunk_size=8)
    b = shard_store.create(str(tmp_path / "zarr.zarr"), 2, n, patch, {"near_m": 1.0}, [], 0, chunk_size=8)
    a.write_samples(1, arrays, 0, n)
    for name in shard_store.SAMPLE_ARRAYS:
        b.group[name][n:2 * n] = arrays[name]
    compared = 0
    for root, _, files in os.walk(tmp_path / "zarr.zarr"):
        for f in files:
            if "/c/" in root + "/":
                p = os.path.join(root, f)
                assert filecmp.cmp(p, p.replace("zarr.zarr", "fast.zarr"), shallow=False), p
                compared += 1
    assert compared == 2 * len(shard_store.SAMPLE_ARRAYS)
    for got in (a.read_blocks([16, 24, 0], 8), b.read_blocks([16, 24, 0], 8)):
        for name in shard_store.SAMPLE_ARRAYS:
            np.testing.assert_array_equal(got[0][name], arrays[name][:8])
            np.testing.assert_array_equal(got[1][name], arrays[name][8:])
            assert (got[2][name] == b.group[name].fill_value).all()  # never written
