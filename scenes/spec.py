"""JSON-serialisable scene specifications: the camera, the placed objects, the lighting.

A spec is data only; scenes.sampling draws them from (seed, index, config).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from scenes import portable_math as pm

SPEC_VERSION = 1


def pinhole_intrinsics(width: int, height: int, hfov_deg: float) -> dict:
    """Pinhole intrinsics; pixel (row i, col j) has its centre at (u, v) = (j + 0.5, i + 0.5)."""
    fx = width / 2.0 / pm.tan(math.radians(hfov_deg) / 2.0)
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
    # Issue 16 (empty/zero = a pinhole camera with an instant shutter, as before):
    lens: dict = field(default_factory=dict)  # distortion model and coefficients
    shutter_s: float = 0.0  # exposure time of the RGB (motion blur); annotations at its centre

    def intrinsics(self) -> dict:
        """K of the camera; with a lens (scenes.camera), its stored K and distortion, where
        ``hfov_deg`` is the image's true field of view and K's fx differs from the pinhole's."""
        if not self.lens:
            return pinhole_intrinsics(self.width, self.height, self.hfov_deg)
        k = {key: self.lens[key] for key in ("fx", "fy", "cx", "cy")}
        return {**k, "width": self.width, "height": self.height, "lens": self.lens}

    def world_to_camera(self) -> np.ndarray:
        """4x4 matrix mapping world points to OpenCV camera coordinates (x right, y down, z forward)."""
        yaw, pitch, roll = (math.radians(a) for a in (self.yaw_deg, self.pitch_deg, self.roll_deg))
        # Camera forward at zero angles is +Y; build camera axes in world coordinates.
        fwd = np.array([-pm.sin(yaw) * pm.cos(pitch), pm.cos(yaw) * pm.cos(pitch), pm.sin(pitch)])
        right0 = np.array([pm.cos(yaw), pm.sin(yaw), 0.0])
        up0 = np.cross(right0, fwd)
        right = pm.cos(roll) * right0 + pm.sin(roll) * up0
        up = np.cross(right, fwd)
        rot = np.stack([right, -up, fwd])  # rows: camera x, y, z axes in world coords
        m = np.eye(4)
        m[:3, :3] = rot
        m[:3, 3] = -pm.matmul(rot, np.asarray(self.position, float))
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
    weather: dict = field(default_factory=dict)  # issue 16: cloud cover, wetness, rain, fog
    post: dict = field(default_factory=dict)  # issue 16: the camera pipeline applied to the RGB

    def to_json(self) -> str:
        d = asdict(self)
        # Fields added after a store format was fixed are left out at their defaults, so a
        # spec drawn with every new knob off is the same JSON, byte for byte, as before.
        for key, default in _OPTIONAL.items():
            if d.get(key) == default:
                del d[key]
        for key, default in _OPTIONAL_CAMERA.items():
            if d["camera"].get(key) == default:
                del d["camera"][key]
        return json.dumps(d, separators=(",", ":"))

    @staticmethod
    def from_json(text: str) -> "SceneSpec":
        d = json.loads(text)
        return SceneSpec(index=d["index"], seed=d["seed"], scenario=d["scenario"],
                         camera=Camera(**d["camera"]), lighting=d["lighting"],
                         objects=[Placed(**o) for o in d["objects"]], version=d["version"],
                         layout=d.get("layout", d["index"]), frame=d.get("frame", 0), time_s=d.get("time_s", 0.0),
                         weather=d.get("weather", {}), post=d.get("post", {}))


_OPTIONAL = {"weather": {}, "post": {}}
_OPTIONAL_CAMERA = {"lens": {}, "shutter_s": 0.0}
