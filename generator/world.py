"""Sky, sun and film settings for one scene.

:func:`apply_lighting` takes a plain ``lighting`` dict (sampled by the scene-spec
module) and configures one reusable World (``rgsd.world``) and one Sun light object
(``rgsd.sun``).  Keys and sensible sampling ranges:

================  ===========================  ==============================================
key               range                        meaning
================  ===========================  ==============================================
sun_elevation_deg 5 .. 75                      sun height above the horizon
sun_azimuth_deg   0 .. 360                     counter-clockwise from +X about +Z (Z-up)
sun_strength      1 .. 6                       Sun light irradiance, W/m^2 (4 = bright day)
sun_color         [r, g, b] linear             e.g. (1, .95, .9) noon, (1, .75, .5) low sun
sun_angle_deg     0.5 .. 3                     angular diameter; larger = softer shadows
sky_strength      0.2 .. 1.5                   sky brightness, 1 = clear day (see below)
air_density       0 .. 2      (default 1)      Rayleigh scattering: sky blueness
aerosol_density   0 .. 5      (default 1)      Mie scattering: haze, whiter horizon
ozone_density     0 .. 2      (default 1)      ozone: deeper blue at low sun
sky_type          'MULTIPLE_SCATTERING' (default), 'SINGLE_SCATTERING',
                  'PREETHAM', 'HOSEK_WILKIE'
turbidity         2 .. 6      (default 2.5)    haze for PREETHAM / HOSEK_WILKIE only
ground_albedo     0 .. 0.5    (default 0.3)    HOSEK_WILKIE only
altitude          0 .. 1000   (optional, m)    observer altitude for the scattering models
exposure          -1 .. 1                      film exposure, stops
================  ===========================  ==============================================

Only ``sun_elevation_deg``, ``sun_azimuth_deg`` and ``sun_strength`` are required; the
rest fall back to the defaults above.

The sky models have wildly different absolute brightness (the scattering models are
~60x brighter than Hosek-Wilkie and ~15x brighter than the Sun light at 4 W/m^2), so
the Background strength is ``sky_strength * SKY_NORMALISATION[sky_type]``.  The factors
make ``sky_strength = 1`` give roughly 0.8 W/m^2 of horizontal sky irradiance at 30 deg
sun elevation for every model, i.e. a clear-day sun:sky ratio of about 2.5-4 with
``sun_strength = 4``, so shadows stay visible and the sky does not wash out the scene.

The World's own sun disc is disabled: the Sun light supplies direct light and sharp
shadows, and the sky texture is only told where the sun is so its colour gradient and
glow match the light.
"""
from __future__ import annotations

import math
import warnings

import bpy
from mathutils import Euler

from scenes import portable_math as pm

WORLD_NAME = "rgsd.world"
SUN_NAME = "rgsd.sun"

# Measured: horizontal sky irradiance at sun elevation 30 deg with Background strength 1
# is ~13.1 (multiple), ~8.8 (single), ~1.6 (Preetham), ~0.21 (Hosek-Wilkie) W/m^2.
# Target ~0.8.
SKY_NORMALISATION = {
    "MULTIPLE_SCATTERING": 0.06,
    "SINGLE_SCATTERING": 0.09,
    "PREETHAM": 0.5,
    "HOSEK_WILKIE": 3.8,
}

# Preferred (view transform, look) pairs, best first; availability depends on the
# OCIO config that ships with the build, and enum_items cannot be listed headless
# (no context), so candidates are tried in order.
VIEW_CANDIDATES = (
    ("AgX", "AgX - Medium High Contrast"),
    ("AgX", "None"),
    ("Filmic", "Medium High Contrast"),
    ("Filmic", "None"),
    ("Standard", "None"),
)

_view_choice: tuple[str, str] | None = None


def sun_direction(elevation_deg: float, azimuth_deg: float) -> tuple[float, float, float]:
    """Unit vector from the scene towards the sun."""
    e, a = math.radians(elevation_deg), math.radians(azimuth_deg)
    return (pm.cos(e) * pm.cos(a), pm.cos(e) * pm.sin(a), pm.sin(e))


