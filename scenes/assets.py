"""Asset registry (``ASSETS``) and road-piece builders, all pure numpy (no ``bpy``).

A :class:`Recipe` samples JSON-serialisable params and deterministically builds a
:class:`~scenes.mesh.Mesh` in the asset's local frame: origin at the centre of the
footprint on the ground (lowest point z=0, x/y bounds symmetric), +X forward.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

from . import people, props, vehicles
from .mesh import Mesh, concat
from .primitives import box, flat_rect


@dataclass(frozen=True)
class Recipe:
    sample: Callable[[np.random.Generator], dict]
    build: Callable[[dict], Mesh]
    size: Callable[[dict], tuple[float, float, float]]


def grounded(mesh: Mesh) -> Mesh:
    """Shift so the bbox is centred in x/y and rests on z=0.

    Done in float64 before the float32 cast so symmetry holds to ~1e-6 m."""
    v = mesh.vertices.astype(np.float64)
    lo, hi = v.min(0), v.max(0)
    shift = np.array([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]])
    return Mesh(v + shift, mesh.faces, mesh.material, mesh.materials, mesh.tint)


def _recipe(sample, raw_build) -> Recipe:
    def build(params: dict) -> Mesh:
        return grounded(raw_build(params))

    # Sizes come from the built geometry itself, so they can never drift from it; the
    # cache makes repeated placement queries cheap.
    @lru_cache(maxsize=64)
    def _size(key: str) -> tuple[float, float, float]:
        lo, hi = build(json.loads(key)).bounds()
        return tuple(float(x) for x in (hi - lo))

    def size(params: dict) -> tuple[float, float, float]:
        return _size(json.dumps(params, sort_keys=True))

    return Recipe(sample, build, size)


ASSETS: dict[str, Recipe] = {
    "car": _recipe(vehicles.sample_car, vehicles.build_car),
    "van": _recipe(vehicles.sample_van, vehicles.build_car),
    "truck": _recipe(vehicles.sample_truck, vehicles.build_truck),
    "bus": _recipe(vehicles.sample_bus, vehicles.build_bus),
    "pedestrian": _recipe(people.sample_pedestrian, people.build_pedestrian),
    "building": _recipe(props.sample_building, props.build_building),
    "tree": _recipe(props.sample_tree, props.build_tree),
    "street_light": _recipe(props.sample_street_light, props.build_street_light),
    "traffic_sign": _recipe(props.sample_traffic_sign, props.build_traffic_sign),
    "traffic_light": _recipe(props.sample_traffic_light, props.build_traffic_light),
    "fence": _recipe(props.sample_fence, props.build_fence),
    "railing": _recipe(props.sample_railing, props.build_railing),
    "bench": _recipe(props.sample_bench, props.build_bench),
    "bollard": _recipe(props.sample_bollard, props.build_bollard),
    "trash_bin": _recipe(props.sample_trash_bin, props.build_trash_bin),
}

VEHICLES = ("car", "van", "truck", "bus")


def pedestrian_parts(params: dict) -> dict[str, Mesh]:
    """Body parts of a pedestrian, in the same (grounded) frame as its build()."""
    full = people.build_pedestrian(params).vertices.astype(np.float64)
    lo, hi = full.min(0), full.max(0)
    shift = np.array([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]])
    return {k: Mesh(m.vertices.astype(np.float64) + shift, m.faces, m.material, m.materials, m.tint)
            for k, m in people.pedestrian_parts(params).items()}


# ----------------------------------------------------------------------------- road pieces
# Roads run along +Y; every piece is centred on the origin in X and Y.

def _empty(material: str) -> Mesh:
    return Mesh(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), (material,))


def road_surface(length: float, width: float, thickness: float = 0.2) -> Mesh:
    """Asphalt slab, top at z=0."""
    return box((width, length, thickness), (0, 0, -thickness / 2), "asphalt")


def sidewalk(length: float, width: float, height: float = 0.15, kerb_side: str = "-x",
             kerb_width: float = 0.15, depth: float = 0.2) -> Mesh:
    """Raised pavement (top at ``height``) with a kerb strip along the road-facing edge(s).

    ``kerb_side`` is "-x", "+x" or "both": the side(s) where the carriageway is."""
    sides = {"-x": [-1], "+x": [1], "both": [-1, 1]}[kerb_side]
    zc, hz = (height - depth) / 2, height + depth
    x0 = -width / 2 + (kerb_width if -1 in sides else 0)
    x1 = width / 2 - (kerb_width if 1 in sides else 0)
    parts = [box((x1 - x0, length, hz), ((x0 + x1) / 2, 0, zc), "sidewalk")]
    parts += [box((kerb_width, length, hz), (s * (width - kerb_width) / 2, 0, zc), "kerb") for s in sides]
    return concat(parts)


def _dashes(x, length, width, z, dashed, dash=3.0, gap=6.0) -> list[Mesh]:
    if not dashed:
        return [flat_rect(x - width / 2, x + width / 2, -length / 2, length / 2, z, "road_marking")]
    out, y = [], -length / 2
    while y < length / 2 - 0.1:
        out.append(flat_rect(x - width / 2, x + width / 2, y, min(y + dash, length / 2), z, "road_marking"))
        y += dash + gap
    return out


def lane_markings(length: float, road_width: float, lanes: int, dashed: bool = True,
                  z: float = 0.005, line_width: float = 0.12, edge_lines: bool = True) -> Mesh:
    """Upward-facing marking quads: lane dividers (dashed 3 m / 6 m gap), a solid centre
    line when the lane count is even (two-way road), and solid edge lines."""
    parts = []
    for i in range(1, lanes):
        x = -road_width / 2 + i * road_width / lanes
        centre = lanes % 2 == 0 and i == lanes // 2
        parts += _dashes(x, length, line_width, z, dashed and not centre)
    if edge_lines:
        for s in (-1, 1):
            parts += _dashes(s * (road_width / 2 - 0.3), length, line_width * 1.2, z, False)
    return concat(parts) if parts else _empty("road_marking")


def crosswalk(width_x: float, length_y: float, z: float = 0.005, stripe: float = 0.5,
              gap: float = 0.5) -> Mesh:
    """Zebra crossing across a Y-running road: stripes parallel to traffic (along Y)."""
    n = max(1, int((width_x + gap) // (stripe + gap)))
    xs = (np.arange(n) - (n - 1) / 2) * (stripe + gap)
    return concat([flat_rect(x - stripe / 2, x + stripe / 2, -length_y / 2, length_y / 2, z, "road_marking")
                   for x in xs])


def ground(size_x: float, size_y: float, material: str = "grass", z: float = 0.0) -> Mesh:
    return flat_rect(-size_x / 2, size_x / 2, -size_y / 2, size_y / 2, z, material)
