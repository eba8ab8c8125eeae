"""A store written by an older rgsd resumes with its own recorded config (issue 23): keys it
does not record take the values that reproduce its scenes (scenes/config_upgrade.py)."""
import copy
import shutil

import numpy as np
import pytest

from scenes import config_upgrade
from scenes.config import DEFAULTS, ConfigError, build_config, validate
from scenes.sampling import sample_scene
from tests.cli_util import gen, one_line_error

# The config keys of the first store format (f780943): every later key needs an off value.
V1_KEYS = {
    *(f"city.{k}" for k in ("block", "camera_back", "camera_height", "camera_pitch_deg", "camera_x", "camera_yaw_deg",
                            "crowd_size", "crowds", "furniture", "lanes", "pedestrians", "road_width",
                            "sidewalk_width", "trees", "vehicles")),
    *(f"lighting.{k}" for k in ("aerosol_density", "air_density", "exposure", "ozone_density", "sky_strength",
                                "sun_angle_deg", "sun_azimuth_deg", "sun_color_warmth", "sun_elevation_deg",
                                "sun_strength")),
    *(f"openroad.{k}" for k in ("ahead_range", "camera_height", "follow_distance", "lane_width",
                                "lanes_per_direction", "min_vehicles_ahead", "poles", "roads", "scene_checks",
                                "trees", "vehicles")),
    *(f"render.{k}" for k in ("adaptive_threshold", "clip_end", "denoise", "device", "height", "hfov_deg",
                              "max_bounces", "samples", "threads", "width")),
    *(f"scene.{k}" for k in ("instance_classes", "max_instances", "mix", "placement_tries", "scenario",
                             "vehicle_mix")),
    *(f"street.{k}" for k in ("camera_along", "camera_height", "camera_pitch_deg", "camera_x", "camera_yaw_deg",
                              "furniture", "lanes", "length", "moving_vehicles", "parked_vehicles",
                              "pedestrian_ahead", "pedestrian_lateral", "pedestrians_per_vehicle", "road_width",
                              "sidewalk_width", "trees", "vehicle_ahead", "vehicle_lateral", "vehicle_yaw_deg",
                              "vehicles")),
}


def _only_keys(cfg: dict, keys: set, path: str = "") -> dict:
    out = {}
    for k, v in cfg.items():
        where = f"{path}{k}"
        if isinstance(v, dict) and k not in ("mix", "vehicle_mix"):
            inner = _only_keys(v, keys, where + ".")
            if inner:
                out[k] = inner
        elif where in keys:
            out[k] = v
    return out


def test_every_key_added_since_the_first_format_has_an_off_value():
    for key in config_upgrade.leaf_keys(DEFAULTS):
        if key not in V1_KEYS:
            config_upgrade.off_value(key)  # ConfigError names a key added without one


def test_a_first_format_config_completes_to_the_scenes_with_every_later_knob_off():
    recorded = _only_keys(build_config("tiny"), V1_KEYS)
    cfg, filled = config_upgrade.complete_recorded(recorded)
    validate(cfg)
    assert filled["variety.enabled"] is False and filled["render.night_samples_scale"] == 1.0
    assert filled["scene.frames_per_layout"] == 1 and filled["assets.dir"] == ""
    assert config_upgrade.leaf_keys(cfg) == {**config_upgrade.leaf_keys(recorded), **filled}
    off = build_config("tiny", overrides=["variety.enabled=false", "render.night_samples_scale=1"])
    assert sample_scene(cfg, 3, 1).to_json() == sample_scene(off, 3, 1).to_json()
    assert config_upgrade.complete_recorded(build_config("tiny")) == (build_config("tiny"), {})


def test_a_missing_key_without_a_known_off_value_is_refused():
    recorded = copy.deepcopy(build_config("tiny"))
    del recorded["street"]["lanes"]  # in every version: no rgsd wrote a store without it
    with pytest.raises(ConfigError, match="street.lanes"):
        config_upgrade.complete_recorded(recorded)
    del recorded["fog"]  # a gated knob missing while the store's variety is on: its writer is unknown
    with pytest.raises(ConfigError, match="fog"):
        config_upgrade.off_value("fog.fraction", variety_on=True)


TINY = ("--preset", "tiny", "--set", "render.width=64", "--set", "render.height=40", "--seed", "5")


@pytest.mark.blender
def test_resume_after_an_upgrade_equals_a_clean_run(tmp_path):
    pytest.importorskip("bpy")
    from scenes import store as scene_store
    clean, old = str(tmp_path / "clean.zarr"), str(tmp_path / "old.zarr")
    off = ("--set", "variety.enabled=false", "--set", "render.night_samples_scale=1")
    r = gen("scenes", "--n", "3", "--out", clean, *TINY, *off)
    assert r.exit_code == 0, r.output
    shutil.copytree(clean, old)
    st = scene_store.open_store(old, mode="r+")
    recorded = st.attrs["config"]
    del recorded["variety"]  # as the rgsd before issue 16 wrote it
    del recorded["render"]["night_samples_scale"]  # and before the night-noise change
    st.group.attrs["config"] = recorded
    st.set_done([1, 2], False)
    for name in ("rgb", "depth", "instance", "amodal"):  # an interrupted run left nothing of them
        st.group[name][1:] = np.zeros((2, *st.group[name].shape[1:]), st.group[name].dtype)
    r = gen("scenes", "--n", "3", "--out", old, *TINY, "--resume")  # today's defaults: variety on
    assert r.exit_code == 0, r.output
    assert "variety.enabled=false" in r.output and "render.night_samples_scale=1.0" in r.output
    note = [line for line in r.output.splitlines() if line.startswith("note:")]
    assert len(note) == 1, r.output
    a, b = scene_store.open_store(clean), scene_store.open_store(old)
    assert b.done().all()
    for i in range(3):
        sa, sb = a.read_scene(i), b.read_scene(i)
        for name in (*scene_store.ANNOTATIONS, "rgb"):  # RGB too: the same machine
            np.testing.assert_array_equal(sa[name], sb[name], err_msg=f"{name} of scene {i}")
        assert a.spec(i) == b.spec(i)
    del recorded["street"]["lanes"]
    st.group.attrs["config"] = recorded
    st.set_done([2], False)
    one_line_error(gen("scenes", "--n", "3", "--out", old, *TINY, "--resume"), "street.lanes")
