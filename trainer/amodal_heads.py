"""DAISnet's RoI heads (daisnet §3.6-3.7) on torchvision's RoIHeads.

Per positive RoI (14 x 14 pooled FPN features F, and with ``depth_roi`` the standardised
log depth pooled with the same boxes, §3.6):

    visible head   F (+ depth)                       -> visible mask logits, 28 x 28 per class
    attention      F (+ depth), visible prob          -> amodal attention A, 14 x 14
    occlusion edge reduced F, depth, visible prob      -> edge logits E, 14 x 14          (§3.7)
    refinement     A, sigmoid(E), depth               -> A' = A + r(...)   ("occlusion refinement")
    amodal head    F (+ depth), sigmoid(A')           -> amodal mask logits, 28 x 28 per class

The depth given to the edge and refinement layers is the RoI's depth minus its mean over the
(predicted) visible mask, as the authors' code does; the heads themselves see it minus the RoI
mean.  Losses: torchvision's mask BCE for both mask heads (the visible one only on instances
whose visible area passes the loader's threshold), BCE on A and A' against the amodal mask
(L_or), and BCE with logits, mean reduction (the code's; eq. 24 sums), on E against the edge
target: the visible pixels touching the hidden part (trainer.amodal_inputs.occlusion_edges)
projected on the 14 x 14 RoI grid, Gaussian-blurred (sigma = 1 cell, 5 x 5) and scaled so each
RoI's peak is 1.  (No commit of the authors' code blurs an edge; this is rgsd's choice.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import (
    RoIHeads,
    fastrcnn_loss,
    project_masks_on_boxes,
)
from torchvision.ops import roi_align


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class AmodalMaskHeads(nn.Module):
    def __init__(self, in_ch: int, num_classes: int, dim: int, depth_roi: bool, occlusion_edge: bool, layers: int = 4):
        super().__init__()
        self.depth_roi, self.occlusion_edge = depth_roi, occlusion_edge
        d = 1 if depth_roi else 0
        self.vis_head = MaskRCNNHeads(in_ch + d, [dim] * layers, 1, norm_layer=nn.BatchNorm2d)
        self.vis_pred = MaskRCNNPredictor(dim, dim, num_classes)
        self.att = nn.Sequential(_conv(in_ch + d + 1, 64), nn.ReLU(inplace=True), _conv(64, 1))
        if occlusion_edge:
            self.reduce = nn.Conv2d(in_ch, 32, 1)
            self.edge = nn.Sequential(_conv(32 + d + 1, 32), nn.ReLU(inplace=True), _conv(32, 32),
                                      nn.ReLU(inplace=True), _conv(32, 1))
            self.refine = nn.Sequential(_conv(2 + d, 16), nn.ReLU(inplace=True), _conv(16, 1))
        self.amodal_head = MaskRCNNHeads(in_ch + d + 1, [dim] * layers, 1, norm_layer=nn.BatchNorm2d)
        self.amodal_pred = MaskRCNNPredictor(dim, dim, num_classes)

    def forward(self, feats: torch.Tensor, droi: torch.Tensor | None, labels: torch.Tensor) -> dict:
        x = feats
        if self.depth_roi:
            x = torch.cat([feats, droi - droi.mean(dim=(2, 3), keepdim=True)], 1)
        vis = self.vis_pred(self.vis_head(x))
        idx = torch.arange(len(labels), device=labels.device)
        v = F.avg_pool2d(vis[idx, labels][:, None].sigmoid().detach(), 2)
        att = self.att(torch.cat([x, v], 1))
        out = {"visible": vis, "attention": att}
        if self.occlusion_edge:
            parts = [self.reduce(feats)]
            if self.depth_roi:
                rel = droi - (droi * v).sum((2, 3), keepdim=True) / v.sum((2, 3), keepdim=True).clamp_min(1e-3)
                parts.append(rel)
            edge = self.edge(torch.cat(parts + [v], 1))
            ref_in = [att, edge.sigmoid()] + (parts[1:] if self.depth_roi else [])
            att = att + self.refine(torch.cat(ref_in, 1))
            out.update(edge=edge, refined=att)
        out["amodal"] = self.amodal_pred(self.amodal_head(torch.cat([x, att.sigmoid()], 1)))
        return out


def _gauss5(device) -> torch.Tensor:
    r = torch.arange(-2, 3, dtype=torch.float32, device=device)
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / 2)
    return g[None, None]


def edge_targets(edges: torch.Tensor, boxes: torch.Tensor, matched: torch.Tensor, m: int = 14) -> torch.Tensor:
    t = project_masks_on_boxes(edges, boxes, matched, m)[:, None]
    if len(t) == 0:
        return t
    t = F.conv2d(t, _gauss5(t.device), padding=2)
    return t / t.amax((2, 3), keepdim=True).clamp_min(1e-6)


class AmodalRoIHeads(RoIHeads):
    """torchvision's box branch unchanged; the mask branch replaced by AmodalMaskHeads."""

    def __init__(self, base: RoIHeads, heads: AmodalMaskHeads):
        super().__init__(base.box_roi_pool, base.box_head, base.box_predictor,
                         0.5, 0.5, 512, 0.25, None, base.score_thresh, base.nms_thresh, base.detections_per_img,
                         mask_roi_pool=base.mask_roi_pool, mask_head=None, mask_predictor=None)
        # the matcher/sampler settings of the base, not the defaults above
        self.proposal_matcher, self.fg_bg_sampler, self.box_coder = base.proposal_matcher, base.fg_bg_sampler, base.box_coder
        self.heads = heads

    def forward(self, features, proposals, image_shapes, targets=None, depth=None):
        if self.training:
            proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)
        if self.training:
            cls, reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
            losses = {"loss_classifier": cls, "loss_box_reg": reg}
            pos = [torch.where(lab > 0)[0] for lab in labels]
            rois = [p[i] for p, i in zip(proposals, pos)]
            matched = [m[i] for m, i in zip(matched_idxs, pos)]
            roi_labels = torch.cat([lab[i] for lab, i in zip(labels, pos)])
            out = self._heads(features, rois, image_shapes, depth, roi_labels)
            losses.update(self._losses(out, rois, matched, roi_labels, targets))
            return [], losses
        boxes, scores, labels = self.postprocess_detections(class_logits, box_regression, proposals, image_shapes)
        out = self._heads(features, boxes, image_shapes, depth, torch.cat(labels))
        idx = torch.arange(len(out["amodal"]), device=out["amodal"].device)
        lab = torch.cat(labels)
        n = [len(b) for b in boxes]
        vis = out["visible"][idx, lab][:, None].sigmoid().split(n)
        am = out["amodal"][idx, lab][:, None].sigmoid().split(n)
        edge = out["edge"].sigmoid().split(n) if "edge" in out else [None] * len(n)
        result = []
        for b, s, lb, v, a, e in zip(boxes, scores, labels, vis, am, edge):
            r = {"boxes": b, "scores": s, "labels": lb, "masks": v, "amodal_masks": a}
            if e is not None:
                r["occlusion_edges"] = e
            result.append(r)
        return result, {}

    def _heads(self, features, rois, image_shapes, depth, roi_labels):
        feats = self.mask_roi_pool(features, rois, image_shapes)
        droi = None
        if depth is not None:
            droi = roi_align(depth, rois, feats.shape[-2:], spatial_scale=1.0, sampling_ratio=2, aligned=True)
        return self.heads(feats, droi, roi_labels)

    @staticmethod
    def _losses(out, rois, matched, roi_labels, targets) -> dict:
        m28 = out["amodal"].shape[-1]
        m14 = out["attention"].shape[-1]
        am28 = torch.cat([project_masks_on_boxes(t["amodal_masks"], r, i, m28) for t, r, i in zip(targets, rois, matched)])
        if len(am28) == 0:
            zero = sum(v.sum() for v in out.values()) * 0
            keys = ["loss_mask", "loss_amodal", "loss_attention"] + (["loss_edge", "loss_refined"] if "edge" in out else [])
            return {k: zero for k in keys}
        idx = torch.arange(len(roi_labels), device=roi_labels.device)
        vis28 = torch.cat([project_masks_on_boxes(t["masks"], r, i, m28) for t, r, i in zip(targets, rois, matched)])
        valid = torch.cat([t["visible_valid"][i] for t, i in zip(targets, matched)]).float()
        per_roi = F.binary_cross_entropy_with_logits(out["visible"][idx, roi_labels], vis28, reduction="none").mean((1, 2))
        losses = {"loss_mask": (per_roi * valid).sum() / valid.sum().clamp_min(1.0),
                  "loss_amodal": F.binary_cross_entropy_with_logits(out["amodal"][idx, roi_labels], am28)}
        am14 = torch.cat([project_masks_on_boxes(t["amodal_masks"], r, i, m14) for t, r, i in zip(targets, rois, matched)])
        losses["loss_attention"] = F.binary_cross_entropy_with_logits(out["attention"][:, 0], am14)
        if "edge" in out:
            e14 = torch.cat([edge_targets(t["edges"], r, i, m14) for t, r, i in zip(targets, rois, matched)])
            losses["loss_edge"] = F.binary_cross_entropy_with_logits(out["edge"], e14)
            losses["loss_refined"] = F.binary_cross_entropy_with_logits(out["refined"][:, 0], am14)
        return losses
