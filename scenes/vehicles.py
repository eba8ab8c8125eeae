"""Parametric road vehicles (car, van, truck, bus) built from closed primitives.

Frame: +X forward, +Y left, tyres touching z=0.  Builders return raw meshes;
:mod:`scenes.assets` re-centres them so the footprint is symmetric about the origin.
"""
from __future__ import annotations

import numpy as np

from .draws import lognormal_factor
from .mesh import Mesh, concat
from .primitives import box, box_corners, cylinder, face_quad, hexa, panel

# Linear-RGB paints with rough real-world popularity (white/black/grey dominate traffic).
PAINTS = {
    "white": ((0.78, 0.78, 0.76), 0.22), "black": ((0.015, 0.015, 0.016), 0.19),
    "grey": ((0.12, 0.12, 0.13), 0.16), "silver": ((0.45, 0.46, 0.48), 0.15),
    "red": ((0.45, 0.02, 0.02), 0.08), "blue": ((0.02, 0.06, 0.30), 0.08),
    "navy": ((0.01, 0.015, 0.06), 0.04), "green": ((0.03, 0.12, 0.05), 0.03),
    "beige": ((0.45, 0.38, 0.25), 0.02), "yellow": ((0.75, 0.50, 0.02), 0.015),
    "orange": ((0.70, 0.18, 0.01), 0.015),
}


def sample_paint(rng: np.random.Generator, names=None) -> tuple[str, list[float]]:
    names = list(PAINTS) if names is None else list(names)
    w = np.array([PAINTS[n][1] for n in names])
    name = names[int(rng.choice(len(names), p=w / w.sum()))]
    # Brightness and slight hue jitter so two "red" cars are not identical.
    c = np.asarray(PAINTS[name][0]) * lognormal_factor(rng, 0.12) * lognormal_factor(rng, 0.04, 3)
    return name, [float(x) for x in np.clip(c, 0.005, 0.95)]


def _wheels(axles, half_track, r, width, segments=16) -> list[Mesh]:
    out = []
    for x in axles:
        for s in (-1, 1):
            c = (x, s * half_track, r)
            out.append(cylinder(r, width, segments, c, "y", "tire"))
            # Rim is slightly wider than the tyre so its face is visible from the side.
            out.append(cylinder(r * 0.6, width + 0.02, segments, c, "y", "rim"))
    return out


def _arched_lower(x0, x1, axles, r, z0, z1, half_w, tint) -> list[Mesh]:
    """Body skirt from z0 to z1 along [x0, x1] with openings around each wheel."""
    cuts = sorted((a - r - 0.06, a + r + 0.06) for a in axles)
    merged = []
    for a, b in cuts:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out, x = [], x0
    for a, b in merged + [[x1, x1]]:
        if a - x > 0.02:
            out.append(box((a - x, 2 * half_w, z1 - z0), ((a + x) / 2, 0, (z0 + z1) / 2),
                           "car_paint", tint))
        x = max(x, b)
    return out


def _side_windows(corners, spans, v, material="tinted_glass") -> list[Mesh]:
    """Glass on both flanks; ``spans`` are u-ranges measured rear->front on the -Y flank."""
    out = []
    for u0, u1 in spans:
        out.append(panel(face_quad(corners, "s0"), (u0, u1), v, material=material))
        out.append(panel(face_quad(corners, "s2"), (1 - u1, 1 - u0), v, material=material))
    return out


def _pair_on(face, u, v, material, spread=(0.06, 0.24)) -> list[Mesh]:
    """Symmetric left/right lamps on an end face."""
    return [panel(face, (spread[0], spread[1]), v, material=material),
            panel(face, (1 - spread[1], 1 - spread[0]), v, material=material)]


def _mirrors(x, half_w, z, tint) -> list[Mesh]:
    return [box((0.08, 0.14, 0.1), (x, s * (half_w + 0.07), z), "car_paint", tint) for s in (-1, 1)]


