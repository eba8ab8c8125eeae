"""The camera pipeline on the linear render: fog, rain streaks, vignetting, auto exposure,
bloom, sensor noise, the response curve.  numpy/OpenCV only (no ``bpy``): pure functions on
arrays, and :func:`process`, which runs the ones a spec asks for (scenes/camera_pipeline.py).

Order, as light meets them: the atmosphere (fog, then the rain drops near the camera), the
lens (vignetting), the camera's metering and gain (auto exposure meters what the sensor
sees), lens glare (bloom, thresholded in exposed units, where 1 is white), the sensor
(Poisson-Gaussian noise, scaled with the gain, like a higher ISO), the response curve.

Input: Cycles' combined pass in scene-linear Rec. 709 (Blender's working space) and the
annotation pass's planar depth (``inf`` where the ray meets nothing).  The annotations
themselves are never touched.
"""
from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from scenes.camera_pipeline import K
from scenes.spec import SceneSpec

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # Rec. 709 luminance weights
KOSCHMIEDER = -math.log(0.05)  # 2.996: visibility is where contrast falls to 5 %
MID_GREY_DISPLAY = 0.46  # sRGB code value of linear 0.18: the curves keep middle grey there
# (drop distance m, streak opacity); halved after the contact sheet: at 0.35 the nearest streaks
# read as white bars on dark surfaces close to the camera (a parked van), unlike rain on video.
RAIN_LAYERS = ((1.5, 0.18), (4.0, 0.11), (10.0, 0.06))
RAIN_STREAKS_640 = 1500  # streaks per frame at rain = 1, 640x360, over all layers


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3] @ LUMA


def beta_of(visibility_m: float) -> float:
    """Extinction coefficient (1/m) of fog with that meteorological visibility."""
    return KOSCHMIEDER / float(visibility_m)


def ray_length_factor(intrinsics: dict) -> np.ndarray:
    """Distance along the pixel-centre ray per metre of planar depth, for a pinhole camera."""
    k = intrinsics
    return _ray_length_factor(int(k["width"]), int(k["height"]), float(k["fx"]), float(k["fy"]),
                              float(k["cx"]), float(k["cy"]))


