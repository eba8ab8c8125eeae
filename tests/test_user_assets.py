"""--assets: user models replace procedural ones; cutouts are texel-exact; broken files are skipped."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from scenes.user_assets import cutout_mesh

# OBJ is Y-up by convention; Blender's importer turns it Z-up.
OBJ_BOX = """o box
v -2 0 -1
v 2 0 -1
v 2 0 1
v -2 0 1
v -2 1.5 -1
v 2 1.5 -1
v 2 1.5 1
v -2 1.5 1
f 1 4 3 2
f 5 6 7 8
f 1 2 6 5
f 2 3 7 6
f 3 4 8 7
f 4 1 5 8
"""


def ring_alpha(n=40):
    yy, xx = np.mgrid[0:n, 0:n] + 0.5
    r = np.hypot(yy - n / 2, xx - n / 2)
    return (r < n * 0.45) & (r > n * 0.2)  # a hole in the middle


def test_cutout_mesh_covers_exactly_the_opaque_texels():
    alpha = ring_alpha()
    mesh, uv = cutout_mesh(alpha, width=1.0, height=1.0)
    # Rasterise the mesh by testing texel centres against every quad (y decreases with column).
    n = alpha.shape[0]
    centres_y = 0.5 - (np.arange(n) + 0.5) / n
    centres_z = 1.0 - (np.arange(n) + 0.5) / n
    covered = np.zeros_like(alpha)
    v = mesh.vertices
    for q in range(0, len(v), 4):
        y1, y0 = v[q, 1], v[q + 1, 1]
        z0, z1 = v[q, 2], v[q + 2, 2]
        covered |= ((centres_z[:, None] > z0) & (centres_z[:, None] < z1) &
                    (centres_y[None] < y1) & (centres_y[None] > y0))
    np.testing.assert_array_equal(covered, alpha)
    assert uv.shape == (len(mesh.faces) * 3, 2) and uv.min() >= 0 and uv.max() <= 1


@pytest.mark.blender
def test_assets_dir_models_cutouts_and_broken_files(tmp_path):
    pytest.importorskip("bpy")
    from pipelines.cli import cli
    from scenes import store as scene_store
    from scenes.classes import CLASS_IDS

    assets = tmp_path / "assets"
    (assets / "car").mkdir(parents=True)
    (assets / "car" / "block.obj").write_text(OBJ_BOX)
    (assets / "bus").mkdir()
    (assets / "bus" / "broken.glb").write_bytes(b"glTF not really")
    (assets / "pedestrian_cutouts").mkdir()
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = ring_alpha() * 255
    Image.fromarray(rgba).save(assets / "pedestrian_cutouts" / "ring.png")
    out = str(tmp_path / "s.zarr")
    r = CliRunner().invoke(cli, ["scenes", "--n", "1", "--out", out, "--preset", "tiny", "--assets", str(assets),
                                 "--set", "assets.mode=replace", "--set", "assets.cutout_probability=1.0",
                                 "--set", "street.vehicles=[3,3]"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "skipping broken asset bus/broken.glb" in r.output
    st = scene_store.open_store(out)
    index = st.attrs["config"]["assets"]["index"]
    assert {m["path"] for m in index} == {"car/block.obj", "pedestrian_cutouts/ring.png"}
    car = [m for m in index if m["kind"] == "car"][0]
    assert np.allclose(car["size"], [4.0, 2.0, 1.5], atol=1e-5)
    spec = json.loads(st.spec(0))
    cars = [o for o in spec["objects"] if o["kind"] == "car"]
    peds = [o for o in spec["objects"] if o["kind"] == "pedestrian"]
    assert cars and all(o["params"].get("user_asset") == "car/block.obj" for o in cars)
    assert peds and all(o["params"].get("cutout") == "pedestrian_cutouts/ring.png" for o in peds)
    s = st.read_scene(0)
    k = int(s["num_instances"])
    classes = s["instance_class"][:k]
    assert CLASS_IDS["car"] in classes
    for j in range(k):
        assert not ((s["instance"] == j + 1) & ~s["amodal"][j]).any()


# --- Asset paths stay in their folder: refused in one line before Blender opens anything.

def _outside_world(tmp_path):
    """An asset folder with one model, and a model outside it that nothing may open."""
    assets, elsewhere = tmp_path / "assets", tmp_path / "elsewhere"
    (assets / "car").mkdir(parents=True)
    (assets / "car" / "block.obj").write_text(OBJ_BOX)
    elsewhere.mkdir()
    (elsewhere / "x.obj").write_text(OBJ_BOX)
    return assets, elsewhere


def _has_bpy():
    import importlib.util
    return importlib.util.find_spec("bpy") is not None


def test_asset_file_resolves_inside_its_folder_or_refuses(tmp_path):
    from scenes.user_assets import AssetPathError, asset_file
    assets, elsewhere = _outside_world(tmp_path)
    (assets / "car" / "alias.obj").symlink_to(assets / "car" / "block.obj")  # a link inside: fine
    assert asset_file(str(assets), "car/block.obj") == (assets / "car" / "block.obj").resolve()
    assert asset_file(str(assets), "car/alias.obj") == (assets / "car" / "block.obj").resolve()
    assert asset_file(str(assets), str(assets / "car" / "block.obj")).is_file()  # absolute, but inside
    (assets / "car" / "out.obj").symlink_to(elsewhere / "x.obj")
    for root, rel, words in ((assets, "../elsewhere/x.obj", "outside the asset folder"),
                             (assets, str(elsewhere / "x.obj"), "outside the asset folder"),
                             (assets, "car/../../elsewhere/x.obj", "outside the asset folder"),
                             (assets, "car/out.obj", "outside the asset folder"),
                             ("", "car/block.obj", "no asset folder is declared")):
        with pytest.raises(AssetPathError, match=words):
            asset_file(str(root), rel)


def test_an_index_in_a_config_that_points_outside_is_refused(tmp_path):
    from pipelines import scenes_run
    from scenes.config import build_config
    from tests.cli_util import gen, one_line_error
    from tests.fake_scenes import MAKE
    assets, elsewhere = _outside_world(tmp_path)
    entry = {"kind": "car", "path": str(elsewhere / "x.obj"), "size": [4, 2, 1.5]}
    index = f"assets.index={json.dumps([entry])}"
    cfg = build_config("tiny", overrides=["assets.mode=replace", index])
    out = tmp_path / "s.zarr"
    with pytest.raises(scenes_run.RunError, match="no asset folder is declared"):
        scenes_run.run(str(out), n=1, cfg=cfg, seed=0, cluster=scenes_run.ClusterOptions(workers=0), make=MAKE)
    cfg = build_config("tiny", overrides=["assets.mode=replace", index.replace(str(elsewhere / "x.obj"), "../x.obj"),
                                          f"assets.dir={assets}"])
    with pytest.raises(scenes_run.RunError, match="outside the asset folder"):
        scenes_run.run(str(out), n=1, cfg=cfg, seed=0, cluster=scenes_run.ClusterOptions(workers=0), make=MAKE)
    assert not out.exists()
    if _has_bpy():  # the command line, by --set and by --config
        one_line_error(gen("scenes", "--n", 1, "--out", out, "--preset", "tiny", "--set", "assets.mode=replace",
                           "--set", index), "no asset folder is declared")
        (tmp_path / "c.json").write_text(json.dumps({"assets": {"mode": "replace", "index": [entry]}}))
        one_line_error(gen("scenes", "--n", 1, "--out", out, "--preset", "tiny", "--config", tmp_path / "c.json"),
                       str(elsewhere / "x.obj"))
        assert not out.exists()


def test_only_refuses_a_stored_spec_naming_a_file_outside(tmp_path):
    import zarr

    from pipelines import scenes_run
    from scenes.config import build_config
    from scenes.store import open_store
    from tests.cli_util import gen, one_line_error
    from tests.fake_scenes import MAKE
    assets, _ = _outside_world(tmp_path)
    cfg = build_config("tiny", overrides=["render.width=24", "render.height=16", f"assets.dir={assets}"])
    url = str(tmp_path / "s.zarr")
    assert scenes_run.run(url, n=2, cfg=cfg, seed=0, cluster=scenes_run.ClusterOptions(workers=0), make=MAKE).code == 0
    spec = json.loads(open_store(url).spec(0))
    spec["objects"] = [{"kind": "car", "params": {"user_asset": "../../elsewhere/x.obj", "asset_size": [4, 2, 1.5]}}]
    zarr.open_group(url, mode="r+")["spec"][0] = json.dumps(spec)
    with pytest.raises(scenes_run.RunError, match=r"scene 0's stored spec: asset \.\./\.\./elsewhere/x\.obj resolves"):
        scenes_run.run(url, n=2, cfg=cfg, seed=0, only=[0], overwrite=True,
                       cluster=scenes_run.ClusterOptions(workers=0), make=MAKE)
    if _has_bpy():
        one_line_error(gen("scenes", "--out", url, "--only", "0", "--overwrite", "--workers", 0),
                       "outside the asset folder")
    assert open_store(url).done().all()  # nothing was marked for re-rendering either


@pytest.mark.parametrize("link", ["file", "folder"])
def test_a_link_out_of_the_assets_folder_is_refused(tmp_path, link):
    from pipelines import scenes_run
    from scenes.config import build_config
    from tests.cli_util import gen, one_line_error
    assets, elsewhere = _outside_world(tmp_path)
    if link == "file":
        (assets / "car" / "evil.obj").symlink_to(elsewhere / "x.obj")
    else:
        (assets / "bus").symlink_to(elsewhere, target_is_directory=True)
    cfg = build_config("tiny", overrides=[f"assets.dir={assets}"])
    with pytest.raises(scenes_run.RunError, match="outside the asset folder .*symbolic link"):
        scenes_run.index_assets(cfg)
    if _has_bpy():
        out = tmp_path / "s.zarr"
        one_line_error(gen("scenes", "--n", 1, "--out", out, "--preset", "tiny", "--assets", assets),
                       "leads to", "symbolic link")
        assert not out.exists()
