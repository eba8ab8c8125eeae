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
