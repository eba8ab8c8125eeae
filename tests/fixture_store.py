"""A scene store of analytic scenes, made without Blender.

Each scene is a level camera 1.5 m above an infinite ground plane, sky above the horizon, and
a few axis-aligned boxes and vertical cylinders at known places.  Every stored array is
computed here from the geometry alone (ray casting, not the annotation code under test):
planar depth, the visible instance and class, camera-space normals, amodal masks (the
pixel-centre ray meets the object anywhere), the per-instance tables, occlusion and
depth_order.  It goes through ``scenes.store``'s public API (create + write_scene), so the
composer, trainer and CLI tests run where bpy is missing.

Objects of scene ``i`` (in spec order; instances are numbered in this order):
  0 ground (terrain, not an instance)
  1 car box, 7-10 m ahead, its top at the camera's height
  2 pedestrian cylinder, 4-5.5 m ahead on the left (a "human" mask)
  3 bus box behind the car, partly hidden by it
  4 pole cylinder on the right, 5 m tall
  5 (odd i only) a van box wholly hidden behind the bus: amodal only, modal area 0
"""
from __future__ import annotations

import math

import numpy as np

from tests.analytic import pixel_rays, ray_box

CAM_H = 1.5
WORLD_UP = np.array([0.0, 0.0, 1.0])
SUN = np.array([0.4, -0.5, 0.77]) / np.linalg.norm([0.4, -0.5, 0.77])  # world, towards the light
COLOURS = {"terrain": (90, 110, 70), "car": (200, 40, 30), "pedestrian": (230, 190, 150), "bus": (240, 200, 40),
           "pole": (120, 120, 130), "van": (40, 90, 200)}


def fixture_config(width: int = 96, height: int = 64, max_instances: int = 8) -> dict:
    from scenes.config import build_config
    return build_config("tiny", overrides=[f"render.width={width}", f"render.height={height}",
                                           f"scene.max_instances={max_instances}"])


def layout(i: int, seed: int) -> list[dict]:
    """The objects of scene ``i``: kind (box | cylinder | ground), class, geometry in metres."""
    r = np.random.default_rng([int(seed), int(i), 77])
    car_x, car_y = r.uniform(-1.5, 0.5), r.uniform(7.0, 10.0)
    bus_x, bus_y = car_x + r.uniform(0.5, 1.5), car_y + r.uniform(7.0, 9.0)
    objs = [
        {"kind": "ground", "class": "terrain"},
        {"kind": "box", "class": "car", "centre": (car_x, car_y), "size": (1.8, 4.0, CAM_H)},
        {"kind": "cylinder", "class": "pedestrian", "centre": (r.uniform(-3.0, -2.0), r.uniform(4.0, 5.5)),
         "radius": 0.3, "height": 1.8},
        {"kind": "box", "class": "bus", "centre": (bus_x, bus_y), "size": (2.5, 8.0, 3.2)},
        {"kind": "cylinder", "class": "pole", "centre": (r.uniform(2.5, 4.0), r.uniform(10.0, 14.0)),
         "radius": 0.15, "height": 5.0},
    ]
    if i % 2:
        objs.append({"kind": "box", "class": "van", "centre": (bus_x, bus_y + 6.0), "size": (1.5, 1.5, 1.5)})
    return objs


def _ray_cylinder(origin, dirs, centre, radius, height):
    """Entry t into a vertical cylinder standing on z = 0 (inf if missed) and the world normal.
    The camera is outside it and below its top, so a ray can only enter through the side."""
    assert height > origin[2]
    ox, oy = origin[0] - centre[0], origin[1] - centre[1]
    dx, dy = dirs[..., 0], dirs[..., 1]
    a = dx * dx + dy * dy
    b = 2 * (ox * dx + oy * dy)
    c = ox * ox + oy * oy - radius * radius
    disc = b * b - 4 * a * c
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (-b - np.sqrt(disc)) / (2 * a)
    z = origin[2] + t * dirs[..., 2]
    hit = (disc >= 0) & (t > 0) & (z >= 0) & (z <= height)
    t = np.where(hit, t, np.inf)
    px, py = ox + np.where(hit, t, 0) * dx, oy + np.where(hit, t, 0) * dy
    normal = np.stack([px / radius, py / radius, np.zeros_like(px)], -1)
    return t, normal


