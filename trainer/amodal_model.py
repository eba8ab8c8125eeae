"""DAISnet (daisnet §3.5-3.7) on torchvision's Mask R-CNN.

``build_amodal(**model_config)`` builds the model a checkpoint's ``model_config`` describes.
Sizes: ``tiny`` = ResNet-18-FPN, ``r50`` = ResNet-50-FPN (the paper's).  Weights are random
(``weights=None, weights_backbone=None``: nothing is downloaded; the paper's "Random" rows);
``init`` loads a user's weights through trainer.init_weights (torchvision ResNet / Mask R-CNN layouts too).
BatchNorm is trainable (torchvision freezes it for pretrained backbones; from random weights
frozen identity statistics do not train).

Input: a list of (C, H, W) float tensors from trainer.amodal_inputs.build_inputs -- RGB in
[0, 1], then the depth channels, then (``depth_roi``) the standardised log depth that only the
RoI heads see.  The first conv is widened by repeating its RGB weights over the extra
channels (§3.5).  torchvision's transform standardises RGB with ImageNet statistics and leaves
the depth channels (already normalised) alone; in training the loader's crops arrive at the
model size and are not resized, at inference images are resized to it.
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import paste_masks_in_image

from trainer.amodal_heads import AmodalMaskHeads, AmodalRoIHeads
from trainer.amodal_inputs import IMAGENET_MEAN, IMAGENET_STD, input_channels
from trainer.init_weights import load_init, repeat_rgb

SIZES = {
    # backbone, mask-head width, default input (width, height)
    "tiny": ("resnet18", 128, (640, 360)),
    "r50": ("resnet50", 256, (1280, 720)),
}
# tiny's heads are cut down for CPU budgets (the heads, not the backbone, dominate a step at
# small inputs): 2 conv layers per mask head, a 512-wide box MLP, 128 sampled RoIs per image.
HEADS = {"tiny": {"layers": 2, "box_rep": 512, "box_batch": 128}, "r50": {"layers": 4, "box_rep": 1024, "box_batch": 512}}
DEFAULT_CLASSES = ("car", "van", "truck", "bus", "pedestrian")


def default_config(size: str = "tiny", **over) -> dict:
    cfg = {"size": size, "classes": list(DEFAULT_CLASSES), "inputs": ["rgb"], "occlusion_edge": False,
           "depth_roi": False, "input_size": list(SIZES[size][2]), "ds": 3.0, "dm": 4, "soft_floor": True,
           "sobel": 5, "dz": 0.7}
    cfg.update(over)
    return cfg


class DAISnet(MaskRCNN):
    def __init__(self, cfg: dict):
        backbone_name, dim, _ = SIZES[cfg["size"]]
        backbone = resnet_fpn_backbone(backbone_name=backbone_name, weights=None, norm_layer=nn.BatchNorm2d,
                                       trainable_layers=5)
        self.cfg = dict(cfg)
        self.n_backbone = input_channels(cfg["inputs"], cfg["dm"])
        n_extra = self.n_backbone - (3 if "rgb" in cfg["inputs"] else 0)
        mean = (list(IMAGENET_MEAN) if "rgb" in cfg["inputs"] else []) + [0.0] * (n_extra + int(cfg["depth_roi"]))
        std = (list(IMAGENET_STD) if "rgb" in cfg["inputs"] else []) + [1.0] * (n_extra + int(cfg["depth_roi"]))
        w, h = cfg["input_size"]
        small = cfg["size"] == "tiny"
        hp = HEADS[cfg["size"]]
        box_head = TwoMLPHead(backbone.out_channels * 7 * 7, hp["box_rep"])
        super().__init__(backbone, num_classes=None, min_size=min(w, h), max_size=max(w, h),
                         image_mean=mean, image_std=std, _skip_resize=True,
                         rpn_pre_nms_top_n_train=1000 if small else 2000, rpn_post_nms_top_n_train=500 if small else 2000,
                         rpn_pre_nms_top_n_test=500 if small else 1000, rpn_post_nms_top_n_test=300 if small else 1000,
                         box_batch_size_per_image=hp["box_batch"], box_head=box_head,
                         box_predictor=FastRCNNPredictor(hp["box_rep"], len(cfg["classes"]) + 1),
                         mask_head=nn.Identity(), mask_predictor=nn.Identity())  # replaced below
        heads = AmodalMaskHeads(backbone.out_channels, len(cfg["classes"]) + 1, dim, cfg["depth_roi"],
                                cfg["occlusion_edge"], layers=hp["layers"])
        self.roi_heads = AmodalRoIHeads(self.roi_heads, heads)
        widen_first_conv(self.backbone.body, self.n_backbone)

    def forward(self, images, targets=None):
        original_sizes = [tuple(img.shape[-2:]) for img in images]
        images, targets = self.transform(images, targets)
        x = images.tensors
        feats = self.backbone(x[:, :self.n_backbone])
        depth = x[:, self.n_backbone:self.n_backbone + 1] if self.cfg["depth_roi"] else None
        img = ImageList(x[:, :self.n_backbone], images.image_sizes)
        proposals, rpn_losses = self.rpn(img, feats, targets)
        detections, head_losses = self.roi_heads(feats, proposals, images.image_sizes, targets, depth)
        if self.training:
            return {**rpn_losses, **head_losses}
        detections = self.transform.postprocess(detections, images.image_sizes, original_sizes)
        for r, size in zip(detections, original_sizes):
            r["amodal_masks"] = paste_masks_in_image(r["amodal_masks"], r["boxes"], size)
            if "occlusion_edges" in r:
                r["occlusion_edges"] = paste_masks_in_image(r["occlusion_edges"], r["boxes"], size)
        return detections


def _first_conv(module: nn.Module) -> tuple[nn.Module, str, nn.Conv2d]:
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d):
            return module, name, child
        found = _first_conv(child)
        if found:
            return found
    return None


def widen_first_conv(module: nn.Module, channels: int) -> None:
    """§3.5: a first conv for ``channels`` inputs whose weights repeat the RGB ones."""
    parent, name, conv = _first_conv(module)
    if conv.in_channels == channels:
        return
    new = nn.Conv2d(channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(repeat_rgb(conv.weight, channels))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    setattr(parent, name, new)


def build_amodal(init: str | None = None, **model_config) -> DAISnet:
    size = model_config.pop("size", "tiny")
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r} (choose from {', '.join(SIZES)})")
    cfg = default_config(size, **model_config)
    model = DAISnet(cfg)
    if init:
        # Counts on the model, for the trainer to print (trainer.init_weights, loudly).
        model.init_report = load_init(model, init, kind="amodal")
    return model
