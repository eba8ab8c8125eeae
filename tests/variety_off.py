"""Each issue-16 knob group's "off" overrides, so a test of one group can switch all the
others off and compare with the scenes of before, byte for byte."""
import functools

CAMERA_OFF = ("camera.hfov_offset_deg=[0,0]", "camera.roll_deg=[0,0]", "camera.pitch_offset_deg=[0,0]",
              "camera.height_offset_m=[0,0]", "camera.distortion_fraction=0", "camera.shutter_s=[0,0]")
PEOPLE_OFF = ("people.natural=false", "people.child_fraction=0", "people.group_fraction=0")
DENSITY_OFF = ("density.city_in_view=false",)  # the scales are 1.0: no change
NIGHT_OFF = ("lighting.night_fraction=0", "lighting.dusk_fraction=0", "weather.cloudy_fraction=0",
             "weather.wet_fraction=0")
POST_OFF = ("camera_pipeline.auto_exposure=false", 'camera_pipeline.response={"sigmoid":0,"gamma":0}',
            "camera_pipeline.noise_shot=[0,0]", "camera_pipeline.noise_read=[0,0]",
            "camera_pipeline.bloom_intensity=[0,0]", "camera_pipeline.vignetting=[0,0]",
            "camera_pipeline.rain_streaks=false", "fog.fraction=0")


def all_off_but(*keep):
    """The off overrides of every group except those named in ``keep``."""
    groups = {"camera": CAMERA_OFF, "people": PEOPLE_OFF, "density": DENSITY_OFF, "night": NIGHT_OFF,
              "post": POST_OFF}
    return tuple(o for name, offs in groups.items() if name not in keep for o in offs)


# sha256 (first 16 hex digits) of the specs of scenes 0-2, seed 11, tiny preset, with
# variety.enabled=false: the code path without any issue-16 knob, which every "off" switch
# must reproduce.  Re-pinned for issue 23 (portable sampling, scenes/draws.py's rule) with
# `spec_digest(scenario, "variety.enabled=false")`; they hold on any CPU, AVX-512 or not
# (tests/test_portable_specs.py).  The pins of before (ea24eea) held only on one CPU kind.
BEFORE = {"street": "76d8383aa9a169b7", "city": "f551724e2b2021d1", "openroad": "58eea82bf871c957"}


@functools.lru_cache(maxsize=None)
def spec_digest(scenario, *overrides):
    """Digest of the specs of scenes 0-2 (seed 11, tiny) with these overrides (cached: several
    test files ask for the same ones)."""
    import hashlib

    from scenes.config import build_config
    from scenes.sampling import sample_scene
    cfg = build_config("tiny", overrides=[f"scene.scenario={scenario}", *overrides])
    h = hashlib.sha256()
    for i in range(3):
        h.update(sample_scene(cfg, 11, i).to_json().encode())
    return h.hexdigest()[:16]
