"""DAISnet's input channels against hand-computed values (daisnet eqs. 2-5, 14-22)."""
import math

import numpy as np
import pytest

from trainer.amodal_inputs import (
    build_inputs,
    log_depth_standardised,
    occlusion_edges,
    regional_depth,
    sobel_kernels,
    soft_floor,
    tangent_normals,
    true_normals,
)

EQ22 = np.array([[-5, -4, 0, 4, 5],
                 [-8, -10, 0, 10, 8],
                 [-10, -20, 0, 20, 10],
                 [-8, -10, 0, 10, 8],
                 [-5, -4, 0, 4, 5]], float)


def test_5x5_kernel_is_eq_22():
    gx, gy = sobel_kernels(5)
    assert np.array_equal(20 * gx, EQ22)  # exact: the entries are k/20 with small integers
    assert np.array_equal(20 * gy, EQ22.T)


def test_3x3_kernel_is_eq_14_sobel():
    gx, gy = sobel_kernels(3)
    assert np.array_equal(2 * gx, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    assert np.array_equal(2 * gy, [[-1, -2, -1], [0, 0, 0], [1, 2, 1]])
    with pytest.raises(ValueError):
        sobel_kernels(4)


@pytest.mark.parametrize("size,gain", [(3, 8.0), (5, 24.0)])
def test_tangent_normal_of_a_ramp(size, gain):
    # z = a * column: sum_ij 2 i/(i^2+j^2) * a (x + i) = 2a sum i^2/(i^2+j^2) = 8a (3x3), 24a (5x5).
    a = 0.05
    z = np.tile(a * np.arange(20, dtype=np.float32), (12, 1))
    t = tangent_normals(z, size=size, dz=0.7)
    want = np.array([-gain * a, 0.0, 0.7]) / math.hypot(gain * a, 0.7)
    assert np.allclose(t[:, 5, 8], want, atol=1e-6)


def test_soft_floor_eq_5():
    assert soft_floor(np.array([0.0, 1.0, 2.0])) == pytest.approx([0, 1, 2], abs=1e-12)
    assert soft_floor(np.array([0.25]))[0] == pytest.approx(0.25 - 1 / (2 * math.pi))
    assert soft_floor(np.array([0.5]))[0] == pytest.approx(0.5)


def test_regional_normalisation_eq_4_hard_floor():
    z = np.array([[-1.0, 0.5, 3.5]])
    r = regional_depth(z, ds=3, dm=4, soft=False)
    assert r.shape == (4, 1, 3)
    assert np.allclose(r[0, 0], [2.0, 0.5, 0.5])      # z - 3 floor(z / 3)
    assert np.allclose(r[1, 0], [2.75, 1.25, 1.25])   # offset Ds / Dm = 0.75


def test_regional_normalisation_eq_5_soft_floor():
    z = np.array([[0.0, 0.75, 1.5, 2.25]])
    r = regional_depth(z, ds=3, dm=4, soft=True)
    c = 3 / (2 * math.pi)  # s - 3 softfloor(s/3) = 3 sin(2 pi s / 3) / (2 pi)
    assert np.allclose(r[0, 0], [0, c, 0, -c], atol=1e-6)
    assert np.allclose(r[1, 0], [c, 0, -c, 0], atol=1e-6)
    assert np.allclose(r[2], -r[0], atol=1e-6) and np.allclose(r[3], -r[1], atol=1e-6)


def test_log_depth_standardisation_eq_2_3():
    assert np.allclose(log_depth_standardised(np.array([1.0, 10.0, 100.0])), [-1, 0, 1])
    # sky takes the farthest depth: logs [0, 1, 2, 2], mean 1.25, unbiased std sqrt(2.75 / 3)
    z = log_depth_standardised(np.array([1.0, 10.0, 100.0, np.inf]))
    assert np.allclose(z, (np.array([0, 1, 2, 2]) - 1.25) / math.sqrt(2.75 / 3), atol=1e-6)
    # invariant to the depth's unit
    d = np.random.default_rng(0).uniform(1, 80, (6, 7))
    assert np.allclose(log_depth_standardised(d), log_depth_standardised(d * 0.37), atol=1e-5)


def test_true_normals_share_the_tangent_convention():
    n = np.zeros((2, 2, 3), np.float16)
    n[..., 2] = -1  # a wall facing the camera (OpenCV z forward)
    assert np.array_equal(true_normals(n)[:, 0, 0], [0, 0, 1])


def test_build_inputs_channels():
    rgb = np.full((6, 8, 3), 255, np.uint8)
    depth = np.linspace(1, 30, 48, dtype=np.float32).reshape(6, 8)
    normals = np.zeros((6, 8, 3), np.float16)
    x = build_inputs(rgb, depth, normals, ["rgb", "rdn", "tangent", "normals"], depth_channel=True)
    assert x.shape == (3 + 4 + 3 + 3 + 1, 6, 8) and x.dtype == np.float32
    assert np.all(x[:3] == 1.0)
    assert np.allclose(x[-1], log_depth_standardised(depth))


def test_occlusion_edges_are_where_the_visible_mask_meets_the_hidden_part():
    amodal = np.zeros((1, 5, 6), bool)
    amodal[0, 1:4, 1:5] = True
    visible = amodal.copy()
    visible[0, :, 3:] = False  # columns 3-4 hidden by something in front
    e = occlusion_edges(visible, amodal)[0]
    want = np.zeros((5, 6), np.uint8)
    want[1:4, 2] = 1
    assert np.array_equal(e, want)
