"""Scenario layouts: street (DAISnet eq. 1), city intersection, and open-road traffic.

Each layout is ``f(rng, cfg) -> (Camera, [Placed])``.  World frame: metres, Z up; the
main road runs along +Y.  Yaw 0 points an asset's length along +X.
"""
from __future__ import annotations

import math

import numpy as np

from scenes import portable_math as pm
from scenes.draws import integer, normal, poisson, uniform
from scenes.placement import Ground, footprint
from scenes.spec import Camera, Placed
from scenes.user_assets import people_options, sample_params, size_of

VEHICLES = ("car", "van", "truck", "bus")


def _vehicle_kind(rng, cfg) -> str:
    mix = cfg["scene"]["vehicle_mix"]
    names = sorted(mix)
    w = np.array([mix[n] for n in names], float)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def _place(ground: Ground, rng, cfg, kind: str, pose, tries: int, params=None, margin=0.1):
    """Sample params for ``kind`` and a free pose; returns a Placed or None."""
    params = params if params is not None else sample_params(rng, kind, cfg)
    size = size_of(kind, params)
    spot = ground.try_place(pose, size, tries, margin)
    if spot is None:
        return None
    x, y, yaw = spot
    return Placed(kind, params, [float(x), float(y), 0.0], float(yaw % 360.0))


