"""Process-wide Blender state: one empty Cycles scene, two view layers, device choice.

``setup`` runs once per process (a render worker imports bpy once and reuses it);
per-scene objects are created by :mod:`generator.build` and removed after each scene.
"""
from __future__ import annotations

import contextlib
import os
import warnings

import bpy

MAIN, ANNOT = "main", "annot"
_state: dict = {}


def setup(render_cfg: dict) -> bpy.types.Scene:
    """Idempotent: reset Blender once, then only (re)apply the render settings."""
    if not _state:
        with mute_stdout():  # factory reset and GPU probing print library-loading chatter
            bpy.ops.wm.read_factory_settings(use_empty=True)
            _state["device"] = _select_device(render_cfg["device"])
        scene = bpy.context.scene
        scene.render.engine = "CYCLES"
        main = scene.view_layers[0]
        main.name = MAIN
        annot = scene.view_layers.new(ANNOT)
        annot.use_pass_combined = False
        annot.use_pass_z = False
        cam = bpy.data.objects.new("rgsd.camera", bpy.data.cameras.new("rgsd.camera"))
        scene.collection.objects.link(cam)
        scene.camera = cam
        from generator.materials import build_materials
        _state["materials"] = build_materials()
        _state["annot_materials"] = {}
    scene = bpy.context.scene
    r, c = scene.render, scene.cycles
    r.resolution_x, r.resolution_y, r.resolution_percentage = render_cfg["width"], render_cfg["height"], 100
    # No Cycles session outlives a frame (see start_frame_session): a reused session carries
    # sampling state from the renders before it, so a frame's RGB would depend on what its
    # worker rendered before.
    r.use_persistent_data = False
    if render_cfg["threads"]:
        r.threads_mode, r.threads = "FIXED", render_cfg["threads"]
    else:
        r.threads_mode = "AUTO"
    c.device = "GPU" if _state["device"] != "CPU" else "CPU"
    # Point-sampled data passes need sample 0 at the pixel centre: no DOF, no motion blur,
    # no sample offset.
    r.use_motion_blur = False
    c.sample_offset = 0
    scene.camera.data.dof.use_dof = False
    scene.camera.data.clip_start = 0.05
    scene.camera.data.clip_end = render_cfg["clip_end"]
    return scene


def start_frame_session(scene) -> None:
    """One Cycles session for the renders of one frame: the RGB render starts a fresh one and
    the annotation render reuses its scene sync and BVH.  The caller ends it with
    :func:`end_frame_session` in a ``finally``, so no session outlives its frame.

    Persistent data across frames is off (measured: the same night frame rendered fresh and
    right after itself differed in 2,656 of 43,200 values; after a frame with more samples,
    in 88 %), and with a fresh session per render the annotation pass synced the scene and
    built its BVH again: 11 % of the RGB render at ``default``, 19 % at ``small``
    (RESULTS.md, issue 23).  Within a frame a session is safe: the RGB render is its first,
    so it is that of a fresh session, and the annotation render after it depends on this
    frame alone.
    """
    # Under persistent data Cycles builds the dynamic (refittable, slower to trace) BVH; the
    # static one is what a render without it builds, so the RGB stays the same byte for byte.
    scene.cycles.debug_bvh_type = "STATIC_BVH"
    scene.render.use_persistent_data = True


def end_frame_session(scene) -> None:
    """Free the frame's Cycles session: switching persistent data off frees it at once
    (RNA update -> RE_FreePersistentData), so the next render starts a fresh one."""
    scene.render.use_persistent_data = False


def node_material(name: str):
    """(material, created): the existing material called ``name``, or a new node material."""
    mat = bpy.data.materials.get(name)
    if mat is not None:
        return mat, False
    mat = bpy.data.materials.new(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # use_nodes is deprecated in 5.0, still needed
        mat.use_nodes = True
    return mat, True


def device() -> str:
    return _state.get("device", "CPU")


def materials() -> dict:
    return _state["materials"]


def _select_device(wanted: str) -> str:
    if wanted == "cpu":
        return "CPU"
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for kind in ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL"):
        try:
            prefs.compute_device_type = kind
        except TypeError:
            continue
        prefs.get_devices()
        gpus = [d for d in prefs.devices if d.type == kind]
        if gpus:
            from generator.gpus import use_flags
            for d, use in zip(prefs.devices, use_flags([d.type for d in prefs.devices], kind)):
                d.use = use  # every GPU of the kind, or this worker's own (--gpus-per-worker)
            return kind
    if wanted == "gpu":
        raise RuntimeError("render.device=gpu but Cycles found no GPU (OptiX/CUDA/HIP/oneAPI/Metal)")
    return "CPU"


def gpu_kind() -> str | None:
    """The Cycles GPU backend this machine offers (OPTIX, CUDA, ...), or None."""
    with mute_stdout():
        kind = _select_device("auto")
    return None if kind == "CPU" else kind


def scratch_dir() -> str:
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    import tempfile
    d = _state.get("scratch")
    if not d:
        d = tempfile.mkdtemp(prefix="rgsd-", dir=base)
        _state["scratch"] = d
    return d


@contextlib.contextmanager
def mute_stdout():
    """Blender prints progress lines from C; keep the user's terminal for our progress bar."""
    fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(fd, 1)
        os.close(fd)
        os.close(devnull)
