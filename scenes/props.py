"""Buildings, vegetation and street furniture recipes (sample/build pairs).

Builders return raw meshes; :mod:`scenes.assets` grounds and centres them.  Things
with a "front" (lamp arms, sign faces, signal heads) face +X.
"""
from __future__ import annotations

import numpy as np

from . import portable_math as pm
from .draws import lognormal_factor
from .mesh import Mesh, concat
from .primitives import box, cylinder, cylinder_between, prism, sphere


def _f(d: dict) -> dict:
    """Plain Python scalars so params survive json round-trips unchanged."""
    out = {}
    for k, v in d.items():
        if isinstance(v, (np.floating, float)):
            v = float(v)
        elif isinstance(v, (np.integer,)):
            v = int(v)
        elif isinstance(v, (np.str_,)):
            v = str(v)
        elif isinstance(v, (list, tuple, np.ndarray)):
            v = [_f({"x": x})["x"] for x in v]
        out[k] = v
    return out


def _pick(rng, options: dict, jitter=0.08) -> list[float]:
    c = np.asarray(options[str(rng.choice(list(options)))], float)
    return [float(x) for x in np.clip(c * lognormal_factor(rng, jitter, 3), 0.003, 0.95)]


# ----------------------------------------------------------------------------- building
_PLASTER = {"white": (0.75, 0.73, 0.68), "cream": (0.75, 0.65, 0.45), "ochre": (0.6, 0.4, 0.15),
            "salmon": (0.7, 0.4, 0.3), "grey": (0.4, 0.4, 0.4), "mint": (0.5, 0.65, 0.55)}
_BRICK = {"red": (1.0, 0.9, 0.85), "dark": (0.6, 0.55, 0.5), "yellow": (1.1, 1.05, 0.8)}
_FRAME = {"white": (0.8, 0.8, 0.8), "dark": (0.05, 0.05, 0.05), "brown": (0.12, 0.07, 0.04)}


def sample_building(rng: np.random.Generator) -> dict:
    style = str(rng.choice(["brick", "plaster", "glass"], p=[0.35, 0.4, 0.25]))
    return _f(dict(
        width=rng.uniform(8, 30), depth=rng.uniform(8, 20), height=rng.uniform(6, 40), style=style,
        floor_height=rng.uniform(3.0, 3.6), bay=rng.uniform(2.4, 3.6),
        window_width=rng.uniform(0.9, 1.6), window_height=rng.uniform(1.2, 1.8),
        shop_windows=bool(rng.uniform() < 0.5), parapet=bool(rng.uniform() < 0.6),
        parapet_height=rng.uniform(0.4, 1.0),
        facade_tint=_pick(rng, _BRICK if style == "brick" else _PLASTER) if style != "glass"
        else [float(x) for x in rng.uniform(0.6, 1.0, 3)],
        frame_tint=_pick(rng, _FRAME)))


def _sides(W, D):
    """(wall centre xy, along-wall unit, outward normal, wall length) for the four walls."""
    return [((W / 2, 0), (0, 1), (1, 0), D), ((-W / 2, 0), (0, -1), (-1, 0), D),
            ((0, D / 2), (-1, 0), (0, 1), W), ((0, -D / 2), (1, 0), (0, -1), W)]


def _on_wall(side, u, z, w, h, out0, out1, material, tint=None) -> Mesh:
    """Axis-aligned slab on a wall: u along the wall, z height, from out0 to out1 off it."""
    (cx, cy), (ux, uy), (nx, ny), _ = side
    d, mid = out1 - out0, (out0 + out1) / 2
    center = (cx + ux * u + nx * mid, cy + uy * u + ny * mid, z)
    size = (d, w, h) if nx else (w, d, h)
    return box(size, center, material, tint)


