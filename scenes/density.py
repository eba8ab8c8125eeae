"""Issue 16's density knobs: how many vehicles and people a scene holds, and where a city
scene puts them.

* ``density.vehicles_scale`` / ``density.pedestrians_scale`` scale the per-scenario count
  ranges (a deterministic rewrite of the config, no draw);
* ``density.city_in_view``: the city layout's traffic and people are replaced by traffic
  and people where the camera looks: queues at the stop lines, vehicles crossing or
  driving through the intersection, people on the crosswalks, waiting at the corners and
  walking on the sidewalks ahead.  The layout of before (buildings, camera, furniture,
  trees, lighting) is kept: only the road users are redrawn, from their own stream.

Every knob at its neutral value (scales 1, city_in_view false, or ``variety.enabled``
false) leaves the config and the objects as they were: the scenes of before, byte for byte.
"""
from __future__ import annotations

import copy
import math

import numpy as np

from scenes import portable_math as pm
from scenes.draws import integer, normal, uniform
from scenes.layouts import _companions, _moving, _place, _vehicle_kind
from scenes.placement import Ground, footprint
from scenes.spec import Camera, Placed
from scenes.user_assets import sample_params, size_of

K = 16004  # this module's stream: SeedSequence([seed, layout, K])
TRAFFIC = ("car", "van", "truck", "bus", "pedestrian")
ROAD = ("ground", "road_surface", "lane_markings", "crosswalk", "sidewalk")
MARGIN = {"tree": 0.3, "building": 0.0}  # as the layouts placed them; furniture 0.1
PED_FAR, VEH_FAR = 40.0, 75.0  # metres: past these a figure / a car has < ~100 px at 640x360
STOP = 3.5  # a stop line's distance from the cross street's kerb line (crosswalks are 3 m)


def options(cfg: dict) -> dict | None:
    """The ``density`` knobs in force, or None when ``variety.enabled`` is false or the
    config predates them."""
    if not (cfg.get("variety") or {}).get("enabled", False):
        return None
    return cfg.get("density")


def density_rng(seed: int, layout: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(layout), K])))


def _scale(bounds, s: float) -> list[int]:
    return [int(math.floor(b * s + 0.5)) for b in bounds]


def _mean(bounds) -> float:
    return (bounds[0] + bounds[1]) / 2.0


def scaled_config(cfg: dict) -> dict:
    """``cfg`` with the scenarios' vehicle and pedestrian count ranges scaled (rounded half
    up); ``cfg`` itself when both scales are 1.  A street's pedestrians are Poisson with a
    mean proportional to its vehicles, so its rate is corrected to make the pedestrians per
    scene scale by ``pedestrians_scale`` alone (on average).  Open-road scenes have no people."""
    o = options(cfg)
    if not o or (o["vehicles_scale"] == 1 and o["pedestrians_scale"] == 1):
        return cfg
    v, p = float(o["vehicles_scale"]), float(o["pedestrians_scale"])
    out = copy.deepcopy(cfg)
    s = out["street"]
    keys = ("vehicles", "parked_vehicles", "moving_vehicles")
    before = sum(_mean(s[k]) for k in keys)
    for k in keys:
        s[k] = _scale(s[k], v)
    after = sum(_mean(s[k]) for k in keys)
    s["pedestrians_per_vehicle"] = s["pedestrians_per_vehicle"] * p * max(before, 1.0) / max(after, 1.0)
    c = out["city"]
    c["vehicles"] = _scale(c["vehicles"], v)
    c["pedestrians"] = _scale(c["pedestrians"], p)
    c["crowd_size"] = _scale(c["crowd_size"], p)
    out["openroad"]["vehicles"] = _scale(out["openroad"]["vehicles"], v)
    return out


class Sight:
    """Is a ground point in the camera's view, between ``near`` and ``far`` metres ahead?"""

    def __init__(self, cam: Camera):
        self.w2c = cam.world_to_camera()
        k = cam.intrinsics()
        self.tan_x = k["cx"] / k["fx"]
        self.tan_y = k["cy"] / k["fy"]
        self.pos = np.asarray(cam.position[:2], float)

    def sees(self, x: float, y: float, z: float = 0.9, near: float = 3.0, far: float = VEH_FAR) -> bool:
        p = pm.matmul(self.w2c, np.array([x, y, z, 1.0]))
        return near < p[2] < far and abs(p[0]) < p[2] * self.tan_x and abs(p[1]) < p[2] * self.tan_y * 1.2


