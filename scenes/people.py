"""Articulated pedestrians: forward kinematics over a simple skeleton, limbs as capsules.

The figure faces +X with +Y to its left.  Two arm samplers: *natural* (arms hang 5-15°
from the body, as real standing and walking people's do; issue 16) and *gap-rich* (arms
abducted 5-35°, 10 % raised up to 170°: the see-through gaps between limbs and body are
training signal for depth refinement).  Even natural poses never press arms against the
torso (the torso stays inside the shoulder joints).  ``opts`` (the config's ``people``
table) picks the mix and adds children; without it the sampler draws exactly the random
numbers it drew before issue 16, so old scenes reproduce byte for byte.
"""
from __future__ import annotations

import math

import numpy as np

from . import portable_math as pm
from .draws import lognormal_factor, normal
from .mesh import Mesh, concat
from .primitives import box, capsule, cylinder_between, hexa, sphere

# Linear-RGB anchors from light to dark skin; sampling interpolates in log space.
_SKIN = np.array([[0.85, 0.60, 0.45], [0.50, 0.26, 0.13], [0.06, 0.03, 0.018]])
_HAIR = {"black": (0.01, 0.008, 0.006), "brown": (0.07, 0.035, 0.015), "blonde": (0.45, 0.3, 0.12),
         "grey": (0.35, 0.34, 0.33), "red": (0.25, 0.06, 0.02)}
_CLOTH = {"black": (0.02, 0.02, 0.02), "white": (0.7, 0.7, 0.68), "grey": (0.15, 0.15, 0.16),
          "navy": (0.02, 0.03, 0.1), "denim": (0.05, 0.09, 0.2), "red": (0.4, 0.03, 0.03),
          "green": (0.05, 0.15, 0.06), "beige": (0.45, 0.35, 0.22), "brown": (0.12, 0.06, 0.03),
          "yellow": (0.6, 0.45, 0.05), "light_blue": (0.3, 0.45, 0.65), "pink": (0.7, 0.3, 0.35)}
_TROUSERS = ["black", "grey", "navy", "denim", "denim", "beige", "brown"]
_SHOES = {"black": (0.02, 0.02, 0.02), "white": (0.7, 0.7, 0.7), "brown": (0.1, 0.05, 0.02)}


def _jitter(rng, c, s=0.1):
    return [float(x) for x in np.clip(np.asarray(c) * lognormal_factor(rng, s, 3), 0.003, 0.95)]


