"""Night and wet variants of the shared materials, and the per-face data they read.

The day, dry materials (``rgsd.<name>``) are never touched: a variant is a second material
(``rgsd.night.<name>``, ``rgsd.wet.<name>``) built once per process from the same recipe plus
a few nodes, and a scene that is after dark or wet builds its meshes with the variants.  What
varies per scene lives in the scene's own meshes, as face attributes, removed with them:

* ``glow`` (colour): the emitted radiance of each face (scenes.emitters.glow).  The night
  variants of headlight, taillight, window_glass and facade_glass emit it, to camera and
  glossy rays only: lamps light the scene through their Cycles lights (generator.night),
  and a diffuse bounce into a tiny, very bright lens would only be a firefly.  So the
  emission is not sampled as a light either (``emission_sampling = NONE``).
* ``wet`` (colour = wetness, puddles, puddle seed): road, kerb, sidewalk and concrete
  darken (water fills the pores), get a clear water coat whose weight follows wetness and
  upward-facing, and asphalt grows puddles: a procedural noise mask thresholded by the
  puddle amount, shifted by the seed, flat and mirror-like (no bump).

So no node value is ever set per scene, and nothing a scene changes can reach the next.
"""
from __future__ import annotations

import bpy
import numpy as np

from generator import blender
from generator.materials import PREFIX, SPECS, _build
from scenes import emitters
from scenes.mesh import Mesh
from scenes.spec import SceneSpec

WET_MATERIALS = ("asphalt", "road_marking", "sidewalk", "kerb", "concrete")
PUDDLE_MATERIALS = ("asphalt",)
PUDDLE_SCALE = 0.3  # 1/m: puddles a few metres across
SEED_SHIFT = 97.0  # m along z of the noise per unit seed: a flat road sees a new slice


def material_map(spec: SceneSpec) -> dict:
    """{material name: bpy material} for this scene's meshes: the shared ones, with the night
    and wet variants swapped in where the scene asks for them."""
    mats = blender.materials()
    night, wet = emitters.after_dark(spec.lighting), spec.weather.get("wetness", 0.0) > 0
    if not (night or wet):
        return mats
    mats = dict(mats)
    if night:
        mats.update({n: variant("night", n) for n in emitters.GLOW_MATERIALS})
    if wet:
        mats.update({n: variant("wet", n) for n in WET_MATERIALS})
    return mats


def face_attributes(spec: SceneSpec, k: int, mesh: Mesh) -> dict:
    """{attribute name: (F, 3) float32} to upload with object ``k``'s mesh; empty by day and dry."""
    out = {}
    g = emitters.glow(spec, k, mesh)
    if g is not None:
        out["glow"] = g
    w = spec.weather
    if w.get("wetness", 0.0) > 0 and any(m in mesh.materials for m in WET_MATERIALS):
        out["wet"] = np.tile(np.array([w["wetness"], w.get("puddles", 0.0), w.get("puddle_seed", 0.0)],
                                      np.float32), (len(mesh.faces), 1))
    return out


def variant(kind: str, name: str):
    full = f"{PREFIX}{kind}.{name}"
    mat = bpy.data.materials.get(full)
    if mat is None:
        mat = _build(name, SPECS[name], full)
        (_night if kind == "night" else _wet)(mat, name)
    return mat


