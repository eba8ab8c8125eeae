"""The camera pipeline, fog and rain streaks change the RGB only: every annotation array is
byte-identical with every effect on and off, and the same scene gives the same grain."""
import copy

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

SIZE = ["render.width=96", "render.height=54", "scene.scenario=street"]
EVERYTHING = {
    "exposure": {"key": 0.18, "min_gain_ev": -8.0, "max_gain_ev": 8.0},
    "noise": {"shot": 2e-4, "read": 3e-4},
    "bloom": {"intensity": 0.06, "threshold": 0.8},
    "vignetting": 0.3,
    "rain_streaks": {"length": 0.1, "tilt_deg": 8.0},
}


def _variant(spec, post, weather):
    s = copy.deepcopy(spec)
    s.post, s.weather = copy.deepcopy(post), {**s.weather, **weather}
    return s


@pytest.fixture(scope="module")
def renders():
    from generator.render import render_scene
    from scenes.config import build_config
    from scenes.sampling import sample_scene
    cfg = build_config("tiny", overrides=SIZE + ["variety.enabled=false"])
    base = sample_scene(cfg, 5, 0)
    assert base.post == {} and base.weather == {}
    fog = {"fog_visibility_m": 80.0, "rain": 0.8}
    specs = {
        "off": base,
        "agx": _variant(base, EVERYTHING, fog),
        "sigmoid": _variant(base, {**EVERYTHING, "response": {"curve": "sigmoid", "contrast": 0.6}}, fog),
        "identity": _variant(base, {"vignetting": 0.0}, {}),  # the linear path, nothing changed
    }
    out = {name: render_scene(s, cfg)[0] for name, s in specs.items()}
    out["again"] = render_scene(_variant(base, specs["sigmoid"].post, fog), cfg)[0]
    out["again agx"] = render_scene(_variant(base, EVERYTHING, fog), cfg)[0]
    return out, specs


def test_annotations_are_byte_identical_with_every_effect_on(renders):
    arrays, _ = renders
    ref = arrays["off"]
    assert int(ref["num_instances"]) > 0
    for name, a in arrays.items():
        assert set(a) == set(ref)
        for key in ref:
            if key != "rgb":
                assert np.asarray(a[key]).tobytes() == np.asarray(ref[key]).tobytes(), (name, key)
    for name in ("agx", "sigmoid"):
        assert np.abs(arrays[name]["rgb"].astype(int) - ref["rgb"]).mean() > 5, name


def test_same_scene_same_rgb_and_applied_exposure_recorded(renders):
    arrays, specs = renders
    np.testing.assert_array_equal(arrays["again"]["rgb"], arrays["sigmoid"]["rgb"])
    np.testing.assert_array_equal(arrays["again agx"]["rgb"], arrays["agx"]["rgb"])
    applied = specs["agx"].post["applied"]
    assert set(applied) == {"fog_airlight", "metered", "gain_ev"} and -8 <= applied["gain_ev"] <= 8
    assert "applied" not in specs["identity"].post


def test_linear_path_reproduces_blenders_view_transform(renders):
    arrays, _ = renders
    # Equal but for Blender's dither (+-1 code value, drawn differently for a render and an image).
    diff = np.abs(arrays["identity"]["rgb"].astype(int) - arrays["off"]["rgb"])
    assert diff.max() <= 1 and diff.mean() < 0.5, (diff.max(), diff.mean())
