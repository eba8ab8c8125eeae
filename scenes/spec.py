"""Seeded, JSON-serialisable scene specifications.

Scene ``i`` of a run depends only on ``(seed, i, config)``: its generator is seeded from
``SeedSequence([seed, i])`` so any scene can be regenerated alone, in any worker.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

SPEC_VERSION = 1


def pinhole_intrinsics(width: int, height: int, hfov_deg: float) -> dict:
    """Pinhole intrinsics; pixel (row i, col j) has its centre at (u, v) = (j + 0.5, i + 0.5)."""
    fx = width / 2.0 / math.tan(math.radians(hfov_deg) / 2.0)
    return {"fx": fx, "fy": fx, "cx": width / 2.0, "cy": height / 2.0, "width": width, "height": height}


@dataclass
class Camera:
    position: list[float]  # world metres, Z up
    yaw_deg: float  # heading: 0 looks along +Y (down the street), counter-clockwise positive
    pitch_deg: float  # positive looks up
    roll_deg: float
    hfov_deg: float
    width: int
    height: int
    velocity: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # m/s, for frames

    def intrinsics(self) -> dict:
        return pinhole_intrinsics(self.width, self.height, self.hfov_deg)

    def world_to_camera(self) -> np.ndarray:
        """4x4 matrix mapping world points to OpenCV camera coordinates (x right, y down, z forward)."""
        yaw, pitch, roll = (math.radians(a) for a in (self.yaw_deg, self.pitch_deg, self.roll_deg))
        # Camera forward at zero angles is +Y; build camera axes in world coordinates.
        fwd = np.array([-math.sin(yaw) * math.cos(pitch), math.cos(yaw) * math.cos(pitch), math.sin(pitch)])
        right0 = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        up0 = np.cross(right0, fwd)
        right = math.cos(roll) * right0 + math.sin(roll) * up0
        up = np.cross(right, fwd)
        rot = np.stack([right, -up, fwd])  # rows: camera x, y, z axes in world coords
        m = np.eye(4)
        m[:3, :3] = rot
        m[:3, 3] = -rot @ np.asarray(self.position, float)
        return m


@dataclass
class Placed:
    """One object of the scene: an asset recipe with its parameters and a pose on the ground."""
    kind: str
    params: dict
    position: list[float]
    yaw_deg: float = 0.0
    name: str = ""
    velocity: list[float] | None = None  # m/s in the world; moving objects advance per frame


@dataclass
class SceneSpec:
    index: int
    seed: int
    scenario: str
    camera: Camera
    lighting: dict
    objects: list[Placed] = field(default_factory=list)
    version: int = SPEC_VERSION
    layout: int = -1  # scenes of one layout share objects and differ in time (frames)
    frame: int = 0
    time_s: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @staticmethod
    def from_json(text: str) -> "SceneSpec":
        d = json.loads(text)
        return SceneSpec(index=d["index"], seed=d["seed"], scenario=d["scenario"],
                         camera=Camera(**d["camera"]), lighting=d["lighting"],
                         objects=[Placed(**o) for o in d["objects"]], version=d["version"],
                         layout=d.get("layout", d["index"]), frame=d.get("frame", 0), time_s=d.get("time_s", 0.0))


def scene_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(index)])))


def sample_scene(cfg: dict, seed: int, index: int) -> SceneSpec:
    """The spec of scene ``index`` of a run with ``seed`` and ``cfg``.

    With ``scene.frames_per_layout = F``, scenes ``L*F .. L*F+F-1`` are frames of layout
    ``L``: the same objects, seen ``frame_interval_s`` apart while the camera and moving
    vehicles advance along their velocities."""
    frames = cfg["scene"]["frames_per_layout"]
    layout, frame = divmod(int(index), frames)
    spec = sample_layout(cfg, seed, layout)
    if frame:
        timing = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), layout, 7])))
        t = float(timing.uniform(*cfg["scene"]["frame_interval_s"], size=frame).sum())
        spec = advance(spec, t)
    spec.index, spec.frame = int(index), frame
    return spec


def advance(spec: SceneSpec, t: float) -> SceneSpec:
    """The layout ``t`` seconds later: camera and moving objects moved along their velocity."""
    out = SceneSpec.from_json(spec.to_json())
    cam = out.camera
    cam.position = [p + v * t for p, v in zip(cam.position, cam.velocity)]
    for o in out.objects:
        if o.velocity:
            o.position = [p + v * t for p, v in zip(o.position, o.velocity)]
    out.time_s = spec.time_s + t
    return out


def sample_layout(cfg: dict, seed: int, layout: int) -> SceneSpec:
    from scenes import layouts  # local: layouts imports the asset recipes

    rng = scene_rng(seed, layout)
    scenario = cfg["scene"]["scenario"]
    if scenario == "mix":
        names = sorted(cfg["scene"]["mix"])
        w = np.array([cfg["scene"]["mix"][n] for n in names], float)
        scenario = names[int(rng.choice(len(names), p=w / w.sum()))]
    r = cfg["render"]
    camera, objects = layouts.LAYOUTS[scenario](rng, cfg)
    camera.hfov_deg, camera.width, camera.height = float(r["hfov_deg"]), int(r["width"]), int(r["height"])
    for k, o in enumerate(objects):
        o.name = o.name or f"{o.kind}.{k:03d}"
        if "cutout" in o.params:  # a 2D figure faces the camera, as in DAISnet
            dx, dy = camera.position[0] - o.position[0], camera.position[1] - o.position[1]
            o.yaw_deg = math.degrees(math.atan2(dy, dx)) % 360.0
    return SceneSpec(index=layout, seed=seed, scenario=scenario, camera=camera,
                     lighting=sample_lighting(rng, cfg["lighting"]), objects=objects, layout=layout)


def uniform(rng: np.random.Generator, bounds) -> float:
    lo, hi = bounds
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


def integer(rng: np.random.Generator, bounds) -> int:
    lo, hi = bounds
    return int(rng.integers(lo, hi + 1))


def sample_lighting(rng: np.random.Generator, ranges: dict) -> dict:
    warmth = uniform(rng, ranges["sun_color_warmth"])
    # Warm light: blue and green fall off faster than red as warmth rises.
    colour = [1.0, 1.0 - 0.35 * warmth, 1.0 - 0.75 * warmth]
    return {
        "sun_elevation_deg": uniform(rng, ranges["sun_elevation_deg"]),
        "sun_azimuth_deg": uniform(rng, ranges["sun_azimuth_deg"]),
        "sun_strength": uniform(rng, ranges["sun_strength"]),
        "sun_angle_deg": uniform(rng, ranges["sun_angle_deg"]),
        "sun_color": colour,
        "sky_strength": uniform(rng, ranges["sky_strength"]),
        "air_density": uniform(rng, ranges["air_density"]),
        "aerosol_density": uniform(rng, ranges["aerosol_density"]),
        "ozone_density": uniform(rng, ranges["ozone_density"]),
        "sky_type": "MULTIPLE_SCATTERING",
        "exposure": uniform(rng, ranges["exposure"]),
    }
