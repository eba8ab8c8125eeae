"""`gen verify` finds exactly the damaged scenes and shards; `--repair` + `--resume` gives
back what a clean run makes; the loader refuses damaged shard chunks; --overwrite on an
object store leaves other data alone."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from composer.shard_store import SAMPLE_ARRAYS, open_shards
from pipelines.cli import cli
from scenes.store import ChunkError, open_store
from tests.test_user_errors import SHARDS, _images


def gen(*args):
    r = CliRunner().invoke(cli, [str(a) for a in args])
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    w = tmp_path_factory.mktemp("v")
    _images(w / "rgbd", n=4)
    assert gen("import", "rgbd", w / "rgbd", "--out", w / "s.zarr")[0] == 0
    assert gen("shards", w / "s.zarr", "--out", w / "sh.zarr", "--samples", "96", *SHARDS)[0] == 0
    return w


def test_verify_reports_exactly_the_damaged_scenes_and_repair_clears_them(stores, tmp_path):
    s = tmp_path / "s.zarr"
    shutil.copytree(stores / "s.zarr", s)
    assert gen("verify", s, "--workers", "0")[:2] == (0, f"{s}: all 4 finished scenes intact\n")
    (s / "depth/c/1/0/0").unlink()  # missing
    b = bytearray((s / "rgb/c/3/0/0/0").read_bytes())
    b[40] ^= 1  # one bit
    (s / "rgb/c/3/0/0/0").write_bytes(bytes(b))
    code, out, _ = gen("verify", s, "--workers", "0")
    assert code == 1 and out.splitlines()[0] == f"{s}: 2 of 4 finished scenes damaged: 1,3", out
    assert "'depth' of scene 1 has no stored chunk" in out and "'rgb' of scene 3 is damaged (checksum" in out
    assert open_store(str(s)).done().all()  # reporting changes nothing
    code, out, _ = gen("verify", s, "--workers", "0", "--repair")
    assert code == 0 and "2 scene(s) marked not done" in out
    assert open_store(str(s)).done().tolist() == [True, False, True, False]
    assert gen("verify", s, "--workers", "0")[0] == 0  # what is left is intact


def test_a_fill_valued_chunk_is_stored_so_only_damage_is_missing(stores):
    """write_empty_chunks: an all-False occlusion table is a stored chunk, not an absent one."""
    st = open_store(str(stores / "s.zarr"))
    assert not st.group["occlusion"][0].any()
    assert (stores / "s.zarr/occlusion/c/0/0/0").is_file()


def test_verify_shards_and_the_loader_refuses_damaged_chunks(stores, tmp_path):
    from trainer.data import block_starts, iter_batches

    sh = tmp_path / "sh.zarr"
    shutil.copytree(stores / "sh.zarr", sh)
    os.truncate(sh / "perturbed/c/1/0/0", 100)  # chunk 1 = shard 1 (32-sample shards)
    (sh / "mask/c/2/0/0").unlink()  # shard 2
    code, out, _ = gen("verify", sh, "--workers", "0")
    assert code == 1 and out.splitlines()[0] == f"{sh}: 2 of 3 finished shards damaged: 1-2", out
    st = open_shards(str(sh))
    with pytest.raises(ChunkError, match="'perturbed' of shard 1 .*checksum"):
        list(iter_batches(st, block_starts(st, 32)[1:2], 32, 8, seed=0))
    with pytest.raises(ChunkError, match="'mask' of shard 2 has no stored chunk"):
        st.read(64, 96)
    good = st.read_blocks([0], 32)[0]  # shard 0 is untouched and reads as built
    ref = open_shards(str(stores / "sh.zarr")).read(0, 32)
    for name in SAMPLE_ARRAYS:
        np.testing.assert_array_equal(good[name], ref[name], err_msg=name)
    assert gen("verify", sh, "--workers", "0", "--repair")[0] == 0
    assert open_shards(str(sh)).done().tolist() == [True, False, False]


def test_a_damaged_done_flag_of_a_shard_store_is_rebuilt_by_resume(stores, tmp_path):
    sh = tmp_path / "sh.zarr"
    shutil.copytree(stores / "sh.zarr", sh)
    b = bytearray((sh / "done/c/1").read_bytes())
    b[len(b) // 2] ^= 1
    (sh / "done/c/1").write_bytes(bytes(b))
    code, out, _ = gen("verify", sh, "--workers", "0")
    assert code == 1 and f"{sh}: array 'done' of shard 1 is damaged" in out and "intact" not in out, out
    code, out, _ = gen("verify", sh, "--workers", "0", "--repair")
    assert code == 0 and "1 of 3 shards pending (re-)render: 1" in out, out
    assert open_shards(str(sh)).done().tolist() == [True, False, True]
    code, _, err = gen("shards", stores / "s.zarr", "--out", sh, "--samples", "96", *SHARDS, "--resume")
    assert code == 0, err
    a, b_ = open_shards(str(sh)).read(0, 96), open_shards(str(stores / "sh.zarr")).read(0, 96)
    for name in SAMPLE_ARRAYS:
        np.testing.assert_array_equal(a[name], b_[name], err_msg=name)


@pytest.mark.slow
def test_verify_on_dask(stores, tmp_path):
    s = tmp_path / "s.zarr"
    shutil.copytree(stores / "s.zarr", s)
    os.truncate(s / "instance/c/2/0/0", 0)
    code, out, _ = gen("verify", s, "--workers", "1")
    assert code == 1 and out.splitlines()[0].endswith("1 of 4 finished scenes damaged: 2"), out


@pytest.mark.slow
def test_overwrite_on_an_object_store_keeps_other_data(stores, loopback_s3):
    s3 = loopback_s3
    s3.create_bucket(Bucket="bkt")
    s3.put_object(Bucket="bkt", Key="mine/report.txt", Body=b"precious")
    code, _, err = gen("import", "rgbd", stores / "rgbd", "--out", "s3://bkt/mine", "--overwrite")
    assert code == 2 and "not an rgsd store" in err, err
    assert s3.get_object(Bucket="bkt", Key="mine/report.txt")["Body"].read() == b"precious"
    # An rgsd store there is replaced, and its replacement reads back.
    assert gen("import", "rgbd", stores / "rgbd", "--out", "s3://bkt/new.zarr")[0] == 0
    assert gen("import", "rgbd", stores / "rgbd", "--out", "s3://bkt/new.zarr")[0] == 2
    code, _, err = gen("import", "rgbd", stores / "rgbd", "--out", "s3://bkt/new.zarr", "--overwrite")
    assert code == 0, err
    assert gen("verify", "s3://bkt/new.zarr", "--workers", "0")[0] == 0

# Repair + --resume equals a clean run, for every array: tests/test_store_repair.py.
