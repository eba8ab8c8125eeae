"""Triangle meshes as plain numpy arrays: the currency between asset recipes and Blender.

Recipes in :mod:`scenes.assets` build these without ``bpy``; :mod:`generator.build`
uploads them.  Units are metres, +Z up; an asset's local frame has its origin at the
centre of its footprint on the ground, length along +X (forward), width along +Y.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import portable_math as pm

# Every material name a recipe may use.  generator/materials.py builds exactly these;
# "tinted" ones multiply their base colour by the per-face ``tint`` attribute.
MATERIALS = (
    "asphalt", "road_marking", "concrete", "sidewalk", "kerb", "brick", "plaster",
    "facade_glass", "window_glass", "window_frame", "roof", "car_paint", "tinted_glass",
    "tire", "rim", "chrome", "plastic", "headlight", "taillight", "skin", "hair", "fabric",
    "shoe", "metal", "sign", "bark", "foliage", "grass", "wood",
)


@dataclass
class Mesh:
    vertices: np.ndarray  # (N, 3) float32
    faces: np.ndarray  # (F, 3) int32, counter-clockwise seen from outside
    material: np.ndarray  # (F,) uint8, index into ``materials``
    materials: tuple[str, ...]
    tint: np.ndarray = field(default=None)  # (F, 3) float32 linear RGB multiplier

    def __post_init__(self):
        self.vertices = np.asarray(self.vertices, np.float32).reshape(-1, 3)
        self.faces = np.asarray(self.faces, np.int32).reshape(-1, 3)
        self.material = np.asarray(self.material, np.uint8).reshape(-1)
        if self.material.size == 1 and len(self.faces) != 1:
            self.material = np.full(len(self.faces), self.material[0], np.uint8)
        if self.tint is None:
            self.tint = np.ones((len(self.faces), 3), np.float32)
        self.tint = np.asarray(self.tint, np.float32).reshape(-1, 3)
        if len(self.tint) == 1 and len(self.faces) != 1:
            self.tint = np.repeat(self.tint, len(self.faces), axis=0)
        unknown = set(self.materials) - set(MATERIALS)
        if unknown:
            raise ValueError(f"unknown materials {sorted(unknown)}")

    def transformed(self, yaw: float = 0.0, translation=(0.0, 0.0, 0.0), scale=1.0,
                    pitch: float = 0.0, roll: float = 0.0) -> "Mesh":
        """Scale, then rotate (roll about X, pitch about Y, yaw about Z), then translate."""
        v = self.vertices * np.asarray(scale, np.float32)
        v = pm.matmul(v, rotation_matrix(yaw, pitch, roll).T.astype(np.float32))
        v = v + np.asarray(translation, np.float32)
        return Mesh(v, self.faces.copy(), self.material.copy(), self.materials, self.tint.copy())

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.vertices.min(0), self.vertices.max(0)


def rotation_matrix(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """R = Rz(yaw) @ Ry(pitch) @ Rx(roll), angles in radians."""
    cy, sy, cp, sp, cr, sr = pm.cos(yaw), pm.sin(yaw), pm.cos(pitch), pm.sin(pitch), pm.cos(roll), pm.sin(roll)
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    return pm.matmul(pm.matmul(rz, ry), rx)


def concat(meshes: list[Mesh]) -> Mesh:
    """One mesh from many; material lists are merged by name."""
    names: list[str] = []
    for m in meshes:
        names += [n for n in m.materials if n not in names]
    verts, faces, mats, tints, offset = [], [], [], [], 0
    for m in meshes:
        remap = np.array([names.index(n) for n in m.materials], np.uint8)
        verts.append(m.vertices)
        faces.append(m.faces + offset)
        mats.append(remap[m.material] if len(m.faces) else m.material)
        tints.append(m.tint)
        offset += len(m.vertices)
    return Mesh(np.concatenate(verts), np.concatenate(faces), np.concatenate(mats), tuple(names),
                np.concatenate(tints))
