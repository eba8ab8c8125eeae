"""The Blender-free fixture store holds what its geometry says (hand-computed values), and the
annotation code agrees with it where both compute the same thing."""
import numpy as np

from scenes.classes import CLASS_IDS
from tests.fixture_store import CAM_H, focal, layout

W, H, FOV = 96, 64, 80.0


def test_depth_normals_classes_at_hand_computed_pixels(fixture_scenes):
    from scenes.store import open_store
    st = open_store(fixture_scenes)
    assert st.done().all() and st.n == 6
    f = focal(W, FOV)
    for i in range(st.n):
        s = st.read_scene(i)
        car = layout(i, 0)[1]
        # Bottom row, any column: the ground at planar depth CAM_H * f / (v - cy), v = row + 0.5.
        assert np.allclose(s["depth"][H - 1, W - 1], CAM_H * f / (H - 0.5 - H / 2), rtol=1e-6)
        assert s["semantic"][H - 1, W - 1] == CLASS_IDS["terrain"] and s["instance"][H - 1, W - 1] == 0
        assert np.allclose(s["normals"][H - 1, W - 1].astype(float), [0, -1, 0])
        # Top row: sky, no surface, no normal.
        assert np.isinf(s["depth"][0]).all() and (s["semantic"][0] == CLASS_IDS["sky"]).all()
        assert not s["normals"][0].any()
        # The pixel looking at the car's near face centre (just below the horizon).
        x, y = car["centre"]
        near = y - car["size"][1] / 2
        col, row = int(W / 2 + f * x / near), int(H / 2 + 0.25 * f * CAM_H / near)
        assert np.isclose(s["depth"][row, col], near, rtol=1e-6)
        assert s["instance"][row, col] == 1 and s["semantic"][row, col] == CLASS_IDS["car"]
        assert np.allclose(s["normals"][row, col].astype(float), [0, 0, -1])
        assert s["box3d"][0].tolist() == np.float32([x, CAM_H / 2, y, 1.8, 4.0, CAM_H, 0.0]).tolist()
        assert np.isclose(s["distance"][0], np.sqrt(x * x + (CAM_H / 2) ** 2 + y * y), rtol=1e-6)


def test_instance_tables_and_the_wholly_hidden_van(fixture_scenes):
    from scenes.store import open_store
    st = open_store(fixture_scenes)
    even, odd = st.read_scene(0), st.read_scene(1)
    assert int(even["num_instances"]) == 4 and int(odd["num_instances"]) == 5
    assert odd["instance_class"][:5].tolist() == [CLASS_IDS[c] for c in ("car", "pedestrian", "bus", "pole", "van")]
    assert odd["instance_object"][:5].tolist() == [1, 2, 3, 4, 5]
    van = 4
    assert odd["modal_area"][van] == 0 and odd["amodal_area"][van] > 0 and odd["visible_fraction"][van] == 0
    assert odd["modal_box"][van].tolist() == [-1] * 4 and odd["amodal_box"][van].min() >= 0
    assert odd["occlusion"][2, van] and not odd["occlusion"][van].any()  # the bus hides it
    assert odd["occlusion"][0, 2] and odd["visible_fraction"][2] < 1  # the car hides part of the bus
    assert (odd["depth_order"][van, :4] == 1).all()  # the van is farthest
    for s in (even, odd):
        k = int(s["num_instances"])
        modal = s["instance"][None] == np.arange(1, k + 1)[:, None, None]
        assert not (modal & ~s["amodal"][:k]).any()  # modal within amodal
        assert (modal.reshape(k, -1).sum(1) == s["modal_area"][:k]).all()


def test_annotation_code_agrees_with_the_geometry(fixture_scenes):
    from scenes import annotations as A
    from scenes.store import open_store
    st = open_store(fixture_scenes)
    for i in range(st.n):
        s = st.read_scene(i)
        k = int(s["num_instances"])
        am = s["amodal"][:k]
        modal = s["instance"][None] == np.arange(1, k + 1)[:, None, None]
        assert (A.occlusion_matrix(s["instance"], am) == s["occlusion"][:k, :k]).all()
        assert (A.depth_order(s["box3d"][:k, 2]) == s["depth_order"][:k, :k]).all()
        assert (A.boxes(am) == s["amodal_box"][:k]).all() and (A.boxes(modal) == s["modal_box"][:k]).all()


def test_spec_camera_maps_box_centres_to_box3d(fixture_scenes):
    from scenes.spec import SceneSpec
    from scenes.store import open_store
    st = open_store(fixture_scenes)
    spec = SceneSpec.from_json(st.spec(3))
    s = st.read_scene(3, ["box3d", "instance_object"])
    w2c = spec.camera.world_to_camera()
    for slot, j in enumerate(s["instance_object"][:4]):
        o = spec.objects[j]
        centre = np.array([o.position[0], o.position[1], o.params["height"] / 2, 1.0])
        assert np.allclose((w2c @ centre)[:3], s["box3d"][slot, :3], atol=1e-6)
