"""The annotation pass ends a ray in the stuff once it is past every candidate instance whose
footprint holds it (generator/build.py, stop depths).  That saves most of the pass's time
and must change nothing: the annotations equal those of rays that cross everything."""
import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

# Scenes at a reduced tiny size with candidates hidden behind buildings and other road
# users: a pinhole street, a street through the radial lens, a city after dark.
SIZE = ["render.width=128", "render.height=72"]
SCENES = [(["scene.scenario=street", "camera.distortion_fraction=0"], 1, 0),
          (["scene.scenario=street", "camera.distortion_fraction=1"], 1, 2),
          (["scene.scenario=city", "lighting.night_fraction=1", "lighting.dusk_fraction=0"], 1, 3)]


@pytest.fixture(scope="module")
def renders():
    from generator import build
    from generator.render import render_scene
    from scenes.config import build_config
    from scenes.sampling import sample_scene
    real = build.stop_depths
    out = []
    # "all": a stop beyond everything (not inf: Cycles loads a non-finite texel as 0).
    for over, seed, i in SCENES:
        cfg = build_config("tiny", overrides=SIZE + over)
        spec = sample_scene(cfg, seed, i)
        row = {"spec": spec}
        try:
            for name, depths in (("all", lambda b, g: np.full(g[::-1], 1e30)), ("stop", real),
                                 ("first", lambda b, g: np.zeros(g[::-1]))):
                build.stop_depths = depths
                row[name] = render_scene(spec, cfg)[0]
        finally:
            build.stop_depths = real
        out.append(row)
    return out


def test_the_scenes_cover_lens_night_and_hidden_instances(renders):
    assert any(r["spec"].camera.lens for r in renders) and not all(r["spec"].camera.lens for r in renders)
    assert any(r["spec"].lighting.get("time_of_day", "day") != "day" for r in renders)
    for r in renders:
        a = r["all"]
        k = int(a["num_instances"])
        assert k > 0
        assert (a["amodal"][:k].sum((1, 2)) > (a["instance"][None] == np.arange(1, k + 1)[:, None, None]).sum((1, 2))).any()


def test_stopping_rays_past_the_candidates_changes_no_array(renders):
    for r in renders:
        for key, ref in r["all"].items():
            assert np.asarray(r["stop"][key]).tobytes() == np.asarray(ref).tobytes(), (r["spec"].index, key)


def test_the_stop_depths_reach_cycles(renders):
    # Ending every ray at its first crossing loses the hidden parts: the test above can fail.
    assert any(np.asarray(r["first"]["amodal"]).tobytes() != np.asarray(r["all"]["amodal"]).tobytes() for r in renders)
    for r in renders:
        for key in ("depth", "instance", "semantic", "normals"):  # first-crossing data stay
            assert np.asarray(r["first"][key]).tobytes() == np.asarray(r["all"][key]).tobytes(), key
