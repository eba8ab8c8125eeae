"""Issue 16, the camera pipeline and fog: pure post-processes on the linear render
(generator/post.py) and their per-layout draws (scenes/camera_pipeline.py), without Blender."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from generator import post
from scenes import camera_pipeline
from scenes.config import ConfigError, build_config
from scenes.sampling import sample_scene
from scenes.spec import Camera, SceneSpec

sys.path.insert(0, str(Path(__file__).parent))
from analytic import pixel_rays  # noqa: E402
from cli_util import gen, one_line_error  # noqa: E402

# Every camera-pipeline and fog knob off, one by one (variety.enabled stays true).
from tests.variety_off import BEFORE, POST_OFF, all_off_but, spec_digest  # noqa: E402


def test_knobs_off_reproduce_the_specs_of_before():
    assert spec_digest("city", "variety.enabled=false") == BEFORE["city"]
    assert spec_digest("city", *all_off_but()) == BEFORE["city"]
    cfg = build_config("tiny", overrides=["variety.enabled=false"])
    assert all(not camera_pipeline.active(sample_scene(cfg, 11, i)) for i in range(6))


def test_each_effect_draws_from_its_own_stream():
    on = build_config("tiny", overrides=["fog.fraction=1"])
    a = sample_scene(on, 4, 2)
    assert {"exposure", "noise", "bloom", "vignetting"} <= set(a.post) and a.weather["fog_visibility_m"] > 0
    for off in POST_OFF:
        b = sample_scene(build_config("tiny", overrides=["fog.fraction=1", off]), 4, 2)
        for key in set(a.post) & set(b.post):
            if key == "noise" and "noise_" in off:  # the switched-off half is 0, the other stays
                gone, kept = ("shot", "read") if "shot" in off else ("read", "shot")
                assert b.post[key][gone] == 0.0 and a.post[key][kept] == b.post[key][kept]
            else:
                assert a.post[key] == b.post[key], (off, key)
        assert b.objects == a.objects and b.lighting == a.lighting
    again = sample_scene(on, 4, 2)
    assert again.to_json() == a.to_json()
    assert sample_scene(on, 4, 3).post != a.post  # another layout, other draws


def test_draws_stay_in_their_ranges():
    cfg = build_config("tiny", overrides=["fog.fraction=0.5"])
    c = cfg["camera_pipeline"]
    posts = [camera_pipeline.sample_post(c, 1, i) for i in range(400)]
    curves = [p.get("response", {}).get("curve", "agx") for p in posts]
    for name, w in c["response"].items():
        assert abs(curves.count(name) / 400 - w) < 0.1, name
    fog = [camera_pipeline.sample_fog(cfg["fog"], 1, i).get("fog_visibility_m") for i in range(400)]
    fog = [v for v in fog if v]
    assert 160 < len(fog) < 240 and all(50 <= v <= 600 for v in fog)
    assert 0.35 < np.mean([v < math.sqrt(50 * 600) for v in fog]) < 0.65  # log-uniform: half below the middle
    for p in posts:
        assert c["ae_key"][0] <= p["exposure"]["key"] <= c["ae_key"][1]
        assert 0 <= p["vignetting"] <= c["vignetting"][1]
        assert "rain_streaks" not in p  # no rain: nothing recorded
    spec = sample_scene(cfg, 1, 0)  # and the sampler writes them into the spec
    assert spec.post == camera_pipeline.sample_post(c, 1, 0)


def test_rain_streak_knobs_are_drawn_only_with_rain():
    cfg = build_config("tiny")
    spec = sample_scene(cfg, 1, 0)
    spec.weather["rain"], spec.post = 0.7, {}
    camera_pipeline.decorate(spec, cfg)
    s = spec.post["rain_streaks"]
    assert 0.04 <= s["length"] <= 0.1 and abs(s["tilt_deg"]) <= 15


def _camera(w=64, h=40, fov=70.0):
    return Camera([0.0, 0.0, 1.5], 0.0, 0.0, 0.0, fov, w, h)


def _spec(post=None, weather=None, w=64, h=40, index=0):
    return SceneSpec(index, 3, "street", _camera(w, h), {}, post=post or {}, weather=weather or {})


def test_fog_is_koschmieder_exactly():
    w, h, fov, z, vis = 64, 40, 70.0, 37.0, 120.0
    depth = np.full((h, w), z, np.float32)
    depth[:8] = np.inf  # sky
    rays = pixel_rays(w, h, fov)  # independent ray caster, z = 1
    dist = z * np.linalg.norm(rays, axis=-1)
    want = np.exp(-2.995732 / vis * dist)
    factor = post.ray_length_factor(_camera(w, h, fov).intrinsics())
    t = post.transmittance(depth, factor, post.beta_of(vis))
    np.testing.assert_allclose(t[8:], want[8:], rtol=2e-6)
    assert (t[:8] == 0).all()
    # Visibility is where a black object's contrast with the sky falls to 5 %.
    assert post.transmittance(np.array([[vis]]), np.ones((1, 1)), post.beta_of(vis))[0, 0] == pytest.approx(0.05)
    rgb = np.random.default_rng(0).uniform(0, 2, (h, w, 3)).astype(np.float32)
    a = np.array([0.8, 0.85, 0.9], np.float32)
    out = post.koschmieder(rgb, t, a)
    np.testing.assert_allclose(out, rgb * want[..., None] * (depth[..., None] < np.inf)
                               + a * (1 - np.where(np.isfinite(depth), want, 0))[..., None], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[:8], np.broadcast_to(a, (8, w, 3)))


def test_airlight_comes_from_the_sky():
    depth = np.full((40, 64), 10.0, np.float32)
    depth[:10] = np.inf
    rgb = np.full((40, 64, 3), 0.05, np.float32)
    rgb[:5], rgb[5:10] = [0.9, 0.95, 1.0], [0.3, 0.4, 0.6]  # bright horizon glow, darker zenith
    np.testing.assert_allclose(post.airlight(rgb, depth), [0.9, 0.95, 1.0], rtol=1e-5)
    rgb[20, 30] = [5, 5, 5]  # no sky in view: the brightest dark-channel pixels
    assert post.airlight(rgb, np.full((40, 64), 10.0, np.float32))[0] > 0.05


def test_auto_exposure_hits_its_target_within_its_limits():
    rng = np.random.default_rng(1)
    linear = np.exp(rng.normal(-4, 1.2, (90, 160, 1))).astype(np.float32) * [1.0, 0.9, 0.8]
    depth = np.full((90, 160), 10.0, np.float32)
    for key in (0.1, 0.18):
        spec = _spec({"exposure": {"key": key, "min_gain_ev": -8.0, "max_gain_ev": 8.0}}, w=160, h=90)
        out, applied, display = post.process(linear, depth, spec)
        assert not display and post.meter(out) == pytest.approx(key, rel=1e-4)
        assert applied["gain_ev"] == pytest.approx(math.log2(key / post.meter(linear)), abs=1e-3)
    night = linear * 2.0 ** -12
    spec = _spec({"exposure": {"key": 0.18, "min_gain_ev": -8.0, "max_gain_ev": 8.0}}, w=160, h=90)
    out, applied, _ = post.process(night, depth, spec)
    assert applied["gain_ev"] == 8.0 and post.meter(out) < 0.18 / 8  # lifted, but only 8 stops


def test_sensor_noise_is_poisson_gaussian_scaled_with_gain():
    x, shot, read = 0.3, 2e-4, 3e-4
    rgb = np.full((200, 300, 3), x, np.float32)
    for gain in (1.0, 16.0):
        out = post.sensor_noise(rgb, gain, shot, read, np.random.default_rng(2))
        want = gain * shot * x + (gain * read) ** 2
        assert out.var() == pytest.approx(want, rel=0.02) and out.mean() == pytest.approx(x, abs=3e-3 * gain ** .5)
    spec = _spec({"noise": {"shot": shot, "read": read}})
    a, b = (post.process(np.full((40, 64, 3), x, np.float32), np.ones((40, 64)), spec)[0] for _ in range(2))
    np.testing.assert_array_equal(a, b)  # same scene, same grain
    c = post.process(np.full((40, 64, 3), x, np.float32), np.ones((40, 64)), _spec(spec.post, index=1))[0]
    assert not np.array_equal(a, c)  # another frame, other grain


def test_off_is_identity():
    rng = np.random.default_rng(3)
    linear = rng.uniform(0, 3, (40, 64, 4)).astype(np.float32)
    depth = rng.uniform(1, 50, (40, 64)).astype(np.float32)
    out, applied, display = post.process(linear, depth, _spec())
    assert not display and applied == {}
    np.testing.assert_array_equal(out, linear[..., :3])
    np.testing.assert_array_equal(post.bloom(linear[..., :3], 0.2, 100.0), linear[..., :3])
    np.testing.assert_array_equal(post.vignette((40, 64), 0.0), np.ones((40, 64), np.float32))
    # rain recorded but none falling: no streaks
    spec = _spec({"rain_streaks": {"length": 0.1, "tilt_deg": 5.0}}, {"rain": 0.0})
    np.testing.assert_array_equal(post.process(linear, depth, spec)[0], linear[..., :3])


def test_bloom_spreads_light_and_keeps_energy():
    rgb = np.full((90, 160, 3), 0.1, np.float32)
    rgb[40:44, 70:74] = 20.0
    out = post.bloom(rgb, 0.1, 1.0)
    assert out.sum() == pytest.approx(rgb.sum(), rel=2e-3)
    assert out[42, 82, 1] > 0.1 * 1.1 and out[42, 72, 1] < 20.0  # halo around, source dimmer
    np.testing.assert_allclose(out[:5, :5], rgb[:5, :5], atol=0.02)


def test_vignetting_darkens_the_corners_only():
    v = post.vignette((90, 160), 0.3)
    assert v[45, 80] == pytest.approx(1.0, abs=1e-3) and v[0, 0] == pytest.approx(0.7, abs=0.01)
    assert (np.diff(v[45, 80:]) <= 0).all()


def test_response_curves_keep_middle_grey_and_order():
    x = np.geomspace(1e-4, 64, 200).astype(np.float32)
    for r in ({"curve": "sigmoid", "contrast": 0.6}, {"curve": "gamma", "gamma": 2.2}):
        y = post.respond(x, r)
        assert (np.diff(y) >= 0).all() and 0 <= y.min() and y.max() <= 1
        assert post.respond(np.float32(0.18), r) == pytest.approx(post.MID_GREY_DISPLAY, abs=0.01)
    out, _, display = post.process(np.full((4, 4, 3), 0.18, np.float32), np.ones((4, 4)),
                                   _spec({"response": {"curve": "gamma", "gamma": 2.2}}, w=4, h=4))
    assert display and out.dtype == np.uint8 and (out == 117).all()


def test_rain_streaks_are_hidden_behind_near_surfaces():
    depth = np.full((180, 320), np.inf, np.float32)
    depth[:, :160] = 1.0  # a wall 1 m away on the left: every drop is behind it
    a = post.rain_alpha(depth, 1.0, 0.08, 10.0, np.random.default_rng(4))
    assert (a[:, :160] == 0).all() and 0.004 < a[:, 160:].mean() < 0.15  # faint, as rain on video
    b = post.rain_alpha(depth, 1.0, 0.08, 10.0, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    spec = _spec({"rain_streaks": {"length": 0.08, "tilt_deg": 10.0}}, {"rain": 0.8}, w=320, h=180)
    rgb = np.full((180, 320, 3), 0.05, np.float32)
    rgb[:20] = 1.0
    out = post.process(rgb, depth, spec)[0]
    assert out[:, 160:].mean() > rgb[:, 160:].mean() and np.array_equal(out[:, :160], rgb[:, :160])


@pytest.mark.parametrize("bad", [
    "fog.visibility_m=[0,100]", "fog.visibility_m=[-5,100]", "fog.fraction=1.5", "camera_pipeline.ae_key=[0,0.2]",
    "camera_pipeline.vignetting=[0,1]", "camera_pipeline.ae_max_gain_ev=-1", "camera_pipeline.gamma=[0.5,2]",
    'camera_pipeline.response={"agx":0,"sigmoid":0,"gamma":0}', 'camera_pipeline.response={"agx":-1}',
    "camera_pipeline.noise_read=[0,1]", "camera_pipeline.bloom_threshold=[0,1]", "camera_pipeline.exposure=1",
    "fog.density=0.1"])
def test_bad_knobs_are_one_line(bad, tmp_path):
    with pytest.raises(ConfigError):
        build_config("tiny", overrides=[bad])
    out = tmp_path / "s.zarr"
    one_line_error(gen("scenes", "--n", "1", "--out", out, "--preset", "tiny", "--set", bad))
    assert not out.exists()


def test_fog_through_a_lens_uses_the_distorted_rays():
    """With radial distortion each pixel's ray is the lens's, as the analytic ray caster has it."""
    from generator.post import lens_ray_length_factor
    from scenes.camera import radial_lens
    lens = radial_lens(-0.2, 0.08, 0.0, 80.0, 160, 90)
    k = {"width": 160, "height": 90, **{c: lens[c] for c in ("fx", "fy", "cx", "cy")}}
    ref = np.linalg.norm(pixel_rays(160, 90, 80.0, k=(-0.2, 0.08, 0.0)), axis=-1)
    np.testing.assert_allclose(lens_ray_length_factor(k, lens), ref, rtol=1e-9)


def test_night_and_dusk_are_metered_to_a_lower_key(tmp_path):
    from scenes.camera_pipeline import sample_post
    c = build_config("tiny")["camera_pipeline"]
    day, dusk, night = (sample_post(c, 3, 5, 0.0, t)["exposure"]["key"] for t in ("day", "dusk", "night"))
    assert dusk == day * c["ae_dusk_key_scale"] and night == day * c["ae_night_key_scale"]
    out = tmp_path / "s.zarr"
    one_line_error(gen("scenes", "--n", "1", "--preset", "tiny", "--out", out,
                       "--set", "camera_pipeline.ae_night_key_scale=0"), "ae_night_key_scale")
    assert not out.exists()
