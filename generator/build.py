"""Turn a scene spec into Blender objects (one object per placed asset) and back to nothing."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import bpy
import numpy as np

from generator import blender, blender_assets
from scenes import annotations
from scenes import objects as scene_objects
from scenes import portable_math as pm
from scenes.mesh import Mesh
from scenes.spec import SceneSpec
from scenes.user_assets import asset_file, cutout_mesh, read_alpha
from scenes.view import FrameView, frame_view

STUFF = "rgsd.annot.stuff"  # the annotation material of everything but candidate instances
STOP_DEPTH = "rgsd.stop_depth"  # its image (and node) of where it ends rays


@dataclass
class Built:
    objects: list = field(default_factory=list)  # bpy objects, parallel to spec.objects
    meshes: list = field(default_factory=list)
    extras: list = field(default_factory=list)  # lights after dark (objects and their data)
    view: FrameView | None = None  # the current frame's camera pose and candidate instances


def mesh_to_blender(name: str, mesh: Mesh, loop_uv: np.ndarray | None = None, mats: dict | None = None,
                    face_colors: dict | None = None):
    """A Blender mesh of ``mesh``; ``mats`` maps material names (default: the shared ones) and
    ``face_colors`` adds per-face colour attributes (the night and wet variants read them)."""
    me = bpy.data.meshes.new(name)
    nv, nf = len(mesh.vertices), len(mesh.faces)
    me.vertices.add(nv)
    me.vertices.foreach_set("co", mesh.vertices.ravel())
    me.loops.add(3 * nf)
    me.loops.foreach_set("vertex_index", mesh.faces.ravel())
    me.polygons.add(nf)
    me.polygons.foreach_set("loop_start", np.arange(0, 3 * nf, 3, dtype=np.int32))
    me.polygons.foreach_set("material_index", mesh.material.astype(np.int32))
    tint = me.attributes.new("tint", "FLOAT_COLOR", "FACE")
    rgba = np.concatenate([mesh.tint, np.ones((nf, 1), np.float32)], 1)
    tint.data.foreach_set("color", rgba.ravel())
    for attr, rgb in (face_colors or {}).items():
        data = np.concatenate([rgb, np.ones((nf, 1), np.float32)], 1)
        me.attributes.new(attr, "FLOAT_COLOR", "FACE").data.foreach_set("color", data.ravel())
    if loop_uv is not None:
        me.uv_layers.new(name="UVMap").data.foreach_set("uv", loop_uv.ravel())
    mats = mats or blender.materials()
    for m in mesh.materials:
        me.materials.append(mats[m])
    me.update()
    return me


def build_scene(scene, spec: SceneSpec, cfg: dict) -> Built:
    """Create one Blender object per spec object, then pose everything for this frame."""
    from generator import night, variants
    built = Built()
    root = cfg["assets"]["dir"]
    mats, local = variants.material_map(spec), {}
    for k, o in enumerate(spec.objects):
        if "user_asset" in o.params:
            me = blender_assets.model_mesh(root, o.params["user_asset"])  # shared, kept
        elif "cutout" in o.params:
            _, w, h = o.params["asset_size"]
            mesh, uv = cutout_mesh(read_alpha(asset_file(root, o.params["cutout"])), w, h)
            me = mesh_to_blender(o.name, mesh, uv)
            me.materials[0] = blender_assets.cutout_material(root, o.params["cutout"])
            built.meshes.append(me)
        else:
            local[k] = scene_objects.local_mesh(o)
            me = mesh_to_blender(o.name, local[k], mats=mats, face_colors=variants.face_attributes(spec, k, local[k]))
            built.meshes.append(me)
        ob = bpy.data.objects.new(o.name, me)
        scene.collection.objects.link(ob)
        built.objects.append(ob)
    built.extras = night.add_lights(scene, spec, cfg, built.objects, local)
    set_frame(scene, built, spec, cfg)
    return built


def set_frame(scene, built: Built, spec: SceneSpec, cfg: dict) -> None:
    """Pose camera, lights and objects for ``spec`` (a frame of the built layout) and encode
    its candidate instances (scenes.view.frame_view) in the objects' pass indices."""
    from generator.world import apply_lighting

    built.view = frame_view(spec, cfg)
    _place_camera(scene, spec.camera, built.view.world_to_camera)
    apply_lighting(scene, spec.lighting)
    for i, (o, ob) in enumerate(zip(spec.objects, built.objects)):
        ob.location = o.position
        ob.rotation_euler = (0.0, 0.0, math.radians(o.yaw_deg))
        ob.pass_index = annotations.pass_index(scene_objects.class_id(o), built.view.instance_of.get(i, 0))
        for slot in ob.material_slots:  # undo a previous frame's annotation materials
            if slot.link != "DATA":
                slot.material = None
                slot.link = "DATA"


