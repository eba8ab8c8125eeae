"""Mesh and 3D box of a placed object, in world coordinates (pure numpy)."""
from __future__ import annotations

import math

import numpy as np

from scenes import assets
from scenes import portable_math as pm
from scenes.classes import CLASS_IDS, KIND_CLASS
from scenes.mesh import Mesh
from scenes.spec import Placed
from scenes.user_assets import size_of

ROAD_PIECES = {
    "road_surface": lambda p: assets.road_surface(p["length"], p["width"]),
    "sidewalk": lambda p: assets.sidewalk(p["length"], p["width"], p.get("height", 0.15)),
    "lane_markings": lambda p: assets.lane_markings(p["length"], p["road_width"], p["lanes"], p.get("dashed", True)),
    "crosswalk": lambda p: assets.crosswalk(p["width_x"], p["length_y"]),
    "ground": lambda p: assets.ground(p["size_x"], p["size_y"], p.get("material", "grass")),
}


def _box_mesh(p: dict) -> Mesh:
    from scenes.primitives import box
    return box((p["length"], p["width"], p["height"]), center=(0.0, 0.0, p["height"] / 2.0),
               material=p.get("material", "concrete"))


def size(o: Placed) -> tuple[float, float, float]:
    if o.kind == "box":
        return o.params["length"], o.params["width"], o.params["height"]
    return size_of(o.kind, o.params)


def local_mesh(o: Placed) -> Mesh | None:
    """The object's mesh in its own frame (the renderer places it with location and yaw);
    None for user models, which only Blender can read."""
    if "user_asset" in o.params:
        return None
    if o.kind == "box":  # an exact box of any class: analytic tests and simple scenes
        return _box_mesh(o.params)
    if o.kind in ROAD_PIECES:
        return ROAD_PIECES[o.kind](o.params)
    return assets.ASSETS[o.kind].build(o.params)


def class_id(o: Placed) -> int:
    if o.kind == "box":
        return CLASS_IDS[o.params["class"]]
    return CLASS_IDS[KIND_CLASS[o.kind]]


def box3d_world(o: Placed) -> tuple[np.ndarray, np.ndarray, float]:
    """(centre xyz, size lwh, yaw radians) of the object's oriented 3D box in the world."""
    l, w, h = size(o)
    centre = np.array([o.position[0], o.position[1], o.position[2] + h / 2.0])
    return centre, np.array([l, w, h]), math.radians(o.yaw_deg)


def box_corners(centre, size, yaw) -> np.ndarray:
    sx, sy, sz = np.asarray(size) / 2.0
    c = np.array([[x, y, z] for x in (-sx, sx) for y in (-sy, sy) for z in (-sz, sz)])
    r = np.array([[pm.cos(yaw), -pm.sin(yaw), 0], [pm.sin(yaw), pm.cos(yaw), 0], [0, 0, 1]])
    return pm.matmul(c, r.T) + centre


def box3d_camera(o: Placed, world_to_camera: np.ndarray) -> list[float]:
    """[cx, cy, cz, length, width, height, yaw] in OpenCV camera coordinates; yaw is the
    angle from camera +x to the object's forward axis, towards +z (a rotation about -y)."""
    centre, size, yaw = box3d_world(o)
    c = pm.matmul(world_to_camera[:3, :3], centre) + world_to_camera[:3, 3]
    fwd = pm.matmul(world_to_camera[:3, :3], np.array([pm.cos(yaw), pm.sin(yaw), 0.0]))
    return [float(c[0]), float(c[1]), float(c[2]), float(size[0]), float(size[1]), float(size[2]),
            float(pm.atan2(fwd[2], fwd[0]))]


def in_view(o: Placed, world_to_camera: np.ndarray, intr: dict, near: float = 0.05) -> bool:
    """Conservative frustum test of the object's 3D box (False only if surely outside)."""
    pts = box_corners(*box3d_world(o))
    cam = pm.matmul(pts, world_to_camera[:3, :3].T) + world_to_camera[:3, 3]
    front = cam[:, 2] > near
    if not front.any():
        return False
    if not front.all():
        return True  # straddles the camera plane: let the render decide
    if intr.get("lens"):  # distorted: test against the image's bounds in undistorted x/z, y/z
        x0, x1, y0, y1 = intr["bounds"]
        x, y = cam[:, 0] / cam[:, 2], cam[:, 1] / cam[:, 2]
        return x.max() >= x0 and x.min() <= x1 and y.max() >= y0 and y.min() <= y1
    u = intr["fx"] * cam[:, 0] / cam[:, 2] + intr["cx"]
    v = intr["fy"] * cam[:, 1] / cam[:, 2] + intr["cy"]
    return u.max() >= 0 and u.min() <= intr["width"] and v.max() >= 0 and v.min() <= intr["height"]
