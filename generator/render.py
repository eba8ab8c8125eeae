"""Render one scene spec into annotation arrays: the per-scene function every worker runs.

Two Cycles renders per scene:

* ``main`` (N spp, pixel filter as configured): the anti-aliased RGB only.
* ``annot`` (1 spp, no bounces, a 0.01-px pixel filter, so the one camera ray goes through
  the pixel centre): every surface is made transparent; each candidate instance writes 1
  to its own AOV on every crossing, so AOV k is non-zero iff the pixel-centre ray meets
  instance k anywhere along it: the amodal mask, hidden parts and wholly hidden instances
  included.  The first crossing (transparent depth 0) writes planar depth, the object's
  pass index and its true normal: point samples, never blended across a silhouette.  A ray
  ends in the stuff once it is past every candidate that could lie on it
  (``build.stop_depths``): nothing further could change an AOV.

Both renders share one Cycles session (one scene sync and BVH build), fresh for the RGB and
freed after the annotation render (``blender.start_frame_session``), so no frame depends on
what its worker rendered before.  Both use the one camera (generator/lens.py: a pinhole, or
the OSL radial lens), so each annotation pixel is the point sample of the same ray as the
RGB pixel; a shutter (``spec.camera.shutter_s``) motion-blurs ``main`` only, ``annot`` sees
the shutter's centre.

Why not the main render's Depth / Object Index passes?  Cycles does write them from sample
0 only, but sample 0 lands where the pixel filter's importance table maps 0.5, which is
~5e-4 px off the centre with the default 1.5-px Blackman-Harris filter: 1.5 mm of depth
error on a ground plane 25 m away (measured; see tests/test_render_geometry.py).
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import numpy as np

from generator import blender, build, lens
from scenes import annotations, camera_pipeline
from scenes.spec import SceneSpec

POST_IMAGE = "rgsd.post"  # the one float image the camera pipeline hands back to Blender


def read_exr(path: str) -> dict[str, np.ndarray]:
    """Passes of a multilayer EXR by pass name: (H, W) for one channel, (H, W, C) otherwise."""
    import OpenEXR
    order = "RGBAXYZV"
    passes: dict[str, dict[str, np.ndarray]] = {}
    with OpenEXR.File(path, separate_channels=True) as f:
        for part in f.parts:
            for name, ch in part.channels.items():
                _layer, rest = name.split(".", 1)
                pass_name, channel = rest.rsplit(".", 1)
                passes.setdefault(pass_name, {})[channel] = ch.pixels
    out = {}
    for name, chans in passes.items():
        keys = sorted(chans, key=lambda c: order.index(c) if c in order else 99)
        out[name] = chans[keys[0]] if len(keys) == 1 else np.stack([chans[k] for k in keys], -1)
    return out


def _render(scene, layer: str, path: str) -> None:
    import bpy
    for vl in scene.view_layers:
        vl.use = vl.name == layer
    s = scene.render.image_settings
    if path.endswith(".png"):
        _png_settings(s)
    else:
        s.media_type = "MULTI_LAYER_IMAGE"
        s.file_format = "OPEN_EXR_MULTILAYER"
        s.exr_codec = "NONE"
        s.color_depth = "32"
        # One interleaved part, not a part per pass: the annotation EXR (K/3 + 7 channels at
        # 1280x720) saves and reads back ~0.1 s faster, the same floats (RESULTS.md, issue 23).
        s.use_exr_interleave = True
    scene.render.filepath = path
    with blender.mute_stdout():
        bpy.ops.render.render(write_still=True)


def _png_settings(s) -> None:
    s.media_type = "IMAGE"
    s.file_format = "PNG"
    s.color_mode = "RGB"
    s.color_depth = "8"
    s.compression = 0


def rgb_settings(r: dict, lighting: dict) -> dict:
    """The render keys of this frame's RGB pass: after dark, ``night_samples_scale`` more
    samples and the direct clamp in units of the frame's white.  Film exposure scales the
    image after Cycles clamps a sample, so the +4-5 stops of night gain would turn the
    day's cap (10x white) into ~300x white: sub-pixel lamps and headlights then stay
    fireflies that the denoiser wipes out or smears (measured: RESULTS.md, issue 16)."""
    tod = lighting.get("time_of_day", "day")
    if tod == "day":
        return r  # daylight frames stay those of before, byte for byte
    r = dict(r, clamp_direct=r["clamp_direct"] / 2.0 ** max(float(lighting.get("exposure", 0.0)), 0.0))
    if tod == "night":
        r["samples"] = max(1, round(r["samples"] * r["night_samples_scale"]))
    return r


def _set_main_settings(scene, r: dict, seed: int) -> None:
    c = scene.cycles
    c.samples = r["samples"]
    c.use_adaptive_sampling = r["adaptive_threshold"] > 0
    c.adaptive_threshold = max(r["adaptive_threshold"], 0.0)
    c.use_denoising = bool(r["denoise"])
    c.denoiser = "OPENIMAGEDENOISE"
    c.denoising_input_passes = "RGB_ALBEDO_NORMAL"
    c.denoising_prefilter = r["denoise_prefilter"].upper()
    c.denoising_quality = r["denoise_quality"].upper()
    c.use_light_tree = bool(r["light_tree"])
    c.use_guiding = bool(r["path_guiding"])
    c.sample_clamp_direct = float(r["clamp_direct"])
    if scene.world is not None:
        wc = scene.world.cycles
        wc.sampling_method = "MANUAL" if r["world_map_resolution"] else "AUTOMATIC"
        if r["world_map_resolution"]:
            wc.sample_map_resolution = r["world_map_resolution"]
    c.max_bounces = r["max_bounces"]
    c.diffuse_bounces = min(r["max_bounces"], 4)
    c.glossy_bounces = min(r["max_bounces"], 4)
    c.transmission_bounces = r["max_bounces"]
    c.transparent_max_bounces = 8
    c.caustics_reflective = c.caustics_refractive = False
    c.blur_glossy = 1.0
    c.seed = seed
    c.filter_width = 1.5
    scene.render.film_transparent = False  # the annotation pass sets it; the RGB never has it


def _set_annot_settings(scene) -> None:
    c = scene.cycles
    c.filter_width = 0.01
    c.samples = 1
    c.use_adaptive_sampling = False
    c.use_denoising = False
    # Fixed here, not inherited from the RGB settings, so no RGB choice can reach this pass.
    c.use_guiding = False
    c.use_light_tree = True
    c.max_bounces = 0
    c.transparent_max_bounces = 1024  # every surface along the ray is crossed
    c.min_transparent_bounces = 1024  # and never cut short by Russian roulette
    # Rays that leave the scene skip the world shader: no annotation pass reads the sky's colour.
    scene.render.film_transparent = True


def render_scene(spec: SceneSpec, cfg: dict) -> tuple[dict, dict]:
    """(arrays for scenes.store, timings in seconds) of one scene; bpy state is left clean."""
    frames = render_layout([spec], cfg)
    try:
        return next(frames)[1:]
    finally:
        frames.close()  # runs the layout's cleanup now, not whenever the generator is collected


def render_layout(specs: list[SceneSpec], cfg: dict):
    """Yield (spec, arrays, timings) for frames that share one layout, building it once."""
    t0 = time.perf_counter()
    scene = blender.setup(cfg["render"])
    built = build.build_scene(scene, specs[0], cfg)
    t_build = time.perf_counter() - t0
    try:
        for k, spec in enumerate(specs):
            t0 = time.perf_counter()
            if k:
                build.set_frame(scene, built, spec, cfg)
            arrays, timings = _render_frame(scene, built, spec, cfg)
            timings["build"] = (t_build if k == 0 else 0.0) + time.perf_counter() - t0 - sum(timings.values())
            yield spec, arrays, timings
    finally:
        build.clear_scene(built)


def _render_frame(scene, built, spec: SceneSpec, cfg: dict) -> tuple[dict, dict]:
    from PIL import Image

    scratch = Path(blender.scratch_dir())
    linear = camera_pipeline.active(spec)
    a_png, b_exr, a_exr = (str(scratch / f"{spec.index}.{n}") for n in ("rgb.png", "annot.exr", "rgb.exr"))
    try:
        t1 = time.perf_counter()
        blender.start_frame_session(scene)
        _set_main_settings(scene, rgb_settings(cfg["render"], spec.lighting),
                           (spec.seed * 1_000_003 + spec.index) % (2**31 - 1))
        lens.point_sample(scene.camera.data, False)
        try:
            lens.set_motion(scene, built, spec)  # the RGB alone sees the shutter
            if linear:  # the camera pipeline works on the float render, before any view transform
                _render(scene, blender.MAIN, a_exr)
                combined = read_exr(a_exr)["Combined"]
            else:
                _render(scene, blender.MAIN, a_png)
                rgb = np.asarray(Image.open(a_png).convert("RGB"))
        finally:
            lens.clear_motion(scene, built, spec)
        t2 = time.perf_counter()
        build.use_annotation_materials(built)
        _set_annot_settings(scene)
        lens.point_sample(scene.camera.data, True)
        _render(scene, blender.ANNOT, b_exr)
        annot = read_exr(b_exr)
        t3 = time.perf_counter()
        if linear:
            rgb = _camera_pipeline(scene, spec, combined, annotations.clean_depth(annot["zdepth"]), a_png)
        t4 = time.perf_counter()
        crops = annotations.amodal_crops(annot, len(built.view.candidates))
        arrays = annotations.assemble(
            object_index=annot["index"], depth=annot["zdepth"], amodal=crops,
            world_normals=annot["gnormal"][..., :3], world_to_camera=built.view.world_to_camera,
            candidates=built.view.candidates, max_instances=cfg["scene"]["max_instances"], rgb=rgb)
        t5 = time.perf_counter()
    finally:
        blender.end_frame_session(scene)
        for p in (a_png, b_exr, a_exr):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
    timings = {"rgb": t2 - t1, "annotations": t3 - t2 + t5 - t4}
    if linear:
        timings["post"] = t4 - t3
    return arrays, timings


def _camera_pipeline(scene, spec: SceneSpec, combined: np.ndarray, depth: np.ndarray, png: str) -> np.ndarray:
    """Display RGB (uint8) of the linear render after spec's effects; records what was applied
    in ``spec.post["applied"]`` (the stored spec shows each frame's exposure)."""
    from generator import post
    image, applied, is_display = post.process(combined, depth, spec)
    spec.post = {k: v for k, v in spec.post.items() if k != "applied"}
    if applied:
        spec.post["applied"] = applied
    return image if is_display else view_transform(scene, image, png)


def view_transform(scene, rgb: np.ndarray, png: str) -> np.ndarray:
    """Scene-linear RGB through the scene's view transform (AgX, as the PNG path) to uint8:
    Blender's colour management writes a float image as it writes a render."""
    import bpy
    from PIL import Image
    h, w = rgb.shape[:2]
    img = bpy.data.images.get(POST_IMAGE)
    if img is None or tuple(img.size) != (w, h):
        if img is not None:
            bpy.data.images.remove(img)
        img = bpy.data.images.new(POST_IMAGE, w, h, alpha=False, float_buffer=True)
    rgba = np.ones((h, w, 4), np.float32)
    rgba[..., :3] = rgb
    img.pixels.foreach_set(np.ascontiguousarray(rgba[::-1]).ravel())  # Blender's rows run bottom-up
    _png_settings(scene.render.image_settings)
    img.save_render(png, scene=scene)
    return np.asarray(Image.open(png).convert("RGB"))