def apply_lighting(scene: bpy.types.Scene, lighting: dict) -> None:
    """Point the sky and the Sun light at ``lighting`` and set film exposure.

    Reuses ``rgsd.world`` and ``rgsd.sun`` so calling this once per scene for thousands
    of scenes never accumulates datablocks.
    """
    elevation = float(lighting["sun_elevation_deg"])
    azimuth = float(lighting["sun_azimuth_deg"])
    _apply_world(scene, lighting, elevation, azimuth)
    _apply_sun(scene, lighting, elevation, azimuth)
    _apply_view(scene, float(lighting.get("exposure", 0.0)))


def _apply_world(scene, lighting: dict, elevation: float, azimuth: float) -> None:
    world = bpy.data.worlds.get(WORLD_NAME)
    if world is None:
        world = bpy.data.worlds.new(WORLD_NAME)
        world.use_fake_user = True
    sky, background = _world_nodes(world)
    grey = _grey_node(world, "sky_grey" in lighting)

    sky_type = lighting.get("sky_type", "MULTIPLE_SCATTERING")
    sky.sky_type = sky_type
    sky.sun_disc = False
    # Sky node convention (verified by rendering the disc): the sun sits at azimuth
    # sun_rotation + 90 deg, i.e. rotation 0 puts it on +Y.
    sky.sun_elevation = math.radians(elevation)
    sky.sun_rotation = math.radians(azimuth - 90.0) % (2.0 * math.pi)
    # Preetham / Hosek-Wilkie read the direction vector instead of the angles.
    sky.sun_direction = sun_direction(elevation, azimuth)
    sky.air_density = float(lighting.get("air_density", 1.0))
    sky.aerosol_density = float(lighting.get("aerosol_density", 1.0))
    sky.ozone_density = float(lighting.get("ozone_density", 1.0))
    sky.turbidity = float(lighting.get("turbidity", 2.5))
    sky.ground_albedo = float(lighting.get("ground_albedo", 0.3))
    if "altitude" in lighting:
        sky.altitude = float(lighting["altitude"])
    strength = float(lighting.get("sky_strength", 1.0)) * SKY_NORMALISATION.get(sky_type, 1.0)
    background.inputs["Strength"].default_value = strength
    if grey is not None:
        # sky_grey_radiance is absolute; the Background strength scales both mix inputs.
        grey.inputs["Factor"].default_value = float(lighting["sky_grey"])
        rgb = [float(c) / max(strength, 1e-9) for c in lighting["sky_grey_radiance"]]
        _sock(grey.inputs, "B_Color").default_value = (*rgb, 1.0)
    if scene.world is not world:
        scene.world = world


def _sock(sockets, identifier: str):
    return next(s for s in sockets if s.identifier == identifier)


def _grey_node(world, wanted: bool):
    """The Mix node (``rgsd.grey``) between sky and background when ``wanted`` (overcast,
    night), else None, the tree of a clear day.  One World whose node is added and removed,
    not a second World: with Cycles' persistent data across frames (now one frame's, generator/blender.py)
    a day scene rendered after a switch of Worlds differed from the same scene rendered first
    (measured)."""
    tree = world.node_tree
    sky, background = tree.nodes["rgsd.sky"], tree.nodes["rgsd.background"]
    mix = tree.nodes.get("rgsd.grey")
    if wanted and mix is None:
        mix = tree.nodes.new("ShaderNodeMix")
        mix.name = "rgsd.grey"
        mix.data_type = "RGBA"
        mix.blend_type = "MIX"
        tree.links.new(sky.outputs["Color"], _sock(mix.inputs, "A_Color"))
        tree.links.new(_sock(mix.outputs, "Result_Color"), background.inputs["Color"])
    elif not wanted and mix is not None:
        tree.nodes.remove(mix)
        tree.links.new(sky.outputs["Color"], background.inputs["Color"])
        mix = None
    return mix


