import json

import pytest

from scenes.config import ConfigError, build_config, parse_override


def test_presets_and_overrides():
    cfg = build_config("tiny", overrides=["render.samples=3", "street.vehicles=[1,4]"])
    assert cfg["render"]["width"] == 160 and cfg["render"]["samples"] == 3
    assert cfg["street"]["vehicles"] == [1, 4]
    assert parse_override("a.b=x") == {"a": {"b": "x"}}


@pytest.mark.parametrize("override, words", [
    ("render.nope=1", "unknown config key 'render.nope'"),
    ("render.samples=0", "render.samples"),
    ("street.vehicles=[4,1]", "lo > hi"),
    ("street.vehicles=[1.5,2]", "integers"),
    ("render.width=wide", "render.width. must be a number"),
    ("scene.scenario=moon", "scene.scenario"),
    ("scene.mix={\"mars\":1}", "scene.mix"),
    ("scene.instance_classes=[\"dragon\"]", "dragon"),
    ("render.denoise_prefilter=slow", "render.denoise_prefilter must be accurate, fast or none"),
    ("render.denoise_quality=ultra", "render.denoise_quality must be high, balanced or fast"),
    ("render.denoise_quality=1", "render.denoise_quality. must be a string"),
    ("render.path_guiding=1", "render.path_guiding. must be true or false"),
    ("render.light_tree=\"yes\"", "render.light_tree. must be true or false"),
    ("render.world_map_resolution=8", "render.world_map_resolution"),
    ("render.world_map_resolution=512.5", "render.world_map_resolution. must be an integer"),
    ("render.adaptive_threshold=2", "render.adaptive_threshold"),
    ("render.night_samples_scale=0", "render.night_samples_scale must be positive"),
])
def test_bad_values_name_the_key(override, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        build_config("default", overrides=[override])


def test_config_file(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"render": {"samples": 5}}))
    assert build_config("default", files=[f])["render"]["samples"] == 5
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="cannot parse"):
        build_config("default", files=[tmp_path / "bad.json"])
    with pytest.raises(ConfigError, match="not found"):
        build_config("default", files=[tmp_path / "missing.json"])


def test_render_quality_keys_accept_every_documented_value():
    for pre in ("accurate", "fast", "none"):
        for q in ("high", "balanced", "fast"):
            r = build_config("default", overrides=[f"render.denoise_prefilter={pre}",
                                                   f"render.denoise_quality={q}"])["render"]
            assert (r["denoise_prefilter"], r["denoise_quality"]) == (pre, q)
    r = build_config("default", overrides=["render.world_map_resolution=0", "render.path_guiding=true"])["render"]
    assert r["world_map_resolution"] == 0 and r["path_guiding"] is True


def test_presets_are_the_benchmarked_settings():
    """README quotes each preset's cost and PSNR from benchmarks/bench_render_quality.py: a
    preset may only change together with the grid entry it was measured as."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_render_quality.py"
    spec = importlib.util.spec_from_file_location("bench_render_quality", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    measured = {"tiny": ("tiny", "C-s2-fast-fast-b1"), "small": ("small", "C-s8-fast"),
                "default": ("small", "C-s12-fast"), "high": ("small", "C-s64-b8")}
    for preset, (grid, name) in measured.items():
        r = build_config(preset)["render"]
        want = {**bench.TODAY, **bench.GRIDS[grid][name]}
        assert {k: r[k] for k in want} == want, preset
        assert (r["width"], r["height"]) == {"tiny": (160, 90), "small": (640, 360)}.get(preset, (1280, 720))
