"""Scene-generation configuration: defaults, presets, file loading and dotted overrides.

A config is a plain nested dict of JSON values so it can be stored verbatim in a store's
attributes and compared on ``--resume``.  Ranges are ``[lo, hi]`` lists (inclusive).
"""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

SCENARIOS = ("street", "city", "openroad")
DENOISE_PREFILTERS = ("accurate", "fast", "none")
DENOISE_QUALITIES = ("high", "balanced", "fast")

DEFAULTS: dict = {
    # Quality keys chosen on a measured cost/PSNR front (benchmarks/bench_render_quality.py,
    # RESULTS.md issue 18); the `default` preset is these values.
    "render": {
        "width": 1280, "height": 720, "hfov_deg": 80.0,
        "samples": 12, "adaptive_threshold": 0.05, "denoise": True,
        "denoise_prefilter": "fast",  # OIDN guiding-pass prefilter: accurate | fast | none
        "denoise_quality": "high",  # OIDN quality: high | balanced | fast (balanced = high on CPU)
        "max_bounces": 4, "light_tree": True,
        "path_guiding": False,  # Cycles' path guiding (CPU only; ignored on a GPU)
        # Sky importance map for light sampling, pixels wide; 0 = Cycles' automatic size, which
        # for the sky texture costs ~3 core-s per scene to build (measured) for no visible gain.
        "world_map_resolution": 256,
        # Cap on one sample's direct light (Cycles' sample_clamp_direct), 0 = off.  Sun glints
        # on window glass are sub-pixel and far brighter than white: unclamped, their display
        # value converges so slowly that they dominate the RGB's error at any affordable spp.
        "clamp_direct": 10.0,
        # Night frames: samples x this (their gain lifts the noise of dark parts and the
        # aliasing of small lamps; measured in RESULTS.md, issue 16).  The clamp above is in
        # units of the frame's white after dark, whatever the night gain.
        "night_samples_scale": 2.0,
        "clip_end": 1000.0,
        "device": "auto",  # auto | cpu | gpu
        "threads": 0,  # 0 = all cores
    },
    "scene": {
        "scenario": "street",
        "mix": {"street": 0.25, "city": 0.25, "openroad": 0.5},  # DAISnet §4.1: 10k/10k/20k
        "max_instances": 64,
        "instance_classes": ["car", "van", "truck", "bus", "pedestrian",
                             "traffic_sign", "traffic_light", "pole"],
        "vehicle_mix": {"car": 0.6, "van": 0.15, "truck": 0.1, "bus": 0.15},
        "placement_tries": 50,
        "frames_per_layout": 1,  # >1: several camera frames per built layout (amortises building)
        "frame_interval_s": [1.0, 2.0],  # DAISnet: a scene check every 1-2 s
    },
    # Camera poses follow DAISnet eq. (1) for streets; openroad cameras ride behind a car.
    "street": {
        "length": 100.0, "road_width": 12.0, "lanes": 2, "sidewalk_width": 4.0,
        # DAISnet eq. (1)
        "camera_x": [-5.0, 5.0], "camera_height": [1.0, 2.0], "camera_along": [0.0, 50.0],
        "camera_yaw_deg": [-10.0, 10.0], "camera_pitch_deg": [-4.0, 4.0],
        "vehicles": [2, 3], "vehicle_lateral": [-10.0, 10.0], "vehicle_ahead": [10.0, 50.0],
        "vehicle_yaw_deg": [0.0, 360.0],
        "parked_vehicles": [2, 6], "moving_vehicles": [0, 2],
        "pedestrians_per_vehicle": 3.0, "pedestrian_lateral": [-10.0, 10.0],
        "pedestrian_ahead": [4.0, 40.0],
        "furniture": [6, 16], "trees": [4, 10],
        "camera_speed": [1.0, 4.0], "vehicle_speed": [4.0, 12.0],
    },
    "city": {
        "road_width": 14.0, "lanes": 4, "sidewalk_width": 5.0, "block": 80.0,
        "camera_back": [15.0, 35.0], "camera_x": [-5.0, 5.0], "camera_height": [1.2, 2.0],
        "camera_yaw_deg": [-15.0, 15.0], "camera_pitch_deg": [-4.0, 2.0],
        "vehicles": [4, 10], "crowds": [2, 4], "crowd_size": [3, 8], "pedestrians": [4, 10],
        "furniture": [6, 14], "trees": [2, 6],
        "camera_speed": [0.0, 6.0], "vehicle_speed": [0.0, 10.0],
    },
    "openroad": {
        "lanes_per_direction": [1, 3], "lane_width": 3.5, "roads": [2, 4],
        "vehicles": [12, 30], "follow_distance": [5.0, 15.0], "camera_height": [1.3, 1.8],
        "min_vehicles_ahead": 3, "ahead_range": 60.0, "scene_checks": 20,
        "trees": [10, 30], "poles": [6, 14], "traffic_speed": [12.0, 25.0],
    },
    "assets": {
        "dir": "",  # --assets DIR: folders named by kind (car/, bus/, pedestrian_cutouts/, ...)
        "mode": "extend",  # extend: mix with procedural assets; replace: always use the user's
        "probability": 0.5,  # extend mode: chance a placed object of a kind with models uses one
        "cutout_probability": 0.5,  # chance a pedestrian is a 2D cutout (when cutouts exist)
        "index": [],  # filled by the driver from a scan of dir; part of the config for resume
    },
    # Issue 16's variety knobs.  variety.enabled=false switches every one off and reproduces
    # the scenes of before byte for byte (same seed); each knob also switches off alone.
    "variety": {"enabled": True},
    # The real camera (scenes/camera.py), drawn per layout; a [0, 0] range or a 0 fraction
    # switches a knob off.  Offsets add to render.hfov_deg and the scenario's camera draws.
    "camera": {
        "hfov_offset_deg": [-25.0, 10.0],  # horizontal field of view 55-90° (80 + offset)
        "roll_deg": [-2.0, 2.0],
        "pitch_offset_deg": [-2.0, 2.0],
        "height_offset_m": [-0.2, 0.6],  # up to an SUV/van roof
        # Share of layouts whose lens has radial distortion (OpenCV k1, k2, k3; the field of
        # view stays the image's true one); the others are pinhole cameras.
        "distortion_fraction": 0.3,
        "k1": [-0.3, 0.0], "k2": [0.05, 0.12], "k3": [0.0, 0.0],
        "shutter_s": [0.0, 0.01],  # exposure time: motion blur of the RGB only
    },
    "people": {
        "natural": True,  # arms hang 5-15° (standing/walking); false: every figure gap-rich as before
        "gap_rich_fraction": 0.15,  # with natural: share of figures in the gap-rich poses (arms 5-35°, 10 % raised)
        "child_fraction": 0.1,  # children 1.0-1.45 m (adults 1.5-1.95 m); 0 = none
        "group_fraction": 0.2,  # street and sidewalk figures joined by 1-2 walking beside them; 0 = none
    },
    "density": {
        # City road users where the camera looks (queues at the stop lines, crosswalks,
        # corners, the sidewalks ahead) instead of anywhere on the 160 m intersection.
        "city_in_view": True,
        "city_red_share": 0.5,  # city_in_view: share of scenes whose camera street waits at the light
        "vehicles_scale": 1.0,  # scales every scenario's vehicle count ranges (rounded)
        "pedestrians_scale": 1.0,  # scales street and city pedestrian counts (openroad has none)
    },
    # The camera pipeline (generator/post.py): post-processes on the linear render, drawn per
    # layout into spec.post (scenes/camera_pipeline.py).  false, a [0, 0] range or the response
    # {"agx": 1, others 0} switches an effect off; all off: Blender's PNG exactly as before.
    "camera_pipeline": {
        "auto_exposure": True,  # meter each frame and scale it to a drawn key, as a camera does
        "ae_key": [0.11, 0.2],  # target trimmed geometric-mean linear luminance (0.18 = middle grey)
        "ae_max_gain_ev": 8.0,  # the most AE lifts a frame (slowest shutter x highest ISO): night stays darker
        "ae_min_gain_ev": -8.0,  # the most AE darkens one
        "ae_dusk_key_scale": 0.6,  # dusk and night frames are metered to a lower key, as cameras do
        "ae_night_key_scale": 0.3,
        "response": {"agx": 0.5, "sigmoid": 0.3, "gamma": 0.2},  # response curve weights (agx = Blender's view)
        "sigmoid_contrast": [0.55, 0.75],  # log-log slope of the sigmoid curve in the shadows
        "gamma": [2.0, 2.4],  # the gamma curve: clip at white, then x^(1/gamma)
        "noise_shot": [0.0, 2e-4],  # Poisson part: variance per unit linear signal at gain 1 (x gain)
        "noise_read": [0.0, 3e-4],  # Gaussian part: std at gain 1 (x gain)
        "bloom_intensity": [0.0, 0.06],  # share of the light above threshold spread into the halo
        "bloom_threshold": [0.8, 1.5],  # exposed linear luminance (1 = white) where bloom starts
        "vignetting": [0.0, 0.3],  # share of light lost in the image corners
        "rain_streaks": True,  # streaks where spec.weather's rain > 0
        "rain_streak_length": [0.04, 0.1],  # of the image height, for the nearest drops
        "rain_tilt_deg": [0.0, 15.0],  # from vertical, either way (wind)
    },
    "fog": {
        "fraction": 0.1,  # share of layouts in fog (Koschmieder's law on the linear RGB, from exact depth)
        "visibility_m": [50.0, 600.0],  # meteorological visibility (beta = 2.996 / visibility), log-uniform
    },
    "lighting": {
        "sun_elevation_deg": [10.0, 70.0], "sun_azimuth_deg": [0.0, 360.0],
        "sun_strength": [2.0, 5.0], "sun_angle_deg": [0.5, 3.0],
        "sun_color_warmth": [0.0, 0.35],  # 0 = white, 1 = deep orange
        "sky_strength": [0.3, 1.0], "air_density": [0.5, 2.0], "aerosol_density": [0.2, 3.0],
        "ozone_density": [0.5, 2.0], "exposure": [-0.5, 0.5],
        # Issue 16, time of day (scenes.weather): a share of dusk and night scenes per scenario,
        # drawn from their own stream; both 0 = daylight only, the scenes of before.
        "night_fraction": 0.15, "dusk_fraction": 0.1,
        "dusk_sun_elevation_deg": [-4.0, 6.0],  # the sun near or just below the horizon
        "night_sun_elevation_deg": [-40.0, -12.0],  # recorded (astronomical night); the moon lights
        "moon_strength": [0.0, 0.01],  # moonlight, W/m^2 (the day sun is 2-5)
        "night_sky_radiance": [0.0005, 0.002],  # uniform dark-blue night sky, before exposure
        "night_exposure": [4.0, 5.5],  # stops added at night (a camera's gain)
        "dusk_exposure": [1.0, 4.0],  # stops added at dusk, from the highest to the lowest sun
        "street_lamp_power": [100.0, 250.0],  # W per lamp head (a Cycles spot light)
        "headlight_power": [40.0, 100.0],  # W per headlight of vehicles in traffic
        "window_lit_fraction": [0.1, 0.5],  # mean share of lit windows (per building 0..2x)
        "max_lights": 64,  # spot lights per scene at most, nearest to the camera first
    },
    # Issue 16, weather (scenes.weather): each a share of scenes, then its strength.  Fog and
    # rain streaks are post-processes (the post section); rain here is the recorded intensity.
    "weather": {
        "cloudy_fraction": 0.3, "cloud_cover": [0.3, 1.0],  # dims and softens the sun, greys the sky
        "wet_fraction": 0.2, "wetness": [0.3, 1.0], "puddles": [0.0, 0.8],  # wet roads (materials)
        "rain_fraction": 0.5, "rain": [0.2, 1.0],  # share of wet scenes where it rains; intensity
    },
}

