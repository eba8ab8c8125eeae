"""Pure-numpy annotation logic on hand-made masks."""
import numpy as np
import pytest

from scenes import annotations as A
from scenes.classes import CLASS_IDS


def test_pass_index_round_trip():
    codes = np.array([[A.pass_index(CLASS_IDS["car"], 3), A.pass_index(CLASS_IDS["road"], 0), 0.0]], np.float32)
    depth = np.array([[5.0, 7.0, 0.0]], np.float32)
    inst, sem = A.decode_index(codes, A.clean_depth(depth))
    assert inst.tolist() == [[3, 0, 0]]
    assert sem.tolist() == [[CLASS_IDS["car"], CLASS_IDS["road"], CLASS_IDS["sky"]]]
    assert np.isinf(A.clean_depth(depth)[0, 2])


def test_boxes_are_tight_and_exclusive():
    m = np.zeros((2, 10, 12), bool)
    m[0, 2:5, 3:9] = True
    assert A.boxes(m).tolist() == [[3, 2, 9, 5], [-1, -1, -1, -1]]


def test_occlusion_follows_masks_and_allows_both_directions():
    inst = np.zeros((6, 6), np.uint16)
    amodal = np.zeros((3, 6, 6), bool)
    amodal[0, 0:3, 0:3] = True  # a
    amodal[1, 1:5, 1:5] = True  # b, partly behind a
    amodal[2, 5, 5] = True  # c, isolated
    inst[amodal[1]] = 2
    inst[amodal[0]] = 1
    inst[4, 4] = 1  # a also wraps in front of b elsewhere: mutual
    inst[1, 1] = 2  # b in front of a here
    inst[5, 5] = 3
    occ = A.occlusion_matrix(inst, amodal)
    assert occ[0, 1] and occ[1, 0]
    assert not occ[2].any() and not occ[:, 2].any()
    assert not occ.diagonal().any()


def test_depth_order_closer_equal_farther():
    o = A.depth_order(np.array([5.0, 5.2, 20.0]))
    assert o.tolist() == [[0, 0, -1], [0, 0, -1], [1, 1, 0]]


def test_assemble_drops_out_of_frame_candidates_and_pads():
    h, w = 4, 5
    code = np.zeros((h, w), np.float32)
    code[1:3, 1:3] = A.pass_index(CLASS_IDS["car"], 2)
    stack = np.zeros((2, h, w), np.float32)
    stack[1, 0:3, 0:3] = 1  # candidate 1 never appears: dropped; candidate 2 becomes id 1
    cands = [{"class_id": 13, "object": 4, "box3d": [0, 0, 9, 1, 1, 1, 0]},
             {"class_id": CLASS_IDS["car"], "object": 7, "box3d": [0, 0, 6, 4, 2, 1.5, 0]}]
    out = A.assemble(object_index=code, depth=np.full((h, w), 6, np.float32), amodal=A.mask_crops(stack),
                     world_normals=np.zeros((h, w, 3), np.float32), world_to_camera=np.eye(4),
                     candidates=cands, max_instances=8, rgb=np.zeros((h, w, 3), np.uint8))
    assert int(out["num_instances"]) == 1
    assert out["instance"].max() == 1 and (out["instance"] == 1).sum() == 4
    assert out["instance_object"].tolist() == [7] + [-1] * 7
    assert out["amodal"].shape == (8, h, w) and out["amodal"][0].sum() == 9
    assert np.isclose(out["visible_fraction"][0], 4 / 9)
    assert out["amodal_box"][0].tolist() == [0, 0, 3, 3]
    assert out["modal_box"][0].tolist() == [1, 1, 3, 3]