def sample_pedestrian(rng: np.random.Generator, opts: dict | None = None) -> dict:
    """Params of one figure.  ``opts``: ``natural`` (bool: natural arms unless the figure
    is drawn gap-rich, with probability ``gap_rich_fraction``), ``child_fraction``.  Each
    knob draws random numbers only when it is on."""
    o = opts or {}
    child = o.get("child_fraction", 0.0) > 0 and rng.uniform() < o["child_fraction"]
    gap_rich = not o.get("natural", False) or rng.uniform() < o.get("gap_rich_fraction", 0.0)
    h = rng.uniform(1.0, 1.45) if child else rng.uniform(1.5, 1.95)
    t = rng.uniform(0, 2)
    i = min(int(t), 1)
    skin = pm.exp(pm.log(_SKIN[i]) * (1 - (t - i)) + pm.log(_SKIN[i + 1]) * (t - i))
    shirt = str(rng.choice(list(_CLOTH)))
    trousers = str(rng.choice([c for c in _TROUSERS if c != shirt]))
    pose = str(rng.choice(["standing", "walking", "raised"], p=[0.3, 0.6, 0.1] if gap_rich else [0.35, 0.65, 0.0]))
    head = (0.074, 0.082) if child else (0.06, 0.066)  # a child's head is a larger share of its height
    p = dict(height=h, shoulder_width=h * rng.uniform(0.2, 0.245), hip_width=h * rng.uniform(0.1, 0.12),
             girth=rng.uniform(0.85, 1.3), head_radius=h * rng.uniform(*head),
             skin=_jitter(rng, skin, 0.05), hair_color=_jitter(rng, _HAIR[str(rng.choice(list(_HAIR)))]),
             hair_style=str(rng.choice(["short", "long", "bald"], p=[0.6, 0.3, 0.1])),
             shirt=_jitter(rng, _CLOTH[shirt]), trousers=_jitter(rng, _CLOTH[trousers]),
             shoes=_jitter(rng, _SHOES[str(rng.choice(list(_SHOES)))]),
             sleeves=str(rng.choice(["long", "short"])), pose=pose,
             leg_abduct=rng.uniform(2, 6))
    if pose == "standing":
        hip = rng.uniform(-5, 5, 2)
        knee = rng.uniform(0, 10, 2)
        swing = rng.uniform(-10, 10, 2)
    else:
        amp = rng.uniform(10, 35) * rng.uniform(-1, 1) if pose == "walking" else rng.uniform(-10, 10)
        hip = np.array([amp, -amp]) + normal(rng, 0, 2, 2)
        knee = rng.uniform(5, 15, 2) + np.maximum(0, -hip) * rng.uniform(0.3, 0.9)
        swing = -hip * rng.uniform(0.5, 1.0)
    abduct = rng.uniform(5, 35, 2) if gap_rich else rng.uniform(5, 15, 2)
    elbow = rng.uniform(5, 40, 2) if gap_rich else rng.uniform(5, 25, 2)
    if pose == "raised":
        which = [0, 1] if rng.uniform() < 0.3 else [int(rng.integers(2))]
        for k in which:
            if rng.uniform() < 0.5:
                abduct[k], swing[k] = rng.uniform(100, 170), rng.uniform(-10, 20)
            else:
                abduct[k], swing[k] = rng.uniform(10, 30), rng.uniform(110, 170)
            elbow[k] = rng.uniform(0, 30)
    for name, v in (("hip_flex", hip), ("knee", knee), ("shoulder_flex", swing), ("abduct", abduct),
                    ("elbow", elbow)):
        p[name + "_l"], p[name + "_r"] = float(v[0]), float(v[1])
    if o.get("natural", False):  # recorded only where a knob acted: old specs keep their bytes
        p["arms"] = "gap_rich" if gap_rich else "natural"
    if o.get("child_fraction", 0.0) > 0:
        p["child"] = bool(child)
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in p.items()}


def _limb_dir(flex_deg: float, abduct_deg: float, side: int) -> np.ndarray:
    """Unit vector from hanging straight down, swung forward by flex and out by abduct."""
    f, a = math.radians(flex_deg), math.radians(abduct_deg)
    d = np.array([pm.sin(f) * abs(pm.cos(a)), side * pm.sin(a), -pm.cos(f) * pm.cos(a)])
    return d / pm.norm(d)


