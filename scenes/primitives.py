"""Closed, outward-facing triangle primitives that asset recipes are assembled from.

Every solid here is watertight on its own (each edge shared by exactly two faces) and
keeps its own vertices, so a concatenation of solids stays manifold per component.
Triangles are counter-clockwise seen from outside.
"""
from __future__ import annotations

import functools

import numpy as np

from . import portable_math as pm
from .mesh import Mesh, concat

__all__ = ["box", "box_corners", "hexa", "frustum", "prism", "cylinder", "cylinder_between", "sphere",
           "capsule", "quad", "flat_rect", "panel", "face_quad", "signed_volume",
           "edge_use_counts", "concat"]


def _mesh(vertices, faces, material: str, tint) -> Mesh:
    faces = np.asarray(faces, np.int32).reshape(-1, 3)
    t = np.ones(3) if tint is None else np.asarray(tint, np.float64)
    return Mesh(np.asarray(vertices, np.float64), faces, np.zeros(len(faces)), (material,),
                np.tile(t.reshape(1, 3), (len(faces), 1)))


# Side quads of a hexahedron whose corners are ordered bottom 0-3 (CCW seen from +Z) then
# top 4-7 above them; each tuple is CCW seen from outside.
_HEXA_FACES = {
    "bottom": (0, 3, 2, 1), "top": (4, 5, 6, 7),
    "s0": (0, 1, 5, 4), "s1": (1, 2, 6, 5), "s2": (2, 3, 7, 6), "s3": (3, 0, 4, 7),
}


def hexa(corners, material="concrete", tint=None) -> Mesh:
    """Generic 8-corner solid (tapered/sheared boxes); corners as described above."""
    faces = []
    for a, b, c, d in _HEXA_FACES.values():
        faces += [(a, b, c), (a, c, d)]
    return _mesh(corners, faces, material, tint)


def face_quad(corners, name: str) -> np.ndarray:
    """The 4 corners (CCW from outside) of a named hexa face: top, bottom, s0..s3.

    For boxes built by :func:`box`, s0 faces -Y, s1 +X, s2 +Y, s3 -X."""
    return np.asarray(corners, np.float64)[list(_HEXA_FACES[name])]


def box_corners(size, center=(0, 0, 0)) -> np.ndarray:
    h = np.asarray(size, np.float64) / 2
    s = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1],
                  [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], np.float64)
    return s * h + np.asarray(center, np.float64)


def box(size=(1.0, 1.0, 1.0), center=(0.0, 0.0, 0.0), material="concrete", tint=None) -> Mesh:
    return hexa(box_corners(size, center), material, tint)


def frustum(bottom=(1.0, 1.0), top=(0.5, 0.5), height=1.0, center=(0.0, 0.0, 0.0),
            top_offset=(0.0, 0.0), material="concrete", tint=None) -> Mesh:
    """Tapered box; ``center`` is the centre of the bottom face."""
    c = np.asarray(center, np.float64)
    s = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) / 2
    lo = np.c_[s * bottom, np.zeros(4)]
    hi = np.c_[s * top + np.asarray(top_offset), np.full(4, height)]
    return hexa(np.vstack([lo, hi]) + c, material, tint)


# Cyclic axis permutations keep handedness, so triangle winding survives re-orientation.
_AXIS_COLS = {"z": [0, 1, 2], "x": [2, 0, 1], "y": [1, 2, 0]}


def _prism_arrays(polygon, z0, z1, top_scale=1.0):
    p = np.asarray(polygon, np.float64)
    m = len(p)
    v = np.vstack([np.c_[p, np.full(m, z0)], np.c_[p * top_scale, np.full(m, z1)]])
    f = [(0, i + 1, i) for i in range(1, m - 1)]  # bottom fan, reversed so it faces -Z
    f += [(m, m + i, m + i + 1) for i in range(1, m - 1)]
    for i in range(m):
        j = (i + 1) % m
        f += [(i, j, m + j), (i, m + j, m + i)]
    return v, f


def prism(polygon, z0=0.0, z1=1.0, material="concrete", tint=None, top_scale=1.0,
          axis="z") -> Mesh:
    """Convex CCW polygon (M, 2) extruded from z0 to z1 along ``axis``.

    For axis "x" the polygon lies in the YZ plane (its 2D x->Y, y->Z); for "y", in ZX."""
    v, f = _prism_arrays(polygon, z0, z1, top_scale)
    return _mesh(v[:, _AXIS_COLS[axis]], f, material, tint)


@functools.lru_cache(maxsize=64)
def _unit_circle(segments):
    a = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    c = np.c_[pm.cos(a), pm.sin(a)]
    c.flags.writeable = False
    return c


def _circle(radius, segments):
    return _unit_circle(int(segments)) * radius


def cylinder(radius=0.5, height=1.0, segments=12, center=(0.0, 0.0, 0.0), axis="z",
             material="concrete", tint=None, radius_top=None) -> Mesh:
    """Capped cylinder (or cone frustum with ``radius_top``) centred on ``center``."""
    scale = 1.0 if radius_top is None else radius_top / radius
    v, f = _prism_arrays(_circle(radius, segments), -height / 2, height / 2, scale)
    v = v[:, _AXIS_COLS[axis]] + np.asarray(center, np.float64)
    return _mesh(v, f, material, tint)


