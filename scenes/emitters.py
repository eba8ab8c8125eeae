"""What glows after dark, and where the lights are: pure numpy, from the spec alone.

At dusk and night (``lighting.time_of_day``) street-lamp lenses, traffic-light lenses, the
head- and tail-lights of vehicles in traffic (objects with a velocity; parked ones stay
dark) and a share of building windows emit light.  :func:`glow` gives the emitted radiance
per face of an object's mesh (the renderer uploads it as a face attribute that the night
variants of the materials emit), :func:`light_sources` the Cycles lights that really light
the scene: one spot light under each lamp head and one ahead of each headlight.

Every choice (which windows are lit, their colour, the lamp colour) is drawn from streams
seeded by ``(seed, layout, K, part, object index)``, so a layout renders the same whatever
the worker, and the spec needs no more than ``lighting``'s keys.
"""
from __future__ import annotations

import math

import numpy as np

from scenes import portable_math as pm
from scenes.mesh import Mesh
from scenes.spec import Placed, SceneSpec
from scenes.weather import K

GLOW_MATERIALS = ("headlight", "taillight", "window_glass", "facade_glass")
VEHICLES = ("car", "van", "truck", "bus")
# Emitted radiance (linear, before exposure).  Lenses far above what a lit surface returns,
# so they read as light sources; windows like a lit room seen from outside.
LENS = 40.0
HEADLIGHT = 30.0
TAILLIGHT = (6.0, 0.25, 0.12)
SIGNAL = 12.0
WINDOW = 0.2
LAMP_COLORS = {"sodium": (1.0, 0.62, 0.28), "warm_led": (1.0, 0.85, 0.65), "led": (0.95, 0.95, 1.0)}
WINDOW_COLORS = ((1.0, 0.7, 0.4), (1.0, 0.88, 0.7), (0.8, 0.88, 1.0))
WINDOW_WEIGHTS = (0.5, 0.3, 0.2)


def after_dark(lighting: dict) -> bool:
    return lighting.get("time_of_day") in ("dusk", "night")


def in_traffic(o: Placed) -> bool:
    return o.kind in VEHICLES and o.velocity is not None


def _rng(spec: SceneSpec, part: int, k: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        [int(spec.seed), int(max(spec.layout, 0)), K, part, int(k)])))


def lamp_color(spec: SceneSpec) -> tuple[float, float, float]:
    """One lamp type per scene (streets are lit by one kind of lamp)."""
    names = sorted(LAMP_COLORS)
    return LAMP_COLORS[names[int(_rng(spec, 3).integers(len(names)))]]


def islands(faces: np.ndarray) -> np.ndarray:
    """Connected-component label per face (faces sharing a vertex belong together): each
    window pane and lamp lens is a closed solid of its own."""
    if not len(faces):
        return np.zeros(0, np.int64)
    label = np.arange(int(faces.max()) + 1)
    while True:
        face_label = label[faces].min(1)
        new = label.copy()
        np.minimum.at(new, faces.ravel(), np.repeat(face_label, 3))
        new = new[new]  # path halving: boxes settle in two or three rounds
        if np.array_equal(new, label):
            return face_label
        label = new


def _faces_of(mesh: Mesh, name: str) -> np.ndarray:
    if name not in mesh.materials:
        return np.zeros(len(mesh.faces), bool)
    return mesh.material == mesh.materials.index(name)


def glow(spec: SceneSpec, k: int, mesh: Mesh) -> np.ndarray | None:
    """(F, 3) float32 emitted radiance of the faces of object ``k``'s mesh after dark, or
    None when it has nothing that glows (or it is daytime)."""
    if not after_dark(spec.lighting) or not any(m in mesh.materials for m in GLOW_MATERIALS):
        return None
    o = spec.objects[k]
    out = np.zeros((len(mesh.faces), 3), np.float32)
    head, tail = _faces_of(mesh, "headlight"), _faces_of(mesh, "taillight")
    if o.kind == "street_light":
        out[head] = np.asarray(lamp_color(spec), np.float32) * LENS
    elif o.kind == "traffic_light":
        out[head] = mesh.tint[head] * SIGNAL  # the tint holds the signal's colour and state
    elif in_traffic(o):
        out[head] = HEADLIGHT
        out[tail] = TAILLIGHT
    if o.kind == "building":
        _windows(spec, k, mesh, out)
    return out


def _windows(spec: SceneSpec, k: int, mesh: Mesh, out: np.ndarray) -> None:
    rng = _rng(spec, 4, k)
    share = min(1.0, 2.0 * spec.lighting.get("window_lit_fraction", 0.0) * float(rng.random()))
    for name, scale in (("window_glass", 1.0), ("facade_glass", 0.7)):
        sel = np.flatnonzero(_faces_of(mesh, name))
        if not len(sel):
            continue
        lab = islands(mesh.faces[sel])
        ids, inverse = np.unique(lab, return_inverse=True)
        n = len(ids)
        lit = rng.random(n) < share * scale
        colour = np.asarray(WINDOW_COLORS, np.float32)[rng.choice(len(WINDOW_COLORS), n, p=WINDOW_WEIGHTS)]
        level = rng.uniform(0.3, 1.5, n).astype(np.float32) * WINDOW
        pane = colour * (level * lit)[:, None]
        out[sel] = pane[inverse]


def light_sources(spec: SceneSpec, k: int, mesh: Mesh) -> list[dict]:
    """Cycles lights of object ``k`` in its local frame: position, direction (unit), power (W),
    colour, spot cone (deg), blend, radius (m).  Empty in daylight."""
    if not after_dark(spec.lighting):
        return []
    o = spec.objects[k]
    head = np.flatnonzero(_faces_of(mesh, "headlight"))
    if not len(head) or not (o.kind == "street_light" or in_traffic(o)):
        return []
    lab = islands(mesh.faces[head])
    out = []
    for lens in np.unique(lab):
        pts = mesh.vertices[mesh.faces[head[lab == lens]]].reshape(-1, 3).astype(np.float64)
        centre = (pts.min(0) + pts.max(0)) / 2
        if o.kind == "street_light":
            out.append(dict(position=(centre - [0, 0, 0.04]).tolist(), direction=[0.0, 0.0, -1.0],
                            power=spec.lighting["street_lamp_power"], color=list(lamp_color(spec)),
                            spot_deg=140.0, blend=0.3, radius=0.12))
        else:  # ahead of the lens, aimed a little down the road
            down = math.radians(4.0)
            out.append(dict(position=(centre + [0.06, 0, 0]).tolist(), direction=[pm.cos(down), 0.0, -pm.sin(down)],
                            power=spec.lighting["headlight_power"], color=[1.0, 0.95, 0.88],
                            spot_deg=70.0, blend=0.6, radius=0.05))
    return out


def world_position(o: Placed, local) -> np.ndarray:
    a = math.radians(o.yaw_deg)
    x, y, z = local
    return np.array([o.position[0] + pm.cos(a) * x - pm.sin(a) * y,
                     o.position[1] + pm.sin(a) * x + pm.cos(a) * y, o.position[2] + z])


def nearest(spec: SceneSpec, lights: list[tuple[int, dict]], most: int) -> list[tuple[int, dict]]:
    """The ``most`` lights nearest to the camera (ties keep spec order): many lamps are many
    lights, and the far ones light little of what the camera sees."""
    if len(lights) <= most:
        return lights
    cam = np.asarray(spec.camera.position)
    d = [pm.norm(world_position(spec.objects[k], L["position"]) - cam) for k, L in lights]
    order = sorted(range(len(lights)), key=lambda i: (d[i], i))[:most]
    return [lights[i] for i in sorted(order)]