def build_car(p: dict) -> Mesh:
    """Car or van: skirt with wheel arches, shaped upper body, raked greenhouse."""
    L, W, H, r = p["length"], p["width"], p["height"], p["wheel_radius"]
    paint = p["paint"]
    xf, xr = L / 2, -L / 2
    axles = (p["wheelbase"] / 2 + p["axle_shift"], -p["wheelbase"] / 2 + p["axle_shift"])
    z_arch = 2 * r + 0.04
    belt = max(p["belt_height"], z_arch + 0.12)
    parts = _arched_lower(xr, xf, axles, r, p["clearance"], z_arch, W / 2, paint)

    # Upper body: the hood and boot drop slightly and the nose/tail are pulled in.
    hw, nose = W / 2, 0.10
    body = np.array([
        [xr, -hw, z_arch], [xf, -hw, z_arch], [xf, hw, z_arch], [xr, hw, z_arch],
        [xr + nose, -hw + 0.04, belt - 0.03], [xf - nose, -hw + 0.04, belt - p["hood_drop"]],
        [xf - nose, hw - 0.04, belt - p["hood_drop"]], [xr + nose, hw - 0.04, belt - 0.03]])
    parts.append(hexa(body, "car_paint", paint))

    # Greenhouse: rakes shrink if the roof would get shorter than 40% of the cabin base.
    cb0, cb1 = xr + p["trunk_length"], xf - p["hood_length"]
    dz = H - belt
    fr, rr = p["front_rake"] * dz, p["rear_rake"] * dz
    k = min(1.0, 0.6 * (cb1 - cb0) / max(fr + rr, 1e-6))
    fr, rr = fr * k, rr * k
    bw, tw = hw - 0.05, hw - p["roof_inset"]
    cab = np.array([
        [cb0, -bw, belt - 0.03], [cb1, -bw, belt - 0.03], [cb1, bw, belt - 0.03], [cb0, bw, belt - 0.03],
        [cb0 + rr, -tw, H], [cb1 - fr, -tw, H], [cb1 - fr, tw, H], [cb0 + rr, tw, H]])
    parts.append(hexa(cab, "car_paint", paint))
    parts.append(panel(face_quad(cab, "s1"), (0.04, 0.96), (0.08, 0.94)))
    parts.append(panel(face_quad(cab, "s3"), (0.06, 0.94), (0.12, 0.9)))
    if p["side_windows"] == "all":
        spans = [(0.04, 0.47), (0.53, 0.96)]
    else:
        spans = [(0.72, 0.96)]  # panel van: cab door glass only
    parts += _side_windows(cab, spans, (0.1, 0.88))

    parts += _pair_on(face_quad(body, "s1"), None, (0.45, 0.85), "headlight")
    parts += _pair_on(face_quad(body, "s3"), None, (0.4, 0.8), "taillight")
    bz = p["clearance"] + 0.15
    parts.append(box((0.14, W * 0.97, 0.22), (xf - 0.03, 0, bz), "plastic"))
    parts.append(box((0.14, W * 0.97, 0.22), (xr + 0.03, 0, bz), "plastic"))
    parts += _mirrors(cb1 - 0.12, bw, belt + 0.1, paint)
    parts += _wheels(axles, hw - 0.11, r, 0.2)
    return concat(parts)


