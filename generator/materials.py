"""Procedural Cycles materials for every name in :data:`scenes.mesh.MATERIALS`.

Each material is called ``rgsd.<name>`` and multiplies its base colour by the per-face
``tint`` colour attribute that every uploaded mesh carries, so one material serves all
the colour variants a recipe asks for (car paint, plaster, clothing, ...).

Textures are driven by *object* coordinates and assume the mesh is in metres with unit
object scale, so patterns (bricks, paving slabs, asphalt grain) keep a physical size no
matter how large the merged mesh is.

A tint multiplies the base colours listed in :data:`SPECS`.  car_paint and sign have
white or near-white bases and fabric a light grey one, so their tint is effectively the
final colour; skin (a medium tone), hair (dark brown), plaster (off-white) and the rest
are meant to be nudged by tints around 1.  Node trees are deliberately tiny (at most ~12
nodes) because Cycles recompiles shaders for each scene and compile time adds up over
thousands of renders.
"""
from __future__ import annotations

import warnings

import bpy

from scenes.mesh import MATERIALS

PREFIX = "rgsd."
TINT_ATTRIBUTE = "tint"

# Per-material recipe.  Keys:
#   color / color2  base colours (linear RGB); color2 enables noise-driven variation
#   pattern         None | "noise" | "brick_wall" | "paving"
#   scale, detail, distortion   noise texture parameters (scale in 1/metre)
#   rough_var       +- roughness modulation by the same noise
#   bump, bump_scale  bump strength and scale of a separate fine noise
#   brick           (brick width, row height, mortar size, mortar colour) in metres
#   bsdf            extra Principled inputs
SPECS: dict[str, dict] = {
    "asphalt": dict(color=(0.035, 0.035, 0.037), color2=(0.085, 0.083, 0.08), pattern="noise",
                    scale=6.0, detail=8.0, rough=0.82, rough_var=0.12, bump=0.25, bump_scale=180.0,
                    bsdf={"Specular IOR Level": 0.4}),
    "road_marking": dict(color=(0.78, 0.78, 0.74), color2=(0.5, 0.5, 0.48), pattern="noise",
                         scale=4.0, detail=6.0, rough=0.65, rough_var=0.1, bump=0.1, bump_scale=150.0),
    "concrete": dict(color=(0.36, 0.35, 0.33), color2=(0.5, 0.49, 0.46), pattern="noise",
                     scale=3.0, detail=6.0, rough=0.85, rough_var=0.08, bump=0.15, bump_scale=90.0),
    "sidewalk": dict(color=(0.4, 0.39, 0.37), color2=(0.5, 0.49, 0.47), pattern="paving",
                     brick=(0.4, 0.4, 0.006, (0.16, 0.16, 0.155)), rough=0.85, bump=0.3),
    "kerb": dict(color=(0.46, 0.46, 0.45), color2=(0.62, 0.61, 0.6), pattern="noise",
                 scale=60.0, detail=2.0, rough=0.6, rough_var=0.1, bump=0.08, bump_scale=120.0),
    "brick": dict(color=(0.32, 0.1, 0.06), color2=(0.42, 0.16, 0.09), pattern="brick_wall",
                  brick=(0.25, 0.08, 0.012, (0.5, 0.48, 0.44)), rough=0.88, bump=0.4),
    "plaster": dict(color=(0.78, 0.75, 0.7), color2=(0.68, 0.65, 0.6), pattern="noise",
                    scale=2.0, detail=5.0, rough=0.9, bump=0.12, bump_scale=60.0),
    # Transmission on facades would multiply render time; a metallic-ish mirror with a
    # blue base reads as a curtain wall because it mostly shows reflected sky.
    "facade_glass": dict(color=(0.12, 0.2, 0.26), rough=0.04,
                         bsdf={"Metallic": 0.55, "Specular IOR Level": 1.0, "IOR": 1.6}),
    "window_glass": dict(color=(0.018, 0.022, 0.026), rough=0.03,
                         bsdf={"Metallic": 0.15, "Specular IOR Level": 1.0, "IOR": 1.6}),
    "window_frame": dict(color=(0.6, 0.6, 0.6), rough=0.4),
    "roof": dict(color=(0.22, 0.2, 0.19), color2=(0.3, 0.28, 0.26), pattern="noise",
                 scale=5.0, detail=6.0, rough=0.85, bump=0.2, bump_scale=70.0),
    "car_paint": dict(color=(1.0, 1.0, 1.0), rough=0.32,
                      bsdf={"Metallic": 0.55, "Coat Weight": 1.0, "Coat Roughness": 0.05}),
    # No transmission: cars have no interiors, and refraction only adds noise.
    "tinted_glass": dict(color=(0.012, 0.014, 0.016), rough=0.04,
                         bsdf={"Specular IOR Level": 1.0, "IOR": 1.6, "Metallic": 0.1}),
    "tire": dict(color=(0.025, 0.025, 0.025), color2=(0.04, 0.04, 0.04), pattern="noise",
                 scale=20.0, detail=3.0, rough=0.85, bsdf={"Specular IOR Level": 0.3}),
    "rim": dict(color=(0.72, 0.72, 0.74), rough=0.25, bsdf={"Metallic": 1.0}),
    "chrome": dict(color=(0.92, 0.92, 0.93), rough=0.05, bsdf={"Metallic": 1.0}),
    "plastic": dict(color=(0.05, 0.05, 0.05), rough=0.5),
    "headlight": dict(color=(0.9, 0.9, 0.9), rough=0.08,
                      bsdf={"Emission Color": (1.0, 0.95, 0.85, 1.0), "Emission Strength": 0.5}),
    "taillight": dict(color=(0.5, 0.02, 0.02), rough=0.1,
                      bsdf={"Emission Color": (1.0, 0.05, 0.03, 1.0), "Emission Strength": 0.3}),
    "skin": dict(color=(0.62, 0.43, 0.33), rough=0.5,
                 bsdf={"Subsurface Weight": 0.05, "Subsurface Scale": 0.005,
                       "Subsurface Radius": (1.0, 0.35, 0.2)}),
    "hair": dict(color=(0.12, 0.08, 0.05), rough=0.5, bsdf={"Sheen Weight": 0.3}),
    "fabric": dict(color=(0.85, 0.85, 0.85), color2=(0.72, 0.72, 0.72), pattern="noise",
                   scale=40.0, detail=2.0, rough=0.92,
                   bsdf={"Sheen Weight": 0.5, "Sheen Roughness": 0.5, "Specular IOR Level": 0.3}),
    "shoe": dict(color=(0.12, 0.12, 0.12), rough=0.55),
    "metal": dict(color=(0.6, 0.62, 0.63), color2=(0.5, 0.52, 0.53), pattern="noise",
                  scale=8.0, detail=5.0, rough=0.42, rough_var=0.15, bsdf={"Metallic": 1.0}),
    "sign": dict(color=(0.9, 0.9, 0.9), rough=0.2, bsdf={"Coat Weight": 0.3}),
    "bark": dict(color=(0.06, 0.04, 0.025), color2=(0.16, 0.11, 0.07), pattern="noise",
                 scale=6.0, detail=8.0, distortion=2.0, rough=0.9, bump=0.6, bump_scale=25.0),
    # Two greens an octave apart in hue so canopies are not a flat blob.
    "foliage": dict(color=(0.035, 0.11, 0.02), color2=(0.12, 0.2, 0.03), pattern="noise",
                    scale=4.0, detail=4.0, distortion=1.5, rough=0.6, bump=0.3, bump_scale=40.0,
                    bsdf={"Specular IOR Level": 0.4, "Sheen Weight": 0.2}),
    "grass": dict(color=(0.05, 0.13, 0.025), color2=(0.11, 0.17, 0.04), pattern="noise",
                  scale=3.0, detail=6.0, rough=0.9, bump=0.3, bump_scale=150.0,
                  bsdf={"Specular IOR Level": 0.3}),
    "wood": dict(color=(0.2, 0.11, 0.05), color2=(0.33, 0.2, 0.1), pattern="noise",
                 scale=3.0, detail=4.0, distortion=4.0, rough=0.55, bump=0.1, bump_scale=30.0),
}


