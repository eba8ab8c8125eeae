"""Geometry sanity for asset recipes and primitives (pure numpy, no bpy)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scenes import primitives as P
from scenes.assets import ASSETS, VEHICLES, crosswalk, ground, lane_markings, pedestrian_parts, road_surface, sidewalk
from scenes.mesh import MATERIALS, Mesh

SEEDS = range(20)
BUDGET = {"building": 20000}


def _areas(m: Mesh) -> np.ndarray:
    t = m.vertices.astype(np.float64)[m.faces]
    return 0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1)


def _check_valid(m: Mesh):
    assert m.faces.min() >= 0 and m.faces.max() < len(m.vertices)
    assert len(m.material) == len(m.faces) == len(m.tint)
    assert m.material.max() < len(m.materials)
    assert set(m.materials) <= set(MATERIALS)
    assert np.isfinite(m.vertices).all() and np.isfinite(m.tint).all()
    assert _areas(m).min() > 1e-8, "degenerate triangle"


def _check_closed(m: Mesh):
    assert set(P.edge_use_counts(m).tolist()) == {2}
    # Consistent winding: each directed edge appears exactly once.
    f = m.faces
    d = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    assert len(np.unique(d, axis=0)) == len(d)


def test_no_bpy():
    # A fresh interpreter: other test modules in the suite may import bpy themselves.
    code = ("import sys, scenes.assets, scenes.primitives, scenes.vehicles, scenes.people, "
            "scenes.props; assert 'bpy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


# ----------------------------------------------------------------------------- primitives
PRIMS = {
    "box": P.box((1.0, 2.0, 3.0), (1, 2, 3)),
    "frustum": P.frustum((2, 1), (1, 0.5), 1.5, (0, 0, 1), (0.2, 0)),
    "prism": P.prism([(0, 0), (1, 0), (0.5, 1)], 0, 2, axis="x"),
    "cylinder_z": P.cylinder(0.5, 2.0, 16),
    "cylinder_x": P.cylinder(0.5, 2.0, 16, axis="x"),
    "cylinder_y": P.cylinder(0.5, 2.0, 16, axis="y", radius_top=0.3),
    "cylinder_between": P.cylinder_between((0, 0, 0), (1, -1, 2), 0.1, 10),
    "sphere": P.sphere(1.0, (1, 1, 1), 16, 32),
    "ellipsoid": P.sphere((1.0, 0.5, 0.3), (0, 0, 0), 8, 12),
    "capsule": P.capsule(0.1, (0, 0, 0), (0.3, 0.2, -0.5), radius1=0.07),
    "panel": P.panel(P.face_quad(P.box_corners((1, 1, 1)), "s1"), (0.1, 0.9), (0.2, 0.8)),
}


@pytest.mark.parametrize("name", list(PRIMS))
def test_primitive_closed_outward(name):
    m = PRIMS[name]
    _check_valid(m)
    _check_closed(m)
    assert P.signed_volume(m) > 0


def test_primitive_volumes():
    assert P.signed_volume(PRIMS["box"]) == pytest.approx(6.0, rel=1e-6)
    n = 16
    poly_area = 0.5 * n * 0.25 * np.sin(2 * np.pi / n)
    assert P.signed_volume(PRIMS["cylinder_z"]) == pytest.approx(poly_area * 2.0, rel=1e-5)
    assert P.signed_volume(PRIMS["cylinder_x"]) == pytest.approx(poly_area * 2.0, rel=1e-5)
    assert 0.95 * 4 / 3 * np.pi < P.signed_volume(PRIMS["sphere"]) < 4 / 3 * np.pi
    lo, hi = PRIMS["cylinder_x"].bounds()
    np.testing.assert_allclose(hi - lo, [2.0, 1.0, 1.0], atol=1e-5)  # axis along X


def test_face_quad_orientation():
    c = P.box_corners((2, 2, 2))
    for name, normal in {"s0": (0, -1, 0), "s1": (1, 0, 0), "s2": (0, 1, 0), "s3": (-1, 0, 0),
                         "top": (0, 0, 1), "bottom": (0, 0, -1)}.items():
        q = P.face_quad(c, name)
        n = np.cross(q[1] - q[0], q[2] - q[0])
        np.testing.assert_allclose(n / np.linalg.norm(n), normal, atol=1e-9)


# ----------------------------------------------------------------------------- recipes
@pytest.mark.parametrize("kind", list(ASSETS))
def test_recipe(kind):
    r = ASSETS[kind]
    for seed in SEEDS:
        params = r.sample(np.random.default_rng(seed))
        assert json.loads(json.dumps(params)) == params
        assert r.sample(np.random.default_rng(seed)) == params
        m = r.build(params)
        m2 = r.build(json.loads(json.dumps(params)))
        np.testing.assert_array_equal(m.vertices, m2.vertices)
        np.testing.assert_array_equal(m.faces, m2.faces)
        np.testing.assert_array_equal(m.tint, m2.tint)
        _check_valid(m)
        _check_closed(m)  # every recipe is a union of closed solids
        assert P.signed_volume(m) > 0
        assert len(m.faces) < BUDGET.get(kind, 3000), (kind, seed, len(m.faces))
        lo, hi = m.bounds()
        assert abs(lo[2]) < 1e-4
        np.testing.assert_allclose(lo[:2], -hi[:2], atol=1e-4)
        np.testing.assert_allclose(hi - lo, r.size(params), atol=1e-3)
        assert all(s > 0 for s in r.size(params))


def _dims(kind, seeds=SEEDS):
    return np.array([ASSETS[kind].size(ASSETS[kind].sample(np.random.default_rng(s))) for s in seeds])


def test_realistic_dimensions():
    car, bus, ped = _dims("car"), _dims("bus"), _dims("pedestrian")
    assert (3.6 < car[:, 0]).all() and (car[:, 0] < 5.2).all() and (car[:, 2] < 1.9).all()
    assert (bus[:, 0] > 9.5).all() and (bus[:, 2] > 2.9).all()
    assert (ped[:, 2] > 1.45).all() and (ped[:, 2] < 2.4).all()  # raised arms may exceed height
    tree = _dims("tree")
    assert (tree[:, 2] > 2.9).all() and (tree[:, 2] < 10.5).all()


def test_vehicles_have_parts():
    for kind in VEHICLES:
        m = ASSETS[kind].build(ASSETS[kind].sample(np.random.default_rng(0)))
        assert {"car_paint", "tinted_glass", "tire", "rim", "headlight", "taillight", "plastic"} <= set(m.materials)
        paint = m.material == m.materials.index("car_paint")
        assert not np.allclose(m.tint[paint], 1.0)


def test_big_building_budget():
    r = ASSETS["building"]
    for style in ("brick", "plaster", "glass"):
        p = dict(r.sample(np.random.default_rng(1)), width=30.0, depth=20.0, height=40.0, style=style,
                 bay=2.4, floor_height=3.0, shop_windows=True, parapet=True)
        m = r.build(p)
        assert len(m.faces) < 20000
        np.testing.assert_allclose(r.size(p)[:2], (30.0, 20.0), atol=0.3)


# ----------------------------------------------------------------------------- pedestrians
def _surface_points(m: Mesh, k: int = 6) -> np.ndarray:
    t = m.vertices.astype(np.float64)[m.faces]
    a, b = np.meshgrid(np.arange(k + 1), np.arange(k + 1))
    keep = a + b <= k
    w = np.c_[a[keep], b[keep], k - a[keep] - b[keep]] / k
    return np.einsum("wj,fjc->fwc", w, t).reshape(-1, 3)


def _min_dist(a: np.ndarray, b: np.ndarray) -> float:
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T
    return float(np.sqrt(max(d2.min(), 0.0)))


def test_pedestrian_arm_gaps():
    r = ASSETS["pedestrian"]
    for seed in SEEDS:
        p = r.sample(np.random.default_rng(seed))
        for side in "lr":
            p["abduct_" + side] = max(10.0, p["abduct_" + side]) if seed % 2 else 10.0
        parts = pedestrian_parts(p)
        body = _surface_points(P.concat([parts["torso"], parts["pelvis"]]), 10)
        for side in "lr":
            arm = np.vstack([_surface_points(parts["lower_arm_" + side], 3),
                             _surface_points(parts["hand_" + side], 3)])
            assert _min_dist(arm, body) > 0.02, (seed, side)
        legs = [_surface_points(parts[f"{n}_{s}"], 3) for s in "lr" for n in ("thigh", "shin")]
        assert _min_dist(np.vstack(legs[:2]), np.vstack(legs[2:])) > 0.01, seed


def test_pedestrian_parts_match_build():
    r = ASSETS["pedestrian"]
    p = r.sample(np.random.default_rng(3))
    parts = pedestrian_parts(p)
    np.testing.assert_allclose(P.concat(list(parts.values())).vertices, r.build(p).vertices, atol=1e-5)
    assert {"head", "torso", "pelvis", "hand_l", "foot_r", "shin_l"} <= set(parts)


def test_pedestrian_variety():
    r = ASSETS["pedestrian"]
    ps = [r.sample(np.random.default_rng(s)) for s in range(200)]
    assert {p["pose"] for p in ps} == {"standing", "walking", "raised"}
    assert all(p["shirt"] != p["trousers"] for p in ps)
    assert max(abs(p["hip_flex_l"]) for p in ps) > 20


# ----------------------------------------------------------------------------- road pieces
def test_road_pieces():
    road = road_surface(50.0, 7.0)
    lo, hi = road.bounds()
    np.testing.assert_allclose(hi, (3.5, 25.0, 0.0), atol=1e-6)
    np.testing.assert_allclose(lo[:2], (-3.5, -25.0), atol=1e-6)

    sw = sidewalk(50.0, 3.0, 0.15)
    assert set(sw.materials) == {"sidewalk", "kerb"}
    lo, hi = sw.bounds()
    assert hi[2] == pytest.approx(0.15, abs=1e-6) and hi[0] == pytest.approx(1.5, abs=1e-6)
    kerb = sw.vertices[sw.faces[sw.material == sw.materials.index("kerb")]].reshape(-1, 3)
    assert kerb[:, 0].max() < -1.3  # kerb on the -X (road) edge by default
    both = sidewalk(10.0, 3.0, kerb_side="both")
    assert (both.material == both.materials.index("kerb")).sum() == 24

    lm = lane_markings(90.0, 7.0, 2, dashed=True)
    assert set(lm.materials) == {"road_marking"}
    np.testing.assert_allclose(lm.vertices[:, 2], 0.005, atol=1e-7)
    assert (lm.vertices[:, 1] >= -45 - 1e-4).all() and (lm.vertices[:, 1] <= 45 + 1e-4).all()
    four = lane_markings(90.0, 14.0, 4, dashed=True)
    assert len(four.faces) == 2 * (1 + 2 + 2 * 10)  # centre + 2 edges + 2 dashed dividers x 10 dashes
    t = lm.vertices[lm.faces]
    assert (np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])[:, 2] > 0).all()  # faces point up

    cw = crosswalk(7.0, 4.0)
    assert len(cw.faces) == 2 * 7
    _check_valid(cw)
    g = ground(100.0, 80.0)
    assert g.materials == ("grass",) and len(g.faces) == 2
    for m in (road, sw, lm, cw, g):
        _check_valid(m)