def _ground_of(objects: list[Placed], cam: Camera) -> Ground:
    """The footprints the layout reserved, for everything but the road users."""
    g = Ground()
    for o in objects:
        if o.kind in ROAD:
            continue
        size = size_of(o.kind, o.params)
        g.add(footprint(o.position[0], o.position[1], size[0], size[1], o.yaw_deg, MARGIN.get(o.kind, 0.1)))
    g.add(footprint(cam.position[0], cam.position[1], 2.0, 2.0, 0.0))  # layouts._keep_out_camera
    return g


def _visible(sight: Sight, pose, far: float, draws: int = 12):
    """A pose sampler that redraws ``pose`` until the camera sees it (``draws`` at most)."""
    def sample():
        for _ in range(draws):
            x, y, yaw = pose()
            if sight.sees(x, y, far=far):
                break
        return x, y, yaw
    return sample


def city_in_view(rng, cfg: dict, cam: Camera, objects: list[Placed]) -> list[Placed]:
    """``objects`` of a city layout with its vehicles and pedestrians redrawn in view."""
    c, o, tries = cfg["city"], options(cfg), cfg["scene"]["placement_tries"]
    keep = [x for x in objects if x.kind not in TRAFFIC]
    at = next((i for i, x in enumerate(objects) if x.kind in TRAFFIC), len(objects))  # where they were
    ground = _ground_of(keep, cam)
    sight = Sight(cam)
    red = rng.random() < o["city_red_share"]  # the camera's street waits at the light
    new = _vehicles(rng, cfg, c, ground, sight, cam, red, tries)
    new += _people(rng, cfg, c, ground, sight, red, tries)
    return keep[:at] + new + keep[at:]


def _vehicles(rng, cfg, c, ground, sight, cam, red, tries) -> list[Placed]:
    half, arm = c["road_width"] / 2, c["block"]
    lane_w = c["road_width"] / c["lanes"]
    offs = [(i + 0.5) * lane_w - half for i in range(c["lanes"])]
    # +Y and -X traffic keeps right of the centre line, -Y and +X traffic left of it.
    right, left = [f for f in offs if f > 0] or offs, [f for f in offs if f < 0] or offs
    queue_len: dict = {}  # (queue, lane) -> metres of queue already standing there
    cam_y = cam.position[1]
    out = []
    speed = c["vehicle_speed"]

    # Queues stand at a stop line; `axis` is the coordinate along the queue, `sign` the
    # side of the intersection, yaw the vehicles' heading towards the intersection.
    if red:  # the camera's street waits; cross traffic drives through the intersection
        queues = {"near": (right, "y", -1, 90.0), "far": (left, "y", 1, 270.0)}
        streams = (("near", 0.35), ("far", 0.25), ("cross", 0.4))
    else:  # the camera's street drives; the cross street waits on both sides
        queues = {"west": (left, "x", -1, 0.0), "east": (right, "x", 1, 180.0)}
        streams = (("west", 0.2), ("east", 0.2), ("ahead", 0.3), ("oncoming", 0.3))
    names = [s for s, _ in streams]
    w = np.array([p for _, p in streams])

    def moving_pose(name):
        if name == "cross":
            off = offs[int(rng.integers(len(offs)))]
            return lambda: (uniform(rng, (-arm, arm)), off + uniform(rng, (-0.3, 0.3)),
                            (180.0 if off > 0 else 0.0) + uniform(rng, (-3, 3)))
        lanes = right if name == "ahead" else left
        off = lanes[int(rng.integers(len(lanes)))]
        return lambda: (off + uniform(rng, (-0.3, 0.3)), uniform(rng, (cam_y + 8.0, arm)),
                        (90.0 if name == "ahead" else 270.0) + uniform(rng, (-3, 3)))

    for _ in range(integer(rng, c["vehicles"])):
        name = names[int(rng.choice(len(names), p=w / w.sum()))]
        kind = _vehicle_kind(rng, cfg)
        params = sample_params(rng, kind, cfg)
        length = size_of(kind, params)[0]
        p = None
        if name in queues:
            lanes, axis, sign, yaw = queues[name]
            off = lanes[int(rng.integers(len(lanes)))]
            key = (name, off)
            gap = uniform(rng, (1.0, 2.5))
            along = sign * (half + STOP + queue_len.get(key, 0.0) + length / 2)
            x, y = (off, along) if axis == "y" else (along, off)
            ahead = y - length / 2 > cam_y + 5.0 if axis == "y" else True
            if ahead and sight.sees(x, y):
                p = _place(ground, rng, cfg, kind, lambda x=x, y=y, yaw=yaw: (
                    x + uniform(rng, (-0.2, 0.2)), y, yaw + uniform(rng, (-2, 2))), 3, params)
                if p:
                    queue_len[key] = queue_len.get(key, 0.0) + length + gap
                    out.append(_moving(p, 0.0))
                    continue
            name = "cross" if red else ("ahead" if rng.random() < 0.5 else "oncoming")
        p = _moving(_place(ground, rng, cfg, kind, _visible(sight, moving_pose(name), VEH_FAR), tries, params),
                    uniform(rng, speed))
        if p:
            out.append(p)
    return out


