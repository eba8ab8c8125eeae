"""Scene rendering on Dask: one task renders the frames of one layout and writes them.

A task writes only its own scenes' per-pixel chunks and returns the small rest (tables and
spec) for the driver to write in batches, ``done`` last (scenes/store.py), so concurrent
workers never share a chunk and a killed task leaves its scenes not-done, to be rendered
again.  Blender runs inside the worker process (``bpy`` imported once and reused) or, with
``blender="subprocess"``, in a fresh Python process per task, as BlenderProc and Kubric do.

Test and benchmark hook: ``job["make"]`` names ("module:function") what makes the scenes,
``make(group, cfg, seed, threads)`` yielding ``(index, spec_json, arrays, timings)`` per
scene; the default, :func:`blender_scenes`, samples the specs and renders them with Blender.
A stand-in that makes arrays without rendering measures everything else of a run.
"""
from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time

DEFAULT_MAKER = "pipelines.scenes_dask:blender_scenes"
_rendered_here = 0  # scenes this worker process has rendered since it started
_open: dict = {}  # (url, run token) -> SceneStore: a task reopening the store costs ~25 reads


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def blender_scenes(group: list, cfg: dict, seed: int, threads: int = 0):
    """Sample (or parse the stored) specs of ``group`` = [(index, spec_json or None), ...],
    frames of one layout, and render them: (index, spec_json, arrays, timings) per scene."""
    from generator.render import render_layout
    from scenes.sampling import sample_scene
    from scenes.spec import SceneSpec

    local = copy.deepcopy(cfg)
    local["render"]["threads"] = threads or local["render"]["threads"]
    specs = [SceneSpec.from_json(s) if s else sample_scene(cfg, seed, i) for i, s in group]
    for spec, arrays, t in render_layout(specs, local):
        yield spec.index, spec.to_json(), arrays, t


def resolve(name: str):
    import importlib
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


def _store(job: dict):
    from scenes import store as scene_store
    key = (job["url"], job.get("token"))
    st = _open.get(key)
    if st is None:
        _open.clear()  # one run at a time per worker
        st = _open[key] = scene_store.open_store(job["url"], mode="r+")
    return st


def render_group(job: dict, group: list) -> list[dict]:
    """Make and write the per-pixel arrays of scenes ``group`` = [(index, spec_json or None)];
    ``job``: {"url", "cfg", "seed", "threads", "make", "token"}, shared by every task of a run.
    Returns, per scene, what the driver writes: {"index", "spec", "tables", "timing"}."""
    global _rendered_here
    from scenes.store import tables_of

    st = _store(job)
    make = resolve(job.get("make") or DEFAULT_MAKER)
    out = []
    for i, spec_json, arrays, t in make(group, job["cfg"], job["seed"], job.get("threads", 0)):
        w0 = time.perf_counter()
        st.write_pixels(i, arrays)
        t["write"] = time.perf_counter() - w0
        t["rss_mib"] = _rss_mib()
        out.append({"index": int(i), "spec": spec_json, "tables": tables_of(arrays), "timing": t})
        _rendered_here += 1
    return out


RECYCLE_EXIT_TIMEOUT_S = 60.0
RECYCLE_WAIT_S = 120.0  # for the driver to fetch this worker's last results
RESULT_PREFIX = "render-scenes-"
_recycling = False


def maybe_recycle(recycle_after: int, max_rss_mib: float) -> bool:
    """Restart this Dask worker (its nanny starts a fresh process) once it has rendered
    ``recycle_after`` scenes or grown past ``max_rss_mib``: Blender leaks over long loops.

    A task's result (its scenes' tables) lives on this worker until the driver has it, and a
    few more tasks are queued here: the worker pauses (takes no new task), waits until it
    runs nothing and holds no result, then restarts; its queued tasks go elsewhere."""
    global _recycling
    if _recycling or not ((recycle_after and _rendered_here >= recycle_after)
                          or (max_rss_mib and _rss_mib() > max_rss_mib)):
        return False
    _recycling = True
    import asyncio
    import faulthandler

    from distributed import get_worker
    from distributed.core import Status
    w = get_worker()
    deadline = time.monotonic() + RECYCLE_WAIT_S

    async def restart_when_idle():
        # Worker.status (the setter distributed itself pauses workers with under memory
        # pressure) and close_gracefully(restart=True) have no public equivalent that drains
        # a worker before restarting it (Client.restart_workers kills it mid-task and counts
        # its tasks as suspicious).  Should an upgrade change them, the worker just is not
        # recycled (one warning) rather than failing its task.
        try:
            w.status = Status.paused
        except Exception as exc:  # noqa: BLE001
            print(f"warning: cannot pause worker for recycling ({exc}); it keeps running", file=sys.stderr)
            return
        while time.monotonic() < deadline and (w.state.executing or any(
                str(k).startswith(RESULT_PREFIX) for k in list(w.data))):
            await asyncio.sleep(0.1)
        # Blender sometimes hangs (or segfaults) while the interpreter shuts down; the nanny
        # only restarts a worker whose process has exited, so a hung exit would leave the
        # cluster without this worker for good.  faulthandler's watchdog is a C thread that
        # still runs during finalisation: it prints where the process hung and _exit()s it.
        faulthandler.dump_traceback_later(RECYCLE_EXIT_TIMEOUT_S, exit=True)
        try:
            await w.close_gracefully(restart=True, reason="rgsd-recycle")
        except TypeError as exc:  # a distributed without restart=: unpause, keep this worker
            faulthandler.cancel_dump_traceback_later()
            w.status = Status.running
            print(f"warning: cannot restart worker for recycling ({exc}); it keeps running", file=sys.stderr)

    w.loop.add_callback(restart_when_idle)
    return True


def _take_gpu_slot(job: dict) -> None:
    """--gpus-per-worker: this worker's own GPUs (generator/gpus.py), set before this
    process's first Blender setup picks its devices."""
    if not job.get("gpus_per_worker") or os.environ.get("RGSD_GPU_SLOT"):
        return
    from distributed import get_worker

    from generator.gpus import SLOT_ENV, slot_env
    slot = slot_env(get_worker().name, job["gpus_per_worker"])
    if slot:
        os.environ[SLOT_ENV] = slot


def render_group_task(job: dict, group: list) -> list[dict]:
    _take_gpu_slot(job)
    out = render_group(job, group)
    maybe_recycle(job.get("recycle_after", 0), job.get("max_rss_mib", 0.0))
    return out


def _die_with_parent() -> None:
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def render_group_subprocess(job: dict, group: list) -> list[dict]:
    """The same work in a fresh Python process, so Blender's memory goes away with it."""
    _take_gpu_slot(job)  # the subprocess inherits it
    import pickle
    import tempfile
    with tempfile.TemporaryDirectory(prefix="rgsd-task-") as tmp:
        result = os.path.join(tmp, "result.pickle")
        payload = json.dumps({"job": job, "group": group, "result": result})
        proc = subprocess.run([sys.executable, "-m", "pipelines.scenes_dask"], input=payload, text=True,
                              capture_output=True, preexec_fn=_die_with_parent, env=os.environ.copy())
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"render subprocess exited with {proc.returncode}: {tail}")
        with open(result, "rb") as f:
            return pickle.load(f)


if __name__ == "__main__":  # the subprocess side of render_group_subprocess
    import pickle
    args = json.loads(sys.stdin.read())
    out = render_group(args["job"], [tuple(g) for g in args["group"]])
    with open(args["result"], "wb") as f:
        pickle.dump(out, f)
