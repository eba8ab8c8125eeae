"""A store has one writer (scenes/store_lock.py): a second ``gen scenes``/``gen shards`` on a
store being written is refused in one line; the lease goes on a normal exit and on Ctrl-C;
a killed run's lease is taken over once it expires; the same on an object store."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines import scenes_run
from scenes import store_lock
from scenes.config import build_config
from tests.cli_util import gen, one_line_error
from tests.fake_scenes import MAKE

ROOT = Path(__file__).resolve().parents[1]
CFG = build_config("tiny", overrides=["render.width=24", "render.height=16", "scene.max_instances=6"])
CHILD = """
import sys
from pipelines import scenes_run
from scenes.config import build_config
from tests.fake_scenes import MAKE
cfg = build_config("tiny", overrides=["render.width=24", "render.height=16", "scene.max_instances=6"])
r = scenes_run.run(sys.argv[1], n=int(sys.argv[2]), cfg=cfg, seed=5, cluster=scenes_run.ClusterOptions(workers=0),
                   make=MAKE)
sys.exit(r.code)
"""
HOLD = """
import sys, time
from scenes.store_lock import Lease
Lease(sys.argv[1], "a run that gets killed").acquire()
print("held", flush=True)
time.sleep(600)
"""


def _child(code, *args, **env):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _run(url, resume=True, n=30):
    return scenes_run.run(str(url), n=n, cfg=CFG, seed=5, resume=resume, cluster=scenes_run.ClusterOptions(workers=0),
                          make=MAKE)


def _wait_for(path: Path, proc, timeout=60):
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.05)


def test_a_second_writer_is_refused_and_the_lease_goes_with_the_run(tmp_path):
    url = tmp_path / "s.zarr"
    lease = url / store_lock.LEASE
    proc = _child(CHILD, url, 30, RGSD_FAKE_DELAY_S="0.1")
    _wait_for(url / "done" / "zarr.json", proc)
    assert lease.is_file()
    with pytest.raises(store_lock.StoreLockedError, match=r"s.zarr is being written by another run \(gen scenes, pid "
                                                          rf"{proc.pid} on .*wait for it to finish"):
        _run(url)
    with pytest.raises(store_lock.StoreLockedError):  # --overwrite clears nothing of a store being written
        scenes_run.run(str(url), n=30, cfg=CFG, seed=5, overwrite=True, cluster=scenes_run.ClusterOptions(workers=0),
                       make=MAKE)
    if _has_bpy():  # the command line: one line, exit 2, before Blender renders anything
        one_line_error(gen("scenes", "--out", url, "--n", 30, "--preset", "tiny", "--resume", "--workers", 0),
                       "is being written by another run")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert not lease.exists() and sorted(p.name for p in url.iterdir() if p.name.startswith("writer")) == []
    assert _run(url).code == 0  # all done: nothing to render, and no one else holds it


def _has_bpy():
    import importlib.util
    return importlib.util.find_spec("bpy") is not None


def test_ctrl_c_releases_the_lease(tmp_path):
    url = tmp_path / "s.zarr"
    proc = _child(CHILD, url, 200, RGSD_FAKE_DELAY_S="0.2")
    _wait_for(url / "done" / "zarr.json", proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert not (url / store_lock.LEASE).exists()


def test_a_killed_runs_lease_is_taken_over_once_it_expires(tmp_path, monkeypatch):
    monkeypatch.setenv("RGSD_LEASE_S", "3")
    url = tmp_path / "s.zarr"
    assert _run(url, resume=False, n=3).code == 0
    holder = _child(HOLD, url, RGSD_LEASE_S="3")
    assert holder.stdout.readline() == "held\n"
    holder.kill()
    holder.wait()
    t_killed = time.time()
    with pytest.raises(store_lock.StoreLockedError, match="a run that gets killed.*expires 3s after"):
        _run(url, n=3)
    time.sleep(max(0.0, t_killed + 3.2 - time.time()))
    assert _run(url, n=3).code == 0  # taken over (a note says so), then released
    assert not (url / store_lock.LEASE).exists()
    r = scenes_run.run(str(url), n=3, cfg=CFG, seed=5, overwrite=True, cluster=scenes_run.ClusterOptions(workers=0),
                       make=MAKE)
    assert r.code == 0 and r.done == 3 and not (url / store_lock.LEASE).exists()


def test_gen_shards_refuses_a_store_being_written(tmp_path):
    from tests.test_user_errors import SHARDS, _images
    _images(tmp_path / "rgbd", n=4)
    assert gen("import", "rgbd", tmp_path / "rgbd", "--out", tmp_path / "s.zarr").exit_code == 0
    sh = tmp_path / "sh.zarr"
    assert gen("shards", tmp_path / "s.zarr", "--out", sh, "--samples", 64, *SHARDS).exit_code == 0
    other = store_lock.Lease(str(sh), "gen shards").acquire()  # as another process's run holds it
    try:
        one_line_error(gen("shards", tmp_path / "s.zarr", "--out", sh, "--samples", 64, *SHARDS, "--overwrite"),
                       f"{sh} is being written by another run (gen shards")
        one_line_error(gen("verify", sh, "--workers", 0, "--repair"), "is being written by another run")
    finally:
        other.release()
    r = gen("shards", tmp_path / "s.zarr", "--out", sh, "--samples", 64, *SHARDS, "--resume")
    assert r.exit_code == 0, r.output
    assert not (sh / store_lock.LEASE).exists()


@pytest.mark.slow
def test_one_writer_on_an_object_store(loopback_s3, monkeypatch):
    loopback_s3.create_bucket(Bucket="bkt")
    url = "s3://bkt/s.zarr"
    assert _run(url, resume=False, n=2).code == 0
    monkeypatch.setenv("RGSD_LEASE_S", "2")
    other = store_lock.Lease(url, "gen scenes").acquire()
    try:
        with pytest.raises(store_lock.StoreLockedError, match="is being written by another run"):
            _run(url, n=2)
    finally:
        other._stop.set()  # it stops renewing, as a killed run does
        other._thread.join()
    time.sleep(2.2)
    assert _run(url, n=2).code == 0
    r = scenes_run.run(url, n=2, cfg=CFG, seed=5, overwrite=True, cluster=scenes_run.ClusterOptions(workers=0),
                       make=MAKE)  # clearing the store keeps the run's own lease; the group is made beside it
    assert r.code == 0 and r.done == 2
    keys = [o["Key"] for o in loopback_s3.list_objects_v2(Bucket="bkt", Prefix="s.zarr/").get("Contents", [])]
    assert "s.zarr/" + store_lock.LEASE not in keys and "s.zarr/zarr.json" in keys
