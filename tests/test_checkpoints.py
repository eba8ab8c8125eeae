"""Checkpoints never run code (issue 19): every command that reads a refiner checkpoint refuses
a crafted pickle with one line before it can execute; checkpoints round-trip exactly, through
the converter and the safetensors export too.  The stores are built without Blender."""
import csv
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from tests.cli_util import gen, one_line_error  # noqa: E402
from trainer import checkpoint  # noqa: E402
from trainer.model import build_refiner, refiner_config, refiner_from_config  # noqa: E402

W, H = 64, 48


class Evil:
    """Unpickling this runs a shell command (the file of issue 19)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"echo pwned > {self.marker}",)


def evil_checkpoint(path, marker, **extra):
    torch.save({"model_name": Evil(marker), "model": {}, **extra}, path)
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A 4-image RGB-D scene store (gen import rgbd) and a 32-sample shard store from it."""
    d = tmp_path_factory.mktemp("ck")
    rng = np.random.default_rng(0)
    for sub in ("rgb", "depth", "instance"):
        (d / "src" / sub).mkdir(parents=True)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(d / "src" / "rgb" / f"f{i}.png")
        mm = np.full((H, W), 6000, np.uint16)
        mm[:8] = 0  # sky
        inst = np.zeros((H, W), np.uint16)
        mm[15:40, 10 + 5 * i:35 + 5 * i] = 2000
        inst[15:40, 10 + 5 * i:35 + 5 * i] = 1
        Image.fromarray(mm).save(d / "src" / "depth" / f"f{i}.png")
        Image.fromarray(inst).save(d / "src" / "instance" / f"f{i}.png")
    scenes = d / "scenes.zarr"
    r = gen("import", "rgbd", d / "src", "--out", scenes)
    assert r.exit_code == 0, r.output
    shards = d / "shards.zarr"
    r = gen("shards", scenes, "--out", shards, "--workers", "0", "--patch", "32", "--samples", "32",
            "--shard-size", "16", "--mask-mix", '{"object": 1.0}')
    assert r.exit_code == 0, r.output
    return scenes, shards


@pytest.fixture(scope="module")
def refine_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("refine")
    import cv2
    img = np.random.default_rng(1).integers(0, 255, (40, 56, 3), np.uint8)
    depth = np.full((40, 56), 4000, np.uint16)
    depth[10:30, 15:40] = 2000
    mask = np.zeros((40, 56), np.uint8)
    mask[12:28, 17:38] = 255
    for name, a in (("i.png", img), ("d.png", depth), ("m.png", mask)):
        cv2.imwrite(str(d / name), a)
    return d / "i.png", d / "d.png", d / "m.png"


def random_tiny(seed=0):
    """A tiny refiner whose output depends on every weight (plain head, random init)."""
    torch.manual_seed(seed)
    return build_refiner("tiny", residual=False).eval()


def save_refiner(path, model, mode="layered", **state):
    checkpoint.save(path, kind="refiner", model_config=refiner_config("tiny", model), model=model.state_dict(),
                    mode=mode, **state)
    return path


def inputs(h=40, w=56):
    g = torch.Generator().manual_seed(3)
    return (torch.rand(1, 1, h, w, generator=g) * 10, (torch.rand(1, 1, h, w, generator=g) > 0.5).float(),
            torch.randn(1, 3, h, w, generator=g))


def test_crafted_pickle_runs_nowhere(stores, refine_inputs, tmp_path):
    scenes, shards = stores
    image, depth, mask = refine_inputs
    marker = tmp_path / "PWNED"
    evil = evil_checkpoint(tmp_path / "evil.pt", marker)
    good = save_refiner(tmp_path / "good.pt", random_tiny())
    unsafe = "holds objects other than tensors"
    one_line_error(gen("refine", image, "--depth", depth, "--mask", mask, "--checkpoint", evil,
                       "--out", tmp_path / "r.png"), unsafe, "convert_checkpoint")
    assert not (tmp_path / "r.png").exists()
    one_line_error(gen("eval", "refiner", evil, "--scenes", scenes, "--out", tmp_path / "rep1"), unsafe)
    one_line_error(gen("eval", "refiner", good, "--direct", evil, "--scenes", scenes, "--out", tmp_path / "rep2"),
                   unsafe)
    run = tmp_path / "run"
    run.mkdir()
    evil_checkpoint(run / "last.pt", marker)
    one_line_error(gen("train", "refiner", "--shards", shards, "--out", run, "--steps", "2", "--batch", "4",
                       "--loader-workers", "0", "--resume"), "--resume", unsafe)
    one_line_error(gen("train", "refiner", "--shards", shards, "--out", tmp_path / "run2", "--steps", "2",
                       "--batch", "4", "--loader-workers", "0", "--init", evil), "--init", unsafe)
    one_line_error(gen("export", "weights", evil, "--out", tmp_path / "w.safetensors"), unsafe)
    assert not marker.exists()
    # Nothing written: no report folders, no run folder, no exported weights.
    for p in ("rep1", "rep2", "run2", "w.safetensors", "w.json"):
        assert not (tmp_path / p).exists(), p
    assert sorted(x.name for x in run.iterdir()) == ["last.pt"]
    # The file is really hostile: a full unpickle runs its command (so the checks above can fail).
    torch.load(evil, weights_only=False)
    assert marker.exists()