def _people(rng, cfg, c, ground, sight, red, tries) -> list[Placed]:
    half, sw = c["road_width"] / 2, c["sidewalk_width"]
    out = []

    def on_sidewalk(x, y):
        return abs(x) > half + 0.2 or abs(y) > half + 0.2

    # Waiting groups stand at a corner's kerb, facing the street their light holds them at:
    # with the camera's street at red, people cross it and wait to cross the cross street.
    for _ in range(integer(rng, c["crowds"])):
        for _ in range(8):  # a corner in view: near corners of a close camera can be outside it
            sx = 1 if rng.random() < 0.5 else -1
            sy = -1 if rng.random() < 0.75 else 1  # the near corners are the ones seen large
            d, s = uniform(rng, (0.6, 1.4)), uniform(rng, (0.8, 2.5))
            if red:  # along the cross street's kerb, facing across it
                cx, cy, face, spread = sx * (half + s), sy * (half + d), (270.0 if sy > 0 else 90.0), (1.1, 0.6)
            else:
                cx, cy, face, spread = sx * (half + d), sy * (half + s), (180.0 if sx > 0 else 0.0), (0.6, 1.1)
            if sight.sees(cx, cy, far=PED_FAR):
                break
        for _ in range(integer(rng, c["crowd_size"])):
            def pose(cx=cx, cy=cy, face=face, spread=spread):
                for _ in range(6):
                    x, y = cx + normal(rng, 0, spread[0]), cy + normal(rng, 0, spread[1])
                    if on_sidewalk(x, y):
                        break
                return x, y, face + normal(rng, 0, 20)
            p = _place(ground, rng, cfg, "pedestrian", pose, tries, margin=0.05)
            if p:
                out.append(p)

    walk_x = ((-(half + sw) + 0.5, -half - 0.5), (half + 0.5, half + sw - 0.5))
    walk_y = (-(half + sw) + 0.5, -half - 0.5)  # the near sidewalks of the cross street
    n_ped, k = integer(rng, c["pedestrians"]), 0
    while k < n_ped:
        k += 1
        r = rng.random()
        if r < 0.4:  # on a crosswalk, crossing with the light
            side = 1 if rng.random() < 0.35 else -1
            heading = 0.0 if rng.random() < 0.5 else 180.0
            if red:
                pose = lambda side=side, heading=heading: (  # noqa: E731 - a draw per try
                    uniform(rng, (-half, half)), side * uniform(rng, (half + 0.3, half + 2.7)), heading + normal(rng, 0, 8))
            else:
                pose = lambda side=side, heading=heading: (  # noqa: E731
                    side * uniform(rng, (half + 0.3, half + 2.7)), uniform(rng, (-half, half)), heading + 90 + normal(rng, 0, 8))
        elif r < 0.75:  # on a sidewalk of the camera's street, walking along it
            x0, x1 = walk_x[int(rng.integers(2))]
            heading = 90.0 if rng.random() < 0.5 else 270.0
            pose = lambda x0=x0, x1=x1, heading=heading: (  # noqa: E731
                uniform(rng, (x0, x1)), uniform(rng, (sight.pos[1] + 4.0, half + 10.0)), heading + normal(rng, 0, 8))
        else:  # on the near sidewalk of the cross street
            heading = 0.0 if rng.random() < 0.5 else 180.0
            pose = lambda heading=heading: (  # noqa: E731
                uniform(rng, (-30.0, 30.0)), uniform(rng, walk_y), heading + normal(rng, 0, 8))
        p = _place(ground, rng, cfg, "pedestrian", _visible(sight, pose, PED_FAR), tries, margin=0.05)
        if p:
            out.append(p)
            group = _companions(ground, rng, cfg, p, n_ped - k)
            out += group
            k += len(group)
    return out