@functools.lru_cache(maxsize=4)  # one camera per run, mostly: computed once, read-only
def _ray_length_factor(w: int, h: int, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    x = ((np.arange(w) + 0.5 - cx) / fx)[None, :]
    y = ((np.arange(h) + 0.5 - cy) / fy)[:, None]
    out = np.sqrt(1.0 + x * x + y * y)
    out.flags.writeable = False
    return out


def lens_ray_length_factor(intrinsics: dict, lens: dict) -> np.ndarray:
    """The same through a radially distorted lens: each pixel centre's ray is the undistorted
    direction of its distorted position (scenes.camera's model, as both Cycles passes use)."""
    k = intrinsics
    key = tuple(float(lens[c]) for c in ("k1", "k2", "k3", "r_max"))
    return _lens_ray_length_factor(int(k["width"]), int(k["height"]), float(k["fx"]), float(k["fy"]),
                                   float(k["cx"]), float(k["cy"]), key)


@functools.lru_cache(maxsize=4)
def _lens_ray_length_factor(w, h, fx, fy, cx, cy, key) -> np.ndarray:
    from scenes.camera import undistort_points
    k1, k2, k3, r_max = key
    xd = np.broadcast_to(((np.arange(w) + 0.5 - cx) / fx)[None, :], (h, w))
    yd = np.broadcast_to(((np.arange(h) + 0.5 - cy) / fy)[:, None], (h, w))
    x, y = undistort_points(xd, yd, {"k1": k1, "k2": k2, "k3": k3}, r_max * 1.001)
    out = np.sqrt(1.0 + x * x + y * y)
    out.flags.writeable = False
    return out


def transmittance(depth: np.ndarray, ray_factor: np.ndarray, beta: float) -> np.ndarray:
    """exp(-beta d), d the distance along the ray; 0 where the ray meets nothing (sky)."""
    hit = np.isfinite(depth) & (depth > 0)
    d = np.where(hit, depth, 0.0) * ray_factor  # float64: t exact to float32 rounding
    d *= -beta
    np.exp(d, out=d)
    d[~hit] = 0.0
    return d.astype(np.float32)


def airlight(rgb: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Fog's colour at infinity: the brighter half of the sky pixels (the horizon glow), or,
    with under 0.5 % sky in view, He et al.'s estimate: the pixels of the brightest 0.1 % of
    the dark channel."""
    sky = ~np.isfinite(depth)
    rgb = rgb[..., :3]
    if sky.mean() >= 0.005:
        px = rgb[sky]
        y = px @ LUMA
        return px[y >= np.median(y)].mean(0).astype(np.float32)
    r = max(1, round(min(depth.shape) / 48))
    dark = cv2.erode(rgb.min(-1), np.ones((2 * r + 1, 2 * r + 1), np.uint8))
    top = dark >= np.quantile(dark, 0.999)
    return rgb[top].mean(0).astype(np.float32)


def koschmieder(rgb: np.ndarray, t: np.ndarray, a: np.ndarray) -> np.ndarray:
    """I = J t + A (1 - t)."""
    t = t[..., None]
    return (rgb * t + np.asarray(a, np.float32) * (1.0 - t)).astype(np.float32)


def rain_alpha(depth: np.ndarray, rain: float, length: float, tilt_deg: float, rng) -> np.ndarray:
    """Coverage (H, W) of motion-blurred drops in three layers of distance: nearer drops make
    longer, thicker, blurrier streaks, and a drop behind a surface is hidden by it."""
    h, w = depth.shape
    scale = w / 640.0
    a = math.radians(tilt_deg)
    alpha = np.zeros((h, w), np.float32)
    n_all = rain * RAIN_STREAKS_640 * (w * h) / (640 * 360)
    for k, (dist, opacity) in enumerate(RAIN_LAYERS):
        n = int(rng.poisson(n_all / len(RAIN_LAYERS)))
        lens = length * h * RAIN_LAYERS[0][0] / dist * rng.uniform(0.7, 1.3, n)
        x0, y0 = rng.uniform(-0.2 * w, 1.2 * w, n), rng.uniform(-0.3 * h, h, n)
        x1, y1 = x0 + lens * math.sin(a), y0 + lens * math.cos(a)
        canvas = np.zeros((h, w), np.float32)
        thick = max(1, round(scale * (2 if k == 0 else 1)))
        segments = np.rint(np.stack([x0, y0, x1, y1], 1) * 16).astype(np.int32).reshape(n, 2, 2)
        if n:  # one call draws every segment (4 fractional bits: sub-pixel ends)
            cv2.polylines(canvas, list(segments), False, 1.0, thick, cv2.LINE_AA, 4)
        if k == 0:  # near drops are out of focus
            canvas = cv2.GaussianBlur(canvas, (0, 0), max(0.5, 0.8 * scale))
        canvas = np.minimum(canvas, 1.0) * (depth > dist)
        alpha = 1.0 - (1.0 - alpha) * (1.0 - opacity * canvas)
    return alpha


def rain_streaks(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Streaks show the bright environment the drops refract (Garg & Nayar): the mean of the
    frame's brightest 10 %."""
    y = luminance(rgb)
    light = rgb[y >= np.quantile(y, 0.9)].mean(0)
    a = alpha[..., None]
    return (rgb * (1.0 - a) + light * a).astype(np.float32)


def vignette(shape, strength: float) -> np.ndarray:
    """Light reaching each pixel: 1 at the centre, 1 - strength in the corners (r^2 falloff)."""
    h, w = shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    r2 = ((u - w / 2) ** 2 + (v - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
    return (1.0 - strength * r2).astype(np.float32)


def meter(rgb: np.ndarray, trim: float = 0.02) -> float:
    """A camera's average metering: the geometric mean of the luminance, the darkest and
    brightest ``trim`` of the pixels (black shadows, sun glints) left out."""
    logs = np.log(np.maximum(luminance(rgb), 1e-6)).ravel()
    lo, hi = np.quantile(logs, [trim, 1.0 - trim])
    return float(np.exp(logs[(logs >= lo) & (logs <= hi)].mean()))


def exposure_ev(metered: float, key: float, min_ev: float, max_ev: float) -> float:
    """Stops of gain that bring the metered value to ``key``, within the camera's limits."""
    return float(np.clip(math.log2(key / max(metered, 1e-9)), min_ev, max_ev))


def bloom(rgb: np.ndarray, intensity: float, threshold: float) -> np.ndarray:
    """Move ``intensity`` of the light above ``threshold`` into a halo: a pyramid of ever wider
    blurs (each level twice the last), summed; energy is kept."""
    y = luminance(rgb)
    over = np.maximum(y - threshold, 0.0) / np.maximum(y, 1e-6)
    if not over.any():
        return rgb
    bright = (rgb * over[..., None]).astype(np.float32)
    h, w = y.shape
    levels = max(1, round(math.log2(w / 10)) - 1)
    halo = np.zeros_like(bright)
    cur = bright
    for _ in range(levels):
        if min(cur.shape[:2]) < 2:
            break
        cur = cv2.pyrDown(cur)
        halo += cv2.resize(cur, (w, h), interpolation=cv2.INTER_LINEAR)
    return (rgb + intensity * (halo / levels - bright)).astype(np.float32)


def sensor_noise(rgb: np.ndarray, gain: float, shot: float, read: float, rng) -> np.ndarray:
    """Poisson-Gaussian (heteroscedastic Gaussian) noise: variance gain*shot*signal +
    (gain*read)^2 in exposed units, so a frame lifted by the gain is as noisy as its few
    photons make it."""
    var = gain * shot * np.maximum(rgb, 0.0) + (gain * read) ** 2
    return (rgb + np.sqrt(var) * rng.standard_normal(rgb.shape, np.float32)).astype(np.float32)


def respond(rgb: np.ndarray, response: dict) -> np.ndarray:
    """Display values in [0, 1] of exposed linear RGB, by a camera response curve."""
    x = np.maximum(rgb, 0.0)
    if response["curve"] == "gamma":
        return np.minimum(x, 1.0) ** (1.0 / response["gamma"])
    if response["curve"] == "sigmoid":
        c = response["contrast"]
        s = 0.18 * ((1.0 - MID_GREY_DISPLAY) / MID_GREY_DISPLAY) ** (1.0 / c)
        xc = x ** c
        return xc / (xc + s ** c)
    raise ValueError(f"unknown response curve {response['curve']!r}")


def to_uint8(display: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(display, 0.0, 1.0) * 255.0).astype(np.uint8)


def frame_rng(spec: SceneSpec, effect: int) -> np.random.Generator:
    """Per-frame randomness (noise, streaks): a function of the scene, so the same seed gives
    the same grain."""
    ss = np.random.SeedSequence([int(spec.seed), int(spec.index), K, 100 + effect])
    return np.random.Generator(np.random.PCG64(ss))


def process(linear: np.ndarray, depth: np.ndarray, spec: SceneSpec, ray_factor: np.ndarray | None = None):
    """(image, applied, is_display) of one frame.

    ``image`` is uint8 display RGB when the spec picks a response curve (``is_display``), else
    exposed linear float RGB for Blender's view transform.  ``applied`` records what was
    measured and applied (for ``spec.post["applied"]``)."""
    post, weather = spec.post, spec.weather
    rgb = np.array(linear[..., :3], np.float32)
    applied: dict = {}
    vis = weather.get("fog_visibility_m")
    if vis:
        if ray_factor is None:
            cam = spec.camera
            ray_factor = (lens_ray_length_factor(cam.intrinsics(), cam.lens) if cam.lens
                          else ray_length_factor(cam.intrinsics()))
        a = airlight(rgb, depth)
        rgb = koschmieder(rgb, transmittance(depth, ray_factor, beta_of(vis)), a)
        applied["fog_airlight"] = [round(float(x), 6) for x in a]
    rain = float(weather.get("rain", 0.0) or 0.0)
    if "rain_streaks" in post and rain > 0:
        s = post["rain_streaks"]
        rgb = rain_streaks(rgb, rain_alpha(depth, min(rain, 1.0), s["length"], s["tilt_deg"], frame_rng(spec, 1)))
    if "vignetting" in post:
        rgb *= vignette(rgb.shape[:2], post["vignetting"])[..., None]
    gain = 1.0
    if "exposure" in post:
        e = post["exposure"]
        m = meter(rgb)
        ev = exposure_ev(m, e["key"], e["min_gain_ev"], e["max_gain_ev"])
        gain = 2.0 ** ev
        rgb *= np.float32(gain)
        applied["metered"], applied["gain_ev"] = round(m, 6), round(ev, 4)
    if "bloom" in post:
        rgb = bloom(rgb, post["bloom"]["intensity"], post["bloom"]["threshold"])
    if "noise" in post:
        n = post["noise"]
        rgb = sensor_noise(rgb, gain, n["shot"], n["read"], frame_rng(spec, 0))
    if "response" in post:
        return to_uint8(respond(rgb, post["response"])), applied, True
    return rgb, applied, False
