"""Amodal completion: crops, in-front map and paste-back against an analytic occluder; training
lowers the loss and resumes exactly; the mIoU scoring; gen complete and its user mistakes."""
import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")
pytest.importorskip("pycocotools")

from pipelines.cli import cli  # noqa: E402
from trainer import checkpoint  # noqa: E402
from trainer.completion_crops import channels, in_front, paste_full, visible_box  # noqa: E402
from trainer.completion_data import SampleConfig, scene_instances, torch_dataset  # noqa: E402
from trainer.completion_eval import score  # noqa: E402
from trainer.completion_model import build_completion, loss_fn  # noqa: E402
from trainer.completion_train import CompletionTrainConfig, model_config, train  # noqa: E402

ALL = ["visible", "rgb", "depth", "rdn", "tangent", "infront"]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: a second OpenMP thread only spins (30x slower on a loaded 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def occluded_scene():
    """A 100x80 image: instance 1, amodal x 20..50, y 30..50, at 10 m, hidden right of x = 40
    by instance 2 (x 40..70, y 20..60) at 5 m; the rest at 20 m."""
    h, w = 80, 100
    amodal = np.zeros((2, h, w), bool)
    amodal[0, 30:50, 20:50] = True
    amodal[1, 20:60, 40:70] = True
    depth = np.full((h, w), 20.0, np.float32)
    depth[amodal[0]] = 10.0
    depth[amodal[1]] = 5.0
    inst = np.zeros((h, w), np.uint16)
    inst[amodal[0]] = 1
    inst[amodal[1]] = 2  # in front
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = np.arange(w)[None, :]  # x in red, y in green: the crop's pixels can be read back
    rgb[..., 1] = np.arange(h)[:, None]
    return {"rgb": rgb, "depth": depth, "instance": inst, "amodal": amodal, "labels": np.array([1, 1])}


@pytest.mark.parametrize("size", [40, 80])
def test_crop_in_front_and_paste_back_land_on_the_right_pixels(size):
    sc = occluded_scene()
    cfg = SampleConfig(size=size, factor=2.0, inputs=ALL, min_visible_area=1)
    first = scene_instances(sc, cfg, None, with_full=True)[0]
    # visible box x 20..40, y 30..50 -> a 40-pixel square from (10, 20)
    assert visible_box(first["visible_full"]) == (20, 30, 40, 50)
    c = first["crop"]
    assert (c.x0, c.y0, c.side) == (10.0, 20.0, 40.0)
    k = size // 40  # crop pixels per image pixel
    raw = first["raw"]
    expect_vis = np.zeros((40, 40), bool)
    expect_vis[10:30, 10:30] = True
    assert np.array_equal(raw["visible"], np.kron(expect_vis, np.ones((k, k), bool)))
    expect_am = np.zeros((40, 40), bool)
    expect_am[10:30, 10:40] = True
    assert np.array_equal(raw["amodal"], np.kron(expect_am, np.ones((k, k), bool)))
    # in front: exactly the occluder's pixels inside the window (x 40..50, y 20..60 -> crop x 30..40)
    expect_front = np.zeros((40, 40), bool)
    expect_front[:, 30:40] = True
    assert np.array_equal(raw["infront"], np.kron(expect_front, np.ones((k, k), bool)))
    assert raw["rgb"][0, 0, 0] == 10 and raw["rgb"][0, 0, 1] == 20  # top-left crop pixel is image (10, 20)
    # the crop's amodal mask pasted back is the amodal mask, pixel for pixel
    assert np.array_equal(paste_full(raw["amodal"].astype(np.float32), c, (80, 100)), sc["amodal"][0])
    x = channels(raw, ALL)
    assert x.shape == (1 + 3 + 1 + 4 + 3 + 1, size, size)
    assert x[4][raw["visible"]].max() == 0.0  # relative depth is 0 on the instance's own surface
    assert x[4][raw["infront"]].max() == pytest.approx(-1.0)  # the occluder is twice as near: log2(1/2)


def test_in_front_excludes_the_instance_and_uses_a_low_percentile():
    d = np.array([[1.0, 2.0, 3.0, np.inf]], np.float32)
    vis = np.array([[False, True, True, False]])
    assert in_front(d, vis).tolist() == [[True, False, False, False]]


def test_scores_match_their_definitions():
    sc = occluded_scene()
    items = scene_instances(sc, SampleConfig(size=40, inputs=["visible"], min_visible_area=1), None, with_full=True)
    for it in items:
        it["amodal_win"], it["visible_win"] = it.pop("amodal_full"), it.pop("visible_full")
    perfect = score(items, [it["amodal_win"] for it in items], ["car"])
    assert perfect["all"]["full"] == 1.0 and perfect["all"]["occluded"] == 1.0 and perfect["all"]["n_occluded"] == 1
    visible = score(items, [it["visible_win"] for it in items], ["car"])
    assert visible["all"]["full"] == pytest.approx((400 / 600 + 1.0) / 2)  # instance 2 is unoccluded
    assert visible["all"]["occluded"] == 0.0
    assert visible["bins"]["25-50%"]["n"] == 1 and visible["bins"]["<1%"]["n"] == 1


def tiny_config(**over):
    base = dict(inputs=ALL, size=32, widths=[8, 16, 32, 64], steps=4, scenes_per_step=2, max_instances=16,
                min_visible_area=8, loader_workers=0, log_every=1, ckpt_every=1, warmup_steps=2, lr=3e-3,
                classes=["car", "pedestrian", "bus", "van"])
    return CompletionTrainConfig(**{**base, **over})


def test_a_few_steps_lower_the_loss(fixture_scenes):
    cfg = tiny_config()
    mc = model_config(cfg)
    torch.manual_seed(0)
    model = build_completion(**mc)
    ds = torch_dataset([fixture_scenes], SampleConfig.from_model(mc, min_visible_area=8), 0, 2, 16)
    x, y = next(iter(ds))
    assert len(x) >= 4
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(15):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses  # measured: 1.37 -> 0.97


def test_resume_equals_an_uninterrupted_run(fixture_scenes, tmp_path):
    train([fixture_scenes], str(tmp_path / "full"), tiny_config(), progress=False)
    train([fixture_scenes], str(tmp_path / "cut"), tiny_config(loader_workers=1), progress=False, stop_after=2)
    with pytest.raises(Exception, match="differs"):
        train([fixture_scenes], str(tmp_path / "cut"), tiny_config(lr=1e-3), resume=True, progress=False)
    train([fixture_scenes], str(tmp_path / "cut"), tiny_config(loader_workers=1), resume=True, progress=False)
    a = checkpoint.load(tmp_path / "full" / "last.pt", kind="completion")
    b = checkpoint.load(tmp_path / "cut" / "last.pt", kind="completion")
    assert a["step"] == b["step"] == 4 and a["epoch"] == b["epoch"] == 1  # 3 batches an epoch: crossed one
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    full = (tmp_path / "full" / "log.csv").read_text().splitlines()
    cut = (tmp_path / "cut" / "log.csv").read_text().splitlines()
    assert [r.split(",")[1] for r in full] == [r.split(",")[1] for r in cut]


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """The analytic scene as files: photo, 16-bit depth (mm), id PNG, COCO JSON, and a trained-for-2-steps
    depth checkpoint and no-depth checkpoint."""
    d = tmp_path_factory.mktemp("photo")
    sc = occluded_scene()
    cv2.imwrite(str(d / "p.png"), sc["rgb"][..., ::-1])
    cv2.imwrite(str(d / "d.png"), (sc["depth"] * 1000).astype(np.uint16))
    cv2.imwrite(str(d / "ids.png"), sc["instance"])
    from trainer.amodal_coco import rle
    anns = [{"id": j + 7, "image_id": 3, "category_id": 1, "segmentation": rle(sc["instance"] == j + 1)} for j in range(2)]
    coco = {"images": [{"id": 3, "file_name": "p.png", "width": 100, "height": 80},
                       {"id": 4, "file_name": "other.png", "width": 100, "height": 80}],
            "annotations": anns + [{"id": 99, "image_id": 4, "category_id": 1, "segmentation": anns[0]["segmentation"]}],
            "categories": [{"id": 1, "name": "car"}]}
    (d / "m.json").write_text(json.dumps(coco))
    empty = dict(coco, annotations=[{"id": 1, "image_id": 3, "category_id": 1,
                                     "segmentation": rle(np.zeros((80, 100), bool))}])
    (d / "empty.json").write_text(json.dumps(empty))
    cv2.imwrite(str(d / "ids_small.png"), sc["instance"][:40, :50])
    for name, inputs in (("depth", ALL), ("nodepth", ["visible", "rgb"])):
        cfg = tiny_config(inputs=inputs)
        torch.manual_seed(0)
        model = build_completion(**model_config(cfg))
        checkpoint.save(d / f"{name}.pt", kind="completion", model_config=model_config(cfg), model=model.state_dict())
    checkpoint.save(d / "refiner.pt", kind="refiner", model_config={"name": "tiny"}, model={"w": torch.zeros(1)})
    return d


def gen(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_gen_complete_from_coco_json_and_id_png(photo, tmp_path):
    r = gen("complete", photo / "p.png", "--visible", photo / "m.json", "--depth", photo / "d.png",
            "--checkpoint", photo / "depth.pt", "--out", tmp_path / "a.json")
    assert r.exit_code == 0, r.output
    a = json.loads((tmp_path / "a.json").read_text())
    assert (tmp_path / "a.png").exists() and [x["source_id"] for x in a["annotations"]] == [7, 8]
    from pycocotools import mask as mu
    for ann in a["annotations"]:
        am, vis = (mu.decode({"size": ann[k]["size"], "counts": ann[k]["counts"].encode()}).astype(bool)
                   for k in ("segmentation", "inmodal_seg"))
        assert (am >= vis).all() and vis.sum() in (400, 1200)  # the amodal mask holds the visible mask given
    r = gen("complete", photo / "p.png", "--visible", photo / "ids.png", "--depth", photo / "d.png",
            "--checkpoint", photo / "depth.pt", "--out", tmp_path / "b.json")
    assert r.exit_code == 0, r.output
    b = json.loads((tmp_path / "b.json").read_text())
    assert [x["segmentation"] for x in a["annotations"]] == [x["segmentation"] for x in b["annotations"]]
    r = gen("complete", photo / "p.png", "--visible", photo / "ids.png", "--checkpoint", photo / "nodepth.pt",
            "--out", tmp_path / "b.json")
    assert r.exit_code == 2 and "exists" in r.output
    r = gen("complete", photo / "p.png", "--visible", photo / "ids.png", "--checkpoint", photo / "nodepth.pt",
            "--out", tmp_path / "b.json", "--overwrite")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("args, needle", [
    (("--visible", "ids_small.png", "--depth", "d.png", "--checkpoint", "depth.pt"), "the photo is 100x80"),
    (("--visible", "empty.json", "--depth", "d.png", "--checkpoint", "depth.pt"), "empty mask"),
    (("--visible", "m.json", "--depth", "d.png", "--checkpoint", "refiner.pt"), "refiner model"),
    (("--visible", "m.json", "--checkpoint", "depth.pt"), "give --depth"),
    (("--visible", "m.json", "--checkpoint", "nodepth.pt", "--out-is-input"), "onto the input"),
])
def test_bad_inputs_one_line_exit_2_nothing_written(photo, tmp_path, args, needle):
    args = [photo / a if str(a).endswith((".png", ".json", ".pt")) else a for a in args]
    out = tmp_path / "o.json"
    if "--out-is-input" in args:
        args.remove("--out-is-input")
        out = photo / "m.json"
    before = sorted(p.name for p in photo.iterdir())
    r = gen("complete", photo / "p.png", *args, "--out", out, "--overwrite")
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: ") and r.output.count("\n") == 1 and needle in r.output, r.output
    assert not list(tmp_path.iterdir()) and sorted(p.name for p in photo.iterdir()) == before


@pytest.mark.parametrize("coco, needle", [
    ({"images": ["x"], "annotations": []}, "'images' must be a list of objects"),
    ({"images": [{"id": 1, "file_name": "p.png"}], "annotations": [3]}, "'annotations' must be a list of objects"),
    ({"images": [{"id": 1, "file_name": "p.png", "height": 5}], "annotations": []}, "is Nonex5, the photo is"),
])
def test_malformed_coco_is_one_line(photo, tmp_path, coco, needle):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(coco))
    r = gen("complete", photo / "p.png", "--visible", bad, "--checkpoint", photo / "nodepth.pt",
            "--out", tmp_path / "o.json")
    assert r.exit_code == 2 and r.output.count("\n") == 1 and needle in r.output, r.output
    assert not (tmp_path / "o.json").exists()


def test_train_and_eval_from_the_command_line(fixture_scenes, tmp_path):
    r = gen("train", "completion", "--scenes", fixture_scenes, "--out", tmp_path / "bad", "--inputs", "rgb,normals")
    assert r.exit_code == 2 and "unknown input 'normals'" in r.output and not (tmp_path / "bad").exists()
    r = gen("train", "completion", "--scenes", fixture_scenes, "--out", tmp_path / "run", "--steps", 2, "--size", 32,
            "--scenes-per-step", 2, "--min-visible-area", 8, "--loader-workers", 0, "--classes", "car,bus,van")
    assert r.exit_code == 0, r.output
    r = gen("eval", "completion", tmp_path / "run" / "last.pt", "--scenes", fixture_scenes, "--out", tmp_path / "rep",
            "--min-visible-area", 8)
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["n_instances"] > 0 and rep["rows"]["visible"]["all"]["occluded"] == 0.0
    assert set(rep["rows"]) == {"model", "visible", "hull"} and "| hull |" in r.output