def _place_camera(scene, cam, w2c: np.ndarray) -> None:
    from generator.lens import set_lens
    ob = scene.camera
    set_lens(ob.data, cam)
    ob.data.shift_x = ob.data.shift_y = 0.0
    # The camera pose comes from the frame view's world_to_camera, the matrix the annotations
    # (normals, 3D boxes) use, so render and annotations cannot disagree.  Blender's camera axes are OpenCV's with
    # y and z negated.
    from mathutils import Matrix
    c2w = np.eye(4)
    c2w[:3, :3] = pm.matmul(w2c[:3, :3].T, np.diag([1.0, -1.0, -1.0]))
    c2w[:3, 3] = cam.position
    ob.matrix_world = Matrix(c2w.tolist())


def _annotation_material(name: str, aov: tuple[str, float] | None):
    mat, created = blender.node_material(name)
    if not created:
        return mat
    nt = mat.node_tree
    nt.nodes.clear()
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    out.target = "CYCLES"
    transparent = nt.nodes.new("ShaderNodeBsdfTransparent").outputs[0]
    if aov:
        nt.links.new(transparent, out.inputs["Surface"])
    else:
        # Stuff ends the ray (holdout) where it is past every candidate instance whose image
        # footprint holds the ray (the stop-depth image, set per frame; 0 outside every
        # footprint): nothing further along could add to an amodal mask, and crossing the
        # stuff behind the instances (rows of buildings) was most of the pass's time.  The
        # image is indexed by the ray's direction (x/z, y/z in camera space: one per ray, for
        # the pinhole and the lens alike), and view z grows along every ray that reaches z > 0.
        view = nt.nodes.new("ShaderNodeCameraData")
        xyz = nt.nodes.new("ShaderNodeSeparateXYZ")
        nt.links.new(view.outputs["View Vector"], xyz.inputs[0])
        uv = nt.nodes.new("ShaderNodeCombineXYZ")
        for axis in "XY":
            div = nt.nodes.new("ShaderNodeMath")
            div.operation = "DIVIDE"
            nt.links.new(xyz.outputs[axis], div.inputs[0])
            nt.links.new(xyz.outputs["Z"], div.inputs[1])
            nt.links.new(div.outputs[0], uv.inputs[axis])
        to_grid = nt.nodes.new("ShaderNodeVectorMath")
        to_grid.operation = "MULTIPLY_ADD"
        to_grid.name = STOP_DEPTH  # its scale and offset map this frame's view bounds to [0, 1]
        nt.links.new(uv.outputs[0], to_grid.inputs[0])
        tex = nt.nodes.new("ShaderNodeTexImage")
        tex.image = _stop_depth_image()
        tex.interpolation = "Closest"
        tex.extension = "EXTEND"
        nt.links.new(to_grid.outputs[0], tex.inputs["Vector"])
        red = nt.nodes.new("ShaderNodeSeparateColor")
        nt.links.new(tex.outputs["Color"], red.inputs["Color"])
        stop = nt.nodes.new("ShaderNodeMath")
        stop.operation = "GREATER_THAN"
        nt.links.new(view.outputs["View Z Depth"], stop.inputs[0])
        nt.links.new(red.outputs["Red"], stop.inputs[1])
        mix = nt.nodes.new("ShaderNodeMixShader")
        nt.links.new(stop.outputs[0], mix.inputs["Fac"])
        nt.links.new(transparent, mix.inputs[1])
        nt.links.new(nt.nodes.new("ShaderNodeHoldout").outputs[0], mix.inputs[2])
        nt.links.new(mix.outputs[0], out.inputs["Surface"])
    if aov:  # (pass, this instance's digit): scenes.annotations.amodal_pass
        value = nt.nodes.new("ShaderNodeValue")
        value.outputs[0].default_value = aov[1]
        node = nt.nodes.new("ShaderNodeOutputAOV")
        node.aov_name = aov[0]
        nt.links.new(value.outputs[0], node.inputs["Value"])
    # The first surface on the ray (transparent depth 0) writes the point-sampled data
    # passes; AOVs accumulate, but exactly one crossing per ray has depth 0.
    path = nt.nodes.new("ShaderNodeLightPath")
    first = nt.nodes.new("ShaderNodeMath")
    first.operation = "LESS_THAN"
    first.inputs[1].default_value = 0.5
    nt.links.new(path.outputs["Transparent Depth"], first.inputs[0])
    geo = nt.nodes.new("ShaderNodeNewGeometry")
    scale = nt.nodes.new("ShaderNodeVectorMath")
    scale.operation = "SCALE"
    nt.links.new(geo.outputs["True Normal"], scale.inputs[0])
    nt.links.new(first.outputs[0], scale.inputs["Scale"])
    normal = nt.nodes.new("ShaderNodeOutputAOV")
    normal.aov_name = "gnormal"
    nt.links.new(scale.outputs[0], normal.inputs["Color"])
    for aov_name, node_type, socket in (("zdepth", "ShaderNodeCameraData", "View Z Depth"),
                                        ("index", "ShaderNodeObjectInfo", "Object Index")):
        src = nt.nodes.new(node_type)
        mul = nt.nodes.new("ShaderNodeMath")
        mul.operation = "MULTIPLY"
        nt.links.new(src.outputs[socket], mul.inputs[0])
        nt.links.new(first.outputs[0], mul.inputs[1])
        node = nt.nodes.new("ShaderNodeOutputAOV")
        node.aov_name = aov_name
        nt.links.new(mul.outputs[0], node.inputs["Value"])
    return mat


