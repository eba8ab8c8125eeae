"""`gen scenes`, `gen info`, `gen preview` end to end at the tiny preset (real Blender renders)."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

from pipelines.cli import cli  # noqa: E402
from scenes import store as scene_store  # noqa: E402

TINY = ["--preset", "tiny", "--set", "render.width=64", "--set", "render.height=40"]


def gen(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def street(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("s") / "street.zarr")
    r = gen("scenes", "--n", "2", "--out", out, "--seed", "7", *TINY)
    assert r.exit_code == 0, r.output
    return out


@pytest.mark.parametrize("scenario", ["street", "city", "openroad", "mix"])
def test_every_scenario_renders_and_round_trips_through_xarray(tmp_path, scenario):
    xr = pytest.importorskip("xarray")
    out = str(tmp_path / f"{scenario}.zarr")
    r = gen("scenes", "--n", "1", "--out", out, "--scenario", scenario, *TINY)
    assert r.exit_code == 0, r.output
    ds = xr.open_zarr(out)  # consolidated metadata: one read
    assert not ds.coords and "instance" in ds.data_vars
    assert ds["rgb"].dims == ("scene", "y", "x", "channel")
    assert ds["amodal"].dims == ("scene", "slot", "y", "x")  # "instance" is the per-pixel array's name
    assert bool(ds["done"].values.all())
    depth = ds["depth"].values[0]
    assert np.isfinite(depth).mean() > 0.3 and (depth[np.isfinite(depth)] > 0).all()
    st = scene_store.open_store(out)
    s = st.read_scene(0)
    k = int(s["num_instances"])
    assert k > 0
    for j in range(k):  # amodal contains modal for every instance
        assert not ((s["instance"] == j + 1) & ~s["amodal"][j]).any()
    spec = json.loads(st.spec(0))
    assert spec["scenario"] in ("street", "city", "openroad")


def test_same_seed_same_annotations(street, tmp_path):
    again = str(tmp_path / "again.zarr")
    assert gen("scenes", "--n", "2", "--out", again, "--seed", "7", *TINY).exit_code == 0
    a, b = scene_store.open_store(street), scene_store.open_store(again)
    for i in range(2):
        sa, sb = a.read_scene(i), b.read_scene(i)
        for name in scene_store.ANNOTATIONS:
            np.testing.assert_array_equal(sa[name], sb[name], err_msg=name)
        assert a.spec(i) == b.spec(i)


def test_existing_store_is_not_overwritten(street):
    before = scene_store.open_store(street).read_scene(0)["depth"]
    r = gen("scenes", "--n", "2", "--out", street, *TINY)
    assert r.exit_code == 2 and "already exists" in r.output and "Traceback" not in r.output
    np.testing.assert_array_equal(scene_store.open_store(street).read_scene(0)["depth"], before)


def test_resume_renders_only_missing_scenes(street, tmp_path):
    import shutil
    copy = str(tmp_path / "copy.zarr")
    shutil.copytree(street, copy)
    st = scene_store.open_store(copy, mode="r+")
    st.group["done"][1] = False
    st.group["depth"][1] = np.zeros(st.group["depth"].shape[1:], np.float32)
    r = gen("scenes", "--n", "2", "--out", copy, "--seed", "7", "--resume", *TINY)
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(st.group["depth"][1], scene_store.open_store(street).group["depth"][1])
    r = gen("scenes", "--n", "2", "--out", copy, "--seed", "7", "--resume", *TINY, "--set", "render.samples=3")
    assert r.exit_code == 2 and "render.samples" in r.output


def test_only_rerenders_from_the_stored_spec(street, tmp_path):
    import shutil
    copy = str(tmp_path / "only.zarr")
    shutil.copytree(street, copy)
    r = gen("scenes", "--out", copy, "--only", "1")
    assert r.exit_code == 2 and "--overwrite" in r.output
    st = scene_store.open_store(copy, mode="r+")
    st.group["instance"][1] = np.zeros(st.group["instance"].shape[1:], np.uint16)
    assert gen("scenes", "--out", copy, "--only", "1", "--overwrite").exit_code == 0
    np.testing.assert_array_equal(st.group["instance"][1], scene_store.open_store(street).group["instance"][1])


def test_info_and_preview(street, tmp_path):
    r = gen("info", street)
    assert r.exit_code == 0 and "2/2 done" in r.output and "street" in r.output
    png = tmp_path / "sheet.png"
    assert gen("preview", street, "--out", str(png)).exit_code == 0
    from PIL import Image
    assert Image.open(png).size[0] == 4 * 320


@pytest.mark.parametrize("args, words", [
    (["scenes", "--out", "X", "--set", "render.samples=-1"], "render.samples"),
    (["scenes", "--out", "X", "--set", "nope=1"], "unknown config key"),
    (["scenes", "--out", "X", "--set", "render.denoise_prefilter=slow"], "render.denoise_prefilter"),
    (["scenes", "--out", "X", "--set", "render.denoise_quality=ultra"], "render.denoise_quality"),
    (["scenes", "--out", "X", "--config", "/no/such.yaml"], "not found"),
    (["info", "/no/such.zarr"], "no store"),
    (["scenes", "--out", "X", "--only", "1-b"], "--only"),
])
def test_user_mistakes_are_one_line_exit_2(args, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = gen(*args)
    assert r.exit_code == 2, r.output
    assert words in r.output and "Traceback" not in r.output


def test_store_of_another_kind_is_refused(tmp_path):
    import zarr
    other = str(tmp_path / "other.zarr")
    zarr.open_group(other, mode="w").attrs.update({"kind": "rgsd.shards", "format_version": 1})
    r = gen("info", other)
    assert r.exit_code == 2 and "incomplete shard store" in r.output
    r = gen("scenes", "--n", "1", "--out", other, "--resume", *TINY)
    assert r.exit_code == 2 and "not a scene store" in r.output
    zarr.open_group(other, mode="r+").attrs.update({"kind": "rgsd.scenes", "format_version": 99})
    r = gen("scenes", "--n", "1", "--out", other, "--resume", *TINY)
    assert r.exit_code == 2 and "format version 99" in r.output


def test_frames_of_a_layout_equal_scenes_rendered_alone():
    from generator.render import render_layout, render_scene
    from scenes.config import build_config
    from scenes.sampling import sample_scene
    cfg = build_config("tiny", overrides=["render.width=64", "render.height=40", "scene.frames_per_layout=3",
                                          "scene.scenario=openroad"])
    specs = [sample_scene(cfg, 5, i) for i in range(3)]
    assert len({s.layout for s in specs}) == 1 and [s.frame for s in specs] == [0, 1, 2]
    assert specs[0].camera.position != specs[2].camera.position
    together = [arrays for _, arrays, _ in render_layout(specs, cfg)]
    for spec, arrays in zip(specs, together):
        alone, _ = render_scene(spec, cfg)
        for name in ("depth", "instance", "semantic", "amodal", "occlusion", "box3d"):
            np.testing.assert_array_equal(arrays[name], alone[name], err_msg=f"frame {spec.frame} {name}")


def test_python_dash_m_with_spawned_dask_workers(tmp_path):
    """`python -m pipelines.cli` (the torchrun form) with Dask workers: a spawned worker
    re-runs the module as __mp_main__, which must not register the commands again."""
    import subprocess
    import sys
    from pathlib import Path
    out = tmp_path / "m.zarr"
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "pipelines.cli", "scenes", "--n", "1", "--workers", "1",
                        "--out", str(out), *TINY], cwd=root, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert scene_store.open_store(str(out)).done().all()
