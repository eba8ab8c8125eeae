"""What one frame sees: the camera pose and the candidate instances (pure numpy, no bpy).

The renderer (generator/build.py) poses Blender's camera from ``world_to_camera`` and
encodes ``instance_of`` in the objects' pass indices; the annotations use the same matrix
for normals and the candidates' 3D boxes, so render and annotations cannot disagree.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scenes import objects as scene_objects
from scenes import portable_math as pm
from scenes.camera import view_bounds
from scenes.classes import CLASS_IDS
from scenes.spec import SceneSpec


@dataclass
class FrameView:
    world_to_camera: np.ndarray  # 4x4, world -> OpenCV camera
    intrinsics: dict
    candidates: list = field(default_factory=list)  # per instance id 1..K: class_id, object, box3d
    instance_of: dict = field(default_factory=dict)  # spec object index -> instance id


def frame_view(spec: SceneSpec, cfg: dict) -> FrameView:
    """The camera pose of ``spec`` and its candidate instances: objects of an instance class
    whose 3D box may be in view.  When more than ``scene.max_instances``, the nearest (camera
    to box centre) are kept and the others render as their class only; instance ids follow
    the objects' order in the spec."""
    w2c = spec.camera.world_to_camera()
    intr = spec.camera.intrinsics()
    if spec.camera.lens:
        intr["bounds"] = view_bounds(spec.camera)
    instance_classes = {CLASS_IDS[c] for c in cfg["scene"]["instance_classes"]}
    cands = []
    for i, o in enumerate(spec.objects):
        cid = scene_objects.class_id(o)
        if cid in instance_classes and scene_objects.in_view(o, w2c, intr):
            box = scene_objects.box3d_camera(o, w2c)
            cands.append((pm.norm(box[:3]), i, cid, box))
    cands.sort()
    cands = sorted(cands[: cfg["scene"]["max_instances"]], key=lambda c: c[1])
    view = FrameView(w2c, intr)
    for iid, (_, i, cid, box) in enumerate(cands, start=1):
        view.instance_of[i] = iid
        view.candidates.append({"class_id": cid, "object": i, "box3d": box})
    return view
