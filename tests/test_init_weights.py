"""``--init`` (issue 26): weights in the layouts users have load into either model, with the
counts printed; a wrong layout or size is refused in one line.  The files are randomly
initialised models saved in those layouts here: nothing is downloaded."""
import re

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from tests.cli_util import gen, one_line_error  # noqa: E402
from trainer.amodal_model import build_amodal  # noqa: E402
from trainer.init_weights import InitError, repeat_rgb  # noqa: E402
from trainer.mit import MiTEncoder  # noqa: E402
from trainer.model import CONFIGS, build_refiner  # noqa: E402

B0 = CONFIGS["b0"]


def mit_b0_rgb() -> dict:
    """A random RGB MiT-b0 encoder's state dict, in rgsd's per-level naming."""
    torch.manual_seed(3)
    return MiTEncoder(3, B0.widths, B0.depths, B0.heads, B0.sr_ratios).state_dict()


def to_hugging_face(sd: dict) -> dict:
    """rgsd MiT names -> Hugging Face SegformerForSemanticSegmentation's (attn.kv split into
    key and value, as HF stores them)."""
    names = {"norm1": "layer_norm_1", "norm2": "layer_norm_2", "attn.q": "attention.self.query",
             "attn.sr": "attention.self.sr", "attn.norm": "attention.self.layer_norm",
             "attn.proj": "attention.output.dense", "mlp.fc1": "mlp.dense1", "mlp.dwconv": "mlp.dwconv.dwconv",
             "mlp.fc2": "mlp.dense2"}
    out = {"decode_head.classifier.weight": torch.zeros(19, 256, 1, 1)}  # a head the refiner has no use for
    for k, v in sd.items():
        if m := re.fullmatch(r"stages\.(\d)\.embed\.(proj|norm)\.(\w+)", k):
            out[f"segformer.encoder.patch_embeddings.{m[1]}.{'proj' if m[2] == 'proj' else 'layer_norm'}.{m[3]}"] = v
        elif m := re.fullmatch(r"stages\.(\d)\.norm\.(\w+)", k):
            out[f"segformer.encoder.layer_norm.{m[1]}.{m[2]}"] = v
        elif m := re.fullmatch(r"stages\.(\d)\.blocks\.(\d+)\.(.+)\.(weight|bias)", k):
            pre = f"segformer.encoder.block.{m[1]}.{m[2]}"
            if m[3] == "attn.kv":
                key, value = v.chunk(2, 0)
                out[f"{pre}.attention.self.key.{m[4]}"] = key.clone()
                out[f"{pre}.attention.self.value.{m[4]}"] = value.clone()
            else:
                out[f"{pre}.{names[m[3]]}.{m[4]}"] = v
    return out


@pytest.fixture(scope="module")
def hf_b0(tmp_path_factory):
    from safetensors.torch import save_file
    src = mit_b0_rgb()
    path = tmp_path_factory.mktemp("init") / "mit_b0.safetensors"
    save_file({k: v.contiguous() for k, v in to_hugging_face(src).items()}, str(path))
    return src, path


def test_hugging_face_mit_fills_the_refiner_encoder(hf_b0):
    src, path = hf_b0
    model = build_refiner("b0", init=str(path))
    rep = model.init_report
    n_encoder = sum(1 for k in model.state_dict() if k.startswith("encoder."))
    assert (rep.layout, rep.loaded, rep.target) == ("Hugging Face SegFormer/MiT", n_encoder, n_encoder)
    assert rep.skipped == 1 and rep.widened == 2  # the decode head; encoder and RGB-branch first convs
    own = model.state_dict()
    for k, v in src.items():
        if k != "stages.0.embed.proj.weight":
            assert torch.equal(own[f"encoder.{k}"], v), k
    # (HF's separate key and value arrive fused as attn.kv: checked in the loop above.)
    # (depth, mask) and (rgb, mask) first convs start from the RGB filters (DAISnet §3.5).
    rgb = src["stages.0.embed.proj.weight"]
    assert torch.equal(own["encoder.stages.0.embed.proj.weight"], rgb[:, [0, 1]])
    assert torch.equal(own["rgb_branch.embed.proj.weight"], repeat_rgb(rgb, 4))
    assert torch.equal(own["rgb_branch.blocks.1.attn.kv.weight"], src["stages.0.blocks.1.attn.kv.weight"])
    # Without --init: random, as before.
    assert not torch.equal(build_refiner("b0").state_dict()["encoder.stages.1.blocks.0.attn.q.weight"],
                           src["stages.1.blocks.0.attn.q.weight"])


def test_wrong_size_or_layout_refused(hf_b0, tmp_path):
    _, path = hf_b0
    with pytest.raises(InitError, match=r"only 0 of \d+ tensors of the refiner encoder fit"):
        build_refiner("tiny", init=str(path))  # MiT-b0 into the tiny refiner: no shape fits
    resnet = tmp_path / "resnet18.pt"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), resnet)
    with pytest.raises(InitError, match="unknown layout"):
        build_refiner("b0", init=str(resnet))
    with pytest.raises(InitError, match="unknown layout .*only 0 of 100"):
        build_amodal(init=str(path))


def test_torchvision_resnet_and_mask_rcnn_fill_the_amodal_backbone(tmp_path):
    torch.manual_seed(4)
    resnet = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(resnet, tmp_path / "resnet18.pt")
    model = build_amodal(init=str(tmp_path / "resnet18.pt"), inputs=["rgb", "rdn"])
    rep = model.init_report
    assert (rep.layout, rep.loaded, rep.target, rep.skipped, rep.widened) == ("torchvision ResNet", 100, 100, 2, 1)
    own = model.state_dict()
    assert torch.equal(own["backbone.body.layer3.1.conv2.weight"], resnet["layer3.1.conv2.weight"])
    first = own["backbone.body.conv1.weight"]
    assert first.shape[1] == model.n_backbone > 3
    assert torch.equal(first, repeat_rgb(resnet["conv1.weight"], model.n_backbone))
    # A torchvision Mask R-CNN (ResNet-18 FPN, 3 classes, frozen BatchNorm) in its own layout: backbone.body.
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    mrcnn = MaskRCNN(resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5), num_classes=3)
    torch.save({"model": mrcnn.state_dict()}, tmp_path / "mrcnn.pt")
    rep = build_amodal(init=str(tmp_path / "mrcnn.pt")).init_report
    assert (rep.layout, rep.loaded, rep.target) == ("torchvision Mask R-CNN", 100, 100)
    # A ResNet-50 does not fit the tiny (ResNet-18) model.
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), tmp_path / "resnet50.pt")
    with pytest.raises(InitError, match="torchvision ResNet layout, only 77 of the file's 265 tensors"):
        build_amodal(init=str(tmp_path / "resnet50.pt"))


def test_cli_prints_counts_and_refuses_in_one_line(fixture_scenes, tmp_path):
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet18.pt")
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), tmp_path / "resnet50.pt")
    args = ("train", "amodal", "--scenes", fixture_scenes, "--steps", "1", "--batch", "2", "--size", "96x64",
            "--loader-workers", "0", "--inputs", "rgb,rdn")
    r = gen(*args, "--out", tmp_path / "ok", "--init", tmp_path / "resnet18.pt")
    assert r.exit_code == 0, r.output
    assert "torchvision ResNet layout, loaded 100 of 100 tensors of the backbone (100% of its values), skipped 2" in r.output
    one_line_error(gen(*args, "--out", tmp_path / "bad", "--init", tmp_path / "resnet50.pt"),
                   "--init", "only", "tensors for the amodal backbone fit it")
    assert not (tmp_path / "bad").exists()
