"""Load user models (.glb/.gltf/.obj/.blend) and RGBA cutouts into Blender, once per process.

A model becomes one normalised mesh (all its mesh objects joined with their transforms,
footprint centred on the origin, lowest point at z=0), shared by every object that uses
it; cutouts become texel-exact flat meshes (:func:`scenes.user_assets.cutout_mesh`).
"""
from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from generator import blender
from generator.blender import mute_stdout
from scenes import portable_math as pm
from scenes import user_assets

_models: dict[str, bpy.types.Mesh] = {}


class AssetError(ValueError):
    pass


def _import(path: Path) -> list:
    """Import a file and return the new objects (left unlinked from our scene)."""
    before = set(bpy.data.objects)
    suffix = path.suffix.lower()
    try:
        with mute_stdout():
            if suffix in (".glb", ".gltf"):
                result = bpy.ops.import_scene.gltf(filepath=str(path))
            elif suffix == ".obj":
                result = bpy.ops.wm.obj_import(filepath=str(path))
            elif suffix == ".blend":
                with bpy.data.libraries.load(str(path), link=False) as (src, dst):
                    dst.objects = list(src.objects)
                result = {"FINISHED"}
            else:
                raise AssetError(f"unsupported file type {suffix}")
    except AssetError:
        raise
    except Exception as exc:  # noqa: BLE001 - importers raise anything on a broken file
        raise AssetError(str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__) from None
    if "FINISHED" not in result:
        raise AssetError("the importer gave up on it")
    new = [o for o in bpy.data.objects if o not in before]
    if not any(o.type == "MESH" for o in new):
        for o in new:
            bpy.data.objects.remove(o)
        raise AssetError("no mesh in it")
    return new


def _joined_mesh(name: str, objs: list) -> bpy.types.Mesh:
    """One mesh (triangles, UVs, materials) from many mesh objects, in world coordinates."""
    verts, faces, mat_idx, uvs, mats = [], [], [], [], []
    offset = 0
    depsgraph = bpy.context.evaluated_depsgraph_get()
    for ob in objs:
        if ob.type != "MESH":
            continue
        me = ob.data
        me.calc_loop_triangles()
        n = len(me.vertices)
        co = np.empty(n * 3, np.float32)
        me.vertices.foreach_get("co", co)
        co = pm.matmul(co.reshape(-1, 3), np.array(ob.matrix_world)[:3, :3].T) + np.array(ob.matrix_world)[:3, 3]
        tris = np.empty(len(me.loop_triangles) * 3, np.int32)
        me.loop_triangles.foreach_get("vertices", tris)
        loops = np.empty(len(me.loop_triangles) * 3, np.int32)
        me.loop_triangles.foreach_get("loops", loops)
        mi = np.empty(len(me.loop_triangles), np.int32)
        me.loop_triangles.foreach_get("material_index", mi)
        remap = []
        for slot in (me.materials or [None]):
            if slot not in mats:
                mats.append(slot)
            remap.append(mats.index(slot))
        uv = np.zeros((len(me.loops), 2), np.float32)
        if me.uv_layers.active is not None:
            flat = np.empty(len(me.loops) * 2, np.float32)
            me.uv_layers.active.data.foreach_get("uv", flat)
            uv = flat.reshape(-1, 2)
        verts.append(co)
        faces.append(tris.reshape(-1, 3) + offset)
        mat_idx.append(np.asarray(remap)[np.minimum(mi, len(remap) - 1)])
        uvs.append(uv[loops])
        offset += n
    del depsgraph
    v = np.concatenate(verts)
    lo, hi = v.min(0), v.max(0)
    v = v - np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
    f = np.concatenate(faces)
    out = bpy.data.meshes.new(name)
    out.vertices.add(len(v))
    out.vertices.foreach_set("co", v.astype(np.float32).ravel())
    out.loops.add(3 * len(f))
    out.loops.foreach_set("vertex_index", f.ravel())
    out.polygons.add(len(f))
    out.polygons.foreach_set("loop_start", np.arange(0, 3 * len(f), 3, dtype=np.int32))
    out.polygons.foreach_set("material_index", np.concatenate(mat_idx).astype(np.int32))
    layer = out.uv_layers.new(name="UVMap")
    layer.data.foreach_set("uv", np.concatenate(uvs).ravel())
    for m in mats:
        out.materials.append(m)
    out.update()
    out.use_fake_user = True
    return out


def model_mesh(root: str, rel: str) -> bpy.types.Mesh:
    """The shared, normalised mesh of a user model (imported on first use in this process)."""
    cached = _models.get(rel)
    try:
        if cached is not None and cached.name:
            return cached
    except ReferenceError:  # Blender was reset since; import again
        pass
    objs = _import(user_assets.asset_file(root, rel))  # never a file outside the asset folder
    try:
        _models[rel] = _joined_mesh(f"rgsd.user.{rel}", objs)
    finally:
        bpy.data.batch_remove([o for o in objs] + [o.data for o in objs if o.data is not None])
    return _models[rel]


def model_size(mesh: bpy.types.Mesh) -> list[float]:
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3)
    return [float(x) for x in co.max(0) - co.min(0)]


def scan(root: str) -> tuple[list[dict], list[str]]:
    """Index every usable asset under ``root``; broken ones become warnings naming them."""
    index, problems = [], []
    for kind, rel in user_assets.list_files(root):
        try:
            if kind == user_assets.CUTOUT_DIR:
                alpha = user_assets.read_alpha(Path(root) / rel)
                index.append({"kind": kind, "path": rel, "aspect": alpha.shape[1] / alpha.shape[0]})
            else:
                size = model_size(model_mesh(root, rel))
                if min(size[0], size[1]) <= 0 or size[2] <= 0:
                    raise AssetError("it is flat or empty")
                index.append({"kind": kind, "path": rel, "size": size})
        except (AssetError, ValueError, OSError) as exc:
            problems.append(f"skipping broken asset {rel}: {exc}")
    return index, problems


def cutout_material(root: str, rel: str) -> bpy.types.Material:
    """The image's colour; the mesh itself is the alpha silhouette, and 'Closest' filtering
    keeps the colour of edge texels from bleeding in transparent ones."""
    mat, created = blender.node_material(f"rgsd.cutout.{rel}")
    if not created:
        return mat
    nt = mat.node_tree
    tex = nt.nodes.new("ShaderNodeTexImage")
    tex.image = bpy.data.images.load(str(user_assets.asset_file(root, rel)), check_existing=True)
    tex.interpolation = "Closest"
    bsdf = nt.nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = 0.8
    nt.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    return mat
