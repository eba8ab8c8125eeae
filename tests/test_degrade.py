"""Initial-depth degradation families (composer/degrade.py) and the guided filter (issue 27)."""
import numpy as np
import pytest

from composer import degrade

NEW = [f for f in degrade.FAMILIES if f != "perturb"]


def scene(h=48, w=64):
    """Sky above row 12, a ground ramp, a near box and a 2-px pole; RGB follows the objects."""
    d = np.zeros((h, w), np.float32)
    d[12:] = np.linspace(0.5, 4.0, h - 12, dtype=np.float32)[:, None]
    d[20:40, 10:30] = 6.0
    d[8:44, 45:47] = 8.0  # a pole reaching into the sky
    rgb = np.full((h, w, 3), 200, np.uint8)
    rgb[12:] = 90
    rgb[20:40, 10:30] = (200, 40, 30)
    rgb[8:44, 45:47] = (120, 120, 130)
    mask = np.zeros((h, w), np.uint8)
    mask[20:40, 10:30] = 1
    return d, rgb, mask


@pytest.mark.parametrize("family", degrade.FAMILIES)
def test_each_family_is_deterministic_given_its_seed(family):
    d, rgb, mask = scene()
    a, ra = degrade.degrade(family, d, rgb, mask, np.random.default_rng(7))
    b, rb = degrade.degrade(family, d, rgb, mask, np.random.default_rng(7))
    assert ra == rb and ra["family"] == family
    np.testing.assert_array_equal(a, b)
    if family != "smooth":  # smooth has no random parameter
        outs = [degrade.degrade(family, d, rgb, mask, np.random.default_rng(s))[0] for s in range(6)]
        assert any(not np.array_equal(outs[0], o) for o in outs[1:])
    assert not np.array_equal(a, d)  # it degrades


@pytest.mark.parametrize("family", NEW)
def test_new_families_keep_sky_as_no_surface(family):
    d, rgb, mask = scene()
    sky = d == 0
    for seed in range(8):
        out, _ = degrade.degrade(family, d, rgb, mask, np.random.default_rng(seed))
        assert out.dtype == np.float32 and out.shape == d.shape
        assert (out[sky] == 0).all(), family
        assert (out[~sky] > 0).all(), family  # no surface turns into sky


def test_recorded_parameters_replay_the_degradation():
    d, rgb, mask = scene()
    for family in NEW:
        p = degrade.sample_params(family, np.random.default_rng(3))
        out, rec = degrade.degrade(family, d, rgb, mask, np.random.default_rng(3))
        np.testing.assert_array_equal(degrade.apply(family, d, rgb, mask, p), out)
        assert [rec[n] for n in degrade.PARAMS[family]] == [float(v) for v in p[:len(degrade.PARAMS[family])]]


def test_families_do_what_their_names_say():
    d, rgb, mask = scene()
    thin = degrade.apply("thin_lost", d, rgb, mask, np.float32([5, 0, np.nan, np.nan]))
    assert thin[30, 45:47].max() < 5 and (thin[25:35, 15:25] == 6).all()  # pole gone, box kept
    shift = degrade.apply("misalign", d, rgb, mask, np.float32([3, 0, np.nan, np.nan]))
    assert shift[30, 32] == 6 and shift[30, 33] != 6 and shift[30, 12] != 6  # the box's depth moved 3 px right
    low = degrade.apply("resolution", d, rgb, mask, np.float32([8, 0, np.nan, np.nan]))
    assert 0 < low[30, 29] < 6  # its edge is smeared
    warp = degrade.apply("warp", d, rgb, mask, np.float32([0.3, 0.5, 3, 11]))
    assert np.abs(warp - d)[d > 0].max() > 0.1 and np.abs(warp - d)[d > 0].max() <= 0.3 * d.max() + 0.5 + 1e-5


def test_mix_parsing_and_one_line_errors():
    assert degrade.parse_mix("perturb=2, resolution") == {"perturb": 2.0, "resolution": 1.0}
    assert degrade.parse_mix('{"warp": 1}') == {"warp": 1.0}
    for bad, msg in (("pertub=1", "unknown degradation family 'pertub'"), ("warp=-1", "non-negative"),
                     ("warp=x", "FAMILY=WEIGHT"), ("warp=0", "positive")):
        with pytest.raises(degrade.DegradeError, match=msg):
            degrade.parse_mix(bad)


# --- the guided filter, against He et al.'s box-filter formulation written out here --------------

def ref_box_mean(x, r):
    """Mean over the (2r+1)^2 window clipped to the image, by summed-area tables (He's boxfilter / N)."""
    h, w = x.shape
    s = np.zeros((h + 1, w + 1))
    s[1:, 1:] = np.cumsum(np.cumsum(x.astype(np.float64), 0), 1)
    y0 = np.clip(np.arange(h) - r, 0, h)
    y1 = np.clip(np.arange(h) + r + 1, 0, h)
    x0 = np.clip(np.arange(w) - r, 0, w)
    x1 = np.clip(np.arange(w) + r + 1, 0, w)
    tot = s[y1][:, x1] - s[y0][:, x1] - s[y1][:, x0] + s[y0][:, x0]
    return tot / ((y1 - y0)[:, None] * (x1 - x0)[None, :])