def pedestrian_parts(p: dict) -> dict[str, Mesh]:
    """Named body-part meshes (ungrounded) so tests can check inter-limb clearances."""
    h, g = p["height"], p["girth"]
    sw, hw, hr = p["shoulder_width"], p["hip_width"], p["head_radius"]
    skin, shirt, trousers = p["skin"], p["shirt"], p["trousers"]
    r_ua, r_fa, r_sh = 0.026 * h * g, 0.02 * h * g, 0.03 * h * g
    r_th = min(0.042 * h * g, hw / 2 - 0.015)  # thighs must not touch each other
    ankle_z = 0.045 * h
    hip_z = ankle_z + 0.49 * h
    waist_z, shoulder_z = hip_z + 0.07 * h, 0.81 * h
    depth = 0.12 * h * g
    parts: dict[str, Mesh] = {}

    # Torso half-width stays inside the shoulder joints so abducted arms clear it.
    top_hw = sw / 2 - 0.9 * r_ua
    pel_hw = hw / 2 + 0.95 * r_th
    bot_hw = min(pel_hw, top_hw) * 0.95
    top_z = shoulder_z + 0.02 * h
    parts["torso"] = hexa(np.array([
        [-depth / 2, -bot_hw, waist_z], [depth / 2, -bot_hw, waist_z], [depth / 2, bot_hw, waist_z],
        [-depth / 2, bot_hw, waist_z], [-depth * 0.45, -top_hw, top_z], [depth * 0.4, -top_hw, top_z],
        [depth * 0.4, top_hw, top_z], [-depth * 0.45, top_hw, top_z]]), "fabric", shirt)
    pz0 = hip_z - 0.03 * h
    parts["pelvis"] = box((depth * 0.95, 2 * pel_hw, waist_z - pz0 + 0.01),
                          (0, 0, (waist_z + pz0) / 2), "fabric", trousers)
    neck_top = h - 1.1 * hr - 0.6 * hr
    parts["neck"] = cylinder_between((0, 0, top_z - 0.02), (0.005 * h, 0, neck_top + 0.3 * hr),
                                     0.032 * h, 10, "skin", skin)
    head_c = np.array([0.01 * h, 0, h - 1.1 * hr])
    parts["head"] = sphere(hr, head_c, 8, 12, "skin", skin)
    if p["hair_style"] != "bald":
        parts["hair"] = sphere(hr * 1.06, head_c + (-0.25 * hr, 0, 0.04 * hr), 8, 12, "hair", p["hair_color"])
        if p["hair_style"] == "long":
            parts["hair_long"] = sphere((0.7 * hr, 0.95 * hr, 1.2 * hr), head_c + (-0.55 * hr, 0, -0.5 * hr),
                                        6, 10, "hair", p["hair_color"])

    ua, fa = 0.186 * h, 0.146 * h
    th, sh = 0.245 * h, 0.245 * h
    for side, s in (("l", 1), ("r", -1)):
        a = p["abduct_" + side]
        sj = np.array([0, s * sw / 2, shoulder_z])
        elbow = sj + ua * _limb_dir(p["shoulder_flex_" + side], a, s)
        fdir = _limb_dir(p["shoulder_flex_" + side] + p["elbow_" + side], a, s)
        wrist = elbow + fa * fdir
        sleeve = shirt if p["sleeves"] == "long" else skin
        parts["upper_arm_" + side] = capsule(r_ua, sj, elbow, 10, "fabric", shirt, r_fa * 1.1, rings=5)
        parts["lower_arm_" + side] = capsule(r_fa * 1.05, elbow, wrist, 10,
                                             "fabric" if p["sleeves"] == "long" else "skin", sleeve,
                                             r_fa * 0.8, rings=5)
        hc = wrist + fdir * 0.045 * h
        parts["hand_" + side] = sphere((0.03 * h, 0.03 * h, 0.03 * h), hc, 6, 8, "skin", skin)

        hj = np.array([0, s * hw / 2, hip_z])
        knee = hj + th * _limb_dir(p["hip_flex_" + side], p["leg_abduct"], s)
        ankle = knee + sh * _limb_dir(p["hip_flex_" + side] - p["knee_" + side], p["leg_abduct"], s)
        parts["thigh_" + side] = capsule(r_th, hj, knee, 10, "fabric", trousers, r_sh * 1.1, rings=5)
        parts["shin_" + side] = capsule(r_sh * 1.05, knee, ankle, 10, "fabric", trousers, r_sh * 0.75, rings=5)
        pitch = -math.radians(p["hip_flex_" + side] - p["knee_" + side]) * 0.5
        foot = box((0.15 * h, 0.055 * h, 0.05 * h), (0.045 * h, 0, -0.02 * h), "shoe", p["shoes"])
        parts["foot_" + side] = foot.transformed(pitch=pitch, translation=ankle)
    return parts


def build_pedestrian(p: dict) -> Mesh:
    return concat(list(pedestrian_parts(p).values()))
