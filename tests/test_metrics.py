"""Hand-computed checks of trainer/metrics.py (maskdepth §4.2-§4.3).

Every expected number below is worked out in the comments, never taken from the code."""
import numpy as np
import pytest

from trainer import metrics as M

# --- align_scale_shift / rmse -------------------------------------------------------------

def test_align_inverts_an_exact_affine_map():
    # pred = 2·gt + 3  ⇒  s = 1/2, t = −3/2 makes s·pred + t = gt exactly (zero residual).
    gt = np.arange(12, dtype=float).reshape(3, 4)
    np.testing.assert_allclose(M.align_scale_shift(2 * gt + 3, gt), gt, atol=1e-12)


def test_align_ignores_invalid_pixels():
    # Same affine map on the valid pixels; one invalid pixel carries garbage (1e6) that
    # would wreck the fit if it were used.  Valid pixels must come back exact.
    gt = np.array([[0.0, 1.0], [2.0, 3.0]])
    pred = 2 * gt + 3
    pred[1, 1] = 1e6
    valid = np.array([[True, True], [True, False]])
    out = M.align_scale_shift(pred, gt, valid)
    np.testing.assert_allclose(out[valid], gt[valid], atol=1e-9)


def test_align_least_squares_by_hand():
    # gt = [0, 0, 1, 1], pred = [0, 1, 0, 1]: pred carries no information about gt, so the
    # LS solution is s = cov(pred, gt)/var(pred) = 0 and t = mean(gt) = 0.5.
    gt = np.array([0.0, 0.0, 1.0, 1.0])
    pred = np.array([0.0, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(M.align_scale_shift(pred, gt), [0.5] * 4, atol=1e-12)


def test_rmse_by_hand():
    # errors [3, 4, 0, 0] → mean square (9 + 16)/4 = 6.25 → RMSE 2.5.
    gt = np.zeros(4)
    pred = np.array([3.0, 4.0, 0.0, 0.0])
    assert M.rmse(pred, gt) == pytest.approx(2.5)
    # Masking out the two zero-error pixels: (9 + 16)/2 = 12.5 → sqrt(12.5).
    assert M.rmse(pred, gt, np.array([1, 1, 0, 0], bool)) == pytest.approx(np.sqrt(12.5))


# --- R³ ---------------------------------------------------------------------------------

def test_r3_four_pixels():
    # gt = 0 everywhere, so absolute error = |value|.
    #   pixel  e_init  e_ref  e_init − e_ref
    #   0      0.2     0.0    +0.2   improved  (> 0.05)
    #   1      0.3     0.1    +0.2   improved
    #   2      0.1     0.3    −0.2   worsened
    #   3      0.0     0.02   −0.02  neither  (|Δ| ≤ 0.05)
    # R³ = 2 improved / 1 worsened = 2.
    gt = np.zeros((2, 2))
    init = np.array([[0.2, 0.3], [0.1, 0.0]])
    ref = np.array([[0.0, 0.1], [0.3, 0.02]])
    assert M.r3(ref, gt, init) == pytest.approx(2.0)
    assert M.r3_counts(ref, gt, init) == (2, 1)
    # Restricted to pixels 0 and 2: 1 improved / 1 worsened = 1.
    region = np.array([[True, False], [True, False]])
    assert M.r3(ref, gt, init, region) == pytest.approx(1.0)
    # Sign of the error does not matter ("absolute error"): negate everything, same R³.
    assert M.r3(-ref, gt, -init) == pytest.approx(2.0)


def test_r3_threshold_and_empty_denominator():
    # Δ = 0.5 − 0.25 = 0.25 exactly (binary-exact numbers): "more than t" with t = 0.25 is
    # false, so nothing counts → NaN; with t = 0.2 it is one improvement, zero worsened → inf.
    gt, init, ref = np.zeros(1), np.array([0.5]), np.array([0.25])
    assert np.isnan(M.r3(ref, gt, init, t=0.25))
    assert M.r3(ref, gt, init, t=0.2) == np.inf


# --- MBE --------------------------------------------------------------------------------

def _square():
    # 10×10 square at rows/cols 5..14 of a 20×20 image.
    m = np.zeros((20, 20), bool)
    m[5:15, 5:15] = True
    return m


def test_mask_boundary_pixel_count():
    # M − erode3x3(M): 10×10 minus its 8×8 interior = 100 − 64 = 36-pixel ring (rows 5..14).
    # Dilating by 5×5 (Chebyshev radius 2): outside reaches rows/cols 3..16 → 14×14 = 196;
    # inside, pixels more than 2 from the ring stay off: rows/cols 8..11 → 4×4 = 16.
    # Boundary = 196 − 16 = 180 pixels.
    b = M.mask_boundary(_square())
    assert b.sum() == 180
    assert b[3, 3] and b[16, 16] and not b[2, 10] and not b[9, 9] and b[7, 10]


def test_mbe_constant_error_and_partial_error():
    m = _square()
    gt = np.zeros((20, 20))
    # Constant error 0.5 on every pixel → RMSE over any boundary = 0.5.
    assert M.mbe(np.full((20, 20), 0.5), gt, [m]) == pytest.approx(0.5)
    # Error 3 only on image row 3: the boundary meets row 3 at cols 3..16 = 14 pixels.
    # RMSE = sqrt(14·9 / 180) = sqrt(0.7).
    pred = np.zeros((20, 20))
    pred[3, :] = 3.0
    assert M.mbe(pred, gt, [m]) == pytest.approx(np.sqrt(0.7))
    # Second instance: full-width strip at rows 18..19.  Its inner contour is row 18 only
    # (row 19 touches the image border, which erosion treats as inside); dilated → rows
    # 16..19, nowhere near row 3, so its RMSE is 0 → MBE = (sqrt(0.7) + 0)/2.
    m2 = np.zeros((20, 20), bool)
    m2[18:20, :] = True
    assert M.mbe(pred, gt, [m, m2]) == pytest.approx(np.sqrt(0.7) / 2)
    # Whole-frame mask has no boundary (image border is not a mask boundary) → skipped.
    assert np.isnan(M.mbe(pred, gt, [np.ones((20, 20), bool)]))


# --- WHDR -------------------------------------------------------------------------------

def test_whdr_all_agree_and_all_disagree():
    # 100 distinct positive values with consecutive ratio 1.1 > 1.03, so every pair is
    # ordered under τ = 0 and under τ = 0.03.  10 pairs from 20 distinct pixels.
    gt = (1.1 ** np.arange(100)).reshape(10, 10)
    for tau in (0.0, 0.03):
        # Any increasing positive affine map keeps every relation → 0.
        assert M.whdr(2 * gt + 1, gt, n_pairs=10, rel_threshold=tau) == 0.0
        # 1/gt reverses every relation (a/b > 1+τ ⇔ (1/a)/(1/b) < 1/(1+τ)) → 1.
        assert M.whdr(1 / gt, gt, n_pairs=10, rel_threshold=tau) == 1.0
    # −gt reverses every strict sign → 1 with the default strict-sign rule.
    assert M.whdr(-gt, gt, n_pairs=10) == 1.0


def test_whdr_tie_handling_depends_on_threshold():
    # 4 pixels, n_pairs = 2 → all 4 pixels are used, pixel 3 is in exactly one pair.
    # gt all equal → both gt relations are 0.  pred differs only at pixel 3 by 2 %:
    #   τ = 0:    the pair containing pixel 3 gets ±1 ≠ 0, the other stays 0 → WHDR 1/2.
    #   τ = 0.03: 1.02 < 1.03 so both pred relations are 0 → WHDR 0.
    gt = np.ones((2, 2))
    pred = np.array([[1.0, 1.0], [1.0, 1.02]])
    for seed in range(5):  # independent of which pairs are formed
        assert M.whdr(pred, gt, n_pairs=2, seed=seed) == 0.5
        assert M.whdr(pred, gt, n_pairs=2, seed=seed, rel_threshold=0.03) == 0.0


def test_whdr_only_uses_valid_pixels_and_caps_pairs():
    # Valid pixels agree perfectly; invalid ones are reversed.  If invalid pixels leaked
    # into the sample WHDR would be > 0.  Only 6 valid pixels → 3 pairs at most.
    gt = np.arange(1, 13, dtype=float).reshape(3, 4)
    pred = gt.copy()
    valid = np.zeros((3, 4), bool)
    valid.flat[:6] = True
    pred[~valid] = -pred[~valid]
    assert M.whdr(pred, gt, valid, n_pairs=10000) == 0.0


# --- depth boundary errors ----------------------------------------------------------------

def test_dbe_step_shifted_by_two_pixels():
    # GT: vertical step between cols 14|15; pred: the same step between cols 16|17.
    # In the image interior Canny marks one column per step (15 and 17) → every distance
    # is exactly 2.  Within ~5 rows of the top/bottom border canny's masked smoothing
    # marks both columns of each step (14,15 and 16,17), where some distances are 1:
    # on a 40×40 map that is 28 rows at 2 px + 10 rows at {1, 2} px → ε_acc = 86/48 ≈ 1.79.
    # Hence the tolerance 0.5 around the ideal value 2 for both ε_acc and ε_comp.
    gt = np.zeros((40, 40))
    gt[:, :15] = 1.0
    pred = np.zeros((40, 40))
    pred[:, :17] = 1.0
    acc, comp = M.depth_boundary_errors(pred, gt)
    assert acc == pytest.approx(2.0, abs=0.5) and comp == pytest.approx(2.0, abs=0.5)
    acc_s, comp_s = M.depth_boundary_errors(pred, gt, completeness="symmetric")
    assert acc_s == acc and comp_s == pytest.approx(2.0, abs=0.5)
    # Min-max normalisation makes ε invariant to an affine change of the prediction.
    assert M.depth_boundary_errors(3 * pred + 7, gt) == pytest.approx((acc, comp))
    # Identical maps → identical edges → (0, 0).
    assert M.depth_boundary_errors(gt, gt) == (0.0, 0.0)


def test_dbe_undefined_cases():
    gt = np.zeros((40, 40))
    gt[:, :15] = 1.0
    # No GT edges (constant GT) → (NaN, NaN), as in iBims-1.
    acc, comp = M.depth_boundary_errors(gt, np.ones((40, 40)))
    assert np.isnan(acc) and np.isnan(comp)
    # No predicted edges (constant prediction) → iBims-1's penalty (10, 10).
    assert M.depth_boundary_errors(np.zeros((40, 40)), gt) == (10.0, 10.0)


# --- merge rule / instance masks -----------------------------------------------------------

def test_merge_picks_largest_change():
    # |initial − r1| = [1, 2, .5], |initial − r2| = [3, 1, .5] → pick r2, r1, r1 (tie → first).
    init = np.zeros(3)
    r1 = np.array([1.0, -2.0, 0.5])
    r2 = np.array([-3.0, 1.0, -0.5])  # |−0.5| = 0.5: a tie, first (r1 = 0.5) wins
    np.testing.assert_array_equal(M.merge_instances(init, [r1, r2]), [-3.0, -2.0, 0.5])
    # Non-zero initial: init = 1, r1 = 1.5 (Δ .5), r2 = 0 (Δ 1) → r2.
    np.testing.assert_array_equal(M.merge_instances(np.ones(1), [np.array([1.5]), np.zeros(1)]), [0.0])
    np.testing.assert_array_equal(M.merge_instances(init, []), init)


def test_instance_masks_min_fraction():
    # 20×20 = 400 pixels; 1 % = 4 pixels, and the paper keeps instances with *more than* 1 %.
    #   id 0 (background) skipped; id 1: 5 px kept; id 2: 4 px dropped (not > 4);
    #   id 3: 100 px kept; id −1 skipped.
    im = np.zeros((20, 20), np.int32)
    im[0, :5] = 1
    im[1, :4] = 2
    im[10:20, 10:20] = 3
    im[19, 0] = -1
    masks = M.instance_masks(im)
    assert [int(m.sum()) for m in masks] == [5, 100]
    assert masks[0][0, 0] and masks[1][15, 15] and masks[0].dtype == bool


# --- issue 12: the evaluation's choices, each on a hand-built case with a known value ------

def _street(h=50, w=80, seed=0):
    """gt in the refiner's space: 38 % sky (0) at the top, a ground ramp below, and a
    near object on the clamped <= 1 m plateau (exactly 10)."""
    gt = np.zeros((h, w))
    sky = int(round(0.38 * h))
    gt[sky:] = np.linspace(1.0, 8.0, h - sky)[:, None] + np.linspace(0, 0.5, w)[None]
    gt[40:, 10:30] = 10.0  # plateau
    return gt, gt == 0, gt == 10.0


def test_whdr_ignores_sky_noise_with_the_valid_mask():
    gt, sky, _ = _street()
    pred = gt.copy()
    pred[sky] += np.random.default_rng(0).normal(0, 1e-4, sky.sum())  # noise only in the sky
    # Without the mask sky-sky pairs (gt ties) become disagreements: the bug of issue 12.
    assert M.whdr(pred, gt) > 0.1
    assert M.whdr(pred, gt, gt > 0) == 0.0
    # And through the evaluation's own scoring (alignment included): WHDR does not move.
    from trainer.evaluate import score
    masks = [np.zeros(gt.shape, bool)]
    masks[0][40:, 10:30] = True
    assert score(pred, gt, gt, masks)["WHDR"] == score(gt, gt, gt, masks)["WHDR"] == 0.0


def test_whdr_drops_pairs_tied_in_gt_on_the_plateau():
    gt, _, plateau = _street()
    pred = gt.copy()
    # Noise on the plateau only; it stays above every other pixel, so only plateau-plateau
    # pairs (ties in gt, true order unknown) can disagree.
    pred[plateau] += np.random.default_rng(1).uniform(1e-4, 2e-4, plateau.sum())
    valid = gt > 0
    assert M.whdr(pred, gt, valid) > 0  # LeReS' rule: a gt tie ordered by pred is an error
    assert M.whdr(pred, gt, valid, exclude_gt_ties=True) == 0.0
    # All pairs tied -> undefined.
    assert np.isnan(M.whdr(pred, np.ones_like(gt), exclude_gt_ties=True))


def test_r3_leading_threshold_is_0_05_per_metre():
    from composer.ops import to_inverse
    from trainer.evaluate import R3_THRESHOLDS
    # A surface moving from 5 m to 4 m changes inverse depth by 0.25 - 0.2 = 0.05 1/m,
    # which is 2.5 - 2.0 = 0.5 in 10 * min(1, 1 m / z).
    d = to_inverse(np.array([4.0]))[0] - to_inverse(np.array([5.0]))[0]
    assert list(R3_THRESHOLDS) == ["R3@0.5", "R3@0.05"]
    assert R3_THRESHOLDS["R3@0.5"] == pytest.approx(d) and R3_THRESHOLDS["R3@0.05"] == 0.05
    # A pixel whose error drops by 0.3 counts at t = 0.05 but not at t = 0.5.
    gt, init, pred = np.zeros(3), np.array([0.3, 0.0, 0.0]), np.zeros(3)
    assert M.r3_counts(pred, gt, init, t=0.05) == (1, 0)
    assert M.r3_counts(pred, gt, init, t=0.5) == (0, 0)


def test_r3_inf_is_reported_as_inf_not_nan(tmp_path):
    from trainer.evaluate import _write, pooled_r3, summarise
    assert pooled_r3(6, 3) == 2.0 and pooled_r3(5, 0) == np.inf and np.isnan(pooled_r3(0, 0))
    scene = {"R3@0.5": (3, 0), "R3@0.05": (4, 2), "MBE": 0.1, "eps_acc": 1.0, "eps_comp": 2.0,
             "WHDR": 0.01, "RMSE": 0.2}
    ours = summarise("Ours", [scene, dict(scene, MBE=0.3)])
    assert ours["R3@0.5"] == np.inf and ours["R3@0.05"] == 2.0 and ours["MBE"] == pytest.approx(0.2)
    initial = summarise("Initial depth", [dict(scene, **{"R3@0.5": (0, 0), "R3@0.05": (0, 0)})])
    _write(tmp_path, [initial, ours], "perturb", "ck.pt")
    md = (tmp_path / "report.md").read_text()
    assert "| Ours | 2 | inf (no pixel worse) | 2.0000 | 0.2000 |" in md
    assert "| Initial depth | 1 | n/a | n/a |" in md and "nan" not in md.lower()
    assert "1/m" in md  # the scale is stated with the table
    assert (tmp_path / "report.csv").read_text().splitlines()[2].startswith("Ours,2,inf,2.0,")


def test_eps_comp_default_is_the_symmetric_capped_form():
    # GT: one step (cols 14|15); pred: the same step plus a second one 20 px away.  Canny
    # marks both columns of each step on this small map (2 x 38 px per step), so
    #   pred edges: 76 at distance 0 from GT edges, 76 at >= 19 px -> capped to 10;
    #   GT edges:   76 at distance 0 from pred edges.
    # Symmetric: (76*0 + 76*10 + 76*0) / (152 + 76) = 10/3.  Directed (GT -> pred): 0.
    gt = np.zeros((40, 60))
    gt[:, :15] = 1.0
    pred = gt.copy()
    pred[:, 35:] = 0.5
    acc, comp = M.depth_boundary_errors(pred, gt)
    assert acc == 0.0 and comp == pytest.approx(10 / 3)
    assert M.depth_boundary_errors(pred, gt, completeness="directed") == (0.0, 0.0)