def _world_nodes(world):
    """Return (sky, background) nodes, building the tree on first use only."""
    tree = world.node_tree
    if tree is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            world.use_nodes = True
        tree = world.node_tree
    sky = tree.nodes.get("rgsd.sky")
    background = tree.nodes.get("rgsd.background")
    if sky is not None and background is not None:
        return sky, background
    tree.nodes.clear()
    sky = tree.nodes.new("ShaderNodeTexSky")
    sky.name = "rgsd.sky"
    sky.location = (-300, 0)
    background = tree.nodes.new("ShaderNodeBackground")
    background.name = "rgsd.background"
    output = tree.nodes.new("ShaderNodeOutputWorld")
    output.location = (250, 0)
    tree.links.new(sky.outputs["Color"], background.inputs["Color"])
    tree.links.new(background.outputs["Background"], output.inputs["Surface"])
    return sky, background


def _apply_sun(scene, lighting: dict, elevation: float, azimuth: float) -> None:
    sun = bpy.data.objects.get(SUN_NAME)
    if sun is None or sun.type != "LIGHT" or sun.data.type != "SUN":
        if sun is not None:
            bpy.data.objects.remove(sun)
        light = bpy.data.lights.get(SUN_NAME)
        if light is None or light.type != "SUN":
            if light is not None:
                bpy.data.lights.remove(light)
            light = bpy.data.lights.new(SUN_NAME, "SUN")
        sun = bpy.data.objects.new(SUN_NAME, light)
    if scene.objects.get(SUN_NAME) is None:
        scene.collection.objects.link(sun)

    light = sun.data
    if "moon_strength" in lighting:  # at night the Sun light is the moon
        elevation, azimuth = float(lighting["moon_elevation_deg"]), float(lighting["moon_azimuth_deg"])
        light.energy = float(lighting["moon_strength"])
        light.color = tuple(float(c) for c in lighting["moon_color"])[:3]
    else:
        light.energy = float(lighting["sun_strength"])
        light.color = tuple(float(c) for c in lighting.get("sun_color", (1.0, 1.0, 1.0)))[:3]
    light.angle = math.radians(float(lighting.get("sun_angle_deg", 0.55)))
    # A sun light shines along its local -Z; tilt +Z down from the zenith by
    # (90 - elevation) about Y (towards +X), then spin about Z by the azimuth, so +Z
    # ends up pointing at the sun.
    # Every channel of the transform is set, scale included: the matrix_world refresh below
    # writes its decomposition back (scale 0.9999998...), and a channel left alone would carry
    # that rounding from scene to scene, so the same spec would light 1 LSB differently
    # depending on what was rendered before it.
    sun.location = (0.0, 0.0, 0.0)
    sun.scale = (1.0, 1.0, 1.0)
    sun.rotation_mode = "XYZ"
    sun.rotation_euler = Euler(
        (0.0, math.radians(90.0 - elevation), math.radians(azimuth)), "XYZ")
    # Callers (and tests) read matrix_world right away; refresh it without a depsgraph
    # evaluation of the whole scene.
    sun.matrix_world = sun.matrix_basis


def _apply_view(scene, exposure: float) -> None:
    global _view_choice
    view = scene.view_settings
    if _view_choice is None:
        _view_choice = _pick_view(view)
    transform, look = _view_choice
    if view.view_transform != transform:
        view.view_transform = transform
    if view.look != look:
        view.look = look
    # Exposure goes to Cycles' film (a linear scale of the render), not to the view
    # transform: OpenColorIO caches one processor per distinct view exposure, so a random
    # exposure per scene grew a worker by ~4 MB per scene (measured over 100 scenes).
    view.exposure = 0.0
    view.gamma = 1.0
    scene.cycles.film_exposure = 2.0 ** exposure


def _pick_view(view) -> tuple[str, str]:
    """First available (transform, look) pair; leaves the scene set to it."""
    for transform, look in VIEW_CANDIDATES:
        try:
            view.view_transform = transform
            view.look = look
        except TypeError:
            continue
        return transform, look
    return view.view_transform, view.look
