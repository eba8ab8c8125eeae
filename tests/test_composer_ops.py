"""Properties of the sample-synthesis operations (maskdepth §3.1, supp. §3)."""
import cv2
import numpy as np
import pytest

from composer import ops


def test_inverse_depth_mapping():
    d = np.array([0.5, 1.0, 2.0, 10.0, np.inf], np.float32)
    np.testing.assert_allclose(ops.to_inverse(d, near_m=1.0), [10, 10, 5, 1, 0])


@pytest.mark.parametrize("seed", range(5))
def test_composition_is_exact(seed):
    rng = np.random.default_rng(seed)
    m = rng.random((40, 50)) < 0.4
    a, b = rng.random((40, 50)), rng.random((40, 50))
    c = ops.composite(m, a, b)
    assert np.array_equal(c[m], a[m]) and np.array_equal(c[~m], b[~m])
    ia, ib = rng.integers(0, 255, (40, 50, 3), np.uint8), rng.integers(0, 255, (40, 50, 3), np.uint8)
    ci = ops.composite(m.astype(np.uint8), ia, ib)
    assert np.array_equal(ci[m], ia[m]) and np.array_equal(ci[~m], ib[~m])


@pytest.mark.parametrize("seed", range(30))
def test_adaptive_crop_contains_the_object(seed):
    rng = np.random.default_rng(seed)
    h, w, patch = 360, 640, 160
    oh, ow = int(rng.integers(5, 300)), int(rng.integers(5, 300))
    y0, x0 = int(rng.integers(0, h - oh)), int(rng.integers(0, w - ow))
    box = (x0, y0, x0 + ow, y0 + oh)
    cx0, cy0, cx1, cy1 = ops.adaptive_crop(rng, box, (h, w), patch)
    p = cx1 - cx0
    assert cy1 - cy0 == p and 0 <= cx0 and 0 <= cy0 and cx1 <= w and cy1 <= h
    s = max(oh, ow)
    if s <= patch:
        assert p == patch
    else:
        assert s <= p <= min(2 * s, h)
    if p >= s:
        assert cx0 <= box[0] and cy0 <= box[1] and cx1 >= box[2] and cy1 >= box[3]


def test_stuff_crop_size_range():
    rng = np.random.default_rng(0)
    sizes = [ops.stuff_crop(rng, (360, 640)) for _ in range(200)]
    ps = [x1 - x0 for x0, _, x1, _ in sizes]
    assert min(ps) >= 180 and max(ps) <= 360


def test_random_crop_refuses_a_patch_larger_than_the_source():
    with pytest.raises(ValueError, match="larger"):
        ops.random_crop(np.random.default_rng(0), (100, 200), 160)


def ring(n=64, r_out=24, r_in=10):
    yy, xx = np.mgrid[0:n, 0:n] + 0.5
    r = np.hypot(yy - n / 2, xx - n / 2)
    return (r < r_out) & (r >= r_in), r < r_in


def test_hole_detection_finds_exactly_the_known_holes():
    mask, hole = ring()
    holes = ops.mask_holes(mask)
    assert len(holes) == 1 and np.array_equal(holes[0], hole)
    two = mask.copy()
    two[5:9, 5:60] = True
    two[6:8, 10:20] = False  # a second, separate hole inside the bar
    assert len(ops.mask_holes(two)) == 2
    assert ops.has_holes(mask) and not ops.has_holes(np.ones((10, 10), bool))
    assert ops.mask_holes(np.zeros((10, 10), bool)) == []


def test_perturbation_removes_a_one_pixel_line_in_either_order():
    d = np.full((64, 64), 2.0, np.float32)
    d[:, 30] = 8.0  # thin near structure
    thin_far = np.full((64, 64), 8.0, np.float32)
    thin_far[:, 30] = 2.0  # thin far gap
    for order in ("dilate-first", "erode-first"):
        for k in (1, 3, 5):
            p = {"k_dilate": k, "k_erode": k, "order": order, "blur_sigma": 0.0, "hole_t": 0.0}
            out, _ = ops.perturb(d, np.zeros_like(d, np.uint8), p)
            assert np.allclose(out, 2.0), (order, k)
            out, _ = ops.perturb(thin_far, np.zeros_like(d, np.uint8), p)
            assert np.allclose(out, 8.0), (order, k)


def test_perturbation_fills_a_known_hole_between_inside_and_ring_means():
    mask, hole = ring()
    d = np.where(mask, 6.0, 1.0).astype(np.float32)  # object at 6, background (and hole) at 1
    d[hole] = 1.0
    ring_mean = 6.0  # the 10-px ring around the hole lies in the object
    for t in (0.0, 0.5, 0.99):  # hole_t is drawn from [0, 1)
        p = {"k_dilate": 1, "k_erode": 1, "order": "dilate-first", "blur_sigma": 0.0, "hole_t": t}
        # Check the fill before morphology smears it: no erosion/dilation of the hole centre.
        out, n = ops.perturb(d, mask.astype(np.uint8), dict(p, k_dilate=1, k_erode=1))
        assert n == 1
        centre = out[28:36, 28:36]
        want = 1.0 + t * (ring_mean - 1.0)
        assert np.allclose(centre, want, atol=1e-5), (t, centre.mean(), want)


def test_blur_sigma_ranges_and_order_balance():
    rng = np.random.default_rng(1)
    ps = [ops.sample_perturbation(rng) for _ in range(2000)]
    sig = np.array([p["blur_sigma"] for p in ps])
    assert 0 <= sig.min() and sig.max() <= 5 and 0.45 < (sig < 1).mean() < 0.55
    assert {p["k_dilate"] for p in ps} == {1, 2, 3, 4, 5} == {p["k_erode"] for p in ps}
    assert 0.45 < np.mean([p["order"] == "dilate-first" for p in ps]) < 0.55


@pytest.mark.parametrize("order", ["dilate-first", "erode-first"])
def test_morphology_equals_the_papers_four_steps_of_3x3_iterations(order):
    # Reference straight from supp. §3: (dilate kd, erode ke, erode ke, dilate kd) or the
    # mirror, each as k iterations of a 3x3 kernel; no holes and no blur, so only the
    # morphology differs.
    rng = np.random.default_rng(3)
    depth = (rng.random((64, 80)) * 10).astype(np.float32)
    mask = np.zeros((64, 80), np.uint8)  # no holes
    k3 = np.ones((3, 3), np.uint8)
    for kd in range(1, 6):
        for ke in range(1, 6):
            p = {"k_dilate": kd, "k_erode": ke, "order": order, "blur_sigma": 0.0, "hole_t": 0.0}
            ref = depth
            steps = [(cv2.dilate, kd), (cv2.erode, ke), (cv2.erode, ke), (cv2.dilate, kd)]
            if order == "erode-first":
                steps = [(cv2.erode, ke), (cv2.dilate, kd), (cv2.dilate, kd), (cv2.erode, ke)]
            for op, k in steps:
                ref = op(ref, k3, iterations=k)
            assert np.array_equal(ops.perturb(depth, mask, p)[0], ref), (kd, ke)
