"""`gen shards` end to end from the analytic fixture scene store (tests/fixture_store.py), and
once from real renders."""
import json

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
    finds every mask kind of its mix in them (it refuses otherwise) and composites exactly."""
    pytest.importorskip("bpy")
    src = str(tmp_path / "src.zarr")
    r = gen("scenes", "--n", "5", "--out", src, "--preset", "tiny", "--scenario", "street", "--workers", "0",
            "--set", "render.width=192", "--set", "render.height=108")
    assert r.exit_code == 0, r.output
    out = str(tmp_path / "s.zarr")
    # The default mix, as a new user runs it (issue 23): kinds these few scenes lack are dropped.
    r = gen("shards", src, "--out", out, "--samples", "48", "--patch", "64", "--shard-size", "16", "--seed", "4",
            "--workers", "0")
    assert r.exit_code == 0, r.output
    st = open_shards(out)
    da = st.read(0, 48)
    check_composites(da)
    mix = st.attrs["config"]["mask_mix"]
    assert {"object", "sky"} <= set(mix)
    assert set(np.unique(da["mask_kind"])) <= {MASK_KINDS.index(k) for k in mix}
    r = make(src, str(tmp_path / "mine.zarr"), "--workers", "0", mix=json.dumps(mix))  # named by the user: found
    assert r.exit_code == 0, r.output


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


def test_a_store_begun_before_degrade_mix_existed_resumes(scenes, tmp_path):
    """A store made before issue 27 has no degrade_mix in its config: it was P(.) alone."""
    url = str(tmp_path / "old.zarr")
    assert make(scenes, url, "--workers", "0").exit_code == 0
    st = open_shards(url, mode="r+")
    before = st.read(16, 32)["perturbed"]
    cfg = dict(st.group.attrs["config"])
    del cfg["degrade_mix"]
    st.group.attrs["config"] = cfg
    st.group["done"][1] = False
    st.group["perturbed"][16:32] = 0
    r = make(scenes, url, "--workers", "0", "--resume")
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(st.read(16, 32)["perturbed"], before)
    r = make(scenes, url, "--workers", "0", "--resume", "--degrade-mix", "perturb=1,warp=1")
    assert r.exit_code == 2 and "degrade_mix" in r.output


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


def test_the_default_mix_drops_kinds_the_sources_lack(scenes, tmp_path):
    """Issue 23: a small store without some mask kind still makes shards with the default
    mix (the others renormalised, said in one line, recorded); a mix that names it is refused."""
    out = str(tmp_path / "d.zarr")
    default = ("--samples", "32", "--patch", "64", "--shard-size", "16", "--workers", "0", "--seed", "2")
    r = gen("shards", scenes, "--out", out, *default)
    assert r.exit_code == 0, r.output
    notes = [line for line in r.output.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "'human_holes'" in notes[0], r.output
    st = open_shards(out, mode="r+")
    mix = st.attrs["config"]["mask_mix"]
    assert set(mix) == {"object", "sky", "human"} and abs(sum(mix.values()) - 1.0) < 1e-12
    assert abs(mix["object"] / mix["sky"] - 0.5 / 0.2) < 1e-12 and abs(mix["human"] / mix["sky"] - 0.15 / 0.2) < 1e-12
    kinds = set(np.unique(st.read(0, 32)["mask_kind"]))
    assert kinds <= {MASK_KINDS.index(k) for k in mix} and len(kinds) >= 2
    before = st.read(16, 32)["perturbed"]
    st.group["done"][1] = False
    st.group["perturbed"][16:32] = 0
    r = gen("shards", scenes, "--out", out, *default, "--resume")  # the default mix, as this store realised it
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(st.read(16, 32)["perturbed"], before)
    r = gen("shards", scenes, "--out", str(tmp_path / "e.zarr"), *default, "--mask-mix", '{"object": 1, "human_holes": 1}')
    assert r.exit_code == 2 and "'human_holes'" in r.output and "Traceback" not in r.output
