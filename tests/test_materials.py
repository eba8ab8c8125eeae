"""Blender material library and sky/sun setup (needs the ``bpy`` module)."""
import math

import pytest

bpy = pytest.importorskip("bpy")
from mathutils import Vector  # noqa: E402  (only importable once bpy is)

from generator.materials import build_materials  # noqa: E402
from generator.world import apply_lighting  # noqa: E402
from scenes.mesh import MATERIALS  # noqa: E402

pytestmark = pytest.mark.blender

LIGHTING = {
    "sun_elevation_deg": 30.0, "sun_azimuth_deg": 210.0, "sun_strength": 4.0,
    "sun_color": [1.0, 0.95, 0.9], "sun_angle_deg": 1.0, "sky_strength": 1.0,
    "air_density": 1.0, "aerosol_density": 1.0, "ozone_density": 1.0,
    "sky_type": "MULTIPLE_SCATTERING", "exposure": 0.0,
}


def _counts():
    return len(bpy.data.worlds), len(bpy.data.lights), len(bpy.data.objects)


def test_materials_cover_every_name_and_are_idempotent():
    mats = build_materials()
    assert set(mats) == set(MATERIALS)
    for name in MATERIALS:
        mat = bpy.data.materials.get(f"rgsd.{name}")
        assert mat is not None and mats[name] == mat
        attrs = [n for n in mat.node_tree.nodes if n.bl_idname == "ShaderNodeAttribute"]
        assert [a.attribute_name for a in attrs] == ["tint"]
        # Small trees keep per-scene shader compilation fast.
        assert len(mat.node_tree.nodes) <= 12
    count = len(bpy.data.materials)
    again = build_materials()
    assert len(bpy.data.materials) == count
    assert all(again[n] == mats[n] for n in MATERIALS)


def test_apply_lighting_reuses_world_and_sun():
    scene = bpy.context.scene
    apply_lighting(scene, LIGHTING)
    before = _counts()
    apply_lighting(scene, dict(LIGHTING, sun_azimuth_deg=45.0, sky_type="PREETHAM", turbidity=3.0))
    apply_lighting(scene, LIGHTING)
    assert _counts() == before
    assert scene.world.name == "rgsd.world"
    assert scene.objects.get("rgsd.sun") is not None
    sun = bpy.data.objects["rgsd.sun"].data
    assert sun.type == "SUN" and sun.energy == pytest.approx(4.0)
    assert sun.angle == pytest.approx(math.radians(1.0))
    assert scene.view_settings.exposure == pytest.approx(0.0)


@pytest.mark.parametrize("elevation,azimuth", [(5.0, 0.0), (30.0, 210.0), (45.0, 90.0),
                                               (75.0, 333.0), (12.5, 180.0)])
def test_sun_points_at_elevation_and_azimuth(elevation, azimuth):
    scene = bpy.context.scene
    apply_lighting(scene, dict(LIGHTING, sun_elevation_deg=elevation, sun_azimuth_deg=azimuth))
    sun = bpy.data.objects["rgsd.sun"]
    to_sun = sun.matrix_world.to_3x3() @ Vector((0.0, 0.0, 1.0))
    e, a = math.radians(elevation), math.radians(azimuth)
    expected = (math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e))
    for got, want in zip(to_sun, expected):
        assert got == pytest.approx(want, abs=1e-4)
    sky = scene.world.node_tree.nodes["rgsd.sky"]
    assert sky.sun_elevation == pytest.approx(e, abs=1e-6)
    assert not sky.sun_disc


def _pose(ob):
    return tuple(tuple(v) for v in (ob.location, ob.rotation_euler, ob.scale, *ob.matrix_world))


def test_sun_pose_is_a_function_of_this_scene_alone():
    # Blender writes matrix_world's decomposition back into loc/rot/scale; a channel the
    # code leaves alone carries that rounding on, so the sun of one spec would depend on
    # the scenes a worker rendered before it (seen as a 1-LSB RGB difference).
    scene = bpy.context.scene
    bpy.data.objects.remove(bpy.data.objects["rgsd.sun"])
    apply_lighting(scene, LIGHTING)
    first = _pose(bpy.data.objects["rgsd.sun"])
    for elevation, azimuth in [(5.0, 0.0), (45.0, 90.0), (75.0, 333.0), (12.5, 180.0)] * 3:
        apply_lighting(scene, dict(LIGHTING, sun_elevation_deg=elevation, sun_azimuth_deg=azimuth))
    apply_lighting(scene, LIGHTING)
    assert _pose(bpy.data.objects["rgsd.sun"]) == first
