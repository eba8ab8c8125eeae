"""`gen eval refiner --initial FAMILY`, the guided-filter baseline row and the training
families a checkpoint records (issue 27).  Stores are analytic (no Blender)."""
import csv

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from composer import degrade  # noqa: E402
from tests.cli_util import gen, one_line_error  # noqa: E402
from trainer import checkpoint  # noqa: E402
from trainer.evaluate import guided_band  # noqa: E402
from trainer.model import build_refiner, refiner_config  # noqa: E402


def save_tiny(path, trained_on=None):
    torch.manual_seed(0)
    model = build_refiner("tiny")
    state = {"trained_on": trained_on} if trained_on else {}
    checkpoint.save(path, kind="refiner", model_config=refiner_config("tiny", model), model=model.state_dict(),
                    mode="layered", **state)
    return path


def test_unknown_initial_family_is_one_line_exit_2(fixture_scenes, tmp_path):
    ck = save_tiny(tmp_path / "ck.pt")
    r = gen("eval", "refiner", ck, "--scenes", fixture_scenes, "--out", tmp_path / "rep", "--initial", "blurry")
    one_line_error(r, "--initial", "unknown degradation family 'blurry'", "edge_bleed")
    assert not (tmp_path / "rep").exists()


def test_report_names_training_families_and_held_out_one(fixture_scenes, tmp_path):
    ck = save_tiny(tmp_path / "ck.pt", {"shards": "s.zarr", "degrade_mix": {"perturb": 1.0, "resolution": 1.0},
                                        "families": ["perturb", "resolution"]})
    old = save_tiny(tmp_path / "old.pt")
    r = gen("eval", "refiner", ck, "--direct", old, "--scenes", fixture_scenes, "--out", tmp_path / "rep",
            "--initial", "misalign", "--max-scenes", "2")
    assert r.exit_code == 0, r.output
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Ours: trained on perturb, resolution; 'misalign' is HELD OUT" in md
    assert "Direct-composite: not recorded in the checkpoint" in md
    for row in ("Initial depth", "Layered-propagation", "Guided filter", "Direct-composite", "Ours"):
        assert f"| {row} | 2 |" in md
    recs = list(csv.DictReader(open(tmp_path / "rep" / "degradations.csv")))
    assert len(recs) == 2 and {r["family"] for r in recs} == {"misalign"} and "dx_px" in recs[0]


def test_guided_band_is_the_guided_filter_inside_the_band_only():
    """A step edge with a known guide: inside the band the output is He et al.'s filter
    (tests/test_degrade.py checks that against its box-filter reference), elsewhere the input."""
    from tests.test_degrade import ref_guided_colour
    h, w = 24, 32
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, 12:] = (200, 100, 50)  # the guide's (and mask's) edge at column 12
    initial = np.where(np.arange(w) < 15, 2.0, 7.0)[None].repeat(h, 0).astype(np.float32)  # depth edge 3 px off
    mask = np.zeros((h, w), np.uint8)
    mask[:, 12:] = 1
    out = guided_band(initial, rgb, mask, r=3, eps=1e-3, band=4)
    ref = ref_guided_colour(rgb.astype(np.float64) / 255.0, initial.astype(np.float64), 3, 1e-3)
    band = (np.arange(w) >= 8) & (np.arange(w) <= 15)
    np.testing.assert_allclose(out[:, band], ref[:, band], atol=5e-4)
    np.testing.assert_array_equal(out[:, ~band], initial[:, ~band])
    # The filter pulls the depth edge towards the guide's: column 13 was 2.0 (wrong side), now well above.
    assert out[5, 13] > 3.0
    assert degrade.guided_filter(rgb / 255.0, initial, 3, 1e-3).shape == (h, w)


def test_training_records_the_shards_degradation_families(fixture_scenes, tmp_path):
    sh, run = tmp_path / "sh.zarr", tmp_path / "run"
    r = gen("shards", fixture_scenes, "--out", sh, "--samples", "16", "--patch", "32", "--shard-size", "16",
            "--workers", "0", "--mask-mix", '{"object": 1.0}', "--degrade-mix", "perturb=1,thin_lost=1")
    assert r.exit_code == 0, r.output
    r = gen("train", "refiner", "--shards", sh, "--out", run, "--steps", "2", "--batch", "4", "--loader-workers", "0",
            "--ckpt-every", "1")
    assert r.exit_code == 0, r.output
    t = checkpoint.load(run / "last.pt", kind="refiner")["trained_on"]
    assert t["families"] == ["perturb", "thin_lost"] and t["degrade_mix"] == {"perturb": 1.0, "thin_lost": 1.0}
    # The CPU speed-ups (channels_last + bf16 autocast) train too.
    fast = tmp_path / "fast"
    r = gen("train", "refiner", "--shards", sh, "--out", fast, "--steps", "2", "--batch", "4", "--loader-workers", "0",
            "--ckpt-every", "1", "--cpu-fast")
    assert r.exit_code == 0, r.output
    ck = checkpoint.load(fast / "last.pt", kind="refiner")
    assert ck["step"] == 2 and ck["config"]["cpu_fast"] is True


def test_head_is_leaky_for_new_models_and_relu_for_old_checkpoints():
    """The head's hidden activation leaks (a plain ReLU died in training, RESULTS.md issue 27);
    a model_config saved before the field existed rebuilds with the ReLU it was trained with."""
    from trainer.model import refiner_from_config
    torch.manual_seed(0)
    model = build_refiner("tiny")
    assert model.head.leaky == 0.1
    old = refiner_config("tiny", model)
    del old["head_leaky"]
    assert refiner_from_config(old).head.leaky == 0.0
    assert refiner_from_config(refiner_config("tiny", model)).head.leaky == 0.1
