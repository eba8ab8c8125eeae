"""Issue 16, the real camera: field of view, roll, height and pitch variety, radial lens
distortion and the shutter.  Knobs off: the scenes of before, byte for byte.  Blender
tests: motion blur changes the RGB and no annotation array, and no camera state leaks
from one scene into the next (the lens itself is proven in tests/test_render_geometry.py)."""
import math

import numpy as np
import pytest

from scenes.camera import distort, radial_lens, view_bounds
from scenes.config import ConfigError, build_config
from scenes.objects import in_view
from scenes.sampling import sample_scene
from scenes.spec import Camera, Placed
from tests.cli_util import gen, one_line_error
from tests.variety_off import BEFORE, all_off_but
from tests.variety_off import spec_digest as digest


@pytest.mark.parametrize("scenario", sorted(BEFORE))
def test_camera_knobs_off_reproduce_the_scenes_of_before(scenario):
    assert digest(scenario, *all_off_but()) == BEFORE[scenario]
    assert digest(scenario, "variety.enabled=false") == BEFORE[scenario]
    assert digest(scenario, *all_off_but("camera")) != BEFORE[scenario]  # the camera knobs are on by default


def test_each_camera_knob_switches_off_alone():
    on = build_config("tiny", overrides=["scene.scenario=street", "camera.distortion_fraction=1"])
    cams = [sample_scene(on, 4, i).camera for i in range(6)]
    for knob, field in (("camera.roll_deg=[0,0]", "roll_deg"), ("camera.shutter_s=[0,0]", "shutter_s"),
                        ("camera.hfov_offset_deg=[0,0]", "hfov_deg")):
        cfg = build_config("tiny", overrides=["scene.scenario=street", "camera.distortion_fraction=1", knob])
        for i, ref in enumerate(cams):
            cam = sample_scene(cfg, 4, i).camera
            assert getattr(cam, field) == (80.0 if field == "hfov_deg" else 0.0)
            same = [f for f in ("roll_deg", "shutter_s", "pitch_deg", "position") if f != field]
            assert all(getattr(cam, f) == getattr(ref, f) for f in same), knob
            assert [cam.lens[k] for k in ("k1", "k2", "k3")] == [ref.lens[k] for k in ("k1", "k2", "k3")]


def test_draws_are_deterministic_per_layout_and_within_the_ranges():
    cfg = build_config("tiny", overrides=["scene.scenario=mix", "scene.frames_per_layout=2"])
    c = cfg["camera"]
    specs = [sample_scene(cfg, 9, i) for i in range(40)]
    assert [s.to_json() for s in specs[:6]] == [sample_scene(cfg, 9, i).to_json() for i in range(6)]
    for a, b in zip(specs[::2], specs[1::2]):  # two frames of one layout: one camera rig
        assert (a.camera.hfov_deg, a.camera.roll_deg, a.camera.lens, a.camera.shutter_s) == \
               (b.camera.hfov_deg, b.camera.roll_deg, b.camera.lens, b.camera.shutter_s)
    cams = [s.camera for s in specs[::2]]
    assert len({cam.hfov_deg for cam in cams}) == 20
    for cam in cams:
        assert 80 + c["hfov_offset_deg"][0] <= cam.hfov_deg <= 80 + c["hfov_offset_deg"][1]
        assert c["roll_deg"][0] <= cam.roll_deg <= c["roll_deg"][1]
        assert c["shutter_s"][0] <= cam.shutter_s <= c["shutter_s"][1]
    lensed = [cam for cam in cams if cam.lens]
    assert 1 <= len(lensed) <= 14  # 30 % of 20
    for cam in lensed:
        k = cam.intrinsics()
        t = math.tan(math.radians(cam.hfov_deg) / 2)
        # The image's edge is the ray at half the field of view: fx x_d(edge) = W / 2.
        assert math.isclose(k["fx"] * distort(t, cam.lens["k1"], cam.lens["k2"], cam.lens["k3"]), cam.width / 2)


def test_a_barrel_lens_sees_more_in_the_corners_and_keeps_what_it_sees():
    cam = Camera([0.0, 0.0, 1.5], 0.0, 0.0, 0.0, 60.0, 160, 90)
    lens = Camera([0.0, 0.0, 1.5], 0.0, 0.0, 0.0, 60.0, 160, 90, lens=radial_lens(-0.3, 0.1, 0.0, 60.0, 160, 90))
    w2c = cam.world_to_camera()
    x0, x1, y0, y1 = view_bounds(lens)
    pin = cam.intrinsics()
    assert x1 > pin["cx"] / pin["fx"] and -y0 > pin["cy"] / pin["fy"]  # wider than the pinhole
    # A pole just outside the pinhole's top-right corner, inside the lens's.
    z = 20.0
    corner = np.array([pin["cx"] / pin["fx"], pin["cy"] / pin["fy"]]) * z * 1.02
    pole = Placed("box", {"class": "pole", "length": 0.05, "width": 0.05, "height": 0.05, "material": "metal"},
                  [float(corner[0]), z, 1.5 + float(corner[1]) - 0.025], 0.0)
    lens_intr = {**lens.intrinsics(), "bounds": (x0, x1, y0, y1)}
    assert not in_view(pole, w2c, pin) and in_view(pole, w2c, lens_intr)