def build_materials() -> dict[str, bpy.types.Material]:
    """Create (once) and return ``{name: material}`` for every name in MATERIALS.

    Materials already present in ``bpy.data`` are reused untouched, so repeated calls
    are a dictionary lookup per name.
    """
    out = {}
    for name in MATERIALS:
        mat = bpy.data.materials.get(PREFIX + name)
        if mat is None:
            mat = _build(name, SPECS[name])
        out[name] = mat
    return out


def _build(name: str, spec: dict, mat_name: str | None = None) -> bpy.types.Material:
    mat = bpy.data.materials.new(mat_name or PREFIX + name)
    with warnings.catch_warnings():
        # Deprecated in 5.0 but still required to get a node tree on older builds.
        warnings.simplefilter("ignore", DeprecationWarning)
        mat.use_nodes = True
    # Keep the material even when no scene currently uses it, so reuse across scenes
    # survives orphan purges.
    mat.use_fake_user = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.clear()
    g = _Graph(nodes, links)

    bsdf = g.add("ShaderNodeBsdfPrincipled", (300, 0))
    out = g.add("ShaderNodeOutputMaterial", (600, 0))
    links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    if spec.get("bsdf", {}).get("Subsurface Weight"):
        bsdf.subsurface_method = "BURLEY"  # cheapest SSS; random walk is overkill here

    base, fac = _pattern(g, spec)
    tint = g.add("ShaderNodeAttribute", (-200, 300))
    tint.attribute_type = "GEOMETRY"
    tint.attribute_name = TINT_ATTRIBUTE
    mul = g.mix("MULTIPLY", (0, 200))
    _sock(mul.inputs, "Factor_Float").default_value = 1.0
    g.feed(_sock(mul.inputs, "A_Color"), base)
    links.new(tint.outputs["Color"], _sock(mul.inputs, "B_Color"))
    links.new(_sock(mul.outputs, "Result_Color"), bsdf.inputs["Base Color"])

    rough = spec.get("rough", 0.5)
    if fac is not None and spec.get("rough_var"):
        # roughness = rough + rough_var * (2 * fac - 1), folded into one MULTIPLY_ADD
        var = spec["rough_var"]
        ma = g.add("ShaderNodeMath", (100, -150))
        ma.operation = "MULTIPLY_ADD"
        links.new(fac, ma.inputs[0])
        ma.inputs[1].default_value = 2.0 * var
        ma.inputs[2].default_value = rough - var
        links.new(ma.outputs[0], bsdf.inputs["Roughness"])
    else:
        bsdf.inputs["Roughness"].default_value = rough

    bump_height = _bump_source(g, spec, fac)
    if bump_height is not None:
        bump = g.add("ShaderNodeBump", (100, -300))
        bump.inputs["Strength"].default_value = spec["bump"]
        bump.inputs["Distance"].default_value = 0.002  # metres: surface relief, not geometry
        links.new(bump_height, bump.inputs["Height"])
        links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])

    for key, value in spec.get("bsdf", {}).items():
        bsdf.inputs[key].default_value = value
    return mat


