"""scenes.view.frame_view: the camera pose and the candidate instances, against hand-computed
values."""
import math

import numpy as np

from scenes.config import build_config
from scenes.spec import Camera, Placed, SceneSpec
from scenes.view import frame_view


def box(cls, x, y, yaw=0.0, size=(2.0, 1.0, 1.5)):
    return Placed("box", {"class": cls, "length": size[0], "width": size[1], "height": size[2]},
                  [x, y, 0.0], yaw)


def spec(camera, objects):
    return SceneSpec(0, 0, "street", camera, {}, objects)


def test_world_to_camera_hand_computed():
    # Yaw 90 looks along world -x; camera x (right) is then world +y, camera y (down) world -z.
    cam = Camera([1.0, 2.0, 1.5], 90.0, 0.0, 0.0, 60.0, 64, 48)
    m = frame_view(spec(cam, []), build_config("tiny")).world_to_camera
    want = np.array([[0, 1, 0, -2], [0, 0, -1, 1.5], [-1, 0, 0, 1], [0, 0, 0, 1]], float)
    np.testing.assert_allclose(m, want, atol=1e-12)
    # Pitch 30 up: forward (0, cos30, sin30); down is (0, sin30, -cos30).
    cam = Camera([0.0, 0.0, 2.0], 0.0, 30.0, 0.0, 60.0, 64, 48)
    m = frame_view(spec(cam, []), build_config("tiny")).world_to_camera
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    np.testing.assert_allclose(m[:3, :3], [[1, 0, 0], [0, s, -c], [0, c, s]], atol=1e-12)
    np.testing.assert_allclose(m[:3, 3], [0, 2 * c, -2 * s], atol=1e-12)


def test_candidates_in_view_nearest_kept_ids_in_spec_order():
    cam = Camera([0.0, 0.0, 1.5], 0.0, 0.0, 0.0, 60.0, 64, 48)  # looks along +y
    objects = [
        Placed("ground", {"size_x": 50.0, "size_y": 50.0}, [0.0, 0.0, 0.0]),  # stuff, never an instance
        box("car", 1.0, 20.0, yaw=90.0),  # in view, 20 m
        box("car", 0.0, -8.0),  # behind the camera
        box("building", 0.0, 10.0),  # in view, not an instance class
        box("pedestrian", -1.0, 8.0),  # in view, 8 m
        box("van", 30.0, 10.0),  # far outside the 60-degree field of view
        box("bus", 0.0, 40.0),  # in view, 40 m: the farthest, dropped at max_instances = 2
    ]
    cfg = build_config("tiny", overrides=["scene.max_instances=2"])
    v = frame_view(spec(cam, objects), cfg)
    assert v.instance_of == {1: 1, 4: 2}  # ids follow spec order, not distance
    assert [c["object"] for c in v.candidates] == [1, 4]
    car, ped = (c["box3d"] for c in v.candidates)
    # Box centre (x, y, h/2) -> camera (x, 1.5 - h/2, y); yaw 90 turns forward to camera +z.
    np.testing.assert_allclose(car, [1.0, 0.75, 20.0, 2.0, 1.0, 1.5, math.pi / 2], atol=1e-12)
    np.testing.assert_allclose(ped, [-1.0, 0.75, 8.0, 2.0, 1.0, 1.5, 0.0], atol=1e-12)
    from scenes.classes import CLASS_IDS
    assert [c["class_id"] for c in v.candidates] == [CLASS_IDS["car"], CLASS_IDS["pedestrian"]]
    from scenes import portable_math as pm
    assert v.intrinsics["fx"] == 32.0 / pm.tan(math.radians(30.0))  # the same bits on any CPU
    assert math.isclose(v.intrinsics["fx"], 32.0 / math.tan(math.radians(30.0)), rel_tol=1e-15)
    cfg = build_config("tiny", overrides=["scene.max_instances=8"])
    assert frame_view(spec(cam, objects), cfg).instance_of == {1: 1, 4: 2, 6: 3}
