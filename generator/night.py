"""Cycles lights after dark: a spot under each street-lamp head and ahead of each headlight
of vehicles in traffic (scenes.emitters.light_sources), parented to their object so they
follow it from frame to frame, and removed with the scene.

The lights are hidden from camera rays: the lamp's glowing lens is geometry (and so is
what the annotation pass sees), a light sphere in front of it would only hide it.
"""
from __future__ import annotations

import math

import bpy
from mathutils import Vector

from scenes import emitters
from scenes.mesh import Mesh
from scenes.spec import SceneSpec


def add_lights(scene, spec: SceneSpec, cfg: dict, objects: list, meshes: dict[int, Mesh]) -> list:
    """Create the scene's lights; returns the new datablocks (objects and light data), for
    removal.  ``meshes`` maps object index to its local mesh (procedural objects only)."""
    if not emitters.after_dark(spec.lighting):
        return []
    lights = [(k, L) for k, mesh in sorted(meshes.items()) for L in emitters.light_sources(spec, k, mesh)]
    lights = emitters.nearest(spec, lights, int(cfg["lighting"].get("max_lights", 64)))
    out = []
    for j, (k, L) in enumerate(lights):
        data = bpy.data.lights.new(f"rgsd.lamp.{j:03d}", "SPOT")
        data.energy = float(L["power"])
        data.color = tuple(float(c) for c in L["color"])
        data.spot_size = math.radians(L["spot_deg"])
        data.spot_blend = float(L["blend"])
        data.shadow_soft_size = float(L["radius"])
        ob = bpy.data.objects.new(data.name, data)
        ob.parent = objects[k]
        ob.location = L["position"]
        ob.rotation_mode = "QUATERNION"
        ob.rotation_quaternion = Vector(L["direction"]).to_track_quat("-Z", "Y")  # a spot shines along -Z
        ob.visible_camera = False
        scene.collection.objects.link(ob)
        out += [ob, data]
    return out