def _stop_depth_image():
    img = bpy.data.images.get(STOP_DEPTH)
    if img is None:
        img = bpy.data.images.new(STOP_DEPTH, 1, 1, alpha=False, float_buffer=True)
        img.colorspace_settings.name = "Non-Color"
    return img


def view_bounds(intr: dict) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1): a rectangle of undistorted x/z, y/z (OpenCV camera) that holds every
    ray of the image."""
    if intr.get("lens"):
        return tuple(intr["bounds"])
    return (-intr["cx"] / intr["fx"], (intr["width"] - intr["cx"]) / intr["fx"],
            -intr["cy"] / intr["fy"], (intr["height"] - intr["cy"]) / intr["fy"])


def stop_depths(built: Built, grid: tuple[int, int]) -> np.ndarray:
    """(h, w) view z beyond which no candidate instance can be met, on a grid over the view
    bounds (rows top-down; 0: none can be): each candidate's largest vertex z over the
    bounding box of its vertices' x/z, y/z, grown by a cell and clamped into the grid (a ray
    off the grid reads its edge).  A candidate reaching behind the camera plane puts its z
    on every cell."""
    w, h = grid
    out = np.zeros((h, w))
    view = built.view
    x0, x1, y0, y1 = view_bounds(view.intrinsics)
    for c in view.candidates:
        ob = built.objects[c["object"]]
        co = np.empty(3 * len(ob.data.vertices), np.float32)
        ob.data.vertices.foreach_get("co", co)
        if not len(co):
            continue
        # matrix_basis follows location and rotation at once (matrix_world waits for a depsgraph)
        m = pm.matmul(np.asarray(view.world_to_camera, np.float64), np.array(ob.matrix_basis, np.float64))
        cam = pm.matmul(co.reshape(-1, 3).astype(np.float64), m[:3, :3].T) + m[:3, 3]
        z = cam[:, 2].max() * (1.0 + 1e-4) + 0.01  # room for float32 and the shader's own z
        if cam[:, 2].min() <= 1e-3:
            out = np.maximum(out, z)
            continue
        u = (cam[:, 0] / cam[:, 2] - x0) / (x1 - x0) * w
        v = (cam[:, 1] / cam[:, 2] - y0) / (y1 - y0) * h
        i0, i1 = (int(np.clip(np.floor(t) + d, 0, w - 1)) for t, d in ((u.min(), -1), (u.max(), 1)))
        j0, j1 = (int(np.clip(np.floor(t) + d, 0, h - 1)) for t, d in ((v.min(), -1), (v.max(), 1)))
        out[j0:j1 + 1, i0:i1 + 1] = np.maximum(out[j0:j1 + 1, i0:i1 + 1], z)
    return out


def set_stop_depth(built: Built, cell_px: int = 8) -> None:
    """Load this frame's stop depths (a cell per ~``cell_px`` pixels) into the image the stuff
    annotation material reads, and map the view bounds onto it."""
    r = bpy.context.scene.render
    w, h = -(-r.resolution_x // cell_px), -(-r.resolution_y // cell_px)
    depth = stop_depths(built, (w, h))
    img = _stop_depth_image()
    if tuple(img.size) != (w, h):
        img.scale(w, h)
    rgba = np.ones((h, w, 4), np.float32)
    rgba[..., :3] = depth[::-1, :, None]  # Blender's rows run bottom-up
    img.pixels.foreach_set(rgba.ravel())
    img.update()
    # Cycles' camera space has y up: its y/z is OpenCV's -y/z, and the image's row 0 is y1.
    x0, x1, y0, y1 = view_bounds(built.view.intrinsics)
    to_grid = bpy.data.materials[STUFF].node_tree.nodes[STOP_DEPTH]
    to_grid.inputs[1].default_value = (1.0 / (x1 - x0), 1.0 / (y1 - y0), 0.0)
    to_grid.inputs[2].default_value = (-x0 / (x1 - x0), y1 / (y1 - y0), 0.0)


def use_annotation_materials(built: Built) -> None:
    """Swap every object's materials (object-linked slots) for the annotation ones and give
    the annotation view layer exactly one AOV per candidate instance."""
    scene = bpy.context.scene
    layer = scene.view_layers[blender.ANNOT]
    k = len(built.view.candidates)
    want = annotations.amodal_pass_names(k) + ["gnormal", "zdepth", "index"]
    for aov in list(layer.aovs):
        if aov.name not in want:
            layer.aovs.remove(aov)
    have = {a.name for a in layer.aovs}
    for name in want:
        if name not in have:
            aov = layer.aovs.add()
            aov.name = name
            aov.type = "COLOR" if name == "gnormal" else "VALUE"
    stuff = _annotation_material(STUFF, None)
    set_stop_depth(built)
    inst = {iid: _annotation_material(f"rgsd.annot.am{iid - 1}", annotations.amodal_pass(iid - 1))
            for iid in range(1, k + 1)}
    for i, ob in enumerate(built.objects):
        mat = inst.get(built.view.instance_of.get(i, 0), stuff)
        for slot in ob.material_slots:
            slot.link = "OBJECT"
            slot.material = mat


def clear_scene(built: Built) -> None:
    """Remove the scene's objects and meshes so a long-running worker does not grow."""
    bpy.data.batch_remove(built.objects + built.meshes + built.extras)
    built.objects.clear()
    built.meshes.clear()
    built.extras.clear()
