"""Time of day (day / dusk / night) and weather (cloud cover, wet roads, rain) of a layout.

Issue 16.  The draws come from their own generators, seeded from ``(seed, layout, K, part)``,
never from the scene's ``rng``: with the knobs off (``variety.enabled=false``, or the shares
0) nothing is drawn and nothing is written, so the spec is the one of before byte for byte.
Time of day and weather use separate streams, so switching one off leaves the other's draws.

What the renderer reads (generator/world.py, generator/night.py, generator/variants.py):

* ``lighting``: the existing keys keep their meaning and hold the final values (cloud cover
  and dusk have already dimmed ``sun_strength``); new keys, present only when drawn:
  ``time_of_day``; ``sky_grey`` (0..1, mix of the sky texture towards a uniform sky) and
  ``sky_grey_radiance`` (that sky's linear RGB radiance); ``moon_*`` (the Sun light becomes
  the moon); ``street_lamp_power``, ``headlight_power``, ``window_lit_fraction`` (lamps,
  traffic lights, vehicle lights and windows glow: scenes.emitters).
* ``weather``: ``cloud_cover``, ``wetness``, ``puddles``, ``puddle_seed``, ``rain`` (rain is
  only recorded here; its streaks are a post-process).
"""
from __future__ import annotations

import math

import numpy as np

from scenes import portable_math as pm
from scenes.draws import uniform

K = 16001  # this module's stream constant (issue 16, night and weather)
TIMES = ("day", "dusk", "night")
MOON_COLOR = [0.75, 0.85, 1.0]
NIGHT_SKY = (0.35, 0.5, 1.0)  # hue of the night sky, scaled by night_sky_radiance
OVERCAST = (0.93, 0.96, 1.0)


def _stream(seed: int, layout: int, part: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(layout), K, part])))


def enabled(cfg: dict) -> bool:
    return bool((cfg.get("variety") or {}).get("enabled", False))


def apply(cfg: dict, seed: int, layout: int, lighting: dict, weather: dict) -> None:
    """Draw this layout's time of day and weather and write them into ``lighting`` and
    ``weather`` (in place).  Does nothing with the knobs off or a config that predates them."""
    if not enabled(cfg):
        return
    lc, wc = cfg["lighting"], cfg.get("weather")
    if wc and (wc["cloudy_fraction"] > 0 or wc["wet_fraction"] > 0):
        weather.update(sample_weather(_stream(seed, layout, 1), wc))
    if "night_fraction" in lc and (lc["night_fraction"] > 0 or lc["dusk_fraction"] > 0):
        u = float(_stream(seed, layout, 0).random())
        time = "night" if u < lc["night_fraction"] else "dusk" if u < lc["night_fraction"] + lc["dusk_fraction"] \
            else "day"
        lighting["time_of_day"] = time
        if time != "day":
            _after_dark(_stream(seed, layout, 2), lc, lighting, time)
    cover = weather.get("cloud_cover", 0.0)
    if cover > 0:
        _overcast(lighting, cover)


def sample_weather(rng: np.random.Generator, wc: dict) -> dict:
    """Cloud cover, wetness, puddles and rain: a fixed number of draws, whatever the outcome."""
    u = rng.random(3)
    strength = rng.random(4)
    lerp = lambda bounds, t: float(bounds[0] + (bounds[1] - bounds[0]) * t)  # noqa: E731
    wet = lerp(wc["wetness"], strength[1]) if u[1] < wc["wet_fraction"] else 0.0
    rain = lerp(wc["rain"], strength[3]) if wet and u[2] < wc["rain_fraction"] else 0.0
    cover = lerp(wc["cloud_cover"], strength[0]) if u[0] < wc["cloudy_fraction"] else 0.0
    if rain:  # it rains from a heavy sky
        cover = max(cover, 0.7 + 0.3 * rain)
    out = {"cloud_cover": cover, "wetness": wet, "puddles": lerp(wc["puddles"], strength[2]) * (wet > 0),
           "rain": rain}
    out["puddle_seed"] = float(rng.random()) if wet else 0.0
    return out


def _after_dark(rng: np.random.Generator, lc: dict, lighting: dict, time: str) -> None:
    """Dusk or night: the sun at or below the horizon, more exposure, lamps and windows on."""
    night = time == "night"
    day_strength = lighting["sun_strength"]
    elev = uniform(rng, lc["night_sun_elevation_deg" if night else "dusk_sun_elevation_deg"])
    lighting["sun_elevation_deg"] = elev
    gain = uniform(rng, lc["night_exposure" if night else "dusk_exposure"])
    if not night:  # the lower the sun, the more gain: dusk_exposure spans the dusk elevations
        (lo, hi), (e0, e1) = lc["dusk_exposure"], lc["dusk_sun_elevation_deg"]
        gain = lo + (hi - lo) * ((e1 - elev) / (e1 - e0) if e1 > e0 else 0.5)
    lighting["exposure"] = lighting["exposure"] + gain
    # Low sun: most of its light is scattered away on the long path, and what is left is red.
    lighting["sun_strength"] = day_strength * 0.5 * min(max((elev + 1.0) / 7.0, 0.0), 1.0)
    warmth = uniform(rng, (0.6, 0.95))
    lighting["sun_color"] = [1.0, 1.0 - 0.35 * warmth, 1.0 - 0.75 * warmth]
    lighting["street_lamp_power"] = uniform(rng, lc["street_lamp_power"])
    lighting["headlight_power"] = uniform(rng, lc["headlight_power"])
    lighting["window_lit_fraction"] = uniform(rng, lc["window_lit_fraction"]) * (1.0 if night else 0.6)
    moon = (uniform(rng, lc["moon_strength"]), uniform(rng, (15.0, 60.0)), uniform(rng, (0.0, 360.0)))
    sky = uniform(rng, lc["night_sky_radiance"])
    if night:
        lighting.update(moon_strength=moon[0], moon_elevation_deg=moon[1], moon_azimuth_deg=moon[2],
                        moon_color=list(MOON_COLOR), sky_grey=1.0, sky_grey_radiance=[c * sky for c in NIGHT_SKY])


def _overcast(lighting: dict, cover: float) -> None:
    """Clouds dim the sun and widen it (soft shadows) and turn the sky to a uniform grey whose
    brightness follows the light above the clouds."""
    key = "moon_strength" if "moon_strength" in lighting else "sun_strength"
    clear = lighting[key]
    dim = 1.0 - 0.9 * cover
    lighting[key] = clear * dim * dim
    lighting["sun_angle_deg"] = lighting["sun_angle_deg"] + 40.0 * cover
    if lighting.get("time_of_day") == "night":
        return
    elev = lighting["sun_elevation_deg"]
    # A heavy overcast passes ~20 % of the clear-day light, a thin one ~50 %: the grey sky's
    # radiance is what the dimmed sun gives up, spread over the hemisphere (E = pi L).
    grey = clear * max(pm.sin(math.radians(elev)), 0.03) * (0.45 - 0.2 * cover) / math.pi
    lighting["sky_grey"] = cover
    lighting["sky_grey_radiance"] = [c * grey for c in OVERCAST]
