"""Scene runs at scale without Blender (tests/fake_scenes.py makes the arrays): metadata
reads are O(1) chunks, concurrent workers never share a chunk, Ctrl-C + --resume equals a
clean run, version-1 stores still read and resume, and shard runs share the failure log."""
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import zarr

from pipelines import inspect_store, runner, scenes_run, shards_run
from scenes import store as scene_store
from scenes.config import build_config
from tests.fake_scenes import MAKE, fake_arrays, fake_spec, fake_store

ROOT = Path(__file__).resolve().parents[1]
CFG = build_config("tiny", overrides=["render.width=32", "render.height=24", "scene.max_instances=8"])


class CountingStore(zarr.storage.WrapperStore):
    """Every key read, counted (what an object store would see as GETs)."""

    def __init__(self, store):
        super().__init__(store)
        self.reads = Counter()

    async def get(self, key, prototype, byte_range=None):
        self.reads[key] += 1
        return await self._store.get(key, prototype, byte_range)

    async def get_partial_values(self, prototype, key_ranges):
        key_ranges = list(key_ranges)
        for key, _ in key_ranges:
            self.reads[key] += 1
        return await self._store.get_partial_values(prototype, key_ranges)

    def chunk_reads(self) -> Counter:
        return Counter(k.split("/")[0] for k in self.reads if "/c/" in k or k.endswith("/c"))


def assert_same_stores(a_url, b_url):
    a, b = scene_store.open_store(a_url), scene_store.open_store(b_url)
    np.testing.assert_array_equal(a.done(), b.done())
    for i in np.flatnonzero(a.done()):
        sa, sb = a.read_scene(int(i)), b.read_scene(int(i))
        for name in scene_store.ANNOTATIONS:
            np.testing.assert_array_equal(sa[name], sb[name], err_msg=f"scene {i} {name}")
        assert a.spec(int(i)) == b.spec(int(i))


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """2,000 scenes, 300 of them done (in both metadata chunks of 1024: 0..149 and 1850..1999)."""
    url = str(tmp_path_factory.mktemp("big") / "big.zarr")
    fake_store(url, 2000, list(range(150)) + list(range(1850, 2000)), CFG)
    return url


def test_info_and_resume_read_o1_metadata_chunks(big):
    counting = CountingStore(zarr.storage.LocalStore(big, read_only=True))
    text = inspect_store.info_text(counting)
    assert "300/2000 done" in text
    # fake scenes have 1 + i % 3 instances: car, then pedestrian, then bus
    n1 = sum(1 + i % 3 for i in list(range(150)) + list(range(1850, 2000)))
    assert "car 300" in text and f"{n1 / 300:.1f} instances" in text
    chunks = counting.chunk_reads()
    assert not set(chunks) & set(scene_store.PIXEL_ARRAYS), chunks  # no per-pixel data
    assert chunks["done"] == 1 and chunks["num_instances"] == 1 and chunks["instance_class"] == 2, chunks
    assert chunks["spec"] <= 2 and sum(chunks.values()) <= 8, chunks
    assert sum(counting.reads.values()) <= 40, counting.reads

    counting = CountingStore(zarr.storage.LocalStore(big))
    st, _, _, todo, _ = scenes_run.open_run(counting, 2000, CFG, 0, resume=True)
    assert len(todo) == 1700 and todo[0] == 150 and todo[-1] == 1849
    assert counting.chunk_reads() == Counter({"done": 1}), counting.reads
    assert sum(counting.reads.values()) <= 30, counting.reads


def test_objects_per_finished_scene_stay_within_the_contract(big):
    files = sum(len(f) for _, _, f in os.walk(big))
    meta = sum(1 for _ in Path(big).glob("*/zarr.json")) + 1
    per_scene = (files - meta) / 300
    assert per_scene <= len(scene_store.PIXEL_ARRAYS) + 1, per_scene


def test_two_workers_flat_out_on_one_block_equal_a_serial_run(tmp_path):
    a, b = str(tmp_path / "serial.zarr"), str(tmp_path / "two.zarr")
    assert scenes_run.run(a, n=48, cfg=CFG, seed=5, cluster=scenes_run.ClusterOptions(workers=0), make=MAKE).code == 0
    r = scenes_run.run(b, n=48, cfg=CFG, seed=5, cluster=scenes_run.ClusterOptions(workers=2), make=MAKE)
    assert r.code == 0 and r.done == 48
    assert_same_stores(a, b)
    # ... and equal to what the fake maker says, not just to each other
    st = scene_store.open_store(b)
    for i in (0, 17, 47):
        want = fake_arrays(CFG, 5, i)
        got = st.read_scene(i)
        for name in ("depth", "instance", "occlusion", "box3d"):
            np.testing.assert_array_equal(got[name], want[name])
        assert st.spec(i) == fake_spec(5, i)