def ref_guided_colour(guide, p, r, eps):
    """He, Sun & Tang (ECCV 2010), Eq. 14-16 with a colour guide: per-pixel 3x3 solve."""
    h, w, _ = guide.shape
    mi = np.stack([ref_box_mean(guide[..., c], r) for c in range(3)], -1)
    mp = ref_box_mean(p, r)
    a = np.zeros((h, w, 3))
    cov = np.stack([ref_box_mean(guide[..., c] * p, r) - mi[..., c] * mp for c in range(3)], -1)
    sig = np.zeros((h, w, 3, 3))
    for i in range(3):
        for j in range(3):
            sig[..., i, j] = ref_box_mean(guide[..., i] * guide[..., j], r) - mi[..., i] * mi[..., j]
    for y in range(h):
        for x in range(w):
            a[y, x] = np.linalg.solve(sig[y, x] + eps * np.eye(3), cov[y, x])
    b = mp - (a * mi).sum(-1)
    ma = np.stack([ref_box_mean(a[..., c], r) for c in range(3)], -1)
    return (ma * guide).sum(-1) + ref_box_mean(b, r)


def ref_guided_grey(guide, p, r, eps):
    mi, mp = ref_box_mean(guide, r), ref_box_mean(p, r)
    a = (ref_box_mean(guide * p, r) - mi * mp) / (ref_box_mean(guide * guide, r) - mi * mi + eps)
    b = mp - a * mi
    return ref_box_mean(a, r) * guide + ref_box_mean(b, r)


def step_case(h=16, w=20):
    """A depth step at column 11 (blurred edge) and a guide whose step is at column 9."""
    x = np.arange(w)
    guide = np.where(x < 9, 0.2, 0.8)[None, :].repeat(h, 0)
    depth = np.where(x < 11, 2.0, 7.0)[None, :].repeat(h, 0)
    depth[:, 10:12] = 4.5
    return guide.astype(np.float32), depth.astype(np.float32)


@pytest.mark.parametrize("r,eps", [(2, 1e-3), (4, 1e-2), (3, 0.1)])
def test_guided_filter_matches_the_reference_on_a_step_edge(r, eps):
    guide, depth = step_case()
    np.testing.assert_allclose(degrade.guided_filter(guide, depth, r, eps), ref_guided_grey(guide, depth, r, eps),
                               atol=2e-4)
    colour = np.stack([guide, 1 - guide, 0.5 * guide + 0.1 * np.arange(16)[:, None] / 16], -1).astype(np.float32)
    np.testing.assert_allclose(degrade.guided_filter(colour, depth, r, eps), ref_guided_colour(colour, depth, r, eps),
                               atol=5e-4)


def test_guided_filter_analytic_step():
    """Depth that is a linear function of the guide passes through (eps -> 0), and far from the
    edge, where both are constant, the output is the input exactly."""
    guide, _ = step_case()
    depth = (3.0 * guide + 1.0).astype(np.float32)
    np.testing.assert_allclose(degrade.guided_filter(guide, depth, 3, 1e-9), depth, atol=1e-3)
    _, step = step_case()
    out = degrade.guided_filter(guide, step, 2, 1e-2)
    np.testing.assert_allclose(out[:, :5], 2.0, atol=1e-5)
    np.testing.assert_allclose(out[:, 16:], 7.0, atol=1e-5)  # 2r from either step


def test_shards_draw_families_from_the_mix_and_record_them(fixture_scenes, tmp_path):
    """A mixture changes only the initial depth: masks, crops and sources are those of the
    P(.)-only store of the same seed; each sample records its family and parameters, which
    replay its initial depth."""
    from click.testing import CliRunner

    from composer.shard_store import DEGRADATIONS, open_shards
    from pipelines.cli import cli

    def make(out, *extra):
        r = CliRunner().invoke(cli, ["shards", fixture_scenes, "--out", str(out), "--samples", "16", "--patch", "48",
                                     "--shard-size", "16", "--seed", "3", "--workers", "0",
                                     "--mask-mix", '{"object": 1.0}', *extra], catch_exceptions=False)
        assert r.exit_code == 0, r.output
        return open_shards(str(out)).read(0, 16)

    base = make(tmp_path / "p.zarr")
    mixed = make(tmp_path / "m.zarr", "--degrade-mix", "perturb=1,misalign=1,thin_lost=1")
    for name in ("mask", "depth", "rgb", "source_crop", "sample_seed"):
        np.testing.assert_array_equal(base[name], mixed[name], err_msg=name)
    fam = [DEGRADATIONS[i] for i in mixed["degradation"]]
    assert set(fam) == {"perturb", "misalign", "thin_lost"} and set(base["degradation"]) == {0}
    for s, f in enumerate(fam):
        if f == "perturb":
            np.testing.assert_array_equal(mixed["perturbed"][s], base["perturbed"][s])
            continue
        d = mixed["depth"][s].astype(np.float32)
        again = degrade.apply(f, d, mixed["rgb"][s].transpose(1, 2, 0), mixed["mask"][s], mixed["degradation_params"][s])
        np.testing.assert_allclose(mixed["perturbed"][s].astype(np.float32), again, atol=1e-2)
        assert (mixed["perturbed"][s][d == 0] == 0).all()
    r = CliRunner().invoke(cli, ["shards", fixture_scenes, "--out", str(tmp_path / "x.zarr"), "--degrade-mix", "blur=1"])
    assert r.exit_code == 2 and "unknown degradation family 'blur'" in r.output and len(r.output.strip().splitlines()) == 1
