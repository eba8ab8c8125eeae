"""The Python API (issue 26): the README's dataset example runs as written; SceneDataset and
ShardDataset samples are the stores' arrays, cut to each scene's instances; each scene's
intrinsics are an array; the xarray view is right, for new stores and stores written before."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scenes import store as scene_store  # noqa: E402
from tests.fixture_store import make_scene_store  # noqa: E402
from trainer.datasets import SceneDataset, ShardDataset  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    m = re.search(r"<!-- dataset-example[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert m, "README lost its dataset example"
    return m.group(1)


@pytest.mark.slow  # a ResNet-50 Mask R-CNN step at 360 px: ~10 CPU-seconds
def test_the_readme_example_runs_as_written(tmp_path, monkeypatch):
    pytest.importorskip("torchvision")
    make_scene_store(str(tmp_path / "street.zarr"), n=2, width=96, height=64)
    monkeypatch.chdir(tmp_path)
    code = readme_example()
    assert len(code.strip().splitlines()) <= 13
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert torch.isfinite(scope["loss"]) and len(scope["ds"]) == 2


def test_scene_samples_are_the_store_cut_to_its_instances(fixture_scenes):
    st = scene_store.open_store(fixture_scenes)
    ds = SceneDataset(fixture_scenes, fields=("rgb", "depth", "masks", "amodal"), classes=["pedestrian", "car", "van"])
    assert len(ds) == st.n and ds.classes == ["pedestrian", "car", "van"]
    table = list(st.attrs["classes"])
    for n in (0, 1):
        s, a = ds[n], st.read_scene(n)
        k = int(a["num_instances"])
        names = [table[c] for c in a["instance_class"][:k]]
        keep = [j for j in range(k) if names[j] in ds.classes]
        assert s["labels"].tolist() == [ds.classes.index(names[j]) + 1 for j in keep]
        for m, j in enumerate(keep):
            assert torch.equal(s["masks"][m], torch.from_numpy(a["instance"] == j + 1))
            assert torch.equal(s["amodal"][m], torch.from_numpy(a["amodal"][j]))
        assert s["amodal"].shape[0] == len(keep)  # cut to the scene, not max_instances slots
        assert torch.equal(s["occlusion"], torch.from_numpy(a["occlusion"][np.ix_(keep, keep)]))
        assert torch.isinf(s["depth"][0]).all() and (s["depth"][-1] > 0).all()  # sky at the top, ground below
        assert s["rgb"].shape == (3, 64, 96) and 0 <= float(s["rgb"].min()) <= float(s["rgb"].max()) <= 1
        cam = json.loads(st.spec(n))["camera"]
        f = 96 / 2 / np.tan(np.radians(cam["hfov_deg"]) / 2)
        np.testing.assert_allclose(s["K"].numpy(), [[f, 0, 48], [0, f, 32], [0, 0, 1]])
        assert s["lens"] == {}
        if n == 1:  # odd scenes hold a wholly hidden van: amodal only
            van = s["labels"].tolist().index(3)
            assert not s["masks"][van].any() and s["amodal"][van].any()
    with pytest.raises(ValueError, match="not in the store's class table"):
        SceneDataset(fixture_scenes, classes=["unicorn"])


def test_shard_samples(fixture_scenes, tmp_path):
    from composer.shard_store import open_shards
    from tests.cli_util import gen
    url = tmp_path / "s.zarr"
    r = gen("shards", fixture_scenes, "--out", url, "--workers", "0", "--patch", "32", "--samples", "16",
            "--shard-size", "16", "--mask-mix", '{"object": 1.0}')
    assert r.exit_code == 0, r.output
    ds = ShardDataset(str(url))
    raw = open_shards(str(url)).read(3, 4)
    s = ds[3]
    assert len(ds) == 16 and s["mask_kind"] == "object"
    assert torch.equal(s["rgb"], torch.from_numpy(raw["rgb"][0]).float() / 255)
    assert torch.equal(s["perturbed"], torch.from_numpy(raw["perturbed"][0].astype(np.float32)))


def test_intrinsics_array_and_xarray_view(fixture_scenes, tmp_path):
    xr = pytest.importorskip("xarray")
    from scenes.store_views import open_xarray
    st = scene_store.open_store(fixture_scenes)
    for i in range(st.n):
        cam = json.loads(st.spec(i))["camera"]
        f = 96 / 2 / np.tan(np.radians(cam["hfov_deg"]) / 2)
        np.testing.assert_allclose(st.group["intrinsics"][i], [f, f, 48, 32, 0, 0, 0])
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "consolidated metadata" warning
        ds = xr.open_zarr(fixture_scenes)
    assert not ds.coords and set(ds.data_vars) == set(scene_store.PER_SCENE) | {"intrinsics"}
    assert ds["amodal"].dims == ("scene", "slot", "y", "x") and ds["instance"].dims == ("scene", "y", "x")
    view = open_xarray(fixture_scenes)
    assert json.loads(view.attrs["resolution"]) == {"width": 96, "height": 64}
    assert all(isinstance(v, (str, int, float)) for v in view.attrs.values())  # what netCDF attributes can be
    one = view.isel(scene=[0])
    one.to_netcdf(tmp_path / "s.nc", engine="netcdf4")  # netCDF4 is in the test extra
    back = xr.open_dataset(tmp_path / "s.nc", engine="netcdf4")
    assert set(back.data_vars) == set(one.data_vars)
    for name in ("rgb", "depth", "instance", "amodal", "normals", "intrinsics"):
        np.testing.assert_array_equal(back[name].values, one[name].values.astype(back[name].dtype))
    assert back["normals"].dtype == np.float32 and one["normals"].dtype == np.float16
    assert json.loads(back.attrs["resolution"]) == {"width": 96, "height": 64}


def test_stores_written_before_still_open_read_and_resume(tmp_path, monkeypatch):
    """A v2 store as rgsd wrote it before: no intrinsics array, dimension "instance", no
    consolidated metadata."""
    from tests.fixture_store import fixture_config, scene_arrays
    url = str(tmp_path / "old.zarr")
    with monkeypatch.context() as m:
        m.setattr(scene_store, "OPTIONAL", {})
        m.setattr(scene_store, "DIM_ON_DISK", {})
        m.setattr(scene_store, "consolidate", lambda _: None)
        make_scene_store(url, n=3, width=48, height=32)
        scene_store.open_store(url, mode="r+").set_done([2], False)  # a scene left to --resume
    st = scene_store.open_store(url, mode="r+")
    assert not st.has("intrinsics") and st.group["amodal"].metadata.dimension_names[1] == "instance"
    arrays, spec = scene_arrays(2, 0, fixture_config(48, 32))
    st.write_scene(2, arrays, spec)  # what --resume does for that scene
    assert st.done().all()
    assert st.intrinsics(2)["fx"] == pytest.approx(48 / 2 / np.tan(np.radians(json.loads(spec)["camera"]["hfov_deg"]) / 2))
    assert len(SceneDataset(url)) == 3
    from scenes.store_views import open_xarray
    view = open_xarray(url)
    assert not view.coords and view["instance"].dims == ("scene", "y", "x") and "slot" in view["amodal"].dims


def test_loader_batch_buffers_are_shared_either_way(monkeypatch):
    """trainer.data's private fast path and its public fallback give the same kind of buffer."""
    from trainer import data
    a = data.shared_batch_buffer((2, 3, 4), np.float16)
    b = data.public_batch_buffer((2, 3, 4), np.float16)
    assert a.is_shared() and b.is_shared() and a.shape == b.shape == (2, 3, 4) and a.dtype == b.dtype == torch.float16
    monkeypatch.delattr(torch.TypedStorage, "_new_shared")  # as if a torch upgrade dropped it
    c = data.shared_batch_buffer((5,), np.uint8)
    assert c.is_shared() and c.shape == (5,) and c.dtype == torch.uint8
