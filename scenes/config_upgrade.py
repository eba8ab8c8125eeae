"""A store's recorded config, completed for the rgsd reading it: how a run survives an upgrade.

A scene store records the whole config it was rendered with (scenes/store.py).  A later rgsd
may have keys the recorder did not; a store written before a key existed was rendered as if
that key were *off*, so ``--resume``/``--only`` must render its missing scenes with the off
value, not today's default.  Every key added to ``DEFAULTS`` after stores were first written
is listed in ADDED_KEYS with that value (tests/test_resume_upgrade.py fails on a key that is
in neither ADDED_KEYS nor the first store format's list, so a new key cannot be forgotten).
"""
from __future__ import annotations

import copy
import json

from scenes.config import DEFAULTS, ConfigError

# Key -> the value that reproduces what the rgsd without that key made.  Where a group is
# switched off by one key (variety.enabled gates every issue-16 knob), its other keys keep
# their defaults: they are read only when the gate is on.
ADDED_KEYS: dict[str, object] = {
    # user assets (38276c6): none without assets.dir
    "assets.dir": "", "assets.index": [], "assets.mode": "extend", "assets.probability": 0.5,
    "assets.cutout_probability": 0.5,
    # frames of a layout (b48c157): one frame per layout
    "scene.frames_per_layout": 1, "scene.frame_interval_s": [1.0, 2.0],
    "street.camera_speed": [1.0, 4.0], "street.vehicle_speed": [4.0, 12.0],
    "city.camera_speed": [0.0, 6.0], "city.vehicle_speed": [0.0, 10.0], "openroad.traffic_speed": [12.0, 25.0],
    # render quality (b3a99eb, 7c7fa45): Cycles' own settings of before
    "render.denoise_prefilter": "accurate", "render.denoise_quality": "high", "render.light_tree": True,
    "render.path_guiding": False, "render.world_map_resolution": 0, "render.clamp_direct": 0.0,
    # issue 16 (6432fb0 ... 281fd33): every knob behind variety.enabled
    "variety.enabled": False,
    "people.natural": True, "people.gap_rich_fraction": 0.15, "people.child_fraction": 0.1, "people.group_fraction": 0.2,
    # night noise (c73adaf): night frames had the day's samples
    "render.night_samples_scale": 1.0,
}
# Whole groups added behind variety.enabled: any of their keys takes its default.
GATED_GROUPS = ("camera", "camera_pipeline", "fog", "density", "weather")
GATED_KEYS = ("lighting.night_fraction", "lighting.dusk_fraction", "lighting.dusk_exposure",
              "lighting.dusk_sun_elevation_deg", "lighting.headlight_power", "lighting.max_lights",
              "lighting.moon_strength", "lighting.night_exposure", "lighting.night_sky_radiance",
              "lighting.night_sun_elevation_deg", "lighting.street_lamp_power", "lighting.window_lit_fraction")


def leaf_keys(d: dict, path: str = "") -> dict:
    """{dotted key: value} of a config's leaves (``mix`` tables are leaves)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v and k not in ("mix", "vehicle_mix"):
            out.update(leaf_keys(v, f"{path}{k}."))
        else:
            out[f"{path}{k}"] = v
    return out


def set_key(cfg: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = cfg
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = copy.deepcopy(value)


def _gated(key: str) -> bool:
    return key.split(".")[0] in GATED_GROUPS or key in GATED_KEYS or key.startswith("people.")


def off_value(key: str, variety_on: bool = False):
    """The value of a key a store does not record; ConfigError when rgsd cannot know it (a
    knob behind variety.enabled of a store that has the variety on: its writer had some
    knobs and not others)."""
    if _gated(key) and variety_on:
        raise ConfigError(f"the store's config has variety.enabled on but no '{key}'; resume it with the rgsd "
                          "that wrote it")
    if key in ADDED_KEYS:
        return ADDED_KEYS[key]
    if _gated(key):
        node = DEFAULTS
        for p in key.split("."):
            node = node[p]
        return node
    raise ConfigError(f"the store's config has no '{key}' and this rgsd does not know the value that "
                      "reproduces its scenes; resume it with the rgsd that wrote it")


def complete_recorded(recorded: dict) -> tuple[dict, dict]:
    """(the recorded config with every key it lacks at its off value, {key: value filled})."""
    have = leaf_keys(recorded)
    cfg, filled = copy.deepcopy(recorded), {}
    for key in leaf_keys(DEFAULTS):
        if key not in have and not any(key.startswith(h + ".") for h in have):
            filled[key] = off_value(key, bool(have.get("variety.enabled", False)))
            set_key(cfg, key, filled[key])
    return cfg, filled


def filled_note(url: str, filled: dict) -> str:
    """The one line that says which keys a resume took at their off values."""
    shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in list(filled.items())[:6])
    more = f" and {len(filled) - 6} more" if len(filled) > 6 else ""
    return (f"note: {url} was written by an older rgsd without {len(filled)} config key(s); they take the values "
            f"that reproduce its scenes: {shown}{more}")