def _basis(d):
    """Right-handed rotation whose third column is the unit vector ``d``."""
    a = np.array([1.0, 0, 0]) if abs(d[0]) < 0.9 else np.array([0, 1.0, 0])
    u = np.cross(a, d)
    u /= pm.norm(u)
    return np.c_[u, np.cross(d, u), d]


def cylinder_between(p0, p1, radius=0.05, segments=10, material="concrete", tint=None,
                     radius1=None) -> Mesh:
    p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
    d = p1 - p0
    length = pm.norm(d)
    scale = 1.0 if radius1 is None else radius1 / radius
    v, f = _prism_arrays(_circle(radius, segments), 0.0, length, scale)
    v = pm.matmul(v, _basis(d / length).T) + p0
    return _mesh(v, f, material, tint)


def sphere(radius=0.5, center=(0.0, 0.0, 0.0), rings=8, segments=12, material="concrete",
           tint=None) -> Mesh:
    """UV sphere; ``radius`` may be a 3-tuple for an axis-aligned ellipsoid."""
    r = np.broadcast_to(np.asarray(radius, np.float64), (3,))
    unit, f = _unit_sphere(int(rings), int(segments))
    return _mesh(unit * r + np.asarray(center, np.float64), f, material, tint)


@functools.lru_cache(maxsize=64)
def _unit_sphere(rings, segments):
    """Vertices and faces of the unit UV sphere (read-only; shared by every sphere)."""
    th = np.pi * np.arange(1, rings) / rings
    ph = 2 * np.pi * np.arange(segments) / segments
    ring = np.stack([np.outer(pm.sin(th), pm.cos(ph)), np.outer(pm.sin(th), pm.sin(ph)),
                     np.outer(pm.cos(th), np.ones(segments))], -1).reshape(-1, 3)
    v = np.vstack([[0, 0, 1], ring, [0, 0, -1]])
    s, bottom = segments, len(v) - 1
    f = [(0, 1 + j, 1 + (j + 1) % s) for j in range(s)]
    for k in range(rings - 2):
        up, lo = 1 + k * s, 1 + (k + 1) * s
        for j in range(s):
            jn = (j + 1) % s
            f += [(up + j, lo + j, lo + jn), (up + j, lo + jn, up + jn)]
    last = 1 + (rings - 2) * s
    f += [(bottom, last + (j + 1) % s, last + j) for j in range(s)]
    f = np.asarray(f, np.int32)
    v.flags.writeable = f.flags.writeable = False
    return v, f


def capsule(radius=0.05, p0=(0, 0, 0), p1=(0, 0, 1), segments=10, material="concrete",
            tint=None, radius1=None, rings=6) -> Mesh:
    """Limb segment: a (possibly tapered) cylinder with a sphere at each end.

    The parts overlap rather than fuse, which keeps every piece closed."""
    r1 = radius if radius1 is None else radius1
    ends = [sphere(radius, p0, rings, segments, material, tint),
            sphere(r1, p1, rings, segments, material, tint)]
    if pm.norm(np.subtract(p1, p0)) < 1e-6:
        return ends[0]
    return concat([cylinder_between(p0, p1, radius, segments, material, tint, r1)] + ends)


def quad(corners, material="concrete", tint=None) -> Mesh:
    """Single-sided flat quad, corners CCW seen from the side it faces."""
    return _mesh(corners, [(0, 1, 2), (0, 2, 3)], material, tint)


def flat_rect(x0, x1, y0, y1, z=0.0, material="concrete", tint=None) -> Mesh:
    """Upward-facing horizontal rectangle."""
    return quad([(x0, y0, z), (x1, y0, z), (x1, y1, z), (x0, y1, z)], material, tint)


def panel(face, u=(0.0, 1.0), v=(0.0, 1.0), thickness=0.01, offset=0.003,
          material="tinted_glass", tint=None) -> Mesh:
    """A thin slab lying on a (possibly trapezoidal) quad face, proud of it by ``offset``.

    ``face`` holds 4 corners CCW from outside; (u, v) pick a bilinear sub-rectangle with u
    along corner 0->1 and v along 0->3, so windows/lights can sit inside body panels."""
    c = np.asarray(face, np.float64)
    n = np.cross(c[1] - c[0], c[2] - c[0])
    n /= pm.norm(n)

    def at(a, b):
        return (1 - a) * (1 - b) * c[0] + a * (1 - b) * c[1] + a * b * c[2] + (1 - a) * b * c[3]

    base = np.array([at(u[0], v[0]), at(u[1], v[0]), at(u[1], v[1]), at(u[0], v[1])])
    return hexa(np.vstack([base + n * offset, base + n * (offset + thickness)]), material, tint)


def signed_volume(mesh: Mesh) -> float:
    """Divergence-theorem volume; positive for closed outward-facing meshes."""
    t = mesh.vertices.astype(np.float64)[mesh.faces]
    return float((t[:, 0] * np.cross(t[:, 1], t[:, 2])).sum() / 6)


def edge_use_counts(mesh: Mesh) -> np.ndarray:
    """How many faces use each undirected edge (2 everywhere for a closed mesh)."""
    f = mesh.faces
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    return counts