def sample_car(rng: np.random.Generator, van: bool = False) -> dict:
    if van:
        L, W, H = rng.uniform(4.6, 5.8), rng.uniform(1.9, 2.05), rng.uniform(1.9, 2.5)
        name, paint = sample_paint(rng, ["white", "white", "silver", "grey", "black", "blue", "red", "yellow"])
        p = dict(hood_length=L * rng.uniform(0.12, 0.18), trunk_length=0.0,
                 front_rake=rng.uniform(0.35, 0.8), rear_rake=rng.uniform(0.0, 0.08),
                 belt_height=rng.uniform(0.95, 1.1), roof_inset=rng.uniform(0.06, 0.12),
                 side_windows=str(rng.choice(["front", "all"], p=[0.6, 0.4])),
                 wheel_radius=rng.uniform(0.33, 0.37), wheelbase=L * rng.uniform(0.56, 0.62))
    else:
        style = str(rng.choice(["sedan", "hatchback", "suv"], p=[0.45, 0.35, 0.2]))
        suv = style == "suv"
        L = rng.uniform(4.3, 4.9) if style == "sedan" else rng.uniform(3.7, 4.3) if style == "hatchback" \
            else rng.uniform(4.3, 4.9)
        W = rng.uniform(1.68, 1.88) + (0.06 if suv else 0.0)
        H = rng.uniform(1.62, 1.8) if suv else rng.uniform(1.4, 1.55)
        name, paint = sample_paint(rng)
        p = dict(hood_length=L * rng.uniform(0.22, 0.3),
                 trunk_length=L * (rng.uniform(0.14, 0.22) if style == "sedan" else rng.uniform(0.03, 0.08)),
                 front_rake=rng.uniform(1.2, 1.7), rear_rake=rng.uniform(0.9, 1.6) if style == "sedan"
                 else rng.uniform(0.2, 0.6), belt_height=H * rng.uniform(0.55, 0.6),
                 roof_inset=rng.uniform(0.14, 0.2), side_windows="all",
                 wheel_radius=rng.uniform(0.34, 0.38) if suv else rng.uniform(0.3, 0.34),
                 wheelbase=L * rng.uniform(0.58, 0.63), style=style)
    p.update(length=L, width=W, height=H, paint_name=name, paint=paint,
             clearance=rng.uniform(0.14, 0.2) if not van else rng.uniform(0.16, 0.22),
             hood_drop=rng.uniform(0.04, 0.12), axle_shift=L * rng.uniform(-0.02, 0.02))
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in p.items()}


def sample_van(rng: np.random.Generator) -> dict:
    return sample_car(rng, van=True)


def build_truck(p: dict) -> Mesh:
    """Cab-over box truck with a tandem rear axle (6 wheels)."""
    L, W, H, r = p["length"], p["width"], p["height"], p["wheel_radius"]
    cab_len, cab_h, paint, cargo = p["cab_length"], p["cab_height"], p["paint"], p["cargo_color"]
    xf, xr = L / 2, -L / 2
    front = xf - cab_len * 0.5
    rear = [xr + L * 0.2, xr + L * 0.2 + 2 * r + 0.12]
    z_arch = 2 * r + 0.06
    parts = _arched_lower(xf - cab_len, xf, [front], r, 0.45, z_arch, W / 2, paint)
    cab = box_corners((cab_len, W, cab_h - z_arch), (xf - cab_len / 2, 0, (cab_h + z_arch) / 2))
    parts.append(hexa(cab, "car_paint", paint))
    v0 = (p["belt_height"] - z_arch) / (cab_h - z_arch)
    parts.append(panel(face_quad(cab, "s1"), (0.05, 0.95), (v0, 0.92)))
    parts += _side_windows(cab, [(0.45, 0.92)], (v0, 0.9))
    parts += _pair_on(face_quad(cab, "s1"), None, (0.05, 0.16), "headlight", (0.04, 0.18))
    parts.append(box((0.16, W * 0.98, 0.3), (xf - 0.02, 0, 0.55), "plastic"))
    parts += _mirrors(xf - 0.2, W / 2, cab_h * 0.72, paint)

    gap = 0.15
    c_len = L - cab_len - gap
    cz0 = 2 * r + 0.18
    box_c = box_corners((c_len, W, H - cz0), (xr + c_len / 2, 0, (H + cz0) / 2))
    parts.append(hexa(box_c, "car_paint", cargo))
    parts += _pair_on(face_quad(box_c, "s3"), None, (0.01, 0.04), "taillight", (0.04, 0.14))
    parts.append(box((L - 0.6, W * 0.6, 0.3), (0, 0, 2 * r + 0.03), "metal", (0.15, 0.15, 0.15)))
    parts.append(box((0.12, W * 0.95, 0.2), (xr + 0.1, 0, 0.6), "plastic"))
    parts += _wheels([front] + rear, W / 2 - 0.16, r, 0.3)
    return concat(parts)