PRESETS: dict[str, dict] = {
    "tiny": {"render": {"width": 160, "height": 90, "samples": 2, "max_bounces": 1, "adaptive_threshold": 0.0,
                        "denoise_quality": "fast"}},
    "small": {"render": {"width": 640, "height": 360, "samples": 8}},
    "default": {},
    "high": {"render": {"samples": 64, "max_bounces": 8, "adaptive_threshold": 0.01, "denoise_prefilter": "accurate"}},
}


class ConfigError(ValueError):
    """A user mistake in a config file or override; reported as one line."""


def merge(base: dict, over: dict, path: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        where = f"{path}{key}"
        if key not in out:
            raise ConfigError(f"unknown config key '{where}'")
        if isinstance(out[key], dict) and key != "mix" and key != "vehicle_mix":
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{where}' must be a table")
            out[key] = merge(out[key], value, where + ".")
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict:
    """'street.vehicles=[1,2]' -> {'street': {'vehicles': [1, 2]}} (value parsed as JSON if it can be)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not KEY=VALUE")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def load_file(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    text = p.read_text()
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml
            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is a user mistake
        raise ConfigError(f"cannot parse config file {p}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping")
    return data


def build_config(preset: str = "default", files=(), overrides=()) -> dict:
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset '{preset}' (choose from {', '.join(PRESETS)})")
    cfg = merge(DEFAULTS, PRESETS[preset])
    for f in files:
        cfg = merge(cfg, load_file(f))
    for o in overrides:
        cfg = merge(cfg, parse_override(o))
    validate(cfg)
    return cfg


def _is_number(x) -> bool:
    """A finite int or float (JSON's NaN and Infinity are refused)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def validate(cfg: dict) -> None:
    """Type-check against DEFAULTS and check every range; raise ConfigError naming the key."""
    def walk(ref, val, path):
        if isinstance(ref, dict) and path not in ("scene.mix", "scene.vehicle_mix"):
            for k in ref:
                walk(ref[k], val[k], f"{path}.{k}" if path else k)
            return
        if isinstance(ref, list) and len(ref) == 2 and all(_is_number(r) for r in ref):
            if not (isinstance(val, list) and len(val) == 2 and all(_is_number(v) for v in val)):
                raise ConfigError(f"config key '{path}' must be a range [lo, hi], got {json.dumps(val)}")
            if val[0] > val[1]:
                raise ConfigError(f"config key '{path}' has lo > hi: {json.dumps(val)}")
            if all(isinstance(r, int) for r in ref) and not all(isinstance(v, int) for v in val):
                raise ConfigError(f"config key '{path}' must be a range of integers")
            if min(val) < 0 and not any(s in path for s in ("lateral", "_x", "yaw", "pitch", "exposure", "camera.",
                                                            "elevation")):
                raise ConfigError(f"config key '{path}' must not be negative: {json.dumps(val)}")
        elif _is_number(ref):
            if not _is_number(val):
                raise ConfigError(f"config key '{path}' must be a number, got {json.dumps(val)}")
            if isinstance(ref, int) and not isinstance(val, int):
                raise ConfigError(f"config key '{path}' must be an integer, got {json.dumps(val)}")
            if path.split(".")[0] in SCENARIOS:  # a scenario's sizes and counts: a road -5 m wide is a typo
                size = any(w in path.rsplit(".", 1)[-1] for w in ("width", "length", "block", "lanes", "range"))
                if val < 0 or (size and val == 0):
                    raise ConfigError(f"config key '{path}' must be {'positive' if size else 'non-negative'}, "
                                      f"got {json.dumps(val)}")
        elif isinstance(ref, bool) and not isinstance(val, bool):
            raise ConfigError(f"config key '{path}' must be true or false, got {json.dumps(val)}")
        elif isinstance(ref, str) and not isinstance(val, str):
            raise ConfigError(f"config key '{path}' must be a string, got {json.dumps(val)}")

    walk(DEFAULTS, cfg, "")
    r = cfg["render"]
    if not (16 <= r["width"] <= 8192 and 16 <= r["height"] <= 8192):
        raise ConfigError("render.width and render.height must be between 16 and 8192")
    if r["samples"] < 1:
        raise ConfigError("render.samples must be at least 1")
    if not 1.0 <= r["hfov_deg"] <= 170.0:
        raise ConfigError("render.hfov_deg must be between 1 and 170")
    if r["device"] not in ("auto", "cpu", "gpu"):
        raise ConfigError("render.device must be auto, cpu or gpu")
    for key, names in (("denoise_prefilter", DENOISE_PREFILTERS), ("denoise_quality", DENOISE_QUALITIES)):
        if r[key] not in names:
            raise ConfigError(f"render.{key} must be {', '.join(names[:-1])} or {names[-1]}, got {json.dumps(r[key])}")
    if not 0.0 <= r["adaptive_threshold"] <= 1.0:
        raise ConfigError("render.adaptive_threshold must be between 0 (off) and 1")
    if r["world_map_resolution"] and not 16 <= r["world_map_resolution"] <= 8192:
        raise ConfigError("render.world_map_resolution must be 0 (automatic) or between 16 and 8192")
    if r["clamp_direct"] < 0:
        raise ConfigError("render.clamp_direct must be 0 (off) or positive")
    if not 0 < r["night_samples_scale"] <= 64:
        raise ConfigError("render.night_samples_scale must be positive and at most 64")
    if not 0 <= r["max_bounces"] <= 1024:
        raise ConfigError("render.max_bounces must be between 0 and 1024")
    s = cfg["scene"]
    if s["scenario"] not in SCENARIOS + ("mix",):
        raise ConfigError(f"scene.scenario must be one of {', '.join(SCENARIOS + ('mix',))}")
    for key, names in (("mix", SCENARIOS), ("vehicle_mix", ("car", "van", "truck", "bus"))):
        d = s[key]
        if not isinstance(d, dict) or set(d) - set(names) or not d or \
                any(not _is_number(v) or v < 0 for v in d.values()) or sum(d.values()) <= 0:
            raise ConfigError(f"scene.{key} must map some of {', '.join(names)} to non-negative weights")
    a = cfg["assets"]
    if a["mode"] not in ("extend", "replace"):
        raise ConfigError("assets.mode must be extend or replace")
    for key in ("probability", "cutout_probability"):
        if not 0.0 <= a[key] <= 1.0:
            raise ConfigError(f"assets.{key} must be between 0 and 1")
    for key in ("gap_rich_fraction", "child_fraction", "group_fraction"):
        if not 0.0 <= cfg["people"][key] <= 1.0:
            raise ConfigError(f"people.{key} must be between 0 and 1, got {cfg['people'][key]}")
    from scenes.camera import camera_problem
    if problem := camera_problem(cfg):
        raise ConfigError(problem)
    _validate_density(cfg)
    _validate_time_and_weather(cfg)
    _validate_camera_pipeline(cfg)
    if s["frames_per_layout"] < 1:
        raise ConfigError("scene.frames_per_layout must be at least 1")
    if not 1 <= s["max_instances"] <= 1023:
        raise ConfigError("scene.max_instances must be between 1 and 1023")
    from scenes.classes import CLASS_IDS
    bad = [c for c in s["instance_classes"] if c not in CLASS_IDS]
    if bad:
        raise ConfigError(f"scene.instance_classes has unknown classes {bad}")


def _validate_density(cfg: dict) -> None:
    """The density keys and the scenario count keys the generic walk cannot judge."""
    d = cfg["density"]
    for key in ("vehicles_scale", "pedestrians_scale"):
        if not 0.0 <= d[key] <= 20.0:
            raise ConfigError(f"density.{key} must be between 0 and 20, got {d[key]}")
    if not 0.0 <= d["city_red_share"] <= 1.0:
        raise ConfigError(f"density.city_red_share must be between 0 and 1, got {d['city_red_share']}")
    if cfg["street"]["pedestrians_per_vehicle"] < 0:
        raise ConfigError(f"street.pedestrians_per_vehicle must not be negative, got {cfg['street']['pedestrians_per_vehicle']}")
    if cfg["openroad"]["min_vehicles_ahead"] < 0:
        raise ConfigError("openroad.min_vehicles_ahead must not be negative")
    if cfg["openroad"]["scene_checks"] < 1:
        raise ConfigError("openroad.scene_checks must be at least 1")


def _validate_time_and_weather(cfg: dict) -> None:
    """Issue 16 time of day and weather (scenes.weather): shares and intensities in [0, 1],
    elevations on the sky."""
    lc, wc = cfg["lighting"], cfg["weather"]
    for key in ("night_fraction", "dusk_fraction"):
        if not 0.0 <= lc[key] <= 1.0:
            raise ConfigError(f"lighting.{key} must be between 0 and 1, got {lc[key]}")
    if lc["night_fraction"] + lc["dusk_fraction"] > 1.0:
        raise ConfigError("lighting.night_fraction + lighting.dusk_fraction must not exceed 1")
    lo, hi = lc["sun_elevation_deg"]
    if lo < 0 or hi > 90:
        raise ConfigError(f"lighting.sun_elevation_deg (daylight) must lie within [0, 90], got {[lo, hi]}")
    for key in ("dusk_sun_elevation_deg", "night_sun_elevation_deg"):
        lo, hi = lc[key]
        if lo < -90 or hi > 90:
            raise ConfigError(f"lighting.{key} must lie within [-90, 90], got {[lo, hi]}")
    if lc["night_sun_elevation_deg"][1] > 0:
        raise ConfigError("lighting.night_sun_elevation_deg must be below the horizon (<= 0)")
    if lc["max_lights"] < 0:
        raise ConfigError(f"lighting.max_lights must be 0 or more, got {lc['max_lights']}")
    for key in ("cloudy_fraction", "wet_fraction", "rain_fraction"):
        if not 0.0 <= wc[key] <= 1.0:
            raise ConfigError(f"weather.{key} must be between 0 and 1, got {wc[key]}")
    for key in ("cloud_cover", "wetness", "puddles", "rain"):
        if wc[key][1] > 1.0:
            raise ConfigError(f"weather.{key} must lie within [0, 1], got {wc[key]}")


def _validate_camera_pipeline(cfg: dict) -> None:
    """Ranges of the camera pipeline and fog knobs that are outside physics."""
    c, f = cfg["camera_pipeline"], cfg["fog"]
    checks = (
        ("camera_pipeline.ae_key", 0 < c["ae_key"][0] and c["ae_key"][1] <= 1, "must lie in (0, 1]"),
        ("camera_pipeline.ae_max_gain_ev", 0 <= c["ae_max_gain_ev"] <= 24, "must be between 0 and 24 stops"),
        ("camera_pipeline.ae_min_gain_ev", -24 <= c["ae_min_gain_ev"] <= 0, "must be between -24 and 0 stops"),
        ("camera_pipeline.ae_dusk_key_scale", 0 < c["ae_dusk_key_scale"] <= 1, "must lie in (0, 1]"),
        ("camera_pipeline.ae_night_key_scale", 0 < c["ae_night_key_scale"] <= 1, "must lie in (0, 1]"),
        ("camera_pipeline.sigmoid_contrast", 0 < c["sigmoid_contrast"][0] and c["sigmoid_contrast"][1] <= 3,
         "must lie in (0, 3]"),
        ("camera_pipeline.gamma", 1 <= c["gamma"][0] and c["gamma"][1] <= 4, "must lie in [1, 4]"),
        ("camera_pipeline.noise_shot", c["noise_shot"][1] <= 0.1, "must lie in [0, 0.1]"),
        ("camera_pipeline.noise_read", c["noise_read"][1] <= 0.1, "must lie in [0, 0.1]"),
        ("camera_pipeline.bloom_intensity", c["bloom_intensity"][1] <= 1, "must lie in [0, 1]"),
        ("camera_pipeline.bloom_threshold", c["bloom_threshold"][0] > 0, "must be positive"),
        ("camera_pipeline.vignetting", c["vignetting"][1] < 1, "must lie in [0, 1)"),
        ("camera_pipeline.rain_streak_length", c["rain_streak_length"][1] <= 1, "must lie in [0, 1] (of the height)"),
        ("camera_pipeline.rain_tilt_deg", c["rain_tilt_deg"][1] <= 60, "must lie in [0, 60]"),
        ("fog.fraction", 0 <= f["fraction"] <= 1, "must be between 0 and 1"),
        ("fog.visibility_m", f["visibility_m"][0] >= 1 and f["visibility_m"][1] <= 1e5,
         "must lie in [1, 100000] m (beta = 2.996 / visibility)"),
    )
    for key, ok, what in checks:
        if not ok:
            value = key.split(".", 1)[1]
            section = c if key.startswith("camera") else f
            raise ConfigError(f"config key '{key}' {what}, got {json.dumps(section[value])}")
    w = c["response"]
    if any(v < 0 for v in w.values()) or sum(w.values()) <= 0:
        raise ConfigError("camera_pipeline.response must map agx, sigmoid, gamma to non-negative weights, "
                          "not all 0")