def test_assemble_from_crops_equals_the_dense_masks():
    """Masks, boxes, areas and occlusion built inside each crop's box equal those computed on
    full-frame masks, including a modal pixel that lies outside its instance's amodal crop
    (the OR that guards against a watertightness slip grows the box)."""
    rng = np.random.default_rng(3)
    h, w, n = 24, 32, 6
    stack = np.zeros((n, h, w), np.uint8)
    for i in range(n - 1):  # the last candidate stays out of frame
        y0, x0 = rng.integers(0, h - 4), rng.integers(0, w - 4)
        y1, x1 = y0 + rng.integers(1, h - y0), x0 + rng.integers(1, w - x0)
        stack[i, y0:y1, x0:x1] = rng.integers(0, 3, (y1 - y0, x1 - x0))
    instance = np.zeros((h, w), np.int64)
    for i in range(n - 1):  # nearer candidates (lower ids) drawn last
        instance[(stack[n - 2 - i] > 0) & (rng.random((h, w)) < 0.7)] = n - 1 - i
    instance[0, w - 1] = 2  # the slip: a visible pixel of instance 2 outside its amodal mask
    code = np.where(instance > 0, A.pass_index(CLASS_IDS["car"], 0) + instance, 0).astype(np.float32)
    cands = [{"class_id": CLASS_IDS["car"], "object": i, "box3d": [0, 0, 5 + i, 1, 1, 1, 0]} for i in range(n)]
    out = A.assemble(object_index=code, depth=np.full((h, w), 6, np.float32), amodal=A.mask_crops(stack),
                     world_normals=np.zeros((h, w, 3), np.float32), world_to_camera=np.eye(4),
                     candidates=cands, max_instances=8, rgb=None)
    dense = (stack > 0) | (instance[None] == np.arange(1, n + 1)[:, None, None])
    keep = np.flatnonzero(dense.any((1, 2)))
    assert keep.tolist() == list(range(n - 1))
    k = len(keep)
    assert int(out["num_instances"]) == k
    np.testing.assert_array_equal(out["amodal"][:k], dense[keep])
    assert not out["amodal"][k:].any()
    np.testing.assert_array_equal(out["amodal_box"][:k], A.boxes(dense[keep]))
    np.testing.assert_array_equal(out["amodal_area"][:k], dense[keep].sum((1, 2)))
    np.testing.assert_array_equal(out["modal_box"][:k], A.boxes(instance[None] == keep[:, None, None] + 1))
    np.testing.assert_array_equal(out["occlusion"][:k, :k], A.occlusion_matrix(out["instance"], dense[keep]))
    assert out["amodal_box"][1].tolist()[2] == w  # grown to the slipped pixel


def test_packed_amodal_passes_unpack_to_each_instances_count():
    """What Cycles sums into a pass (each crossing adds the instance's digit, in float32)
    unpacks to the crossing counts, for K not a multiple of the instances per pass."""
    k, shape = 7, (5, 6)
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 40, size=(k,) + shape)
    for i in range(k):  # each instance inside a rectangle of its own, so crops are smaller than the frame
        y0, x0 = rng.integers(0, 3, 2)
        counts[i, :y0], counts[i, :, :x0] = 0, 0
    counts[3] = 0  # an instance out of frame
    passes = {}
    for i in range(k):
        name, digit = A.amodal_pass(i)
        acc = passes.setdefault(name, np.zeros(shape, np.float32))
        for crossing in range(int(counts[i].max())):
            acc += np.where(counts[i] > crossing, np.float32(digit), np.float32(0))
    assert sorted(passes) == A.amodal_pass_names(k) == ["am0", "am1", "am2"]
    crops = A.amodal_crops(passes, k)
    assert len(crops) == k and crops[3] is None
    for i, crop in enumerate(crops):
        if crop is not None:
            (y0, y1, x0, x1), mask = crop
            dense = np.zeros(shape, bool)
            dense[y0:y1, x0:x1] = mask
            np.testing.assert_array_equal(dense, counts[i] > 0)
            assert A.boxes(dense[None]).tolist() == [[x0, y0, x1, y1]]  # the crop is tight
    assert A.amodal_crops({}, 0) == []


def test_a_count_near_the_digit_is_refused():
    name, digit = A.amodal_pass(1)
    with pytest.raises(ValueError, match="crosses one ray 200 times"):
        A.amodal_crops({name: np.full((2, 2), 200 * digit, np.float32)}, 2)


def test_label_boxes_are_the_boxes_of_each_label():
    labels = np.zeros((9, 11), np.uint16)
    labels[2:5, 3:4] = 1
    labels[0, 10] = 3  # a one-pixel instance in a corner; label 2 absent
    labels[8, 0:11] = 4
    want = A.boxes(labels[None] == np.arange(1, 5, dtype=np.uint16)[:, None, None])
    np.testing.assert_array_equal(A.label_boxes(labels, 4), want)
    np.testing.assert_array_equal(want, [[3, 2, 4, 5], [-1, -1, -1, -1], [10, 0, 11, 1], [0, 8, 11, 9]])