def _sock(sockets, identifier: str):
    """Socket by identifier: the Mix node has several sockets sharing one name
    (Float/Vector/Color variants), so name lookup can pick the wrong one."""
    return next(s for s in sockets if s.identifier == identifier)


class _Graph:
    """Small helper so recipes read as data flow rather than node bookkeeping."""

    def __init__(self, nodes, links):
        self.nodes, self.links = nodes, links
        self._coords = None

    def add(self, kind: str, location=(0, 0)):
        node = self.nodes.new(kind)
        node.location = location
        return node

    def mix(self, blend: str, location):
        node = self.add("ShaderNodeMix", location)
        node.data_type = "RGBA"
        node.blend_type = blend
        return node

    def feed(self, socket, value):
        """Link ``value`` if it is a socket, else set it as a constant colour."""
        if isinstance(value, bpy.types.NodeSocket):
            self.links.new(value, socket)
        else:
            socket.default_value = (*value[:3], 1.0)

    def coords(self):
        if self._coords is None:
            self._coords = self.add("ShaderNodeTexCoord", (-900, 0))
        return self._coords

    def noise(self, scale, detail=2.0, distortion=0.0, location=(-500, 0)):
        node = self.add("ShaderNodeTexNoise", location)
        self.links.new(self.coords().outputs["Object"], node.inputs["Vector"])
        node.inputs["Scale"].default_value = scale
        node.inputs["Detail"].default_value = detail
        node.inputs["Roughness"].default_value = 0.55
        node.inputs["Distortion"].default_value = distortion
        return node


