"""`gen import rgbd`: user RGB-D folders into a scene store that `gen shards` accepts."""
import json

import numpy as np
import pytest
from PIL import Image

from composer.rgbd_import import MAX_INSTANCES, import_rgbd, read_instances
from scenes.classes import CLASS_IDS
from scenes.store import PER_SCENE, open_store
from tests.cli_util import gen, one_line_error

W, H = 96, 80


def make_dataset(root, n=3):
    """n images: a plane at 5 m with sky (depth 0) in the top rows; image 0 also has a square
    at 2 m (instance id 7) and a small strip (id 3), image 1 has a float .npy depth."""
    for sub in ("rgb", "depth", "instance"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        name = f"frame_{i}"
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(root / "rgb" / f"{name}.png")
        mm = np.full((H, W), 5000, np.uint16)
        mm[:10] = 0  # no surface: sky
        inst = np.zeros((H, W), np.uint16)
        if i == 0:
            mm[30:60, 20:50] = 2000
            mm[40:42, 60:61] = 2345  # a depth that is not a whole number of decimetres
            inst[30:60, 20:50] = 7
            inst[70:72, 0:10] = 3
        if i == 1:
            np.save(root / "depth" / f"{name}.npy", mm.astype(np.float32) / 1000)
        else:
            Image.fromarray(mm).save(root / "depth" / f"{name}.png")
        if i != 2:  # image 2 has no instance mask at all
            Image.fromarray(inst).save(root / "instance" / f"{name}.png")
    return root


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    src = make_dataset(tmp_path_factory.mktemp("data") / "data")
    out = str(tmp_path_factory.mktemp("out") / "mine.zarr")
    r = gen("import", "rgbd", src, "--out", out)
    assert r.exit_code == 0, r.output
    return src, out


def test_store_contents(imported):
    src, out = imported
    st = open_store(out)
    assert st.n == 3 and st.done().all() and st.max_instances == MAX_INSTANCES
    a = st.attrs
    assert a["resolution"] == {"width": W, "height": H}
    assert a["config"]["render"] == {"width": W, "height": H} and a["config"]["depth_scale"] == 1000.0
    assert a["imported"]["notes"] and a["intrinsics"]["approximate"]
    s = st.read_scene(0)
    d = s["depth"]
    assert np.isinf(d[:10]).all() and (s["semantic"][:10] == CLASS_IDS["sky"]).all()
    assert (s["semantic"][10:] == CLASS_IDS["unlabeled"]).all()
    assert np.allclose(d[30:60, 20:50], 2.0, atol=5e-4) and np.allclose(d[10:30], 5.0, atol=5e-4)
    assert abs(d[40, 60] - 2.345) < 5e-4
    # Ids 3 and 7 become 1 and 2, in ascending order of the original id.
    assert int(s["num_instances"]) == 2
    assert (s["instance"][70:72, 0:10] == 1).all() and (s["instance"][30:60, 20:50] == 2).all()
    assert set(np.unique(s["instance"])) == {0, 1, 2}
    assert list(s["modal_area"][:2]) == [20, 900] and (s["modal_area"][2:] == 0).all()
    np.testing.assert_array_equal(s["amodal_area"], s["modal_area"])
    np.testing.assert_array_equal(s["modal_box"][:2], [[0, 70, 10, 72], [20, 30, 50, 60]])
    np.testing.assert_array_equal(s["amodal_box"], s["modal_box"])
    for k in range(2):
        np.testing.assert_array_equal(s["amodal"][k], s["instance"] == k + 1)
    assert (s["instance_class"][:2] == CLASS_IDS["unlabeled"]).all()
    np.testing.assert_allclose(s["distance"][:2], [5.0, 2.0], atol=1e-3)
    assert s["depth_order"][0, 1] == 1 and s["depth_order"][1, 0] == -1
    assert (s["visible_fraction"][:2] == 1).all() and np.isnan(s["box3d"]).all()
    assert not s["occlusion"].any() and not s["normals"].any()
    assert s["rgb"].shape == (H, W, 3) and s["rgb"].dtype == np.uint8
    # The .npy image (float metres) and the image without a mask.
    s1, s2 = st.read_scene(1), st.read_scene(2)
    assert np.allclose(s1["depth"][10:], 5.0) and np.isinf(s1["depth"][:10]).all()
    assert int(s2["num_instances"]) == 0 and not s2["instance"].any()
    assert json.loads(st.spec(0))["imported"] == "frame_0"
    # Stored dtypes are the store's.
    for name, (_, dtype, _) in PER_SCENE.items():
        if dtype != "str":
            assert st.group[name].dtype == np.dtype(dtype), name


def test_xarray_and_info(imported):
    xr = pytest.importorskip("xarray")
    _, out = imported
    ds = xr.open_zarr(out, consolidated=False)
    assert ds["depth"].shape == (3, H, W) and bool(ds["done"].all())
    r = gen("info", out)
    assert r.exit_code == 0 and "3/3 done" in r.output, r.output


def test_shards_from_import(imported, tmp_path):
    _, out = imported
    shards = tmp_path / "train.zarr"
    r = gen("shards", out, "--out", shards, "--workers", "0", "--patch", "48", "--samples", "16",
            "--shard-size", "16", "--mask-mix", '{"object": 1.0}')
    assert r.exit_code == 0, r.output
    from composer.shard_store import open_shards
    st = open_shards(str(shards))
    assert st.done().all() and st.read(0, 16)["mask"].reshape(16, -1).any(1).all()


def test_inverse_depth_sky_value_and_colour_masks(tmp_path):
    src = tmp_path / "d"
    for sub in ("rgb", "depth", "instance"):
        (src / sub).mkdir(parents=True)
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(src / "rgb" / "a.jpg")
    disp = np.full((H, W), 500, np.uint16)  # 0.5 / m after --depth-scale 1000 -> 2 m
    disp[:5] = 0
    disp[5:8] = 999
    Image.fromarray(disp).save(src / "depth" / "a.png")
    colour = np.zeros((H, W, 3), np.uint8)
    colour[10:20, 10:20] = (255, 0, 0)
    colour[30:40, 30:40] = (0, 0, 9)
    Image.fromarray(colour).save(src / "instance" / "a.png")
    out = tmp_path / "inv.zarr"
    assert import_rgbd(src, str(out), depth_kind="inverse", sky_value=999) == 1
    s = open_store(str(out)).read_scene(0)
    assert np.isinf(s["depth"][:8]).all() and np.allclose(s["depth"][8:], 2.0)
    assert (s["semantic"][:8] == CLASS_IDS["sky"]).all()
    # Colours count as ids: 0x000009 < 0xFF0000.
    assert (s["instance"][30:40, 30:40] == 1).all() and (s["instance"][10:20, 10:20] == 2).all()


def test_instance_cap_drops_smallest(tmp_path):
    ids = np.zeros((H, W), np.uint16)
    for j in range(MAX_INSTANCES + 2):  # instance j+1 covers j+1 pixels of its own row
        ids[j, : j + 1] = j + 1
    p = tmp_path / "m.png"
    Image.fromarray(ids).save(p)
    inst, dropped = read_instances(p, MAX_INSTANCES)
    assert dropped == 2 and inst.max() == MAX_INSTANCES
    assert not inst[0].any() and not inst[1].any() and (inst[2, :3] == 1).all()


def test_bad_inputs(tmp_path):
    out = tmp_path / "o.zarr"
    one_line_error(gen("import", "rgbd", tmp_path / "nope", "--out", out), "nope", "not a folder")
    (tmp_path / "e").mkdir()
    one_line_error(gen("import", "rgbd", tmp_path / "e", "--out", out), "rgb/")

    def fresh(name):
        return make_dataset(tmp_path / name, n=2)

    src = fresh("missing")
    (src / "depth" / "frame_1.npy").unlink()  # frame_1's depth is the .npy one
    one_line_error(gen("import", "rgbd", src, "--out", out), "rgb/frame_1.png", "no depth")

    src = fresh("size")
    Image.fromarray(np.zeros((H, W + 2), np.uint16)).save(src / "depth" / "frame_0.png")
    one_line_error(gen("import", "rgbd", src, "--out", out), "frame_0.png", "one resolution")

    src = fresh("corrupt")
    (src / "rgb" / "frame_1.png").write_bytes(b"not a png at all")
    one_line_error(gen("import", "rgbd", src, "--out", out), "frame_1.png", "cannot read")

    src = fresh("nan")
    bad = np.full((H, W), 3.0, np.float32)
    bad[5, 5] = np.nan
    (src / "depth" / "frame_0.png").unlink()
    np.save(src / "depth" / "frame_0.npy", bad)
    one_line_error(gen("import", "rgbd", src, "--out", out), "frame_0.npy", "NaN")
    assert not out.exists()  # a failed import leaves no half-written store

    bad[5, 5] = -1
    np.save(src / "depth" / "frame_0.npy", bad)
    one_line_error(gen("import", "rgbd", src, "--out", out), "frame_0.npy", "negative")

    src = fresh("ok")
    assert gen("import", "rgbd", src, "--out", out).exit_code == 0
    one_line_error(gen("import", "rgbd", src, "--out", out), "already exists", "--overwrite")
    assert gen("import", "rgbd", src, "--out", out, "--overwrite").exit_code == 0


def test_pfm_depth(tmp_path):
    from composer.rgbd_import import read_depth
    d = np.arange(H * W, dtype=np.float32).reshape(H, W) / 100
    p = tmp_path / "a.pfm"
    # PFM stores rows bottom to top; a negative scale means little-endian floats.
    p.write_bytes(f"Pf\n{W} {H}\n-1.0\n".encode() + np.flipud(d).astype("<f4").tobytes())
    got = read_depth(p, depth_scale=1000.0, depth_kind="depth", sky_value=None)
    assert np.isinf(got[0, 0]) and np.array_equal(got.ravel()[1:], d.ravel()[1:])


def test_pfm_readers_are_opencvs_and_read_what_was_written(tmp_path):
    """Both PFM readers (import and gen refine) go through cv2.imread: little- and big-endian,
    grey and colour files read back exactly as written (rows bottom to top in the file)."""
    from composer.rgbd_import import _load
    from trainer.infer import read_pfm
    rng = np.random.default_rng(0)
    grey = rng.random((H, W), np.float32) * 80
    colour = rng.random((H, W, 3), np.float32)
    for name, kind, data, scale, order in (("le.pfm", "Pf", grey, "-1.0", "<f4"), ("be.pfm", "Pf", grey, "1.0", ">f4"),
                                          ("rgb.pfm", "PF", colour, "-1.0", "<f4")):
        p = tmp_path / name
        p.write_bytes(f"{kind}\n{W} {H}\n{scale}\n".encode() + np.flipud(data).astype(order).tobytes())
        np.testing.assert_array_equal(_load(p), data)  # colour as RGB, the file's channel order
        np.testing.assert_array_equal(read_pfm(p), data[..., 0] if data.ndim == 3 else data)
    (tmp_path / "bad.pfm").write_bytes(b"Pf\n4 4\n-1\n" + b"\0" * 12)  # truncated
    with pytest.raises(ValueError, match="not a readable PFM"):
        read_pfm(tmp_path / "bad.pfm")
