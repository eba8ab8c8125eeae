"""``--init``: pretrained weights into either model, loudly.

A weights file (an rgsd checkpoint, a bare state dict or ``.safetensors``, read by
trainer.checkpoint.read_weights, never running code) is recognised by its key layout and
mapped onto the model:

* refiner: rgsd's own layout; a MiT/SegFormer encoder in Hugging Face's layout
  (``[segformer.]encoder.block.{i}.{j}.attention.self.query...``) or in the original NVlabs
  layout (``block{i}.{j}.attn.q...``).  The MiT levels fill ``encoder.stages``; level 1 also
  fills the RGB branch, which is a level-1 stage of its own (maskdepth Fig. 5).
* amodal: rgsd's own layout; torchvision ResNet (``conv1.weight``, ``layer1...``) or Mask
  R-CNN (``backbone.body...``) -- the ResNet fills ``backbone.body``.

A 3-channel (RGB) first convolution meeting a model input of another width is widened by
repeating the RGB weights over the channels, as DAISnet §3.5 does.  The result is counted
against the part of the model that layout can fill (the whole model for rgsd's own layout,
the encoder for MiT, the ResNet body for torchvision); fewer than MIN_SHARE of its tensors
loaded, or of the file's tensors for it fitting, is refused: a wrong layout or size never trains silently from random weights.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

# The share of the target part's tensors that must load, and of the file's tensors for that
# part that must fit, else --init is refused.
MIN_SHARE = 0.5


class InitError(ValueError):
    """Weights that do not fit the model (one line, exit 2)."""


@dataclass(frozen=True)
class InitReport:
    layout: str
    part: str
    loaded: int         # model tensors filled from the file
    target: int         # tensors of the part this layout fills
    value_share: float  # the share of that part's values (elements) filled
    skipped: int        # file tensors not used (no such name, or a shape that does not fit)
    widened: int        # first convolutions widened from RGB (§3.5)

    def line(self, path) -> str:
        extra = f", {self.widened} first conv(s) widened from RGB" if self.widened else ""
        return (f"--init {path}: {self.layout} layout, loaded {self.loaded} of {self.target} tensors of the "
                f"{self.part} ({self.value_share:.0%} of its values), skipped {self.skipped} from the file{extra}")


def repeat_rgb(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """§3.5: keep the RGB filters and repeat them over the channels past the third."""
    idx = torch.arange(channels) % weight.shape[1]
    return weight[:, idx].clone()


def _strip(sd: dict) -> dict:
    # DDP ('module.') and torch.compile ('_orig_mod.') wrappers prefix every key.  BatchNorm's
    # step counters are no weights (frozen BatchNorm has none): neither loaded nor counted.
    out = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            continue
        for prefix in ("module.", "_orig_mod."):
            k = k.removeprefix(prefix)
        out[k] = v
    return out


# --- refiner: MiT layouts -------------------------------------------------------------------

_HF_BLOCK = {"layer_norm_1": "norm1", "layer_norm_2": "norm2", "attention.self.query": "attn.q",
             "attention.self.sr": "attn.sr", "attention.self.layer_norm": "attn.norm",
             "attention.output.dense": "attn.proj", "mlp.dense1": "mlp.fc1", "mlp.dwconv.dwconv": "mlp.dwconv",
             "mlp.dense2": "mlp.fc2"}
_NV_BLOCK = {"norm1": "norm1", "norm2": "norm2", "attn.q": "attn.q", "attn.kv": "attn.kv", "attn.sr": "attn.sr",
             "attn.norm": "attn.norm", "attn.proj": "attn.proj", "mlp.fc1": "mlp.fc1", "mlp.dwconv.dwconv": "mlp.dwconv",
             "mlp.fc2": "mlp.fc2"}


def _mit_from_hf(sd: dict) -> dict:
    """Hugging Face SegFormer/MiT -> per-level keys ``{i}.embed.proj.weight``, ``{i}.blocks.{j}...``,
    ``{i}.norm...``; query and key/value are fused into rgsd's ``attn.kv``."""
    out, kv = {}, {}
    for k, v in sd.items():
        k = k.removeprefix("segformer.").removeprefix("encoder.")
        if m := re.fullmatch(r"patch_embeddings\.(\d+)\.(proj|layer_norm)\.(weight|bias)", k):
            out[f"{m[1]}.embed.{'proj' if m[2] == 'proj' else 'norm'}.{m[3]}"] = v
        elif m := re.fullmatch(r"layer_norm\.(\d+)\.(weight|bias)", k):
            out[f"{m[1]}.norm.{m[2]}"] = v
        elif m := re.fullmatch(r"block\.(\d+)\.(\d+)\.(.+)\.(weight|bias)", k):
            if m[3] in ("attention.self.key", "attention.self.value"):
                kv.setdefault((m[1], m[2], m[4]), {})[m[3].rsplit(".", 1)[1]] = v
            elif m[3] in _HF_BLOCK:
                out[f"{m[1]}.blocks.{m[2]}.{_HF_BLOCK[m[3]]}.{m[4]}"] = v
    for (i, j, wb), parts in kv.items():
        if set(parts) == {"key", "value"}:
            out[f"{i}.blocks.{j}.attn.kv.{wb}"] = torch.cat([parts["key"], parts["value"]], 0)
    return out


def _mit_from_nvlabs(sd: dict) -> dict:
    out = {}
    for k, v in sd.items():
        k = k.removeprefix("backbone.")
        if m := re.fullmatch(r"patch_embed(\d)\.(proj|norm)\.(weight|bias)", k):
            out[f"{int(m[1]) - 1}.embed.{m[2]}.{m[3]}"] = v
        elif m := re.fullmatch(r"norm(\d)\.(weight|bias)", k):
            out[f"{int(m[1]) - 1}.norm.{m[2]}"] = v
        elif (m := re.fullmatch(r"block(\d)\.(\d+)\.(.+)\.(weight|bias)", k)) and m[3] in _NV_BLOCK:
            out[f"{int(m[1]) - 1}.blocks.{m[2]}.{_NV_BLOCK[m[3]]}.{m[4]}"] = v
    return out


