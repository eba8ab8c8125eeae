"""`gen scenes` on real Dask LocalClusters: worker counts, a SIGKILLed worker, Ctrl-C + resume,
a failing task, and an S3-compatible object store on loopback."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bpy")
pytestmark = [pytest.mark.blender, pytest.mark.slow]

from pipelines import scenes_run  # noqa: E402
from scenes import store as scene_store  # noqa: E402
from scenes.config import build_config  # noqa: E402

N = 6
CFG = build_config("tiny", overrides=["render.width=64", "render.height=40", "scene.scenario=mix"])
GEN = str(Path(sys.executable).with_name("gen"))


def assert_same_annotations(a_url, b_url, n=N):
    a, b = scene_store.open_store(a_url), scene_store.open_store(b_url)
    assert a.done().all() and b.done().all()
    for i in range(n):
        sa, sb = a.read_scene(i), b.read_scene(i)
        for name in scene_store.ANNOTATIONS:
            if name != "rgb":
                np.testing.assert_array_equal(sa[name], sb[name], err_msg=f"scene {i} {name}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    url = str(tmp_path_factory.mktemp("ref") / "ref.zarr")
    assert scenes_run.run(url, n=N, cfg=CFG, seed=3, cluster=scenes_run.ClusterOptions(workers=0)).code == 0
    return url


def test_two_workers_equal_one_process(reference, tmp_path):
    url = str(tmp_path / "two.zarr")
    assert scenes_run.run(url, n=N, cfg=CFG, seed=3, cluster=scenes_run.ClusterOptions(workers=2)).code == 0
    assert_same_annotations(reference, url)


def test_sigkilled_worker_loses_no_scene(reference, tmp_path):
    from distributed import Client, LocalCluster
    url = str(tmp_path / "killed.zarr")
    with LocalCluster(n_workers=2, threads_per_worker=1, resources={"render": 1}, dashboard_address=None,
                      silence_logs=50) as cluster, Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        killed = []

        def killer():
            while not killed:
                try:
                    if scene_store.open_store(url).done().sum() >= 1:
                        os.kill(pids[0], signal.SIGKILL)
                        killed.append(pids[0])
                        return
                except scene_store.StoreError:
                    pass
                time.sleep(0.05)

        threading.Thread(target=killer, daemon=True).start()
        code = scenes_run.run(url, n=N, cfg=CFG, seed=3,
                              cluster=scenes_run.ClusterOptions(scheduler=cluster.scheduler_address)).code
    assert killed and code == 0
    assert_same_annotations(reference, url)


def test_ctrl_c_then_resume_equals_uninterrupted(reference, tmp_path):
    url = str(tmp_path / "resumed.zarr")
    args = [GEN, "scenes", "--n", str(N), "--out", url, "--seed", "3", "--preset", "tiny", "--scenario", "mix",
            "--set", "render.width=64", "--set", "render.height=40", "--workers", "1"]
    # A non-interactive shell starts background jobs with SIGINT ignored, and that survives
    # exec: without restoring the default, the child never sees the Ctrl-C sent below.
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if scene_store.open_store(url).done().sum() >= 2:
                break
        except scene_store.StoreError:
            pass
        time.sleep(0.05)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert time.monotonic() - t0 <= 5.0
    assert "--resume" in err and "Traceback" not in err
    done = scene_store.open_store(url).done()
    assert 2 <= done.sum() < N
    r = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert_same_annotations(reference, url)


def test_failing_task_goes_to_the_failure_log(tmp_path):
    from PIL import Image
    assets = tmp_path / "assets" / "pedestrian_cutouts"
    assets.mkdir(parents=True)
    rgba = np.zeros((20, 10, 4), np.uint8)
    rgba[2:18, 2:8] = 255
    Image.fromarray(rgba).save(assets / "p.png")
    cfg = build_config("tiny", overrides=["render.width=64", "render.height=40", f"assets.dir={tmp_path / 'assets'}",
                                          "assets.cutout_probability=1.0"])
    cfg = scenes_run.index_assets(cfg)
    (assets / "p.png").write_bytes(b"broken after indexing")
    url = str(tmp_path / "fail.zarr")
    code = scenes_run.run(url, n=2, cfg=cfg, seed=1, cluster=scenes_run.ClusterOptions(workers=1, retries=1)).code
    assert code == 1
    st = scene_store.open_store(url)
    log = st.attrs["failures"]
    assert set(log) == {"0", "1"} and all("p.png" in m or "image" in m.lower() for m in log.values())
    assert not st.done().any()


def test_s3_store_on_a_loopback_server(tmp_path, loopback_s3):
    s3 = loopback_s3
    s3.create_bucket(Bucket="rgsd")
    url = "s3://rgsd/scenes.zarr"
    assert scenes_run.run(url, n=2, cfg=CFG, seed=3, cluster=scenes_run.ClusterOptions(workers=1)).code == 0
    st = scene_store.open_store(url)
    assert st.done().all()
    s = st.read_scene(1)
    assert np.isfinite(s["depth"]).any() and s["rgb"].shape == (40, 64, 3)
    keys = s3.list_objects_v2(Bucket="rgsd")["KeyCount"]
    assert keys > 10


def test_workers_recycled_after_every_scene_lose_nothing(reference, tmp_path):
    url = str(tmp_path / "recycled.zarr")
    opts = scenes_run.ClusterOptions(workers=2, recycle_after=1)
    assert scenes_run.run(url, n=N, cfg=CFG, seed=3, cluster=opts).code == 0
    assert_same_annotations(reference, url)


def test_blender_subprocess_mode(reference, tmp_path):
    # Three scenes: a fresh process per task (each starts Blender) is what the mode changes.
    url = str(tmp_path / "sub.zarr")
    opts = scenes_run.ClusterOptions(workers=1, blender="subprocess")
    assert scenes_run.run(url, n=3, cfg=CFG, seed=3, cluster=opts).code == 0
    assert_same_annotations(reference, url, n=3)


def test_a_cluster_without_workers_fails_instead_of_waiting_forever(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        opts = scenes_run.ClusterOptions(scheduler=cluster.scheduler_address, stall_timeout_s=1.0)
        with pytest.raises(scenes_run.RunError, match="no workers"):
            scenes_run.run(str(tmp_path / "s.zarr"), n=2, cfg=CFG, seed=3, cluster=opts)
