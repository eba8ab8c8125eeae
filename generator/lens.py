"""The real camera in Blender: the radial-distortion lens as a Cycles OSL camera, and the
shutter as Cycles motion blur of the RGB render only (scenes/camera.py has the model).

Both renders of a scene (generator/render.py: ``main`` and ``annot``) use the one camera,
so each annotation pixel is the point sample of the same distorted ray as the RGB pixel:
the annotation pass's 0.01-px filter puts its one ray at the pixel centre, and the OSL
camera maps that raster position to the ray.  Motion blur is on for ``main`` only; the
keyframes it needs are removed before ``annot`` renders, so the annotations see the scene
exactly as with an instant shutter (where the objects are in the spec).
"""
from __future__ import annotations

import math

import bpy

# OpenCV's radial model inverted per ray: the raster position (0-1, y up) is the distorted
# pixel; with pixel_centre (the annotation pass) it is snapped to the pixel's centre, so the
# annotation ray does not depend on how Cycles jitters a custom camera's raster position.
# D(r) = r_d is solved for the undistorted radius by Newton's method kept inside a
# bisection bracket [0, r_max] (D increases there: scenes.camera refuses lenses that fold),
# to float32 precision (~1e-5 px, measured against tests/analytic.py).
# Cycles' camera space for OSL: x right, y up, z forward.
SHADER = """
shader rgsd_radial_lens(
    float fx = 1.0, float fy = 1.0, float cx = 0.0, float cy = 0.0,
    float width = 1.0, float height = 1.0,
    float k1 = 0.0, float k2 = 0.0, float k3 = 0.0, float r_max = 1.0, int pixel_centre = 0,
    output point position = point(0.0, 0.0, 0.0),
    output vector direction = vector(0.0, 0.0, 1.0),
    output color throughput = color(1.0, 1.0, 1.0))
{
    point raster = camera_shader_raster_position();
    float col = raster[0] * width;  // OpenCV pixel coordinates: x right, y down
    float row = (1.0 - raster[1]) * height;
    if (pixel_centre) {
        col = floor(col) + 0.5;
        row = floor(row) + 0.5;
    }
    float xd = (col - cx) / fx;
    float yd = (row - cy) / fy;
    float rd = hypot(xd, yd);
    float lo = 0.0;
    float hi = r_max;
    float r = min(rd, r_max);
    for (int i = 0; i < 30; i++) {
        float r2 = r * r;
        float f = r * (1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))) - rd;
        if (f < 0.0) lo = r; else hi = r;
        float df = 1.0 + r2 * (3.0 * k1 + r2 * (5.0 * k2 + 7.0 * k3 * r2));
        float next = r - f / df;
        if (!(next >= lo && next <= hi)) next = 0.5 * (lo + hi);
        float step = abs(next - r);
        r = next;
        if (step <= 1e-7 * r_max) break;
    }
    float s = rd > 0.0 ? r / rd : 1.0;
    direction = normalize(vector(xd * s, -yd * s, 1.0));
}
"""
_state: dict = {}


def _bytecode() -> tuple[str, str]:
    """The shader compiled once per process (OSL's compiler, no OSL shading needed)."""
    if "oso" not in _state:
        import hashlib
        import os
        import tempfile

        import _cycles
        d = tempfile.mkdtemp(prefix="rgsd-osl-")
        src, dst = os.path.join(d, "lens.osl"), os.path.join(d, "lens.oso")
        with open(src, "w") as f:
            f.write(SHADER)
        if not _cycles.osl_compile(src, dst):
            raise RuntimeError("Cycles could not compile the lens camera shader (OSL)")
        with open(dst) as f:
            oso = f.read()
        _state["oso"] = (oso, hashlib.md5(oso.encode(), usedforsecurity=False).hexdigest())
    return _state["oso"]


def set_lens(cam_data, cam) -> None:
    """A pinhole camera of ``cam.hfov_deg``, or with ``cam.lens`` the OSL radial lens."""
    if not cam.lens:
        if cam_data.type != "PERSP":
            cam_data.type = "PERSP"
        cam_data.sensor_fit = "HORIZONTAL"
        cam_data.lens_unit = "FOV"
        cam_data.angle = math.radians(cam.hfov_deg)
        return
    from generator import blender
    if blender.device() not in ("CPU", "OPTIX"):
        raise RuntimeError(f"lens distortion needs Cycles on the CPU or OptiX (an OSL camera), not {blender.device()}: "
                           "set camera.distortion_fraction=0 or render.device=cpu")
    oso, digest = _bytecode()
    cam_data.type = "CUSTOM"
    cam_data.custom_mode = "INTERNAL"
    if cam_data.custom_bytecode_hash != digest:
        cam_data.custom_bytecode = oso
        cam_data.custom_bytecode_hash = digest
    props = cam_data.cycles_custom
    lens = cam.lens
    values = {"fx": lens["fx"], "fy": lens["fy"], "cx": lens["cx"], "cy": lens["cy"], "width": float(cam.width),
              "height": float(cam.height), "k1": lens["k1"], "k2": lens["k2"], "k3": lens["k3"],
              "r_max": lens["r_max"] * 1.001}
    for key, value in values.items():
        props[key] = float(value)
    cam_data.update_tag()


def point_sample(cam_data, on: bool) -> None:
    """With the lens: every ray through its pixel's centre (the annotation pass) or through
    the filter's jittered position (the RGB).  A pinhole camera needs nothing."""
    if cam_data.type == "CUSTOM" and cam_data.cycles_custom.get("pixel_centre") != int(on):
        cam_data.cycles_custom["pixel_centre"] = int(on)
        cam_data.update_tag()


def set_motion(scene, built, spec) -> bool:
    """Keyframe the camera and every moving object at the frames either side of the current
    one along their velocities, and open the shutter for ``spec.camera.shutter_s``; True if
    the RGB render is to be blurred."""
    shutter = spec.camera.shutter_s
    r = scene.render
    if shutter <= 0:
        r.use_motion_blur = False
        return False
    fps = r.fps / r.fps_base
    f = scene.frame_current
    prefs = bpy.context.preferences.edit
    old = prefs.keyframe_new_interpolation_type
    prefs.keyframe_new_interpolation_type = "LINEAR"
    try:
        movers = [(scene.camera, spec.camera.position, spec.camera.velocity)]
        movers += [(ob, o.position, o.velocity) for o, ob in zip(spec.objects, built.objects) if o.velocity]
        for ob, pos, vel in movers:
            if not any(vel):
                continue
            for df in (-1, 1):
                ob.location = [p + v * df / fps for p, v in zip(pos, vel)]
                ob.keyframe_insert("location", frame=f + df)
            ob.location = pos
    finally:
        prefs.keyframe_new_interpolation_type = old
    r.use_motion_blur = True
    r.motion_blur_shutter = shutter * fps  # in frames, centred on the current frame
    r.motion_blur_position = "CENTER"
    return True


def clear_motion(scene, built, spec) -> None:
    """Close the shutter and remove the keyframes: the scene is as with an instant shutter."""
    scene.render.use_motion_blur = False
    movers = [(scene.camera, spec.camera.position)] + [(ob, o.position) for o, ob in zip(spec.objects, built.objects)]
    for ob, pos in movers:
        if ob.animation_data is not None:
            action = ob.animation_data.action
            ob.animation_data_clear()
            if action is not None and action.users == 0:  # else every blurred frame leaks one
                bpy.data.actions.remove(action)
            ob.location = pos
