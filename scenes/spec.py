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


@dataclass
class Camera:
    position: list[float]  # world metres, Z up
    yaw_deg: float  # heading: 0 looks along +Y (down the street), counter-clockwise positive
    pitch_deg: float  # positive looks up
    roll_deg: float
    hfov_deg: float
    width: int
    height: int

    def intrinsics(self) -> dict:
        """Pinhole intrinsics; pixel (row i, col j) has its centre at (u, v) = (j + 0.5, i + 0.5)."""
        fx = self.width / 2.0 / math.tan(math.radians(self.hfov_deg) / 2.0)
        return {"fx": fx, "fy": fx, "cx": self.width / 2.0, "cy": self.height / 2.0,
                "width": self.width, "height": self.height}

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


@dataclass
class SceneSpec:
    index: int
    seed: int
    scenario: str
    camera: Camera
    lighting: dict
    objects: list[Placed] = field(default_factory=list)
    version: int = SPEC_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @staticmethod
    def from_json(text: str) -> "SceneSpec":
        d = json.loads(text)
        return SceneSpec(index=d["index"], seed=d["seed"], scenario=d["scenario"],
                         camera=Camera(**d["camera"]), lighting=d["lighting"],
                         objects=[Placed(**o) for o in d["objects"]], version=d["version"])


def scene_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(index)])))


def sample_scene(cfg: dict, seed: int, index: int) -> SceneSpec:
    """The spec of scene ``index`` of a run with ``seed`` and ``cfg``."""
    from scenes import layouts  # local: layouts imports the asset recipes

    rng = scene_rng(seed, index)
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
    return SceneSpec(index=index, seed=seed, scenario=scenario, camera=camera,
                     lighting=sample_lighting(rng, cfg["lighting"]), objects=objects)


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
