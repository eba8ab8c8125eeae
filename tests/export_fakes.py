"""A hand-built scene store for the export tests, written through the store module: a known
occlusion graph (0 behind 1, 2 wholly hidden behind 3, 4 alone, 5 and 6 each in front of
the other), an equal-depth pair (5, 6), a scene without instances and an unfinished one."""
import numpy as np

from scenes import store as scene_store

H, W, KMAX = 40, 60, 8
CAR, VAN, TRUCK, PED = 13, 14, 15, 17
# slot: (class, amodal rows, amodal cols, centre depth z)
FAKE = [
    (CAR, (5, 20), (5, 25), 20.0),     # 0: partly behind 1
    (PED, (10, 30), (20, 30), 10.0),   # 1: in front of 0
    (CAR, (25, 35), (40, 55), 30.0),   # 2: wholly hidden behind 3
    (TRUCK, (22, 38), (38, 58), 15.0),  # 3
    (VAN, (0, 4), (50, 60), 40.0),     # 4: overlaps nothing
    (CAR, (30, 40), (0, 20), 12.0),    # 5 and 6 occlude each other (and are equally far)
    (CAR, (30, 40), (10, 30), 12.3),
]


def fake_scene():
    from scenes.annotations import boxes, depth_order, occlusion_matrix, pad_instances, pad_pairs
    k = len(FAKE)
    amodal = np.zeros((k, H, W), bool)
    for j, (_, (r0, r1), (c0, c1), _) in enumerate(FAKE):
        amodal[j, r0:r1, c0:c1] = True
    instance = np.zeros((H, W), np.uint16)
    for j in (0, 2, 4, 1, 3, 5, 6):  # painter's order: later is in front
        instance[amodal[j]] = j + 1
    instance[30:35, 10:15] = 6  # slot 6 is in front of slot 5 on most of their overlap, 5 in front of 6 here
    semantic = np.full((H, W), 2, np.uint8)  # road
    semantic[:3] = 1  # sky
    depth = np.full((H, W), 50.0, np.float32)
    depth[:3] = np.inf
    z = np.array([f[3] for f in FAKE], np.float32)
    cls = np.array([f[0] for f in FAKE], np.uint8)
    for j in range(k):
        m = instance == j + 1
        semantic[m], depth[m] = cls[j], z[j]
    modal = instance[None] == np.arange(1, k + 1, dtype=np.uint16)[:, None, None]
    mar, aar = modal.reshape(k, -1).sum(1), amodal.reshape(k, -1).sum(1)
    rgb = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    box3d = np.zeros((k, 7), np.float32)
    box3d[:, 2] = z
    return {
        "rgb": rgb, "depth": depth, "instance": instance, "semantic": semantic,
        "normals": np.zeros((H, W, 3), np.float16), "num_instances": np.uint16(k),
        "amodal": pad_instances(amodal, KMAX, False), "instance_class": pad_instances(cls, KMAX, 0),
        "instance_object": pad_instances(np.arange(k, dtype=np.int32), KMAX, -1),
        "modal_box": pad_instances(boxes(modal), KMAX, -1), "amodal_box": pad_instances(boxes(amodal), KMAX, -1),
        "modal_area": pad_instances(mar.astype(np.int32), KMAX, 0), "amodal_area": pad_instances(aar.astype(np.int32), KMAX, 0),
        "visible_fraction": pad_instances((mar / aar).astype(np.float32), KMAX, 0.0), "distance": pad_instances(z, KMAX, np.nan),
        "box3d": pad_instances(box3d, KMAX, np.nan), "occlusion": pad_pairs(occlusion_matrix(instance, amodal), KMAX, False),
        "depth_order": pad_pairs(depth_order(z), KMAX, 0),
    }


def empty_scene():
    s = fake_scene()
    out = {k: np.zeros_like(v) for k, v in s.items()}
    out["depth"][:] = np.inf
    out["semantic"][:] = 1
    for name, fill in (("modal_box", -1), ("amodal_box", -1), ("instance_object", -1)):
        out[name][:] = fill
    return out


def make_fake_store(folder) -> str:
    """Scene 0: FAKE; scene 1: no instances; scene 2: unfinished."""
    from scenes.config import build_config
    url = str(folder / "fake.zarr")
    cfg = build_config("tiny", [], [f"render.width={W}", f"render.height={H}", f"scene.max_instances={KMAX}"])
    st = scene_store.create(url, 3, cfg, seed=1, intrinsics={"fx": 50.0, "fy": 50.0, "cx": W / 2, "cy": H / 2})
    st.write_scene(0, fake_scene(), "{}")
    st.write_scene(1, empty_scene(), "{}")  # scene 2 stays unfinished
    return url
