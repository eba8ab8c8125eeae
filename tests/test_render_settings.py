"""RGB quality settings (issue 18) change the RGB and nothing else: annotations come from their
own point-sampled pass."""
import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

SIZE = ["render.width=64", "render.height=36"]
SETTINGS = {  # as different as the config allows, each a cheap render
    "tiny": [],
    "denoised": ["render.samples=3", "render.denoise=true", "render.denoise_prefilter=accurate",
                 "render.denoise_quality=high", "render.max_bounces=4", "render.adaptive_threshold=0.05",
                 "render.world_map_resolution=0", "render.clamp_direct=0"],
    "fast-denoise": ["render.samples=2", "render.denoise=true", "render.denoise_prefilter=none",
                     "render.denoise_quality=fast", "render.world_map_resolution=64"],
    "guided": ["render.samples=4", "render.denoise=false", "render.path_guiding=true", "render.light_tree=false",
               "render.max_bounces=3", "render.world_map_resolution=256", "render.clamp_direct=1.5"],
}


@pytest.fixture(scope="module")
def renders():
    from generator.render import render_scene
    from scenes.config import build_config
    from scenes.sampling import sample_scene
    out, cycles = {}, {}
    for name, over in SETTINGS.items():
        cfg = build_config("tiny", overrides=SIZE + ["scene.scenario=city"] + over)
        out[name] = render_scene(sample_scene(cfg, 5, 0), cfg)[0]
        c = bpy.context.scene.cycles
        cycles[name] = (c.denoising_prefilter, c.denoising_quality, bpy.context.scene.world.cycles.sampling_method)
    return out, cycles


def test_annotations_are_byte_identical_across_rgb_settings(renders):
    arrays, _ = renders
    ref = arrays["tiny"]
    assert int(ref["num_instances"]) > 0  # a scene with instances, or the test proves little
    for name, a in arrays.items():
        assert set(a) == set(ref)
        for key in ref:
            if key == "rgb":
                continue
            x, y = np.asarray(a[key]), np.asarray(ref[key])
            assert x.dtype == y.dtype and x.shape == y.shape, (name, key)
            assert x.tobytes() == y.tobytes(), f"{key} differs under RGB setting '{name}'"


def test_rgb_settings_reach_cycles(renders):
    arrays, cycles = renders
    rgbs = [a["rgb"].astype(np.int16) for a in arrays.values()]
    assert all(np.abs(x - rgbs[0]).mean() > 0.05 for x in rgbs[1:])  # each setting renders differently
    assert cycles["fast-denoise"] == ("NONE", "FAST", "MANUAL")
    assert cycles["denoised"] == ("ACCURATE", "HIGH", "AUTOMATIC")