def sample_truck(rng: np.random.Generator) -> dict:
    name, paint = sample_paint(rng, ["white", "white", "red", "blue", "grey", "silver", "green", "orange"])
    _, cargo = sample_paint(rng, ["white", "silver", "grey"])
    H = rng.uniform(2.9, 3.8)
    return dict(length=float(rng.uniform(6.5, 10.0)), width=float(rng.uniform(2.3, 2.5)), height=float(H),
                cab_length=float(rng.uniform(1.7, 2.2)), cab_height=float(min(H, rng.uniform(2.7, 3.2))),
                belt_height=float(rng.uniform(1.5, 1.7)), wheel_radius=float(rng.uniform(0.46, 0.52)),
                paint_name=name, paint=paint, cargo_color=cargo)


def build_bus(p: dict) -> Mesh:
    L, W, H, r = p["length"], p["width"], p["height"], p["wheel_radius"]
    paint = p["paint"]
    xf, xr = L / 2, -L / 2
    axles = (xf - p["front_overhang"], xr + p["rear_overhang"])
    z_arch = 2 * r + 0.08
    parts = _arched_lower(xr, xf, axles, r, p["clearance"], z_arch, W / 2, paint)
    up = box_corners((L, W, H - z_arch), (0, 0, (H + z_arch) / 2))
    parts.append(hexa(up, "car_paint", paint))
    v0 = (p["window_bottom"] - z_arch) / (H - z_arch)
    n = p["side_window_count"]
    edges = np.linspace(0.03, 0.9, n + 1)
    parts += _side_windows(up, [(float(a) + 0.006, float(b) - 0.006) for a, b in zip(edges, edges[1:])],
                           (v0, 0.9))
    parts.append(panel(face_quad(up, "s1"), (0.03, 0.97), (v0 - 0.12, 0.95)))
    parts.append(panel(face_quad(up, "s3"), (0.08, 0.92), (v0 + 0.1, 0.88)))
    parts += _pair_on(face_quad(up, "s1"), None, (0.04, 0.12), "headlight", (0.04, 0.16))
    parts += _pair_on(face_quad(up, "s3"), None, (0.04, 0.16), "taillight", (0.03, 0.1))
    parts.append(box((L * 0.3, W * 0.7, 0.25), (0, 0, H + 0.125), "plastic", (0.6, 0.6, 0.6)))
    parts.append(box((0.16, W * 0.98, 0.3), (xf, 0, p["clearance"] + 0.2), "plastic"))
    parts.append(box((0.16, W * 0.98, 0.3), (xr, 0, p["clearance"] + 0.2), "plastic"))
    parts += _mirrors(xf - 0.1, W / 2, H * 0.7, paint)
    parts += _wheels(axles, W / 2 - 0.16, r, 0.3)
    return concat(parts)


def sample_bus(rng: np.random.Generator) -> dict:
    name, paint = sample_paint(rng, ["white", "yellow", "red", "blue", "green", "silver", "orange"])
    L = rng.uniform(10.0, 12.5)
    return dict(length=float(L), width=float(rng.uniform(2.45, 2.55)), height=float(rng.uniform(2.95, 3.3)),
                wheel_radius=float(rng.uniform(0.48, 0.52)), clearance=float(rng.uniform(0.25, 0.32)),
                front_overhang=float(rng.uniform(2.4, 2.8)), rear_overhang=float(rng.uniform(2.8, 3.5)),
                window_bottom=float(rng.uniform(1.6, 1.8)), side_window_count=int(round(L / 1.5)),
                paint_name=name, paint=paint)
