"""`gen stats` on a small store whose tables are set by hand: every reported number is
compared with a value worked out below, not with the code's own output."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from pipelines.cli import cli
from scenes import store as scene_store
from scenes.classes import CLASS_IDS
from scenes.config import build_config

W, H, KMAX = 128, 100, 8
CAR, PED, POLE = CLASS_IDS["car"], CLASS_IDS["pedestrian"], CLASS_IDS["pole"]


def gen(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def scene(instances, occ_pairs, rgb, stale=False):
    """instances: (class, modal_area, amodal_area, modal_box, amodal_box, distance)."""
    k = len(instances)
    t = {
        "rgb": np.broadcast_to(np.asarray(rgb, np.uint8), (H, W, 3)).copy(),
        "depth": np.full((H, W), np.inf, np.float32), "instance": np.zeros((H, W), np.uint16),
        "semantic": np.zeros((H, W), np.uint8), "normals": np.zeros((H, W, 3), np.float16),
        "amodal": np.zeros((KMAX, H, W), bool), "num_instances": np.uint16(k),
        "instance_class": np.zeros(KMAX, np.uint8), "instance_object": np.full(KMAX, -1, np.int32),
        "modal_box": np.full((KMAX, 4), -1, np.int32), "amodal_box": np.full((KMAX, 4), -1, np.int32),
        "modal_area": np.zeros(KMAX, np.int32), "amodal_area": np.zeros(KMAX, np.int32),
        "visible_fraction": np.zeros(KMAX, np.float32), "distance": np.full(KMAX, np.nan, np.float32),
        "box3d": np.full((KMAX, 7), np.nan, np.float32), "occlusion": np.zeros((KMAX, KMAX), bool),
        "depth_order": np.zeros((KMAX, KMAX), np.int8),
    }
    for j, (c, m, a, mb, ab, d) in enumerate(instances):
        t["instance_class"][j], t["modal_area"][j], t["amodal_area"][j] = c, m, a
        t["modal_box"][j], t["amodal_box"][j], t["distance"][j] = mb, ab, d
        t["visible_fraction"][j] = m / a
    for a, b in occ_pairs:
        t["occlusion"][a, b] = True
    if stale:  # rows past num_instances must never be counted
        t["instance_class"][5], t["modal_area"][5], t["amodal_area"][5] = CAR, 50, 60
        t["occlusion"][5, 0] = t["occlusion"][0, 5] = True
    return t


def spec(elevation, height):
    return json.dumps({"scenario": "street", "camera": {"position": [0.0, 0.0, height], "pitch_deg": 1.0,
                                                        "width": W, "height": H},
                       "lighting": {"sun_elevation_deg": elevation}})


NONE = [-1, -1, -1, -1]
SCENE0 = [  # car at rate exactly 0.15 (not occluded), truncated left; hidden pedestrian; big car cut top/bottom
    (CAR, 850, 1000, [10, 10, 40, 40], [0, 10, 40, 40], 12.0),
    (PED, 0, 300, NONE, [50, 20, 60, 50], 7.5),
    (CAR, 9216, 10000, [20, 0, 116, 96], [20, 0, 120, 100], 150.0),
]
SCENE1 = [  # pole at rate 0.2 (occluded), no distance; car one pixel short of medium (modal) / medium (amodal)
    (POLE, 160, 200, [60, 40, 70, 60], [60, 40, 70, 60], float("nan")),
    (CAR, 1023, 1024, [5, 5, 37, 37], [5, 5, 37, 37], 99.9),
]


def make_store(path, n=4):
    cfg = build_config("tiny", overrides=[f"render.width={W}", f"render.height={H}", f"scene.max_instances={KMAX}"])
    st = scene_store.create(str(path), n, cfg, 0, {"fx": 50.0, "fy": 50.0, "cx": W / 2, "cy": H / 2})
    st.write_scene(0, scene(SCENE0, [(2, 0), (0, 1), (2, 1)], (255, 255, 255), stale=True), spec(30.0, 1.5))
    st.write_scene(1, scene(SCENE1, [(1, 0)], (255, 0, 0)), spec(-5.0, 2.0))
    st.write_scene(2, scene(SCENE0 * 2, [(0, 1)], (9, 9, 9)), spec(30.0, 9.0))  # then marked not done
    st.write_scene(3, scene([], [], (0, 0, 0)), spec(10.0, 1.0))
    scene_store.open_store(str(path), mode="r+").group["done"][2] = False
    return str(path)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("st") / "hand.zarr")


@pytest.fixture(scope="module")
def report(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "report"
    r = gen("stats", store, "--out", str(out), "--pixels")
    assert r.exit_code == 0, r.output
    return out, json.loads((out / "stats.json").read_text())["stores"][0]


def test_counts_and_shares_match_hand_values(report):
    _, s = report
    t = s["tables"]
    assert (s["done"], s["scenes"], t["images"]) == (3, 4, 3)
    assert (t["instances"], t["visible_instances"], t["usable_instances"]) == (5, 4, 4)
    assert t["usable_min_px"] == 6  # 100 px at 640x360 is 5.56 px at 128x100
    assert t["per_image_histogram"] == [1, 0, 1, 1]  # scenes with 0, 1, 2, 3 instances
    assert t["visible_per_image_histogram"] == [1, 0, 2]
    assert t["instances_per_image"] == pytest.approx(5 / 3)
    c = t["classes"]
    assert set(c) == {"car", "pedestrian", "pole"}
    assert (c["car"]["instances"], c["pedestrian"]["instances"], c["pole"]["instances"]) == (3, 1, 1)
    assert c["car"]["share_of_instances"] == pytest.approx(0.6)
    assert c["pedestrian"]["wholly_hidden"] == 1 and c["pedestrian"]["visible"] == 0
    assert c["car"]["images_with"] == 2
    assert t["wholly_hidden"] == 1 and t["wholly_hidden_share"] == pytest.approx(0.2)
    assert t["occluded"] == 1 and t["occluded_share_of_visible"] == pytest.approx(0.25)  # 0.15 exactly is not occluded
    assert t["truncated"] == 2 and t["truncated_share"] == pytest.approx(0.4)
    assert c["car"]["truncated_share"] == pytest.approx(2 / 3)
    k = s["kins_comparable"]
    assert k["road_users_visible_per_image"] == pytest.approx(1.0)
    assert k["car_share_of_visible_road_users"] == 1.0 and k["pedestrian_share_of_visible_road_users"] == 0.0


def test_histograms_match_hand_values(report):
    _, s = report
    t = s["tables"]
    assert t["occlusion_rate_histogram"] == [2, 1, 1, 0, 0, 0, 0, 0, 0, 1]
    assert t["occlusion_rate_histogram_visible"] == [2, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    sz = t["coco_sizes"]
    assert sz["modal_area"] == {"small": 3, "medium": 0, "large": 1}
    assert sz["amodal_area"] == {"small": 3, "medium": 1, "large": 1}
    assert sz["modal_box"] == {"small": 2, "medium": 1, "large": 1}
    assert sz["amodal_box"] == {"small": 2, "medium": 2, "large": 1}
    want = [0] * 21
    want[1], want[2], want[19], want[20] = 1, 1, 1, 1  # 7.5, 12, 99.9, 150 m
    assert t["distance_histogram"] == want and t["distance_missing"] == 1
    assert t["occluded_by_degree_histogram"][:3] == [2, 2, 1] and sum(t["occluded_by_degree_histogram"]) == 5
    assert t["occluder_degree_histogram"][:3] == [2, 2, 1] and sum(t["occluder_degree_histogram"]) == 5
    assert t["occlusion_pairs_per_image"] == pytest.approx(4 / 3)


def test_specs_and_brightness(report):
    out, s = report
    p = s["specs"]["parameters"]
    assert sorted(p["camera.height_m"]) == [1.0, 1.5, 2.0]  # scene 2 is not done
    assert s["specs"]["scenarios"] == {"street": 3}
    b = s["brightness"]
    assert b["mean"] == pytest.approx((1.0 + 0.2126 + 0.0) / 3, abs=1e-9)
    assert b["dark_share"] == pytest.approx(1 / 3)
    assert b["daylight_sampled"] == 2 and b["daylight_dark_share"] == pytest.approx(0.5)
    rows = (out / "brightness_hand.zarr.csv").read_text().splitlines()
    assert rows[0] == "scene,mean_luma" and [r.split(",")[0] for r in rows[1:]] == ["0", "1", "3"]
    md = (out / "stats.md").read_text()
    assert "| car share of visible road users | 100.0 % | 68.8 % |" in md
    assert "truncated" in md and "amodal box touches the image border" in md
    for name in ("instances_per_image", "class_mix", "occlusion_rate", "coco_sizes", "distance",
                 "occlusion_degree", "parameters", "brightness"):
        assert (out / f"{name}.png").stat().st_size > 1000


def test_blocks_do_not_change_the_numbers(store, monkeypatch):
    from pipelines import stats
    whole = stats.summarise(store, progress=False)
    monkeypatch.setattr(stats, "BLOCK", 3)  # blocks of 3 scenes: [0, 3) and [3, 4)
    assert stats.summarise(store, progress=False)["tables"] == whole["tables"]


def test_two_stores_side_by_side(store, tmp_path):
    other = make_store(tmp_path / "other.zarr")
    out = tmp_path / "cmp"
    r = gen("stats", store, other, "--out", str(out), "--no-plots")
    assert r.exit_code == 0, r.output
    d = json.loads((out / "stats.json").read_text())
    assert [s["store"] for s in d["stores"]] == [store, other]
    assert d["stores"][0]["tables"] == d["stores"][1]["tables"]
    assert "| | hand.zarr | other.zarr | KINS |" in (out / "stats.md").read_text()
    assert not list(out.glob("*.png"))


def test_bad_input_is_one_line_and_writes_nothing(store, tmp_path):
    from composer import shard_store
    shards = str(tmp_path / "sh.zarr")
    shard_store.create(shards, 1, 4, 16, {"near_m": 1.0}, [], 0, chunk_size=4)
    empty = str(tmp_path / "empty.zarr")
    cfg = build_config("tiny")
    scene_store.create(empty, 3, cfg, 0, {"fx": 1.0})
    for bad, words in ((shards, "not a scene store"), (empty, "no finished scenes"), (str(tmp_path / "nope.zarr"), "no store")):
        out = tmp_path / "r"
        r = gen("stats", store, bad, "--out", str(out))
        assert r.exit_code == 2 and words in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
        assert not out.exists()
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    r = gen("stats", store, "--out", str(full))
    assert r.exit_code == 2 and "--overwrite" in r.output
    assert sorted(p.name for p in full.iterdir()) == ["keep.txt"]