@pytest.mark.parametrize("override, words", [
    (["camera.k1=[-0.5,-0.4]", "camera.k2=[0,0]", "camera.distortion_fraction=1"], "folds the image over"),
    (["camera.k1=[-0.3,0]", "camera.k2=[0,0.12]"], "folds the image over"),
    (["camera.hfov_offset_deg=[-85,0]"], "camera.hfov_offset_deg"),
    (["render.hfov_deg=150", "camera.hfov_offset_deg=[0,30]"], "at most 170"),
    (["camera.shutter_s=[-0.01,0]"], "camera.shutter_s"),
    (["camera.shutter_s=[0,2]"], "camera.shutter_s"),
    (["camera.distortion_fraction=1.5"], "camera.distortion_fraction"),
    (["camera.roll_deg=[3,1]"], "lo > hi"),
    (["camera.k1=0.1"], "camera.k1' must be a range"),
    (["camera.focal=1"], "unknown config key 'camera.focal'"),
])
def test_bad_camera_knobs_are_one_line(override, words):
    with pytest.raises(ConfigError, match=words) as e:
        build_config("tiny", overrides=override)
    assert "\n" not in str(e.value)


def test_the_cli_refuses_a_folding_lens_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = gen("scenes", "--n", "1", "--preset", "tiny", "--workers", "0", "--out", "x.zarr",
            "--set", "camera.k1=[-0.6,-0.5]", "--set", "camera.k2=[0,0]")
    one_line_error(r, "folds the image over")
    assert not list(tmp_path.iterdir())


def test_the_default_ranges_pass_and_drawn_lenses_stay_monotonic():
    cfg = build_config("default")
    c = cfg["camera"]
    rng = np.random.default_rng(0)
    for _ in range(200):
        k = [rng.uniform(*c[n]) for n in ("k1", "k2", "k3")]
        fov = 80 + rng.uniform(*c["hfov_offset_deg"])
        assert radial_lens(*k, fov, 1280, 720) is not None


# --- Blender ---------------------------------------------------------------------------

def _moving_spec(shutter=0.0, lens=None):
    from tests.test_render_geometry import analytic_spec
    spec = analytic_spec(lens)
    spec.objects[1].velocity = [6.0, 0.0, 0.0]  # the near box crosses the view
    spec.objects[4].velocity = [0.0, -12.0, 0.0]  # the bus comes closer
    spec.camera.velocity = [0.0, 3.0, 0.0]
    spec.camera.shutter_s = shutter
    return spec


@pytest.mark.blender
@pytest.mark.slow
def test_motion_blur_is_rgb_only_and_no_camera_state_leaks():
    pytest.importorskip("bpy")
    from generator.render import render_scene
    from tests.test_render_geometry import FOV, LENS, H, W
    cfg = build_config("tiny", overrides=[f"render.width={W}", f"render.height={H}", f"render.hfov_deg={FOV}",
                                          "render.samples=4"])
    still, _ = render_scene(_moving_spec(), cfg)
    render_scene(_moving_spec(0.05, LENS), cfg)  # a lens and a shutter, then the plain camera again
    blurred, _ = render_scene(_moving_spec(0.05), cfg)
    again, _ = render_scene(_moving_spec(), cfg)
    for name, a in still.items():
        assert np.array_equal(a, again[name], equal_nan=a.dtype.kind == "f"), name
        if name != "rgb":
            assert np.array_equal(a, blurred[name], equal_nan=a.dtype.kind == "f"), name
    from tests.test_render_geometry import expected
    diff = np.abs(still["rgb"].astype(int) - blurred["rgb"].astype(int)).max(-1)
    vis = expected()[1]
    edge = np.zeros_like(vis, bool)  # the boxes' vertical silhouettes, where motion smears
    edge[:, 1:] |= vis[:, 1:] != vis[:, :-1]
    edge[:, :-1] |= vis[:, 1:] != vis[:, :-1]
    assert (diff > 30).sum() > 20 and diff[edge].mean() > 5 * diff[~edge].mean()


def test_the_lens_test_is_not_vacuous():
    """tests/test_render_geometry.py's lens case: its rays really differ from the pinhole's."""
    from tests.test_render_geometry import LENS, expected
    pin, lens = expected(), expected(LENS)
    assert (pin[1] != lens[1]).sum() > 200  # visible object per pixel
    both = np.isfinite(pin[0]) & np.isfinite(lens[0])
    assert (np.abs(pin[0][both] / lens[0][both] - 1) > 0.01).mean() > 0.5  # depth