def _companions(ground: Ground, rng, cfg, lead: Placed | None, most: int) -> list[Placed]:
    """With probability ``people.group_fraction``, up to 2 (and ``most``) more figures side
    by side with ``lead``, facing its way: people walking together, counted in the scene's
    pedestrian budget so the class mix stays.  Draws nothing when the knob is off."""
    opts = people_options(cfg)
    if lead is None or most <= 0 or not opts or opts["group_fraction"] <= 0 or rng.random() >= opts["group_fraction"]:
        return []
    a = math.radians(lead.yaw_deg)
    left = (-pm.sin(a), pm.cos(a))
    out = []
    for j in range(min(integer(rng, (1, 2)), most)):
        gap = (j // 2 + 1) * uniform(rng, (0.6, 0.85)) * (1 if j % 2 == 0 else -1)
        x, y = lead.position[0] + gap * left[0], lead.position[1] + gap * left[1]
        p = _place(ground, rng, cfg, "pedestrian", lambda x=x, y=y: (
            x + normal(rng, 0, 0.05), y + normal(rng, 0, 0.05), lead.yaw_deg + normal(rng, 0, 4)), 3, margin=0.02)
        if p:
            out.append(p)
    return out


def _moving(p: Placed | None, speed: float) -> Placed | None:
    """Give a placed object a velocity of ``speed`` m/s along its heading."""
    if p is not None:
        a = math.radians(p.yaw_deg)
        p.velocity = [speed * pm.cos(a), speed * pm.sin(a), 0.0]
    return p


def _heading_velocity(cam: Camera, speed: float) -> list[float]:
    a = math.radians(cam.yaw_deg)
    return [-speed * pm.sin(a), speed * pm.cos(a), 0.0]


def _road(objects, length, width, lanes, cx=0.0, cy=0.0, yaw=0.0, dashed=True):
    objects.append(Placed("road_surface", {"length": length, "width": width}, [cx, cy, 0.0], yaw))
    objects.append(Placed("lane_markings", {"length": length, "road_width": width, "lanes": lanes,
                                            "dashed": dashed}, [cx, cy, 0.0], yaw))


def _keep_out_camera(ground: Ground, cam: Camera, size: float = 2.0) -> None:
    ground.add(footprint(cam.position[0], cam.position[1], size, size, 0.0))


def _camera(x, y, h, yaw, pitch) -> Camera:
    return Camera([float(x), float(y), float(h)], float(yaw), float(pitch), 0.0, 80.0, 0, 0)


def _furniture(rng, cfg, ground, objects, n, xs, y_range, tries):
    """Street lights, signs, lights, benches, bollards, bins and fences on the sidewalks."""
    kinds = ("street_light", "street_light", "traffic_sign", "traffic_sign", "traffic_light",
             "bench", "bollard", "trash_bin", "fence", "railing")
    for _ in range(n):
        kind = kinds[int(rng.integers(len(kinds)))]
        side = int(rng.integers(len(xs)))
        x0, x1, yaw = xs[side]
        p = _place(ground, rng, cfg, kind, lambda: (uniform(rng, (x0, x1)), uniform(rng, y_range), yaw), tries)
        if p:
            objects.append(p)


def _trees(rng, cfg, ground, objects, n, xs, y_range, tries):
    for _ in range(n):
        x0, x1, _ = xs[int(rng.integers(len(xs)))]
        p = _place(ground, rng, cfg, "tree", lambda: (uniform(rng, (x0, x1)), uniform(rng, y_range),
                                                 uniform(rng, (0, 360))), tries, margin=0.3)
        if p:
            objects.append(p)


def _buildings(rng, cfg, objects, ground, side_x, y0, y1, facing):
    """A row of buildings along Y whose front faces the street at |x| = side_x."""
    y = y0
    while y < y1:
        params = sample_params(rng, "building", cfg)
        length, depth, _ = size_of("building", params)
        gap = uniform(rng, (0.0, 2.0))
        cx = side_x + facing * depth / 2.0
        cy = y + length / 2.0
        objects.append(Placed("building", params, [float(cx), float(cy), 0.0], 90.0))
        ground.add(footprint(cx, cy, length, depth, 90.0))
        y += length + gap


def street(rng, cfg):
    c, tries = cfg["street"], cfg["scene"]["placement_tries"]
    rw, sw, length = c["road_width"], c["sidewalk_width"], c["length"]
    y0, y1 = -15.0, length + 15.0
    ym = (y0 + y1) / 2
    objects: list[Placed] = [Placed("ground", {"size_x": 600.0, "size_y": 600.0, "material": "grass"},
                                    [0.0, ym, -0.02], 0.0)]
    _road(objects, y1 - y0, rw, c["lanes"], cy=ym)
    for s in (-1, 1):
        objects.append(Placed("sidewalk", {"length": y1 - y0, "width": sw, "height": 0.15},
                              [s * (rw / 2 + sw / 2), ym, 0.0], 0.0 if s > 0 else 180.0))
    ground = Ground()
    for s in (-1, 1):
        _buildings(rng, cfg, objects, ground, s * (rw / 2 + sw + uniform(rng, (0.0, 1.5))), y0, y1, s)

    cam = _camera(uniform(rng, c["camera_x"]), uniform(rng, c["camera_along"]), uniform(rng, c["camera_height"]),
                  uniform(rng, c["camera_yaw_deg"]), uniform(rng, c["camera_pitch_deg"]))
    _keep_out_camera(ground, cam)
    cy = cam.position[1]
    vehicles = []
    for _ in range(integer(rng, c["vehicles"])):  # DAISnet eq. (1)
        vehicles.append(_place(ground, rng, cfg, _vehicle_kind(rng, cfg), lambda: (
            uniform(rng, c["vehicle_lateral"]), cy + uniform(rng, c["vehicle_ahead"]),
            uniform(rng, c["vehicle_yaw_deg"])), tries))
    for _ in range(integer(rng, c["parked_vehicles"])):
        side = 1 if rng.random() < 0.5 else -1
        kind = _vehicle_kind(rng, cfg)
        params = sample_params(rng, kind, cfg)
        w = size_of(kind, params)[1]
        vehicles.append(_place(ground, rng, cfg, kind, lambda: (
            side * (rw / 2 - w / 2 - uniform(rng, (0.2, 0.5))), uniform(rng, (y0 + 5, y1 - 5)),
            90.0 if side > 0 else 270.0), tries, params))
    lane_w = rw / max(c["lanes"], 1)
    for _ in range(integer(rng, c["moving_vehicles"])):
        side = 1 if rng.random() < 0.5 else -1
        vehicles.append(_moving(_place(ground, rng, cfg, _vehicle_kind(rng, cfg), lambda: (
            side * lane_w / 2 + uniform(rng, (-0.4, 0.4)), uniform(rng, (cy + 6, y1 - 5)),
            (90.0 if side > 0 else 270.0) + uniform(rng, (-4, 4))), tries), uniform(rng, c["vehicle_speed"])))
    vehicles = [v for v in vehicles if v]
    objects += vehicles
    n_ped = poisson(rng, c["pedestrians_per_vehicle"] * max(len(vehicles), 1))
    k = 0
    while k < n_ped:
        k += 1
        p = _place(ground, rng, cfg, "pedestrian", lambda: (
            uniform(rng, c["pedestrian_lateral"]), cy + uniform(rng, c["pedestrian_ahead"]),
            uniform(rng, (0, 360))), tries, margin=0.05)
        if p:
            objects.append(p)
            group = _companions(ground, rng, cfg, p, n_ped - k)
            objects += group
            k += len(group)
    cam.velocity = _heading_velocity(cam, uniform(rng, c["camera_speed"]))
    walk = [(-(rw / 2 + sw) + 0.4, -rw / 2 - 0.3, 90.0), (rw / 2 + 0.3, rw / 2 + sw - 0.4, 270.0)]
    _furniture(rng, cfg, ground, objects, integer(rng, c["furniture"]), walk, (y0, y1), tries)
    _trees(rng, cfg, ground, objects, integer(rng, c["trees"]), walk, (y0, y1), tries)
    return cam, objects


def city(rng, cfg):
    """A four-way intersection with corner blocks, crosswalks, mixed traffic and crowds."""
    c, tries = cfg["city"], cfg["scene"]["placement_tries"]
    rw, sw, block = c["road_width"], c["sidewalk_width"], c["block"]
    half = rw / 2
    arm = block
    objects: list[Placed] = [Placed("ground", {"size_x": 600.0, "size_y": 600.0, "material": "grass"},
                                    [0.0, 0.0, -0.02], 0.0)]
    objects.append(Placed("road_surface", {"length": 2 * arm + rw, "width": rw}, [0.0, 0.0, 0.0], 0.0))
    for s in (-1, 1):  # cross street arms, so no two road surfaces overlap
        objects.append(Placed("road_surface", {"length": arm, "width": rw}, [s * (half + arm / 2), 0.0, 0.0], 90.0))
        for yaw, pos in ((0.0, [0.0, s * (half + 3 + (arm - 3) / 2), 0.0]), (90.0, [s * (half + 3 + (arm - 3) / 2), 0.0, 0.0])):
            objects.append(Placed("lane_markings", {"length": arm - 3.0, "road_width": rw, "lanes": c["lanes"],
                                                    "dashed": True}, pos, yaw))
            objects.append(Placed("crosswalk", {"width_x": rw, "length_y": 3.0},
                                  [0.0, s * (half + 1.5), 0.0] if yaw == 0.0 else [s * (half + 1.5), 0.0, 0.0], yaw))
    ground = Ground()
    corner = arm / 2 + half
    for sx in (-1, 1):
        for sy in (-1, 1):
            objects.append(Placed("sidewalk", {"length": arm, "width": arm, "height": 0.15},
                                  [sx * corner, sy * corner, 0.0], 0.0))
            # One or two buildings set back from both streets on each corner block.
            for _ in range(int(rng.integers(1, 3))):
                params = sample_params(rng, "building", cfg)
                length, depth, _ = size_of("building", params)
                bx = sx * (half + sw + length / 2 + uniform(rng, (0, arm - sw - length))) if arm - sw > length else sx * corner
                by = sy * (half + sw + depth / 2 + uniform(rng, (0, max(arm - sw - depth, 0))))
                fp = footprint(bx, by, length, depth, 0.0)
                if ground.free(fp):
                    ground.add(fp)
                    objects.append(Placed("building", params, [float(bx), float(by), 0.0], 0.0))
    cam = _camera(uniform(rng, c["camera_x"]), -uniform(rng, c["camera_back"]), uniform(rng, c["camera_height"]),
                  uniform(rng, c["camera_yaw_deg"]), uniform(rng, c["camera_pitch_deg"]))
    _keep_out_camera(ground, cam)
    lane_w = rw / c["lanes"]
    lane_offsets = [(i + 0.5) * lane_w - half for i in range(c["lanes"])]
    for _ in range(integer(rng, c["vehicles"])):
        if rng.random() < 0.5:  # along the camera's street
            off = lane_offsets[int(rng.integers(len(lane_offsets)))]
            pose = lambda off=off: (off, uniform(rng, (cam.position[1] + 6, arm)), 90.0 if off > 0 else 270.0)  # noqa: E731 - a draw per try
        else:
            off = lane_offsets[int(rng.integers(len(lane_offsets)))]
            pose = lambda off=off: (uniform(rng, (-arm, arm)), off, 180.0 if off > 0 else 0.0)  # noqa: E731
        p = _moving(_place(ground, rng, cfg, _vehicle_kind(rng, cfg), pose, tries), uniform(rng, c["vehicle_speed"]))
        if p:
            objects.append(p)
    cam.velocity = _heading_velocity(cam, uniform(rng, c["camera_speed"]))
    walk_x = (-(half + sw) + 0.5, -half - 0.5, 90.0), (half + 0.5, half + sw - 0.5, 270.0)
    for _ in range(integer(rng, c["crowds"])):  # groups on a corner or a crosswalk
        gx = uniform(rng, (-(half + sw), half + sw))
        gy = uniform(rng, (-half - 4, arm / 2))
        for _ in range(integer(rng, c["crowd_size"])):
            p = _place(ground, rng, cfg, "pedestrian", lambda: (gx + normal(rng, 0, 1.5), gy + normal(rng, 0, 1.5),
                                                           uniform(rng, (0, 360))), tries, margin=0.05)
            if p:
                objects.append(p)
    n_ped, k = integer(rng, c["pedestrians"]), 0
    while k < n_ped:
        k += 1
        x0, x1, _ = walk_x[int(rng.integers(2))]
        p = _place(ground, rng, cfg, "pedestrian", lambda: (uniform(rng, (x0, x1)), uniform(rng, (-arm, arm)),
                                                       uniform(rng, (0, 360))), tries, margin=0.05)
        if p:
            objects.append(p)
            group = _companions(ground, rng, cfg, p, n_ped - k)
            objects += group
            k += len(group)
    _furniture(rng, cfg, ground, objects, integer(rng, c["furniture"]), walk_x, (-arm, arm), tries)
    _trees(rng, cfg, ground, objects, integer(rng, c["trees"]), walk_x, (-arm, arm), tries)
    return cam, objects


def _vehicles_ahead(cam: Camera, objects, max_range: float) -> int:
    w2c = cam.world_to_camera()
    k = cam.intrinsics()
    n = 0
    for o in objects:
        if o.kind not in VEHICLES:
            continue
        p = pm.matmul(w2c, np.array([o.position[0], o.position[1], 1.0, 1.0]))
        if 0.5 < p[2] < max_range:
            u, v = k["fx"] * p[0] / p[2] + k["cx"], k["fy"] * p[1] / p[2] + k["cy"]
            n += 0 <= u < k["width"] and 0 <= v < k["height"]
    return n


def openroad(rng, cfg):
    """A road graph (a main road and crossing roads) with traffic; the camera rides behind a vehicle.

    Frames whose camera sees fewer than ``min_vehicles_ahead`` vehicles are rejected and the
    traffic resampled (DAISnet's "scene check"), up to ``scene_checks`` times.
    """
    c, tries = cfg["openroad"], cfg["scene"]["placement_tries"]
    r = cfg["render"]
    best = None
    for _ in range(c["scene_checks"]):
        cam, objects = _openroad_once(rng, cfg, c, tries)
        cam.hfov_deg, cam.width, cam.height = r["hfov_deg"], r["width"], r["height"]
        n = _vehicles_ahead(cam, objects, c["ahead_range"])
        if best is None or n > best[0]:
            best = (n, cam, objects)
        if n >= c["min_vehicles_ahead"]:
            break
    return best[1], best[2]


def _openroad_once(rng, cfg, c, tries):
    lw = c["lane_width"]
    objects: list[Placed] = [Placed("ground", {"size_x": 800.0, "size_y": 800.0, "material": "grass"},
                                    [0.0, 0.0, -0.02], 0.0)]
    ground = Ground()
    lanes = []  # (origin xy, direction unit xy) of each lane centre line, the graph's edges
    n_roads = integer(rng, c["roads"])
    main_len = 400.0
    roads = [(0.0, 0.0, 90.0, main_len)]  # cx, cy, heading deg, length
    for _ in range(n_roads - 1):
        roads.append((0.0, uniform(rng, (40.0, 160.0)), uniform(rng, (35.0, 145.0)) + 90.0, 240.0))
    for i, (cx, cy, heading, length) in enumerate(roads):
        per_dir = integer(rng, c["lanes_per_direction"])
        width = 2 * per_dir * lw
        # Road meshes run along local +Y; a heading of 90 deg means yaw 0.
        yaw = heading - 90.0
        objects.append(Placed("road_surface", {"length": length, "width": width},
                              [cx, cy, 0.0 if i == 0 else 0.001 * i], yaw))
        if i == 0:
            objects.append(Placed("lane_markings", {"length": length, "road_width": width, "lanes": 2 * per_dir,
                                                    "dashed": True}, [cx, cy, 0.0], yaw))
        h = math.radians(heading)
        d = np.array([pm.cos(h), pm.sin(h)])
        nrm = np.array([d[1], -d[0]])  # right-hand side of travel
        for k in range(per_dir):
            off = (k + 0.5) * lw
            lanes.append((np.array([cx, cy]) + nrm * off, d, length, i))
            lanes.append((np.array([cx, cy]) - nrm * off, -d, length, i))
    main_lanes = [ln for ln in lanes if ln[3] == 0]
    ego_origin, ego_dir, _, _ = main_lanes[int(rng.integers(len(main_lanes)))]
    s_ego = uniform(rng, (-120.0, 40.0))
    ego_xy = ego_origin + ego_dir * s_ego
    ego_heading = math.degrees(pm.atan2(ego_dir[1], ego_dir[0]))
    flow = uniform(rng, c["traffic_speed"])  # all traffic moves at one speed: no overtaking
    ego = _moving(_place(ground, rng, cfg, "car", lambda: (ego_xy[0], ego_xy[1], ego_heading), tries), flow)
    if ego:
        objects.append(ego)
    # follow_distance is the gap from the camera to the ego vehicle's rear bumper.
    back = uniform(rng, c["follow_distance"]) + (size_of("car", ego.params)[0] / 2 if ego else 0.0)
    cam_xy = ego_xy - ego_dir * back
    cam = _camera(cam_xy[0], cam_xy[1], uniform(rng, c["camera_height"]), ego_heading - 90.0,
                  uniform(rng, (-3.0, 1.0)))
    cam.velocity = [flow * float(ego_dir[0]), flow * float(ego_dir[1]), 0.0]  # riding behind the ego
    _keep_out_camera(ground, cam, 4.0)
    for _ in range(integer(rng, c["vehicles"])):
        origin, d, length, _ = lanes[int(rng.integers(len(lanes)))]
        heading = math.degrees(pm.atan2(d[1], d[0]))

        def pose(origin=origin, d=d, length=length, heading=heading):
            # Bias traffic towards the stretch ahead of the camera, where it will be seen.
            s = s_ego + uniform(rng, (-20.0, 120.0)) if rng.random() < 0.7 else uniform(rng, (-length / 2, length / 2))
            xy = origin + d * s
            return xy[0], xy[1], heading + uniform(rng, (-3, 3))
        p = _moving(_place(ground, rng, cfg, _vehicle_kind(rng, cfg), pose, tries, margin=0.5), flow)
        if p:
            objects.append(p)
    side = max(float(ln[0][0]) for ln in main_lanes) + lw
    verge = [(-side - 12.0, -side - 1.5, 0.0), (side + 1.5, side + 12.0, 0.0)]
    for _ in range(integer(rng, c["poles"])):
        x0, x1, _ = verge[int(rng.integers(2))]
        kind = ("street_light", "traffic_sign")[int(rng.integers(2))]
        p = _place(ground, rng, cfg, kind, lambda: (uniform(rng, (x0, x1)), uniform(rng, (-150, 200)),
                                              90.0 if x0 > 0 else 270.0), tries)
        if p:
            objects.append(p)
    _trees(rng, cfg, ground, objects, integer(rng, c["trees"]), verge, (-150.0, 200.0), tries)
    return cam, objects


LAYOUTS = {"street": street, "city": city, "openroad": openroad}