@pytest.mark.slow
def test_workers_recycled_after_every_task_lose_no_result(tmp_path):
    """A recycling worker holds results the driver has not fetched yet and tasks queued
    behind them: neither may be lost (the tables live only in the results now)."""
    a, b = str(tmp_path / "serial.zarr"), str(tmp_path / "recycled.zarr")
    assert scenes_run.run(a, n=12, cfg=CFG, seed=5, cluster=scenes_run.ClusterOptions(workers=0), make=MAKE).code == 0
    opts = scenes_run.ClusterOptions(workers=2, recycle_after=1, retries=0)
    r = scenes_run.run(b, n=12, cfg=CFG, seed=5, cluster=opts, make=MAKE)
    assert r.code == 0 and r.done == 12, r.failures
    assert_same_stores(a, b)


CHILD = """
import sys
from pipelines import scenes_run
from scenes.config import build_config
from tests.fake_scenes import MAKE
cfg = build_config("tiny", overrides=["render.width=32", "render.height=24", "scene.max_instances=8"])
r = scenes_run.run(sys.argv[1], n=int(sys.argv[2]), cfg=cfg, seed=5, resume=sys.argv[3] == "resume",
                   cluster=scenes_run.ClusterOptions(workers=int(sys.argv[4])), make=MAKE)
sys.exit(r.code)
"""


