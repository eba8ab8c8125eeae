"""Scene rendering on Dask: one task renders the frames of one layout and writes them.

Each task writes only its own scenes' chunks and sets ``done`` last, so concurrent workers
never share a chunk and a killed task leaves its scenes not-done, to be rendered again.
Blender runs inside the worker process (``bpy`` imported once and reused) or, with
``blender="subprocess"``, in a fresh Python process per task, as BlenderProc and Kubric do.
"""
from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time

_rendered_here = 0  # scenes this worker process has rendered since it started


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def render_group(url: str, group: list, cfg: dict, seed: int, threads: int = 0,
                 overwrite: bool = False) -> list[dict]:
    """Render scenes ``group`` = [(index, spec_json or None), ...] (frames of one layout) and
    write them; scenes already done are skipped unless ``overwrite`` (a rerun after a lost
    result costs nothing).  Returns one timing dict per scene."""
    global _rendered_here
    from generator.render import render_layout
    from scenes import store as scene_store
    from scenes.sampling import sample_scene
    from scenes.spec import SceneSpec

    st = scene_store.open_store(url, mode="r+")
    if not overwrite:
        group = [(i, s) for i, s in group if not st.is_done(i)]
    if not group:
        return []
    local = copy.deepcopy(cfg)
    local["render"]["threads"] = threads or local["render"]["threads"]
    specs = [SceneSpec.from_json(s) if s else sample_scene(cfg, seed, i) for i, s in group]
    out = []
    for spec, arrays, t in render_layout(specs, local):
        w0 = time.perf_counter()
        st.write_scene(spec.index, arrays, spec.to_json())
        t["write"] = time.perf_counter() - w0
        t["index"] = spec.index
        t["rss_mib"] = _rss_mib()
        out.append(t)
        _rendered_here += 1
    return out


RECYCLE_EXIT_TIMEOUT_S = 60.0


def maybe_recycle(recycle_after: int, max_rss_mib: float) -> bool:
    """Restart this Dask worker (its nanny starts a fresh process) once it has rendered
    ``recycle_after`` scenes or grown past ``max_rss_mib``: Blender leaks over long loops."""
    if not ((recycle_after and _rendered_here >= recycle_after) or (max_rss_mib and _rss_mib() > max_rss_mib)):
        return False
    import faulthandler

    from distributed import get_worker
    w = get_worker()
    # Blender sometimes hangs (or segfaults) while the interpreter shuts down; the nanny only
    # restarts a worker whose process has exited, so a hung exit would leave the cluster
    # without this worker for good.  faulthandler's watchdog is a C thread that still runs
    # during finalisation: it prints where the process hung and _exit()s it.
    faulthandler.dump_traceback_later(RECYCLE_EXIT_TIMEOUT_S, exit=True)
    w.loop.add_callback(w.close_gracefully, restart=True, reason="rgsd-recycle")
    return True


def render_group_task(url, group, cfg, seed, threads=0, overwrite=False, recycle_after=0, max_rss_mib=0.0):
    out = render_group(url, group, cfg, seed, threads, overwrite)
    maybe_recycle(recycle_after, max_rss_mib)
    return out


def _die_with_parent() -> None:
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def render_group_subprocess(url, group, cfg, seed, threads=0, overwrite=False, **_ignored):
    """The same work in a fresh Python process, so Blender's memory goes away with it."""
    payload = json.dumps({"url": url, "group": group, "cfg": cfg, "seed": seed, "threads": threads,
                          "overwrite": overwrite})
    proc = subprocess.run([sys.executable, "-m", "pipelines.scenes_dask"], input=payload, text=True,
                          capture_output=True, preexec_fn=_die_with_parent, env=os.environ.copy())
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"render subprocess exited with {proc.returncode}: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":  # the subprocess side of render_group_subprocess
    args = json.loads(sys.stdin.read())
    result = render_group(args["url"], [tuple(g) for g in args["group"]], args["cfg"], args["seed"],
                          args["threads"], args["overwrite"])
    sys.stdout.write("\n" + json.dumps(result) + "\n")
