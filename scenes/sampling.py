"""Scene specs drawn from (seed, index, config): layouts, frames of a layout, lighting."""
from __future__ import annotations

import math

import numpy as np

from scenes import camera_pipeline, density, layouts
from scenes import portable_math as pm
from scenes import weather as sky_and_weather
from scenes.camera import sample_camera
from scenes.draws import scene_rng, uniform
from scenes.spec import SceneSpec


def sample_scene(cfg: dict, seed: int, index: int) -> SceneSpec:
    """The spec of scene ``index`` of a run with ``seed`` and ``cfg``.

    With ``scene.frames_per_layout = F``, scenes ``L*F .. L*F+F-1`` are frames of layout
    ``L``: the same objects, seen ``frame_interval_s`` apart while the camera and moving
    vehicles advance along their velocities."""
    frames = cfg["scene"]["frames_per_layout"]
    layout, frame = divmod(int(index), frames)
    spec = sample_layout(cfg, seed, layout)
    if frame:
        timing = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), layout, 7])))
        t = float(timing.uniform(*cfg["scene"]["frame_interval_s"], size=frame).sum())
        spec = advance(spec, t)
    spec.index, spec.frame = int(index), frame
    return spec


def advance(spec: SceneSpec, t: float) -> SceneSpec:
    """The layout ``t`` seconds later: camera and moving objects moved along their velocity."""
    out = SceneSpec.from_json(spec.to_json())
    cam = out.camera
    cam.position = [p + v * t for p, v in zip(cam.position, cam.velocity)]
    for o in out.objects:
        if o.velocity:
            o.position = [p + v * t for p, v in zip(o.position, o.velocity)]
    out.time_s = spec.time_s + t
    return out


def sample_layout(cfg: dict, seed: int, layout: int) -> SceneSpec:
    rng = scene_rng(seed, layout)
    scenario = cfg["scene"]["scenario"]
    if scenario == "mix":
        names = sorted(cfg["scene"]["mix"])
        w = np.array([cfg["scene"]["mix"][n] for n in names], float)
        scenario = names[int(rng.choice(len(names), p=w / w.sum()))]
    r = cfg["render"]
    lcfg = density.scaled_config(cfg)  # cfg itself unless a density scale is set
    camera, objects = layouts.LAYOUTS[scenario](rng, lcfg)
    camera.hfov_deg, camera.width, camera.height = float(r["hfov_deg"]), int(r["width"]), int(r["height"])
    sample_camera(camera, cfg, seed, layout)
    d = density.options(cfg)
    if d and d["city_in_view"] and scenario == "city":  # its own stream: nothing else changes
        objects = density.city_in_view(density.density_rng(seed, layout), lcfg, camera, objects)
    for k, o in enumerate(objects):
        o.name = o.name or f"{o.kind}.{k:03d}"
        if "cutout" in o.params:  # a 2D figure faces the camera, as in DAISnet
            dx, dy = camera.position[0] - o.position[0], camera.position[1] - o.position[1]
            o.yaw_deg = math.degrees(pm.atan2(dy, dx)) % 360.0
    spec = SceneSpec(index=layout, seed=seed, scenario=scenario, camera=camera,
                     lighting=sample_lighting(rng, cfg["lighting"]), objects=objects, layout=layout)
    sky_and_weather.apply(cfg, seed, layout, spec.lighting, spec.weather)  # own streams; no-op when off
    # Last: the camera pipeline reads the layout's weather, and draws from its own streams.
    return camera_pipeline.decorate(spec, cfg)


def sample_lighting(rng: np.random.Generator, ranges: dict) -> dict:
    warmth = uniform(rng, ranges["sun_color_warmth"])
    # Warm light: blue and green fall off faster than red as warmth rises.
    colour = [1.0, 1.0 - 0.35 * warmth, 1.0 - 0.75 * warmth]
    return {
        "sun_elevation_deg": uniform(rng, ranges["sun_elevation_deg"]),
        "sun_azimuth_deg": uniform(rng, ranges["sun_azimuth_deg"]),
        "sun_strength": uniform(rng, ranges["sun_strength"]),
        "sun_angle_deg": uniform(rng, ranges["sun_angle_deg"]),
        "sun_color": colour,
        "sky_strength": uniform(rng, ranges["sky_strength"]),
        "air_density": uniform(rng, ranges["air_density"]),
        "aerosol_density": uniform(rng, ranges["aerosol_density"]),
        "ozone_density": uniform(rng, ranges["ozone_density"]),
        "sky_type": "MULTIPLE_SCATTERING",
        "exposure": uniform(rng, ranges["exposure"]),
    }
