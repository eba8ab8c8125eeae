"""`gen export region-support` and composer/region_support.py (RSN Algorithm 1)."""
import numpy as np
import pytest
from click.testing import CliRunner

from pipelines.cli import cli
from scenes import store as scene_store
from tests.export_fakes import CAR, make_fake_store


def gen(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return make_fake_store(tmp_path_factory.mktemp("fake"))


def test_region_support_on_a_hand_built_map():
    from composer.region_support import region_support
    sem = np.zeros((10, 12), np.uint8)
    depth = np.full((10, 12), 5.0, np.float32)  # unlabeled ground at 5 m
    sem[0], depth[0] = 1, np.inf  # sky: no surface
    sem[2:4, 0:3], depth[2:4, 0:3] = CAR, 10.0  # A
    sem[2:4, 8:11], depth[2:4, 8:11] = CAR, 12.0  # B: same class, not connected to A
    sem[5, 0:2], depth[5, 0:2] = 4, 22.0  # building, the image's farthest surface
    sem[5, 10:12], depth[5, 10:12] = 4, 20.0
    sem[5, 5], depth[5, 5] = CAR, 15.0  # C: two diagonal pixels, one region with 8-connectivity
    sem[6, 6], depth[6, 6] = CAR, 17.0
    road = np.array([2, 2, 2, 2, 4, 6, 8, 8, 8, 8, 12, 13], np.float32)
    sem[7:10], depth[7:10] = 2, road
    rs, ids = region_support(sem, depth)
    # var = (22 - 2) / 10 = 2.  The road spans 11 >= 2 var: bins [2,4) [4,6) [6,8) [8,10) [10,12)
    # [12,14) hold 12, 3, 3, 12, 0, 6 pixels; dense means > 36 / (11 / 2) = 6.55: bin 0 alone,
    # bins 1-3 together, bins 4-5 the last group.  Every other region spans < 4 m: one mean.
    expect_ids = np.zeros((10, 12), np.int32)
    expect_rs = np.full((10, 12), np.nan, np.float32)
    expect_rs[0] = np.inf
    for rid, (rows, cols, value) in enumerate([
            ((2, 4), (0, 3), 10.0), ((2, 4), (8, 11), 12.0), ((5, 6), (0, 2), 22.0), (None, None, 16.0),
            ((5, 6), (10, 12), 20.0), ((7, 10), (0, 4), 2.0), ((7, 10), (4, 10), 7.0),
            ((7, 10), (10, 12), 12.5)], start=1):
        if rows is None:
            expect_ids[5, 5] = expect_ids[6, 6] = rid
            expect_rs[5, 5] = expect_rs[6, 6] = value
        else:
            expect_ids[rows[0]:rows[1], cols[0]:cols[1]] = rid
            expect_rs[rows[0]:rows[1], cols[0]:cols[1]] = value
    np.testing.assert_array_equal(ids, expect_ids)
    np.testing.assert_allclose(rs, expect_rs, rtol=1e-6)
    rs4, ids4 = region_support(sem, depth, connectivity=4)
    assert ids4.max() == 9 and ids4[5, 5] != ids4[6, 6]  # the diagonal pair splits
    assert rs4[5, 5] == 15.0 and rs4[6, 6] == 17.0


def test_region_support_is_added_to_the_store_and_resumes(fake, tmp_path):
    import shutil

    from composer.region_support import region_support
    url = str(tmp_path / "rs.zarr")
    shutil.copytree(fake, url)
    r = gen("export", "region-support", url, "--workers", 0)
    assert r.exit_code == 0, r.stderr
    assert "2 computed now" in r.stderr
    st = scene_store.open_store(url)  # still a valid scene store
    for i in (0, 1):
        s = st.read_scene(i, ["semantic", "depth", "region_support", "region_id"])
        rs, ids = region_support(s["semantic"], s["depth"])
        np.testing.assert_array_equal(s["region_support"], rs)
        np.testing.assert_array_equal(s["region_id"], ids)
    assert st.read_scene(2, ["region_id"])["region_id"].min() == -1  # unfinished scene untouched
    r = gen("export", "region-support", url, "--workers", 0)
    assert r.exit_code == 0 and "0 computed now" in r.stderr
    r = gen("export", "region-support", url, "--workers", 0, "--bins", 5)
    assert r.exit_code == 2 and "--overwrite" in r.stderr