def build_building(p: dict) -> Mesh:
    W, D, H, fh0 = p["width"], p["depth"], p["height"], p["floor_height"]
    floors = max(2, int(round(H / fh0)))
    fh = H / floors
    frame, style = p["frame_tint"], p["style"]
    core = {"brick": "brick", "plaster": "plaster", "glass": "concrete"}[style]
    parts = [box((W, D, H), (0, 0, H / 2), core, p["facade_tint"] if style != "glass" else None)]
    first = 1 if p["shop_windows"] else 0
    for side in _sides(W, D):
        length = side[3]
        n = max(1, int((length - 1.0) // p["bay"]))
        us = (np.arange(n) - (n - 1) / 2) * (length - 1.0) / n
        if style == "glass":
            # Curtain wall: one pane per floor, spandrels between floors, full-height mullions.
            for k in range(first, floors):
                parts.append(_on_wall(side, 0, (k + 0.55) * fh, length - 0.3, fh * 0.8, 0.0, 0.04,
                                      "facade_glass", p["facade_tint"]))
                parts.append(_on_wall(side, 0, min((k + 1) * fh, H - 0.1 * fh), length - 0.2, fh * 0.2,
                                      0.0, 0.06, "window_frame", frame))
            z0 = first * fh
            for u in np.linspace(-(length - 0.3) / 2, (length - 0.3) / 2, n + 1):
                parts.append(_on_wall(side, float(u), (z0 + H) / 2, 0.08, H - z0 - 0.05, 0.0, 0.08,
                                      "window_frame", frame))
        else:
            ww, wh = min(p["window_width"], p["bay"] - 0.6), min(p["window_height"], fh - 1.0)
            for k in range(first, floors):
                zc = k * fh + 0.9 + wh / 2
                for u in us:
                    parts.append(_on_wall(side, float(u), zc, ww + 0.14, wh + 0.14, -0.02, 0.04,
                                          "window_frame", frame))
                    parts.append(_on_wall(side, float(u), zc, ww, wh, -0.02, 0.05, "window_glass"))
        if first:
            zc = 0.35 + (fh - 0.9) / 2
            parts.append(_on_wall(side, 0, zc, length - 0.4, fh - 0.6, -0.02, 0.06, "window_frame", frame))
            for u in us:
                parts.append(_on_wall(side, float(u), zc, (length - 1.0) / n - 0.35, fh - 0.9, -0.02, 0.08,
                                      "window_glass"))
    if p["parapet"]:
        t, ph = 0.25, p["parapet_height"]
        mat, tint = (core, p["facade_tint"]) if style != "glass" else ("concrete", None)
        parts += [box((W, t, ph), (0, s * (D - t) / 2, H + ph / 2), mat, tint) for s in (-1, 1)]
        parts += [box((t, D - 2 * t, ph), (s * (W - t) / 2, 0, H + ph / 2), mat, tint) for s in (-1, 1)]
        parts.append(box((W - 2 * t, D - 2 * t, 0.05), (0, 0, H + 0.025), "roof"))
    else:
        parts.append(box((W + 0.2, D + 0.2, 0.12), (0, 0, H + 0.06), "roof"))
    return concat(parts)


# ----------------------------------------------------------------------------- tree
def sample_tree(rng: np.random.Generator) -> dict:
    H = rng.uniform(3, 10)
    R = float(np.clip(H * rng.uniform(0.22, 0.35), 0.8, 3.5))
    blobs = [[0.0, 0.0, H - R, R]]
    for _ in range(int(rng.integers(3, 7))):
        # Lobes poke well out of the main crown so the silhouette is lumpy, not a ball.
        r = R * rng.uniform(0.45, 0.7)
        a = rng.uniform(0, 2 * np.pi)
        d = R * rng.uniform(0.55, 0.85)
        blobs.append([d * pm.cos(a), d * pm.sin(a), H - R - rng.uniform(-0.1, 0.6) * R, r])
    return _f(dict(height=H, trunk_radius=rng.uniform(0.1, 0.05 + 0.025 * H), blobs=blobs,
                   bark_tint=_pick(rng, {"a": (0.5, 0.45, 0.4)}, 0.15),
                   foliage_tint=rng.uniform((0.5, 0.7, 0.4), (0.9, 1.1, 0.8))))


def build_tree(p: dict) -> Mesh:
    top = p["blobs"][0][2]
    parts = [cylinder(p["trunk_radius"], top, 10, (0, 0, top / 2), "z", "bark", p["bark_tint"],
                      radius_top=p["trunk_radius"] * 0.6)]
    parts += [sphere(b[3], b[:3], 7, 12, "foliage", p["foliage_tint"]) for b in p["blobs"]]
    return concat(parts)


# ----------------------------------------------------------------------------- street furniture
_METAL = {"grey": (0.45, 0.45, 0.45), "dark": (0.12, 0.12, 0.12), "green": (0.1, 0.2, 0.12)}
_SIGN = {"red": (0.5, 0.02, 0.02), "blue": (0.02, 0.1, 0.45), "yellow": (0.8, 0.6, 0.02),
         "white": (0.8, 0.8, 0.8)}


def sample_street_light(rng):
    return _f(dict(height=rng.uniform(5, 9), arm_length=rng.uniform(0.8, 2.5), double=bool(rng.uniform() < 0.25),
                   pole_radius=rng.uniform(0.07, 0.1), metal_tint=_pick(rng, _METAL)))


def build_street_light(p):
    H, r, t = p["height"], p["pole_radius"], p["metal_tint"]
    parts = [cylinder(r * 2.2, 0.5, 12, (0, 0, 0.25), "z", "metal", t),
             cylinder(r, H - 0.1, 12, (0, 0, (H - 0.1) / 2), "z", "metal", t, radius_top=r * 0.6)]
    for s in ((1, -1) if p["double"] else (1,)):
        end = (s * p["arm_length"], 0, H)
        parts.append(cylinder_between((0, 0, H - 0.45), end, r * 0.45, 8, "metal", t))
        head = box((0.6, 0.3, 0.12), (s * (p["arm_length"] + 0.2), 0, H), "metal", t)
        lens = box((0.5, 0.22, 0.02), (s * (p["arm_length"] + 0.2), 0, H - 0.07), "headlight")
        parts += [head, lens]
    return concat(parts)


def sample_traffic_sign(rng):
    shape = str(rng.choice(["round", "triangle", "rectangle", "octagon"], p=[0.35, 0.3, 0.3, 0.05]))
    color = "red" if shape == "octagon" else str(rng.choice(list(_SIGN)))
    return _f(dict(shape=shape, color=color, tint=_pick(rng, {color: _SIGN[color]}, 0.05),
                   size=rng.uniform(0.6, 0.9), aspect=rng.uniform(0.6, 1.6), height=rng.uniform(2.2, 3.2)))


def _sign_polygon(shape, size, aspect):
    if shape == "rectangle":
        w, h = size * aspect / 2, size / 2
        return np.array([[-w, -h], [w, -h], [w, h], [-w, h]])
    n = {"round": 20, "octagon": 8, "triangle": 3}[shape]
    a = np.pi / 2 + 2 * np.pi * np.arange(n) / n + (np.pi / 8 if shape == "octagon" else 0)
    return np.c_[pm.cos(a), pm.sin(a)] * size / 2


def build_traffic_sign(p):
    poly = _sign_polygon(p["shape"], p["size"], p["aspect"])
    zc = p["height"] - poly[:, 1].max()
    poly = poly + (0, zc)
    pole = cylinder(0.03, zc + 0.05, 10, (-0.04, 0, (zc + 0.05) / 2), "z", "metal", (0.5, 0.5, 0.5))
    face = prism(poly, 0.0, 0.012, "sign", p["tint"], axis="x")
    back = prism(poly, -0.024, 0.0, "metal", (0.4, 0.4, 0.4), axis="x")
    return concat([pole, face, back])


def sample_traffic_light(rng):
    return _f(dict(height=rng.uniform(2.6, 3.6), state=str(rng.choice(["red", "amber", "green"])),
                   housing_tint=_pick(rng, {"dark": (0.04, 0.04, 0.04), "yellow": (0.6, 0.45, 0.03)}, 0.05)))


def build_traffic_light(p):
    H, hh = p["height"], 0.95
    zc = H - hh / 2
    parts = [cylinder(0.055, H - hh, 12, (-0.13, 0, (H - hh) / 2 + 0.01), "z", "metal", (0.3, 0.3, 0.3)),
             box((0.25, 0.34, hh), (0, 0, zc), "plastic", p["housing_tint"])]
    colors = {"red": (1.0, 0.05, 0.02), "amber": (1.0, 0.45, 0.0), "green": (0.05, 1.0, 0.3)}
    for i, name in enumerate(("red", "amber", "green")):
        z = zc + (1 - i) * 0.29
        lit = 1.0 if name == p["state"] else 0.08
        parts.append(cylinder(0.1, 0.04, 14, (0.14, 0, z), "x", "headlight",
                              [c * lit for c in colors[name]]))
        parts.append(box((0.18, 0.24, 0.02), (0.2, 0, z + 0.12), "plastic", p["housing_tint"]))
    return concat(parts)


_WOOD = {"light": (0.8, 0.65, 0.5), "dark": (0.4, 0.3, 0.2)}


def sample_fence(rng):
    style = str(rng.choice(["metal", "wood"]))
    return _f(dict(length=rng.uniform(2, 10), height=rng.uniform(0.9, 2.0), style=style,
                   post_spacing=rng.uniform(2.0, 2.5), bar_spacing=rng.uniform(0.1, 0.16),
                   tint=_pick(rng, _METAL if style == "metal" else _WOOD)))


def build_fence(p):
    L, H, t = p["length"], p["height"], p["tint"]
    mat = "metal" if p["style"] == "metal" else "wood"
    pw = 0.06 if mat == "metal" else 0.09
    n = max(1, int(np.ceil(L / p["post_spacing"])))
    parts = [box((pw, pw, H + 0.05), (float(x), 0, (H + 0.05) / 2), mat, t)
             for x in np.linspace(-L / 2 + pw / 2, L / 2 - pw / 2, n + 1)]
    rail = 0.04 if mat == "metal" else 0.07
    parts += [box((L, rail * 0.6, rail), (0, 0, z), mat, t) for z in (0.18 * H, 0.88 * H)]
    bw = 0.02 if mat == "metal" else 0.09
    y = 0.0 if mat == "metal" else (rail * 0.3 + 0.012)
    m = int((L - 2 * pw) // p["bar_spacing"])
    for x in (np.arange(m) - (m - 1) / 2) * p["bar_spacing"]:
        parts.append(box((bw, 0.02, H - 0.07), (float(x), y, 0.05 + (H - 0.07) / 2), mat, t))
    return concat(parts)


def sample_railing(rng):
    return _f(dict(length=rng.uniform(2, 10), height=rng.uniform(0.9, 1.1), post_spacing=rng.uniform(1.4, 2.0),
                   tint=_pick(rng, _METAL)))


def build_railing(p):
    L, H, t = p["length"], p["height"], p["tint"]
    r = 0.025
    n = max(1, int(np.ceil(L / p["post_spacing"])))
    parts = [cylinder(r, H, 8, (float(x), 0, H / 2), "z", "metal", t)
             for x in np.linspace(-L / 2 + r, L / 2 - r, n + 1)]
    parts += [cylinder(r, L, 8, (0, 0, z), "x", "metal", t) for z in (H - r, H * 0.5)]
    return concat(parts)


def sample_bench(rng):
    return _f(dict(length=rng.uniform(1.5, 2.2), seat_height=rng.uniform(0.42, 0.48),
                   backrest=bool(rng.uniform() < 0.8),
                   wood_tint=_pick(rng, {"a": (0.8, 0.6, 0.45), "b": (0.45, 0.3, 0.2)}),
                   metal_tint=_pick(rng, _METAL)))


def build_bench(p):
    L, sh, wt, mt = p["length"], p["seat_height"], p["wood_tint"], p["metal_tint"]
    parts = [box((L, 0.09, 0.035), (0, y, sh), "wood", wt) for y in (-0.18, -0.07, 0.04, 0.15)]
    for x in (-L / 2 + 0.2, L / 2 - 0.2):
        parts += [box((0.05, 0.05, sh - 0.02), (x, y, (sh - 0.02) / 2), "metal", mt) for y in (-0.17, 0.17)]
        parts.append(box((0.05, 0.42, 0.04), (x, 0, sh - 0.035), "metal", mt))
        if p["backrest"]:
            parts.append(box((0.05, 0.05, 0.45), (x, 0.2, sh + 0.2), "metal", mt))
    if p["backrest"]:
        parts += [box((L, 0.03, 0.09), (0, 0.23, sh + z), "wood", wt) for z in (0.2, 0.33)]
    return concat(parts)


def sample_bollard(rng):
    return _f(dict(height=rng.uniform(0.75, 1.1), radius=rng.uniform(0.05, 0.12),
                   material=str(rng.choice(["metal", "concrete"])), tint=_pick(rng, _METAL)))


def build_bollard(p):
    H, r = p["height"], p["radius"]
    tint = p["tint"] if p["material"] == "metal" else None
    return concat([cylinder(r, H - r, 12, (0, 0, (H - r) / 2), "z", p["material"], tint),
                   sphere(r, (0, 0, H - r), 6, 12, p["material"], tint),
                   cylinder(r * 1.04, 0.06, 12, (0, 0, H * 0.75), "z", "sign", (0.8, 0.8, 0.8))])


def sample_trash_bin(rng):
    return _f(dict(height=rng.uniform(0.8, 1.1), radius=rng.uniform(0.22, 0.35),
                   tint=_pick(rng, {"green": (0.05, 0.2, 0.08), "grey": (0.2, 0.2, 0.2),
                                    "orange": (0.7, 0.2, 0.02), "black": (0.03, 0.03, 0.03)})))


def build_trash_bin(p):
    H, r = p["height"], p["radius"]
    return concat([cylinder(r, H - 0.05, 14, (0, 0, (H - 0.05) / 2), "z", "plastic", p["tint"],
                            radius_top=r * 1.05),
                   cylinder(r * 1.1, 0.05, 14, (0, 0, H - 0.025), "z", "plastic", p["tint"])])