def _restore_sigint():
    # A shell starts background jobs with SIGINT ignored, and an ignored signal stays
    # ignored across exec: the child must get the default back, or Ctrl-C is never seen.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(url, n, mode, workers, delay="0.3"):
    env = dict(os.environ, RGSD_FAKE_DELAY_S=delay, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", CHILD, url, str(n), mode, str(workers)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_restore_sigint)


def _wait_done(url, k, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if scene_store.open_store(url).done().sum() >= k:
                return
        except scene_store.StoreError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not {k} scenes done: {proc.poll()} {proc.stderr.read() if proc.poll() is not None else ''}")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_ctrl_c_then_resume_equals_a_clean_run(tmp_path, workers):
    url, clean = str(tmp_path / "cut.zarr"), str(tmp_path / "clean.zarr")
    proc = _start(url, 60, "new", workers)
    _wait_done(url, 4, proc)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - t0
    assert proc.returncode == 130, err
    assert took <= 5.0, took
    lines = [x for x in err.splitlines() if "interrupted" in x]
    assert len(lines) == 1 and "--resume" in lines[0] and "Traceback" not in err, err
    done = scene_store.open_store(url).done()
    assert 4 <= done.sum() < 60
    assert f"{int(done.sum())}/60 scenes done" in lines[0]
    # resume the rest quickly in this process; equal to a clean run, scene for scene
    r = scenes_run.run(url, n=60, cfg=CFG, seed=5, resume=True, cluster=scenes_run.ClusterOptions(workers=0),
                       make=MAKE)
    assert r.code == 0 and r.done == 60
    assert scenes_run.run(clean, n=60, cfg=CFG, seed=5, cluster=scenes_run.ClusterOptions(workers=0),
                          make=MAKE).code == 0
    assert_same_stores(url, clean)


@pytest.mark.slow
def test_a_second_ctrl_c_exits_at_once(tmp_path):
    url = str(tmp_path / "twice.zarr")
    proc = _start(url, 400, "new", 2, delay="0.3")
    _wait_done(url, 2, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode in (130, -signal.SIGINT) and time.monotonic() - t0 < 1.5


def _v1_store(url, n, done):
    """A format-version-1 store as rgsd wrote it: one chunk per scene for every array."""
    h, w, kmax = CFG["render"]["height"], CFG["render"]["width"], CFG["scene"]["max_instances"]
    sizes = {"y": h, "x": w, "channel": 3, "instance": kmax, "other": kmax, "box": 4, "box3d": 7}
    g = zarr.open_group(url, mode="w", zarr_format=3)
    for name, (dims, dtype, fill) in scene_store.PER_SCENE.items():
        shape = (n,) + tuple(sizes[d] for d in dims)
        kw = {"chunks": (1, 1, h, w), "shards": (1, kmax, h, w)} if name == "amodal" else {"chunks": (1,) + shape[1:]}
        g.create_array(name, shape=shape, dtype=str if dtype == "str" else dtype, fill_value=fill,
                       dimension_names=("scene",) + dims, **kw)
    g.attrs.update({"kind": "rgsd.scenes", "format_version": 1, "resolution": {"width": w, "height": h},
                    "intrinsics": {"fx": 1.0}, "classes": list(__import__("scenes.classes").classes.CLASSES),
                    "config": CFG, "seed": 5, "n_scenes": n, "software": {}})
    for i in done:
        arrays = fake_arrays(CFG, 5, i)
        for name in scene_store.ANNOTATIONS:
            g[name][i] = arrays[name]
        g["spec"][i:i + 1] = np.array([fake_spec(5, i)], dtype=object)
        g["done"][i] = True


def test_version_1_store_reads_and_resumes(tmp_path):
    old, new = str(tmp_path / "v1.zarr"), str(tmp_path / "v2.zarr")
    _v1_store(old, 12, [0, 3, 4])
    st = scene_store.open_store(old)
    assert st.format_version == 1 and st.n == 12 and list(np.flatnonzero(st.done())) == [0, 3, 4]
    np.testing.assert_array_equal(st.read_scene(3)["occlusion"], fake_arrays(CFG, 5, 3)["occlusion"])
    assert "3/12 done" in inspect_store.info_text(old) and "v1" in inspect_store.info_text(old)
    r = scenes_run.run(old, n=12, cfg=CFG, seed=5, resume=True, cluster=scenes_run.ClusterOptions(workers=0),
                       make=MAKE)
    assert r.code == 0 and r.done == 12
    assert scene_store.open_store(old).array("done").chunks == (1,)  # still a version-1 layout
    scenes_run.run(new, n=12, cfg=CFG, seed=5, cluster=scenes_run.ClusterOptions(workers=0), make=MAKE)
    assert_same_stores(old, new)


def test_resume_names_the_setting_that_differs(big):
    with pytest.raises(runner.RunError, match="config key 'render.samples'"):
        scenes_run.open_run(big, 2000, dict(CFG, render=dict(CFG["render"], samples=9)), 0, resume=True)
    with pytest.raises(runner.RunError, match="seed 4 differs from the store's 0"):
        scenes_run.open_run(big, 2000, CFG, 4, resume=True)
    with pytest.raises(runner.RunError, match="n 20 differs"):
        scenes_run.open_run(big, 20, CFG, 0, resume=True)


def _sources(tmp_path):
    cfg = build_config("tiny", overrides=["render.width=48", "render.height=40"])
    url = str(tmp_path / "src.zarr")
    fake_store(url, 8, range(8), cfg)
    return url


SKY = {"mask_mix": {"sky": 1.0}, "shard_size": 8}


def test_a_failed_shard_goes_to_the_failure_log_and_the_rest_finish(tmp_path):
    src, out = _sources(tmp_path), str(tmp_path / "sh.zarr")
    cfg = shards_run.shard_config(16, SKY)
    opts = shards_run.ClusterOptions(workers=0)
    assert shards_run.run(out, [src], samples=24, cfg=cfg, seed=1, cluster=opts).code == 0
    st = shard_store_open(out, "r+")
    st.group["done"][1] = False
    chunk = Path(out) / "rgb" / "c" / "1" / "0" / "0" / "0"  # shard 1's first rgb chunk
    chunk.unlink()
    chunk.mkdir()  # writing it now fails
    r = shards_run.run(out, [src], samples=24, cfg=cfg, seed=1, resume=True, cluster=opts)
    assert r.code == 1 and set(r.failures) == {1}
    assert "1" in shard_store_open(out).attrs["failures"]
    assert "failures    1 shard(s)" in inspect_store.info_text(out)
    chunk.rmdir()
    assert shards_run.run(out, [src], samples=24, cfg=cfg, seed=1, resume=True, cluster=opts).code == 0
    assert shard_store_open(out).attrs["failures"] == {} and shard_store_open(out).done().all()


def shard_store_open(url, mode="r"):
    from composer.shard_store import open_shards
    return open_shards(url, mode=mode)


@pytest.mark.slow
def test_a_shard_run_on_a_cluster_without_workers_fails_instead_of_waiting(tmp_path):
    from distributed import LocalCluster
    src = _sources(tmp_path)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        opts = shards_run.ClusterOptions(scheduler=cluster.scheduler_address, stall_timeout_s=1.0)
        with pytest.raises(runner.RunError, match="no workers"):
            shards_run.run(str(tmp_path / "s.zarr"), [src], samples=16, cfg=shards_run.shard_config(16, SKY),
                           seed=1, cluster=opts)


def test_shard_config_is_stored_as_before():
    cfg = shards_run.shard_config(64, {"shard_size": 16})
    assert cfg.to_dict() == {
        "patch": 64, "shard_size": 16, "chunk_size": 32, "batch_scenes": 12,
        "mask_mix": {"object": 0.5, "sky": 0.2, "human": 0.15, "human_holes": 0.15}, "min_fraction": 0.01,
        "human_classes": ["pedestrian"],
        "object_classes": ["car", "van", "truck", "bus", "traffic_sign", "traffic_light", "pole", "unlabeled"],
        "near_m": 1.0, "degrade_mix": {"perturb": 1.0}}
    # Keys are only ever appended; a store recorded without a later one resumes with its
    # default (tests/test_shards.py::test_a_store_begun_before_degrade_mix_existed_resumes).
    assert list(cfg.to_dict()) == ["patch", "shard_size", "chunk_size", "batch_scenes", "mask_mix", "min_fraction",
                                   "human_classes", "object_classes", "near_m", "degrade_mix"]
    json.dumps(cfg.to_dict())
    for bad, words in (({"nope": 1}, "unknown shard config key 'nope'"), ({"mask_mix": {"dragons": 1}}, "mask_mix")):
        with pytest.raises(runner.RunError, match=words):
            shards_run.shard_config(64, bad)
    assert math.isclose(sum(cfg.mask_mix.values()), 1.0)