def test_round_trip_same_outputs(tmp_path):
    from trainer.infer import load_checkpoint
    model = random_tiny()
    d, m, r = inputs()
    with torch.no_grad():
        ref = model(d, m, r)
    path = save_refiner(tmp_path / "best.pt", model, step=7)
    loaded, mode = load_checkpoint(str(path))
    assert mode == "layered"
    with torch.no_grad():
        assert torch.equal(loaded(d, m, r), ref)
    # From plain PyTorch, as the README says.
    ck = torch.load(path, map_location="cpu", weights_only=True)
    again = build_refiner(ck["model_config"]["name"], residual=ck["model_config"]["residual"]).eval()
    again.load_state_dict(ck["model"])
    with torch.no_grad():
        assert torch.equal(again(d, m, r), ref)
    # The safetensors export and its sidecar rebuild the same model; --init reads it too.
    r1 = gen("export", "weights", path, "--out", tmp_path / "refiner.safetensors")
    assert r1.exit_code == 0, r1.output
    from safetensors.torch import load_file
    meta = json.loads((tmp_path / "refiner.json").read_text())
    assert meta["kind"] == "refiner" and meta["mode"] == "layered" and meta["step"] == 7
    exported = refiner_from_config(meta["model_config"]).eval()
    exported.load_state_dict(load_file(str(tmp_path / "refiner.safetensors")))
    init = build_refiner("tiny", init=str(tmp_path / "refiner.safetensors"), residual=False).eval()
    with torch.no_grad():
        assert torch.equal(exported(d, m, r), ref)
        assert torch.equal(init(d, m, r), ref)
    one_line_error(gen("export", "weights", path, "--out", tmp_path / "refiner.safetensors"), "--overwrite")


def test_kind_and_garbage_refused(refine_inputs, tmp_path):
    image, depth, mask = refine_inputs
    model = random_tiny()
    amodal = tmp_path / "amodal.pt"
    checkpoint.save(amodal, kind="amodal", model_config={"name": "x"}, model=model.state_dict())
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    for path, words in ((amodal, ("amodal model",)), (junk, ("not a readable checkpoint",)),
                        (tmp_path / "missing.pt", ("no checkpoint",))):
        one_line_error(gen("refine", image, "--depth", depth, "--mask", mask, "--checkpoint", path,
                           "--out", tmp_path / "r.png"), *words)