def _pattern(g: _Graph, spec: dict):
    """Return (base colour socket-or-constant, scalar variation socket-or-None)."""
    kind = spec.get("pattern")
    if kind is None:
        return spec["color"], None
    if kind == "noise":
        noise = g.noise(spec["scale"], spec.get("detail", 2.0), spec.get("distortion", 0.0))
        mix = g.mix("MIX", (-200, 100))
        g.links.new(noise.outputs["Factor"], _sock(mix.inputs, "Factor_Float"))
        g.feed(_sock(mix.inputs, "A_Color"), spec["color"])
        g.feed(_sock(mix.inputs, "B_Color"), spec["color2"])
        return _sock(mix.outputs, "Result_Color"), noise.outputs["Factor"]

    width, height, mortar, mortar_color = spec["brick"]
    brick = g.add("ShaderNodeTexBrick", (-300, 100))
    if kind == "brick_wall":
        g.links.new(_wall_uv(g), brick.inputs["Vector"])
    else:  # paving lies in the ground plane, so object XY is already the right chart
        g.links.new(g.coords().outputs["Object"], brick.inputs["Vector"])
        brick.offset = 0.0  # square slabs line up
    brick.inputs["Scale"].default_value = 1.0  # keep sizes below in metres
    brick.inputs["Brick Width"].default_value = width
    brick.inputs["Row Height"].default_value = height
    brick.inputs["Mortar Size"].default_value = mortar
    brick.inputs["Mortar Smooth"].default_value = 0.2
    brick.inputs["Bias"].default_value = 0.0
    g.feed(brick.inputs["Color1"], spec["color"])
    g.feed(brick.inputs["Color2"], spec["color2"])
    g.feed(brick.inputs["Mortar"], mortar_color)
    return brick.outputs["Color"], brick.outputs["Factor"]


def _wall_uv(g: _Graph):
    """(u, v) = (position along the wall, height) so bricks run horizontally on a
    vertical face of any orientation.  u = dot(p, n x Z) is the coordinate along the
    face's horizontal tangent; it is exact for vertical faces, which is what brick
    walls are, and degrades gracefully (stretches) on sloped ones."""
    tc = g.coords()
    tangent = g.add("ShaderNodeVectorMath", (-700, 250))
    tangent.operation = "CROSS_PRODUCT"
    g.links.new(tc.outputs["Normal"], tangent.inputs[0])
    tangent.inputs[1].default_value = (0.0, 0.0, 1.0)
    along = g.add("ShaderNodeVectorMath", (-550, 250))
    along.operation = "DOT_PRODUCT"
    g.links.new(tc.outputs["Object"], along.inputs[0])
    g.links.new(tangent.outputs["Vector"], along.inputs[1])
    sep = g.add("ShaderNodeSeparateXYZ", (-550, 100))
    g.links.new(tc.outputs["Object"], sep.inputs["Vector"])
    uv = g.add("ShaderNodeCombineXYZ", (-420, 150))
    g.links.new(along.outputs["Value"], uv.inputs["X"])
    g.links.new(sep.outputs["Z"], uv.inputs["Y"])
    return uv.outputs["Vector"]


def _bump_source(g: _Graph, spec: dict, fac):
    """Height signal for the Bump node, or None if the material is smooth."""
    if not spec.get("bump"):
        return None
    if spec.get("pattern") in ("brick_wall", "paving"):
        # Brick factor is 1 in the mortar: recessed joints are the relief that matters.
        inv = g.add("ShaderNodeMath", (-100, -300))
        inv.operation = "SUBTRACT"
        inv.inputs[0].default_value = 1.0
        g.links.new(fac, inv.inputs[1])
        return inv.outputs[0]
    fine = g.noise(spec.get("bump_scale", 100.0), 2.0, 0.0, location=(-500, -300))
    return fine.outputs["Factor"]