def _refiner_layout(sd: dict, model) -> tuple[str, str, dict, str]:
    """(layout, part, {model key: tensor}, the part's key prefix); file tensors that map nowhere are dropped."""
    if any(k.startswith("encoder.stages.") for k in sd):
        return "rgsd", "model", sd, ""
    if any(re.match(r"(segformer\.)?(encoder\.)?(block\.\d+\.\d+|patch_embeddings\.\d+)\.", k) for k in sd):
        levels, layout = _mit_from_hf(sd), "Hugging Face SegFormer/MiT"
    elif any(re.match(r"(backbone\.)?(block\d\.|patch_embed\d\.)", k) for k in sd):
        levels, layout = _mit_from_nvlabs(sd), "NVlabs MiT"
    else:
        return "unknown", "encoder", {}, "encoder."
    mapped = {f"encoder.stages.{k}": v for k, v in levels.items()}
    # The RGB branch is a level-1 stage: it starts from MiT level 1 as well.
    mapped.update({f"rgb_branch.{k[2:]}": v for k, v in levels.items() if k.startswith("0.")})
    return layout, "encoder", mapped, "encoder."


# --- amodal: torchvision layouts ------------------------------------------------------------

def _amodal_layout(sd: dict, model) -> tuple[str, str, dict, str]:
    body = "backbone.body."
    if any(k.startswith("roi_heads.heads.") for k in sd):
        return "rgsd", "model", sd, ""
    if any(k.startswith(body) for k in sd):
        return "torchvision Mask R-CNN", "backbone", sd, body
    for prefix in ("", "backbone.", "body."):
        if f"{prefix}conv1.weight" in sd and any(k.startswith(f"{prefix}layer1.") for k in sd):
            mapped = {f"backbone.body.{k.removeprefix(prefix)}": v for k, v in sd.items()
                      if k.startswith(prefix) and not k.removeprefix(prefix).startswith("fc.")}
            return "torchvision ResNet", "backbone", mapped, body
    return "unknown", "backbone", {}, body


def _fit(mapped: dict, own: dict) -> tuple[dict, int]:
    """The tensors whose shapes fit, RGB first convs widened (§3.5); and how many were widened."""
    keep, widened = {}, 0
    for k, v in mapped.items():
        if k not in own:
            continue
        want = own[k]
        if want.shape == v.shape:
            keep[k] = v.to(want.dtype)
        elif (v.ndim == 4 and v.shape[1] == 3 and want.ndim == 4 and v.shape[0] == want.shape[0]
              and v.shape[2:] == want.shape[2:]):
            keep[k] = repeat_rgb(v, want.shape[1]).to(want.dtype)
            widened += 1
    return keep, widened


def load_init(model, path, *, kind: str, min_share: float = MIN_SHARE) -> InitReport:
    """Fill ``model`` (a LayeredRefiner for kind "refiner", DAISnet for "amodal") from the
    weights file ``path``; the rest keeps its random init.  InitError when fewer than
    ``min_share`` of the target part's tensors load; CheckpointError for unreadable files."""
    from trainer.checkpoint import read_weights
    sd = _strip(read_weights(path, kind=kind))
    layout, part, mapped, prefix = (_refiner_layout if kind == "refiner" else _amodal_layout)(sd, model)
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    target = {k for k in own if k.startswith(prefix)}
    keep, widened = _fit(mapped, own)
    loaded = len(set(keep) & target)
    # Both sides: of the part's tensors, and of the file's tensors for that part.  A ResNet-50
    # fills 77 of a ResNet-18's 100 by name and shape (BatchNorm vectors, 3x3 convs), yet
    # those are 77 of its 265: another architecture.
    offered = sum(1 for k in mapped if k.startswith(prefix) and not k.startswith("rgb_branch."))
    fitted = sum(1 for k in keep if k.startswith(prefix) and not k.startswith("rgb_branch."))
    share = sum(own[k].numel() for k in set(keep) & target) / max(1, sum(own[k].numel() for k in target))
    used_sources = len(keep) if layout == "rgsd" else _sources_used(sd, keep, layout)
    report = InitReport(layout, part, loaded, len(target), share, skipped=len(sd) - used_sources, widened=widened)
    if loaded < min_share * len(target):
        hint = "" if layout != "unknown" else " (expected rgsd, Hugging Face/NVlabs MiT" + (
            ")" if kind == "refiner" else ", torchvision ResNet or Mask R-CNN)")
        raise InitError(f"{path}: {layout} layout{hint}, only {loaded} of {len(target)} tensors of the {kind} {part} "
                        f"fit (at least {min_share:.0%} must); wrong model size or layout?")
    if fitted < min_share * offered:
        raise InitError(f"{path}: {layout} layout, only {fitted} of the file's {offered} tensors for the {kind} "
                        f"{part} fit it (at least {min_share:.0%} must); another architecture or size?")
    model.load_state_dict(keep, strict=False)
    return report


def _sources_used(sd: dict, keep: dict, layout: str) -> int:
    """How many file tensors ended up in the model (a fused key/value pair counts both; the RGB
    branch's copies of level 1 are not counted twice)."""
    n = 0
    for k in keep:
        if k.startswith("rgb_branch."):
            continue
        n += 2 if k.endswith(("attn.kv.weight", "attn.kv.bias")) and layout.startswith("Hugging") else 1
    return min(n, len(sd))
