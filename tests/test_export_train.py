"""Exports that train as they are (issue 26): contiguous category ids in --classes order, a
torchvision Mask R-CNN trained on `gen export coco` output through CocoDetection, and the
depth, normals and intrinsics that leave the store beside the RGB."""
import json

import numpy as np
import pytest

from scenes import store as scene_store
from tests.cli_util import gen
from tests.export_fakes import CAR, PED, make_fake_store


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return make_fake_store(tmp_path_factory.mktemp("fake"))


def test_category_ids_follow_the_classes_order(fake, tmp_path):
    out = tmp_path / "c.json"
    assert gen("export", "coco", fake, "--out", out, "--classes", "pedestrian,car", "--workers", 0).exit_code == 0
    data = json.loads(out.read_text())
    assert [(c["id"], c["name"], c["rgsd_class"]) for c in data["categories"]] == [(1, "pedestrian", PED), (2, "car", CAR)]
    s = scene_store.open_store(fake).read_scene(0)
    kmax = scene_store.open_store(fake).max_instances
    for a in data["annotations"]:
        j = a["id"] - 1 - a["image_id"] * kmax
        assert a["category_id"] == {PED: 1, CAR: 2}[int(s["instance_class"][j])]
    old = tmp_path / "t.json"
    assert gen("export", "coco", fake, "--out", old, "--classes", "pedestrian,car", "--table-ids",
               "--workers", 0).exit_code == 0
    assert [c["id"] for c in json.loads(old.read_text())["categories"]] == [CAR + 1, PED + 1]


def test_mask_rcnn_trains_two_steps_on_the_export(fake, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from torchvision.datasets import CocoDetection, wrap_dataset_for_transforms_v2
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.transforms import v2
    out, imgs = tmp_path / "coco.json", tmp_path / "images"
    classes = "car,van,truck,pedestrian"
    r = gen("export", "coco", fake, "--out", out, "--images-dir", imgs, "--classes", classes, "--workers", 0)
    assert r.exit_code == 0, r.output
    ds = wrap_dataset_for_transforms_v2(
        CocoDetection(str(imgs), str(out), transforms=v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])),
        target_keys=("boxes", "labels", "masks"))
    samples = [ds[i] for i in range(len(ds)) if "boxes" in ds[i][1]]  # images without objects carry no boxes
    assert samples and max(int(t["labels"].max()) for _, t in samples) <= 4
    torch.manual_seed(0)
    # torchvision's Mask R-CNN as users build it (ResNet-18 FPN for a test's budget), random weights.
    model = MaskRCNN(resnet_fpn_backbone(backbone_name="resnet18", weights=None), num_classes=len(classes.split(",")) + 1,
                     min_size=64, max_size=96, rpn_batch_size_per_image=32, box_batch_size_per_image=32)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    for _ in range(2):
        images, targets = zip(*samples)
        losses = model(list(images), list(targets))
        loss = sum(losses.values())
        assert torch.isfinite(loss), losses
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_depth_normals_and_intrinsics_beside_the_rgb(fake, tmp_path):
    import cv2
    st = scene_store.open_store(fake)
    out, imgs = tmp_path / "k.json", tmp_path / "im"
    r = gen("export", "kins", fake, "--out", out, "--images-dir", imgs, "--depth", "png", "--normals", "png",
            "--workers", 0)
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    for im in data["images"]:
        s = st.read_scene(im["id"], ["depth", "normals"])
        k = st.intrinsics(im["id"])
        assert im["intrinsics"] == {n: k[n] for n in ("fx", "fy", "cx", "cy")} and im["lens"] == k["lens"]
        mm = cv2.imread(str(imgs / im["depth_file"]), cv2.IMREAD_UNCHANGED)
        assert mm.dtype == np.uint16
        d = s["depth"]
        want = np.where(np.isfinite(d), np.rint(d * 1000), 0)
        np.testing.assert_array_equal(mm, want)
        enc = cv2.imread(str(imgs / im["normals_file"]), cv2.IMREAD_UNCHANGED)[..., ::-1].astype(np.float64)
        n = s["normals"].astype(np.float64)
        surface = np.any(n != 0, axis=-1)
        np.testing.assert_allclose((enc / 65535 * 2 - 1)[surface], n[surface], atol=1.0 / 65535)
        assert (enc[~surface] == 0).all()
    # Intrinsics are the scene camera's: the fake store's specs are pinholes.
    assert data["images"][0]["lens"] == {} and data["images"][0]["intrinsics"]["fx"] > 0
    pytest.importorskip("OpenEXR")
    out2, imgs2 = tmp_path / "e.json", tmp_path / "exr"
    assert gen("export", "coco", fake, "--out", out2, "--images-dir", imgs2, "--depth", "exr", "--normals", "exr",
               "--workers", 0).exit_code == 0
    import OpenEXR
    for im in json.loads(out2.read_text())["images"]:
        s = st.read_scene(im["id"], ["depth", "normals"])
        with OpenEXR.File(str(imgs2 / im["depth_file"])) as f:
            np.testing.assert_array_equal(f.channels()["Z"].pixels, s["depth"])
        with OpenEXR.File(str(imgs2 / im["normals_file"])) as f:
            np.testing.assert_array_equal(f.channels()["RGB"].pixels, s["normals"].astype(np.float32))


def test_depth_without_images_dir_is_one_line(fake, tmp_path):
    from tests.cli_util import one_line_error
    one_line_error(gen("export", "coco", fake, "--out", tmp_path / "x.json", "--depth", "png"), "--images-dir")
