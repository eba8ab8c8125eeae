"""Per-layout draws of the camera pipeline (``spec.post``) and fog (``spec.weather``).

Pure Python; generator/post.py applies them to the linear render.  Every effect draws from
its own stream ``SeedSequence([seed, layout, K, effect])``, never from the scene's generator,
so switching one effect (or all, with ``variety.enabled=false``) off leaves the spec, the
other effects and everything else of the scene as they were.  An effect that is off writes
nothing, so with every effect off ``spec.post`` stays ``{}`` and the spec JSON is that of
before, byte for byte.

``spec.post`` keys (each present only when its effect is on):

* ``exposure``: ``{"key", "min_gain_ev", "max_gain_ev"}``, auto exposure's target and limits;
* ``response``: ``{"curve": "sigmoid", "contrast"}`` or ``{"curve": "gamma", "gamma"}``;
  absent = Blender's AgX view transform, as before;
* ``noise``: ``{"shot", "read"}`` at gain 1; ``bloom``: ``{"intensity", "threshold"}``;
  ``vignetting``: corner light loss; ``rain_streaks``: ``{"length", "tilt_deg"}`` (only when
  ``spec.weather["rain"] > 0``);
* ``applied``: written by the renderer per frame (the metered luminance, the exposure gain
  applied in stops, the fog's airlight), so a store records what each frame got.

``spec.weather["fog_visibility_m"]``: meteorological visibility of fog, when drawn.
"""
from __future__ import annotations

import numpy as np

from scenes import portable_math as pm
from scenes.spec import SceneSpec

K = 16003  # this module's stream constant
RESPONSE_CURVES = ("agx", "sigmoid", "gamma")
_STREAMS = {"exposure": 0, "response": 1, "noise": 2, "bloom": 3, "vignetting": 4, "rain": 5, "fog": 6}


def enabled(cfg: dict) -> bool:
    """The knobs are in force: ``variety.enabled`` and a config that has them."""
    return bool((cfg.get("variety") or {}).get("enabled", False)) and "camera_pipeline" in cfg


def _rng(seed: int, layout: int, effect: str) -> np.random.Generator:
    ss = np.random.SeedSequence([int(seed), int(layout), K, _STREAMS[effect]])
    return np.random.Generator(np.random.PCG64(ss))


def _u(rng, bounds) -> float:
    """Always one draw, so a degenerate range leaves the next draws of the stream as they were."""
    lo, hi = bounds
    x = float(rng.random())
    return float(lo + (hi - lo) * x) if hi > lo else float(lo)


def decorate(spec: SceneSpec, cfg: dict) -> SceneSpec:
    """Fill ``spec.post`` and the fog keys of ``spec.weather`` for the spec's layout.

    Runs after every other draw of the layout (it reads ``spec.weather["rain"]``)."""
    if not enabled(cfg):
        return spec
    seed, layout = spec.seed, spec.layout
    post = sample_post(cfg["camera_pipeline"], seed, layout, float(spec.weather.get("rain", 0.0) or 0.0),
                       str(spec.lighting.get("time_of_day", "day")))
    if post:
        spec.post = {**spec.post, **post}
    spec.weather.update(sample_fog(cfg["fog"], seed, layout))
    return spec


def sample_post(c: dict, seed: int, layout: int, rain: float = 0.0, time_of_day: str = "day") -> dict:
    post: dict = {}
    if c["auto_exposure"]:
        r = _rng(seed, layout, "exposure")
        # A camera meters a dark scene to a lower key than a bright one (night stays night):
        # without it, auto exposure lifted night frames to day brightness (measured 0.47 mean luma).
        scale = {"dusk": c["ae_dusk_key_scale"], "night": c["ae_night_key_scale"]}.get(time_of_day, 1.0)
        post["exposure"] = {"key": _u(r, c["ae_key"]) * scale, "min_gain_ev": float(c["ae_min_gain_ev"]),
                            "max_gain_ev": float(c["ae_max_gain_ev"])}
    weights = np.array([max(float(c["response"].get(n, 0.0)), 0.0) for n in RESPONSE_CURVES])
    if weights[1:].sum() > 0:
        r = _rng(seed, layout, "response")
        curve = RESPONSE_CURVES[int(r.choice(len(weights), p=weights / weights.sum()))]
        if curve == "sigmoid":
            post["response"] = {"curve": curve, "contrast": _u(r, c["sigmoid_contrast"])}
        elif curve == "gamma":
            post["response"] = {"curve": curve, "gamma": _u(r, c["gamma"])}
    if c["noise_shot"][1] > 0 or c["noise_read"][1] > 0:
        r = _rng(seed, layout, "noise")
        post["noise"] = {"shot": _u(r, c["noise_shot"]), "read": _u(r, c["noise_read"])}
    if c["bloom_intensity"][1] > 0:
        r = _rng(seed, layout, "bloom")
        post["bloom"] = {"intensity": _u(r, c["bloom_intensity"]), "threshold": _u(r, c["bloom_threshold"])}
    if c["vignetting"][1] > 0:
        post["vignetting"] = _u(_rng(seed, layout, "vignetting"), c["vignetting"])
    if c["rain_streaks"] and rain > 0 and c["rain_streak_length"][1] > 0:
        r = _rng(seed, layout, "rain")
        tilt = _u(r, c["rain_tilt_deg"]) * (1.0 if r.random() < 0.5 else -1.0)
        post["rain_streaks"] = {"length": _u(r, c["rain_streak_length"]), "tilt_deg": tilt}
    return post


def sample_fog(f: dict, seed: int, layout: int) -> dict:
    if f["fraction"] <= 0:
        return {}
    r = _rng(seed, layout, "fog")
    if r.random() >= f["fraction"]:
        return {}
    lo, hi = f["visibility_m"]
    # Log-uniform: dense and light fog equally likely per stop of visibility.
    return {"fog_visibility_m": float(pm.exp(_u(r, (pm.log(lo), pm.log(hi)))))}


def active(spec: SceneSpec) -> bool:
    """Whether the frame needs the linear render: some effect on, fog, or rain streaks."""
    post = {k: v for k, v in spec.post.items() if k != "applied"}
    return bool(post) or bool(spec.weather.get("fog_visibility_m"))
