"""`gen export kins|coco|instaorder` and `gen eval order`.

Two stores: a hand-built one written through the store module (known occlusion graph,
a wholly hidden instance, a bidirectional pair, an equal-depth pair, an empty scene and
an unfinished one) and a real tiny render (Blender)."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pipelines.cli import cli
from pipelines.export_coco import kins_layers
from pipelines.export_order import parse_entry
from scenes import store as scene_store
from tests.export_fakes import CAR, VAN, make_fake_store


def gen(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return make_fake_store(tmp_path_factory.mktemp("fake"))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    pytest.importorskip("bpy")
    url = str(tmp_path_factory.mktemp("r") / "tiny.zarr")
    r = gen("scenes", "--n", 3, "--preset", "tiny", "--workers", 0, "--out", url, "--seed", 3)
    assert r.exit_code == 0, r.stderr
    return url


def test_the_fake_store_has_the_cases_it_is_built_for(fake):
    s = scene_store.open_store(fake).read_scene(0)
    occ = s["occlusion"][:7, :7]
    assert set(zip(*np.nonzero(occ))) == {(1, 0), (3, 2), (5, 6), (6, 5)}
    assert s["modal_area"][2] == 0 and s["depth_order"][5, 6] == 0


def test_kins_layers_on_hand_built_graphs():
    occ = np.zeros((7, 7), bool)
    occ[0, 1] = occ[1, 2] = True  # chain 0 over 1 over 2
    occ[0, 2] = True  # 0 also directly over 2: layer is the longest chain
    occ[4, 5] = occ[5, 4] = True  # mutual
    occ[6, 5] = True  # 6 over the mutual pair
    oco, ico = kins_layers(occ)
    assert oco.tolist() == [1, 1, 1, 0, 2, 2, 2]
    assert ico.tolist() == [1, 2, 3, 0, 2, 2, 1]


def _store_masks(s, j):
    return s["amodal"][j], s["instance"] == j + 1


@pytest.mark.parametrize("which", ["fake", pytest.param("rendered", marks=pytest.mark.blender)])
def test_kins_export_decodes_bit_for_bit_and_loads_in_pycocotools(which, request, tmp_path):
    url = request.getfixturevalue(which)
    out = tmp_path / "k.json"
    r = gen("export", "kins", url, "--out", out, "--workers", 0)
    assert r.exit_code == 0, r.stderr
    coco = COCO(str(out))
    st = scene_store.open_store(url)
    kmax = st.max_instances
    n_checked = 0
    for img_id in coco.getImgIds():
        s = st.read_scene(img_id)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
        k = int(s["num_instances"])
        assert len(anns) == k  # every instance of an instance class, wholly hidden ones included
        for a in anns:
            j = a["id"] - 1 - img_id * kmax
            amodal, modal = _store_masks(s, j)
            for key in ("segmentation", "a_segm"):
                np.testing.assert_array_equal(mask_util.decode(a[key]).astype(bool), amodal)
            for key in ("inmodal_seg", "i_segm"):
                np.testing.assert_array_equal(mask_util.decode(a[key]).astype(bool), modal)
            np.testing.assert_array_equal(coco.annToMask(a).astype(bool), amodal)
            assert a["area"] == a["a_area"] == amodal.sum() and a["i_area"] == modal.sum()
            ys, xs = np.nonzero(amodal)
            assert a["bbox"] == a["a_bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            if modal.any():
                ys, xs = np.nonzero(modal)
                assert a["inmodal_bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            else:
                assert a["inmodal_bbox"] == a["i_bbox"] == [0, 0, 0, 0]
            assert coco.cats[a["category_id"]]["rgsd_class"] == int(s["instance_class"][j])
            assert a["occlude_rate"] == pytest.approx(1 - modal.sum() / amodal.sum(), abs=1e-6)
            n_checked += 1
    assert n_checked > 0
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} >= {"car", "pedestrian"}
    if which == "fake":
        anns = {a["id"] - 1: a for a in coco.loadAnns(coco.getAnnIds(imgIds=0))}
        assert [anns[j]["oco_id"] for j in range(7)] == [1, 1, 2, 2, 0, 3, 3]
        assert [anns[j]["ico_id"] for j in range(7)] == [2, 1, 2, 1, 0, 1, 1]
        assert anns[2]["i_area"] == 0 and mask_util.decode(anns[2]["inmodal_seg"]).sum() == 0
        assert coco.getImgIds() == [0, 1]  # scene 2 is unfinished


def _ap(gt_path, tmp_path):
    coco = COCO(str(gt_path))
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": a["segmentation"],
             "score": 1.0} for a in coco.dataset["annotations"]]
    ev = COCOeval(coco, coco.loadRes(dets), "segm")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return ev.stats


@pytest.mark.parametrize("which", ["fake", pytest.param("rendered", marks=pytest.mark.blender)])
@pytest.mark.parametrize("masks", ["amodal", "visible"])
def test_ground_truth_as_detections_scores_ap_one(which, masks, request, tmp_path):
    url = request.getfixturevalue(which)
    out = tmp_path / "c.json"
    assert gen("export", "coco", url, "--out", out, "--masks", masks, "--workers", 0).exit_code == 0
    data = json.loads(out.read_text())
    stats = _ap(out, tmp_path)
    assert stats[0] == pytest.approx(1.0) and stats[1] == pytest.approx(1.0)  # AP and AP50
    for a in data["annotations"]:
        assert set(a) == {"id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd"}
    if which == "fake":
        ids = {a["id"] - 1 for a in data["annotations"] if a["image_id"] == 0}
        assert ids == (set(range(7)) - {2} if masks == "visible" else set(range(7)))  # 2 is wholly hidden


def test_polygons_and_classes_filter(fake, tmp_path):
    out = tmp_path / "p.json"
    r = gen("export", "kins", fake, "--out", out, "--polygons", "--classes", "car,van", "--workers", 0)
    assert r.exit_code == 0, r.stderr
    coco = COCO(str(out))
    # Ids 1..K in the order of --classes, the store's class index beside each.
    assert [(c["id"], c["name"], c["rgsd_class"]) for c in coco.dataset["categories"]] == [(1, "car", CAR), (2, "van", VAN)]
    s = scene_store.open_store(fake).read_scene(0)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=0))
    assert sorted(a["id"] - 1 for a in anns) == [0, 2, 4, 5, 6]
    for a in anns:
        j = a["id"] - 1
        assert isinstance(a["segmentation"], list) and isinstance(a["a_segm"], list)
        assert isinstance(a["inmodal_seg"], dict)  # KINS 2020 keeps the visible mask as RLE
        poly = coco.annToMask(a).astype(bool)  # pycocotools rasterises the polygons
        amodal = s["amodal"][j]
        iou = (poly & amodal).sum() / (poly | amodal).sum()
        assert iou > 0.85, (j, iou)
        np.testing.assert_array_equal(mask_util.decode(a["inmodal_seg"]).astype(bool), s["instance"] == j + 1)


def test_images_dir_writes_the_rgb_losslessly(fake, tmp_path):
    import cv2
    out, imgs = tmp_path / "k.json", tmp_path / "imgs"
    assert gen("export", "kins", fake, "--out", out, "--images-dir", imgs, "--workers", 0).exit_code == 0
    data = json.loads(out.read_text())
    assert [im["file_name"] for im in data["images"]] == ["000000.png", "000001.png"]
    st = scene_store.open_store(fake)
    for im in data["images"]:
        png = cv2.imread(str(imgs / im["file_name"]), cv2.IMREAD_UNCHANGED)[..., ::-1]
        np.testing.assert_array_equal(png, st.read_scene(im["id"], ["rgb"])["rgb"])
    assert sorted(p.name for p in imgs.iterdir()) == ["000000.png", "000001.png"]


@pytest.mark.slow
def test_dask_export_equals_the_in_process_one(fake, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert gen("export", "kins", fake, "--out", a, "--workers", 0).exit_code == 0
    r = gen("export", "kins", fake, "--out", b, "--workers", 2, "--images-dir", tmp_path / "im")
    assert r.exit_code == 0, r.stderr
    assert a.read_bytes() == b.read_bytes()
    assert len(list((tmp_path / "im").iterdir())) == 2


@pytest.mark.parametrize("which", ["fake", pytest.param("rendered", marks=pytest.mark.blender)])
def test_instaorder_round_trips_to_the_store_orders(which, request, tmp_path):
    url = request.getfixturevalue(which)
    out = tmp_path / "o.json"
    assert gen("export", "instaorder", url, "--out", out).exit_code == 0
    data = json.loads(out.read_text())
    st = scene_store.open_store(url)
    kmax = st.max_instances
    for e in data["annotations"]:
        s = st.read_scene(e["image_id"])
        slots = np.array(e["instance_ids"], np.int64) - 1 - e["image_id"] * kmax
        assert slots.tolist() == list(range(int(s["num_instances"])))
        occ, depth, overlap = parse_entry(e)
        np.testing.assert_array_equal(occ, s["occlusion"][np.ix_(slots, slots)])
        np.testing.assert_array_equal(depth, s["depth_order"][np.ix_(slots, slots)])
        np.testing.assert_array_equal(overlap, occ | occ.T)
        n = len(slots)
        assert len(e["depth"]) == n * (n - 1) // 2 and all(d["count"] == 2 for d in e["depth"])
    if which == "fake":
        e = data["annotations"][0]
        assert sorted(o["order"] for o in e["occlusion"]) == ["1<0", "3<2", "5<6 & 6<5"]
        assert {"order": "5=6", "overlap": True, "count": 2} in e["depth"]
        assert {"order": "1<0", "overlap": True, "count": 2} in e["depth"]


def _reverse(data):
    out = json.loads(json.dumps(data))
    for e in out["annotations"]:
        for o in e["occlusion"] + e["depth"]:
            if "&" not in o["order"] and "<" in o["order"]:
                a, b = o["order"].split("<")
                o["order"] = f"{b}<{a}"
    return out


def test_order_metrics_perfect_on_ground_truth_and_worst_reversed(fake, tmp_path):
    gt = tmp_path / "o.json"
    assert gen("export", "instaorder", fake, "--out", gt).exit_code == 0
    r = gen("eval", "order", gt, "--scenes", fake, "--out", tmp_path / "m.json")
    assert r.exit_code == 0, r.stderr
    m = json.loads((tmp_path / "m.json").read_text())
    assert (m["occlusion"]["recall"], m["occlusion"]["precision"], m["occlusion"]["f1"]) == (100.0, 100.0, 100.0)
    assert m["depth_whdr"]["all"] == m["depth_whdr"]["overlap"] == m["depth_whdr"]["distinct"] == 0.0
    rev = tmp_path / "rev.json"
    rev.write_text(json.dumps(_reverse(json.loads(gt.read_text()))))
    r = gen("eval", "order", rev, "--scenes", fake, "--out", tmp_path / "mr.json")
    m = json.loads((tmp_path / "mr.json").read_text())
    # 4 true ordered occlusions, 2 of them the bidirectional pair that reversing keeps.
    assert m["occlusion"]["recall"] == pytest.approx(50.0) and m["occlusion"]["precision"] == pytest.approx(50.0)
    # 21 pairs, one equal (5=6, an overlapping pair) stays right: 18 distinct all wrong,
    # overlap pairs (0,1), (2,3) wrong and (5,6) right.
    assert m["depth_whdr"]["distinct"] == pytest.approx(100.0)
    assert m["depth_whdr"]["overlap"] == pytest.approx(200 / 3)
    assert m["depth_whdr"]["all"] == pytest.approx(2000 / 21)
    assert "recall 50.00" in r.stdout


@pytest.mark.blender
def test_order_metrics_on_a_rendered_store(rendered, tmp_path):
    gt = tmp_path / "o.json"
    assert gen("export", "instaorder", rendered, "--out", gt).exit_code == 0
    assert gen("eval", "order", gt, "--scenes", rendered, "--out", tmp_path / "m.json").exit_code == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["occlusion"]["f1"] == 100.0 and m["depth_whdr"]["all"] == 0.0
    data = _reverse(json.loads(gt.read_text()))
    bidir = sum(1 for e in data["annotations"] for o in e["occlusion"] if "&" in o["order"])
    equal = sum(1 for e in data["annotations"] for o in e["depth"] if "=" in o["order"])
    pairs = sum(len(e["depth"]) for e in data["annotations"])
    (tmp_path / "rev.json").write_text(json.dumps(data))
    gen("eval", "order", tmp_path / "rev.json", "--scenes", rendered, "--out", tmp_path / "mr.json")
    m = json.loads((tmp_path / "mr.json").read_text())
    assert m["occlusion"]["tp"] == 2 * bidir
    assert m["depth_whdr"]["all"] == pytest.approx(100.0 * (pairs - equal) / pairs)


def _one_line_error(r):
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr


def test_bad_input_is_one_line_exit_2_and_writes_nothing(fake, tmp_path):
    from composer import shard_store
    shards = str(tmp_path / "train.shards.zarr")
    shard_store.create(shards, 1, 4, 16, {"patch": 16, "near_m": 1.0}, [fake], 0, chunk_size=4)
    cases = [
        ("export", "kins", shards, "--out", tmp_path / "a.json"),
        ("export", "coco", fake, "--out", tmp_path / "b.json", "--classes", ","),
        ("export", "kins", fake, "--out", tmp_path / "c.json", "--classes", "dragon"),
        ("export", "instaorder", fake, "--out", tmp_path / "d.json", "--scenes", "7"),
        ("export", "region-support", shards),
        ("eval", "order", tmp_path / "missing.json", "--scenes", fake),
    ]
    for args in cases:
        _one_line_error(gen(*args))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.shards.zarr"]
    existing = tmp_path / "e.json"
    existing.write_text("keep me")
    for kind in ("kins", "coco", "instaorder"):
        _one_line_error(gen("export", kind, fake, "--out", existing))
    assert existing.read_text() == "keep me"
    bad_pred = tmp_path / "p.json"
    bad_pred.write_text(json.dumps({"annotations": [{"image_id": 0, "instance_ids": [99], "occlusion": [],
                                                     "depth": []}]}))
    _one_line_error(gen("eval", "order", bad_pred, "--scenes", fake))
    bad_pred.write_text(json.dumps({"annotations": [{"image_id": 0, "instance_ids": [1, 2],
                                                     "occlusion": [{"order": "-1<0"}], "depth": []}]}))
    _one_line_error(gen("eval", "order", bad_pred, "--scenes", fake))
