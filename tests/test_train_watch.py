"""Training you can watch (issue 26): TensorBoard from both trainers, --val runs each model's
own evaluation and picks best.pt on it, --config/--set set any run setting, and runs saved
before these settings existed still resume."""
import csv
import json

import pytest

torch = pytest.importorskip("torch")

from tests.cli_util import gen, one_line_error  # noqa: E402


@pytest.fixture(scope="module")
def shards(fixture_scenes, tmp_path_factory):
    url = tmp_path_factory.mktemp("watch") / "s.zarr"
    r = gen("shards", fixture_scenes, "--out", url, "--workers", "0", "--patch", "32", "--samples", "16",
            "--shard-size", "16", "--mask-mix", '{"object": 1.0}')
    assert r.exit_code == 0, r.output
    return url


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def events(run):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    return set(acc.Tags()["scalars"])


@pytest.mark.slow
def test_refiner_val_tensorboard_and_set(shards, fixture_scenes, tmp_path):
    from trainer import checkpoint
    run = tmp_path / "r"
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"log_every": 1, "weight_decay": 0.05, "batch": 2}))
    r = gen("train", "refiner", "--shards", shards, "--out", run, "--steps", 2, "--batch", 4, "--loader-workers", 0,
            "--ckpt-every", 1, "--val", fixture_scenes, "--val-scenes", 2, "--config", cfg, "--set", "augment=false")
    assert r.exit_code == 0, r.output
    saved = json.loads((run / "config.json").read_text())
    # the file and --set apply; --batch given as a flag wins over the file
    assert (saved["log_every"], saved["weight_decay"], saved["augment"], saved["batch"]) == (1, 0.05, False, 4)
    val = rows(run / "val.csv")
    assert [int(v["step"]) for v in val] == [1, 2] and all(int(v["scenes"]) == 2 for v in val)
    rmse = [float(v["RMSE"]) for v in val]
    assert checkpoint.load(run / "best.pt")["best"] == pytest.approx(min(rmse), rel=1e-5)
    assert {"loss", "lr", "val/RMSE"} <= events(run)


@pytest.mark.slow
def test_amodal_val_and_tensorboard(fixture_scenes, tmp_path):
    pytest.importorskip("torchvision")
    pytest.importorskip("pycocotools")
    run = tmp_path / "a"
    r = gen("train", "amodal", "--scenes", fixture_scenes, "--out", run, "--steps", 2, "--batch", 2, "--size", "96x64",
            "--loader-workers", 0, "--ckpt-every", 2, "--val", fixture_scenes, "--val-scenes", 2, "--set", "log_every=1")
    assert r.exit_code == 0, r.output
    val = rows(run / "val.csv")
    assert [int(v["step"]) for v in val] == [2] and 0 <= float(val[0]["amodal_AP"]) <= 1
    assert (run / "best.pt").exists()
    assert {"loss", "loss/mask", "loss/amodal", "val/amodal_AP"} <= events(run)


def test_bad_settings_are_one_line(shards, tmp_path):
    base = ("train", "refiner", "--shards", shards, "--out", tmp_path / "x", "--steps", 1, "--loader-workers", 0)
    one_line_error(gen(*base, "--set", "learning_rate=1"), "'learning_rate' is not a training setting")
    one_line_error(gen(*base, "--set", "log_every=often"), "'log_every' must be an integer")
    one_line_error(gen(*base, "--val", tmp_path / "nothing.zarr"), "--val", "no store")
    assert not (tmp_path / "x").exists()


def test_a_run_saved_before_the_new_settings_resumes(shards, tmp_path):
    run = tmp_path / "old"
    args = ("train", "refiner", "--shards", shards, "--out", run, "--steps", 1, "--batch", 4, "--loader-workers", 0)
    assert gen(*args).exit_code == 0
    ck = torch.load(run / "last.pt", weights_only=True)
    for k in ("val", "val_every", "val_scenes"):
        del ck["config"][k]
    del ck["checksum"]  # came later than these settings: such a run's checkpoint has none
    torch.save(ck, run / "last.pt")
    r = gen(*args, "--resume")
    assert r.exit_code == 0, r.output