def old_format_checkpoint(path, model):
    """What trainer/train.py wrote before the weights-only format: numpy and python RNG
    state as they come, the run config, a full pickle."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    np.random.seed(5)
    random.seed(6)
    rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    import dataclasses
    torch.save(dict(model=model.state_dict(), optimizer=opt.state_dict(), step=4, epoch=0, consumed=4,
                    best=float("inf"), rng=rng, config={"model": "tiny"}, model_name="tiny", mode="direct",
                    model_config=dataclasses.asdict(model.cfg)), path)
    return np.random.random(3), random.random()


def test_old_checkpoint_refused_then_converted(refine_inputs, tmp_path, capsys):
    from trainer.infer import load_checkpoint
    from trainer.train import _set_rng_state
    image, depth, mask = refine_inputs
    model = random_tiny()
    old = tmp_path / "old.pt"
    next_np, next_py = old_format_checkpoint(old, model)
    one_line_error(gen("refine", image, "--depth", depth, "--mask", mask, "--checkpoint", old,
                       "--out", tmp_path / "r.png"), "python -m trainer.convert_checkpoint")
    new = tmp_path / "new.pt"
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "trainer.convert_checkpoint", str(old), str(new)],
                       capture_output=True, text=True, env=env, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stderr.startswith("warning: ") and "trust" in p.stderr
    loaded, mode = load_checkpoint(str(new))
    assert mode == "direct"
    d, m, r = inputs()
    with torch.no_grad():
        assert torch.equal(loaded(d, m, r), model(d, m, r))
    ck = checkpoint.load(new, kind="refiner")
    assert ck["step"] == 4 and ck["model_config"]["name"] == "tiny" and ck["optimizer"]["param_groups"]
    _set_rng_state(ck["rng"])  # the converted RNG state continues exactly where the old one was
    np.testing.assert_array_equal(np.random.random(3), next_np)
    assert random.random() == next_py
    from trainer.convert_checkpoint import main
    assert main([str(old), str(new)]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_is_exact(stores, tmp_path, monkeypatch):
    """Blender-free twin of tests/test_train.py's resume test: crash after the step-3
    checkpoint, resume, and the losses of steps 4-6 match an uninterrupted run."""
    import trainer.train as T
    _, shards = stores
    cfg = T.TrainConfig(model="tiny", steps=6, batch=4, loader_workers=0, log_every=1, ckpt_every=3, augment=True)
    T.train(str(shards), str(tmp_path / "full"), cfg, progress=False)
    real = T.save_checkpoint

    def crash_after_first_checkpoint(path, **state):
        real(path, **state)
        if path.name == "last.pt":
            raise KeyboardInterrupt
    monkeypatch.setattr(T, "save_checkpoint", crash_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        T.train(str(shards), str(tmp_path / "cut"), cfg, progress=False)
    monkeypatch.setattr(T, "save_checkpoint", real)
    assert checkpoint.load(tmp_path / "cut" / "last.pt", kind="refiner")["step"] == 3
    T.train(str(shards), str(tmp_path / "cut"), cfg, resume=True, progress=False)

    def losses(run):
        with open(run / "log.csv") as f:
            return [float(row["loss"]) for row in csv.DictReader(f)]
    full, resumed = losses(tmp_path / "full"), losses(tmp_path / "cut")
    assert len(resumed) == 6
    assert resumed[3:] == full[3:]  # the CSV's 6 decimals, exactly
    a = checkpoint.load(tmp_path / "full" / "last.pt")["model"]
    b = checkpoint.load(tmp_path / "cut" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def flip_a_weight_byte(path, tensor):
    """Flip one byte inside ``tensor``'s stored bytes in the checkpoint file at ``path``."""
    raw = path.read_bytes()
    data = tensor.detach().contiguous().numpy().tobytes()
    at = raw.find(data)
    assert at > 0 and raw.find(data, at + 1) < 0
    b = bytearray(raw)
    b[at + len(data) // 2] ^= 0x04
    path.write_bytes(bytes(b))
    return path


def test_a_flipped_byte_is_refused_by_every_loader(stores, refine_inputs, tmp_path):
    scenes, shards = stores
    image, depth, mask = refine_inputs
    model = random_tiny()
    big = max(model.state_dict().values(), key=lambda t: t.numel())
    good = save_refiner(tmp_path / "good.pt", model)
    assert checkpoint.load(good)["checksum"].startswith("blake2b:")
    bad = flip_a_weight_byte(save_refiner(tmp_path / "bad.pt", model), big)
    assert torch.load(bad, weights_only=True)["model"].keys() == model.state_dict().keys()  # torch alone takes it
    amodal = tmp_path / "amodal.pt"
    checkpoint.save(amodal, kind="amodal", model_config={"name": "x"}, model=model.state_dict())
    flip_a_weight_byte(amodal, big)
    damaged = "is damaged: its contents do not match the checksum"
    one_line_error(gen("refine", image, "--depth", depth, "--mask", mask, "--checkpoint", bad,
                       "--out", tmp_path / "r.png"), damaged)
    one_line_error(gen("eval", "refiner", bad, "--scenes", scenes, "--out", tmp_path / "rep"), damaged)
    one_line_error(gen("export", "weights", bad, "--out", tmp_path / "w.safetensors"), damaged)
    one_line_error(gen("train", "refiner", "--shards", shards, "--out", tmp_path / "run", "--steps", "2",
                       "--batch", "4", "--loader-workers", "0", "--init", bad), damaged)
    run = tmp_path / "run2"
    run.mkdir()
    (run / "last.pt").write_bytes(bad.read_bytes())
    one_line_error(gen("train", "refiner", "--shards", shards, "--out", run, "--steps", "2", "--batch", "4",
                       "--loader-workers", "0", "--resume"), damaged)
    import importlib.util
    if importlib.util.find_spec("torchvision"):  # the amodal commands need it
        one_line_error(gen("segment", image, "--depth", depth, "--checkpoint", amodal, "--out", tmp_path / "s.json"),
                       damaged)
        one_line_error(gen("eval", "amodal", amodal, "--scenes", scenes, "--out", tmp_path / "rep2"), damaged)
    for p in ("r.png", "rep", "w.safetensors", "run", "s.json", "rep2"):
        assert not (tmp_path / p).exists(), p
    # A checkpoint from before checksums (the same dict, no "checksum") loads as before.
    ck = torch.load(good, weights_only=True)
    del ck["checksum"]
    torch.save(ck, tmp_path / "old.pt")
    assert gen("refine", image, "--depth", depth, "--mask", mask, "--checkpoint", tmp_path / "old.pt",
               "--out", tmp_path / "r.png").exit_code == 0