def _nodes(mat):
    nt = mat.node_tree
    bsdf = next(n for n in nt.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    return nt.nodes, nt.links, bsdf


def _attr(nodes, name: str):
    a = nodes.new("ShaderNodeAttribute")
    a.attribute_type = "GEOMETRY"
    a.attribute_name = name
    return a


def _math(nodes, links, op: str, a, b=None, c=None):
    m = nodes.new("ShaderNodeMath")
    m.operation = op
    for i, v in enumerate((a, b, c)):
        if v is None:
            continue
        if isinstance(v, bpy.types.NodeSocket):
            links.new(v, m.inputs[i])
        else:
            m.inputs[i].default_value = float(v)
    return m.outputs[0]


def _night(mat, name: str) -> None:
    nodes, links, bsdf = _nodes(mat)
    links.new(_attr(nodes, "glow").outputs["Color"], bsdf.inputs["Emission Color"])
    path = nodes.new("ShaderNodeLightPath")
    links.new(_math(nodes, links, "SUBTRACT", 1.0, path.outputs["Is Diffuse Ray"]), bsdf.inputs["Emission Strength"])
    mat.cycles.emission_sampling = "NONE"


def _wet(mat, name: str) -> None:
    nodes, links, bsdf = _nodes(mat)
    wet = _attr(nodes, "wet")
    sep = nodes.new("ShaderNodeSeparateXYZ")
    links.new(wet.outputs["Vector"], sep.inputs[0])
    tc = next((n for n in nodes if n.bl_idname == "ShaderNodeTexCoord"), None) or nodes.new("ShaderNodeTexCoord")
    normal = nodes.new("ShaderNodeSeparateXYZ")
    links.new(tc.outputs["Normal"], normal.inputs[0])
    up = _math(nodes, links, "MAXIMUM", normal.outputs["Z"], 0.0)
    # Walls and kerb faces hold less water than the road's top.
    water = _math(nodes, links, "MULTIPLY", sep.outputs["X"], _math(nodes, links, "MULTIPLY_ADD", up, 0.6, 0.4))
    puddle = None
    if name in PUDDLE_MATERIALS:
        shift = nodes.new("ShaderNodeVectorMath")
        shift.operation = "MULTIPLY_ADD"
        links.new(wet.outputs["Vector"], shift.inputs[0])
        shift.inputs[1].default_value = (0.0, 0.0, SEED_SHIFT)
        links.new(tc.outputs["Object"], shift.inputs[2])
        noise = nodes.new("ShaderNodeTexNoise")
        links.new(shift.outputs[0], noise.inputs["Vector"])
        noise.inputs["Scale"].default_value = PUDDLE_SCALE
        noise.inputs["Detail"].default_value = 3.0
        lo = _math(nodes, links, "MULTIPLY_ADD", sep.outputs["Y"], -0.3, 0.7)  # more puddles: lower threshold
        ramp = nodes.new("ShaderNodeMapRange")
        ramp.interpolation_type = "SMOOTHSTEP"
        links.new(noise.outputs["Fac"], ramp.inputs["Value"])
        links.new(lo, ramp.inputs["From Min"])
        links.new(_math(nodes, links, "ADD", lo, 0.04), ramp.inputs["From Max"])
        flat = _math(nodes, links, "GREATER_THAN", normal.outputs["Z"], 0.9)
        some = _math(nodes, links, "GREATER_THAN", sep.outputs["Y"], 0.001)
        puddle = _math(nodes, links, "MULTIPLY", _math(nodes, links, "MULTIPLY", ramp.outputs["Result"], flat), some)
    # Albedo: water in the pores darkens by up to half, standing water more.
    dark = _math(nodes, links, "MULTIPLY_ADD", water, -0.5, 1.0)
    if puddle is not None:
        dark = _math(nodes, links, "MULTIPLY_ADD", puddle, -0.25, dark)
    base = bsdf.inputs["Base Color"].links[0].from_socket
    scale = nodes.new("ShaderNodeVectorMath")
    scale.operation = "SCALE"
    links.new(base, scale.inputs[0])
    links.new(dark, scale.inputs["Scale"])
    links.new(scale.outputs[0], bsdf.inputs["Base Color"])
    # The water film: a smooth coat over the (smoother) wet surface.
    rough_in = bsdf.inputs["Roughness"]
    rough = rough_in.links[0].from_socket if rough_in.links else rough_in.default_value
    links.new(_math(nodes, links, "MULTIPLY", rough, _math(nodes, links, "MULTIPLY_ADD", water, -0.5, 1.0)), rough_in)
    coat = _math(nodes, links, "MULTIPLY", water, 0.9)
    if puddle is not None:
        coat = _math(nodes, links, "MAXIMUM", coat, puddle)
        bump = next((n for n in nodes if n.bl_idname == "ShaderNodeBump"), None)
        if bump is not None:  # standing water is flat
            s = bump.inputs["Strength"].default_value
            links.new(_math(nodes, links, "MULTIPLY_ADD", puddle, -s, s), bump.inputs["Strength"])
    links.new(coat, bsdf.inputs["Coat Weight"])
    bsdf.inputs["Coat Roughness"].default_value = 0.03
    bsdf.inputs["Coat IOR"].default_value = 1.33