def _box3d(o) -> list[float]:
    """[cx, cy, cz, l, w, h, yaw] in camera coordinates: camera x = world x, y = height below
    the camera, z = world y (the camera looks along +y, level, from (0, 0, CAM_H))."""
    (x, y), yaw = o["centre"], 0.0
    if o["kind"] == "box":
        lx, ly, lz = o["size"]
    else:
        lx = ly = 2 * o["radius"]
        lz = o["height"]
    return [x, CAM_H - lz / 2, y, lx, ly, lz, yaw]


def scene_arrays(i: int, seed: int, cfg: dict) -> tuple[dict, str]:
    """(every store annotation of scene ``i``, its spec JSON)."""
    from scenes.classes import CLASS_IDS
    from scenes.spec import Camera, Placed, SceneSpec

    w, h = cfg["render"]["width"], cfg["render"]["height"]
    fov, kmax = cfg["render"]["hfov_deg"], cfg["scene"]["max_instances"]
    objs = layout(i, seed)
    d = pixel_rays(w, h, fov)  # camera frame, z = 1: t along these rays is planar depth
    world = np.stack([d[..., 0], d[..., 2], -d[..., 1]], -1)
    origin = np.array([0.0, 0.0, CAM_H])
    ts, normals = [], []
    with np.errstate(divide="ignore"):
        ts.append(np.where(world[..., 2] < 0, -CAM_H / world[..., 2], np.inf))
    normals.append(np.broadcast_to(WORLD_UP, world.shape))
    for o in objs[1:]:
        if o["kind"] == "box":
            (x, y), (lx, ly, lz) = o["centre"], o["size"]
            t, n, _ = ray_box(origin, world, np.array([x - lx / 2, y - ly / 2, 0.0]),
                              np.array([x + lx / 2, y + ly / 2, lz]))
        else:
            t, n = _ray_cylinder(origin, world, o["centre"], o["radius"], o["height"])
        ts.append(t)
        normals.append(n)
    t_all = np.stack(ts)
    vis = np.argmin(t_all, 0)  # index into objs of the first surface
    depth = np.min(t_all, 0).astype(np.float32)
    sky = ~np.isfinite(depth)

    inst_objs = [k for k, o in enumerate(objs) if o["class"] in cfg["scene"]["instance_classes"]]
    assert len(inst_objs) <= kmax
    amodal = np.stack([np.isfinite(t_all[k]) for k in inst_objs]) if inst_objs else np.zeros((0, h, w), bool)
    instance = np.zeros((h, w), np.uint16)
    semantic = np.full((h, w), CLASS_IDS["sky"], np.uint8)
    n_world = np.zeros((h, w, 3))
    for k, o in enumerate(objs):
        m = (vis == k) & ~sky
        semantic[m] = CLASS_IDS[o["class"]]
        n_world[m] = normals[k][m]
    for iid, k in enumerate(inst_objs, start=1):
        instance[(vis == k) & ~sky] = iid
    # World (x, y, z) -> OpenCV camera (x, -z, y); every visible face already faces the camera.
    n_cam = np.stack([n_world[..., 0], -n_world[..., 2], n_world[..., 1]], -1).astype(np.float16)

    # RGB: Lambert-shaded class colours, a 1 m checker on the ground, a sky gradient.
    shade = 0.35 + 0.65 * np.clip(n_world @ SUN, 0, None)
    rgb = np.zeros((h, w, 3))
    for k, o in enumerate(objs):
        m = (vis == k) & ~sky
        rgb[m] = np.array(COLOURS[o["class"]]) * shade[m, None]
    hit = origin + np.where(sky, 0, depth)[..., None] * world
    checker = (np.floor(hit[..., 0]) + np.floor(hit[..., 1])) % 2 == 0
    rgb[(vis == 0) & ~sky & checker] *= 0.8
    rows = np.linspace(1.0, 0.6, h)[:, None, None]
    rgb = np.where(sky[..., None], np.array([110, 160, 230]) * rows, rgb)
    noise = np.random.default_rng([int(seed), int(i), 78]).normal(0, 3, rgb.shape)
    rgb = np.clip(np.rint(rgb + noise), 0, 255).astype(np.uint8)

    k = len(inst_objs)
    modal = np.stack([instance == iid for iid in range(1, k + 1)]) if k else np.zeros((0, h, w), bool)
    modal_area = modal.reshape(k, -1).sum(1)
    amodal_area = amodal.reshape(k, -1).sum(1)
    box3d = np.array([_box3d(objs[j]) for j in inst_objs], np.float32).reshape(k, 7)
    occ = np.zeros((kmax, kmax), bool)
    order = np.zeros((kmax, kmax), np.int8)
    for a in range(k):
        for b in range(k):
            if a != b:
                occ[a, b] = bool((instance[amodal[b]] == a + 1).any())
                za, zb = box3d[a, 2], box3d[b, 2]
                tol = max(0.5, 0.05 * min(za, zb))  # the store's "equal" band (InstaOrder)
                order[a, b] = -1 if za < zb - tol else 1 if za > zb + tol else 0

    def pad(a, fill, dtype):
        out = np.full((kmax,) + np.shape(a)[1:], fill, dtype)
        out[:k] = a
        return out

    arrays = {
        "rgb": rgb, "depth": depth, "instance": instance, "semantic": semantic, "normals": n_cam,
        "amodal": pad(amodal, False, bool), "num_instances": np.uint16(k),
        "instance_class": pad([CLASS_IDS[objs[j]["class"]] for j in inst_objs], 0, np.uint8),
        "instance_object": pad(inst_objs, -1, np.int32),
        "modal_box": pad(_boxes(modal), -1, np.int32), "amodal_box": pad(_boxes(amodal), -1, np.int32),
        "modal_area": pad(modal_area, 0, np.int32), "amodal_area": pad(amodal_area, 0, np.int32),
        "visible_fraction": pad(modal_area / np.maximum(amodal_area, 1), 0.0, np.float32),
        "distance": pad(np.linalg.norm(box3d[:, :3], axis=1), np.nan, np.float32),
        "box3d": pad(box3d, np.nan, np.float32), "occlusion": occ, "depth_order": order,
    }
    placed = []
    for k_, o in enumerate(objs):
        if o["kind"] == "ground":
            placed.append(Placed("ground", {"size_x": 1e4, "size_y": 1e4}, [0.0, 0.0, 0.0], 0.0, "ground"))
            continue
        b = _box3d(o)
        params = {"class": o["class"], "length": b[3], "width": b[4], "height": b[5]}
        if o["kind"] == "cylinder":
            params = {"class": o["class"], "radius": o["radius"], "height": o["height"]}
        placed.append(Placed(o["kind"], params, [float(o["centre"][0]), float(o["centre"][1]), 0.0], 0.0,
                             f"{o['kind']}.{k_:03d}"))
    cam = Camera([0.0, 0.0, CAM_H], 0.0, 0.0, 0.0, float(fov), w, h)
    spec = SceneSpec(index=i, seed=seed, scenario="fixture", camera=cam, lighting={}, objects=placed, layout=i)
    return arrays, spec.to_json()


def _boxes(masks: np.ndarray) -> np.ndarray:
    out = np.full((len(masks), 4), -1, np.int32)
    for k, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        if ys.size:
            out[k] = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return out


def make_scene_store(url: str, n: int = 4, width: int = 96, height: int = 64, seed: int = 0,
                     max_instances: int = 8, overwrite: bool = False):
    """Write ``n`` analytic scenes to a new scene store at ``url``; returns the SceneStore."""
    from scenes import store
    from scenes.spec import pinhole_intrinsics

    cfg = fixture_config(width, height, max_instances)
    st = store.create(url, n, cfg, seed, pinhole_intrinsics(width, height, cfg["render"]["hfov_deg"]),
                      overwrite=overwrite, extra_attrs={"fixture": "tests/fixture_store.py: analytic, no Blender"})
    for i in range(n):
        arrays, spec = scene_arrays(i, seed, cfg)
        st.write_scene(i, arrays, spec)
    return st


def focal(width: int, hfov_deg: float) -> float:
    """Pixels per unit of x/z (square pixels)."""
    return width / 2.0 / math.tan(math.radians(hfov_deg) / 2.0)
