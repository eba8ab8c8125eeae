"""Fingerprint of training, evaluation and gen refine on a Blender-free tiny store.

    PYTHONPATH=$PWD python benchmarks/fingerprint_refiner.py /tmp/fp

Run it before and after a refactor that must not change outputs: it imports 4 RGB-D images,
builds 32 shard samples, trains layered and direct tiny refiners for 6 steps, evaluates
them (4 scenes) and refines one image, then prints the report and a hash of each output
(weights, log without the timing column, report.csv, improvement maps, refined PNG/NPY).
About 1 CPU-minute.
"""
import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from pipelines.cli import cli

out = Path(sys.argv[1]); shutil.rmtree(out, ignore_errors=True); out.mkdir(parents=True)
def gen(*a):
    r = CliRunner().invoke(cli, [str(x) for x in a], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r
rng = np.random.default_rng(0)
W, H = 64, 48
for sub in ("rgb", "depth", "instance"):
    (out / "src" / sub).mkdir(parents=True)
for i in range(4):
    Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(out / "src/rgb" / f"f{i}.png")
    mm = np.full((H, W), 6000, np.uint16); mm[:8] = 0
    inst = np.zeros((H, W), np.uint16)
    mm[15:40, 10 + 5*i:35 + 5*i] = 2000 + 300 * i; inst[15:40, 10 + 5*i:35 + 5*i] = 1
    mm[20:30, 40:50] = 3000; inst[20:30, 40:50] = 2
    Image.fromarray(mm).save(out / "src/depth" / f"f{i}.png"); Image.fromarray(inst).save(out / "src/instance" / f"f{i}.png")
gen("import", "rgbd", out / "src", "--out", out / "s.zarr")
gen("shards", out / "s.zarr", "--out", out / "sh.zarr", "--workers", "0", "--patch", "32", "--samples", "32", "--shard-size", "16", "--mask-mix", '{"object": 1.0}')
res = {}
for mode in ("layered", "direct"):
    run = out / f"run_{mode}"
    gen("train", "refiner", "--shards", out / "sh.zarr", "--out", run, "--steps", "6", "--batch", "4", "--loader-workers", "0", "--ckpt-every", "3", "--mode", mode, "--stage1-fraction", "0.5", "--lr", "1e-3", "--plain-head")
    import torch
    ck = torch.load(run / "last.pt", weights_only=True)
    h = hashlib.sha256()
    for k in sorted(ck["model"]): h.update(k.encode()); h.update(ck["model"][k].numpy().tobytes())
    res[f"{mode} weights"] = h.hexdigest()[:16]
    res[f"{mode} log"] = hashlib.sha256(b"".join(l.rsplit(b",", 1)[0] for l in (run / "log.csv").read_bytes().splitlines())).hexdigest()[:16]
gen("eval", "refiner", out / "run_layered/last.pt", "--direct", out / "run_direct/last.pt", "--scenes", out / "s.zarr", "--out", out / "rep", "--max-scenes", "4")
res["report.csv"] = hashlib.sha256((out / "rep/report.csv").read_bytes()).hexdigest()[:16]
for f in sorted((out / "rep").glob("improvement_*.png")):
    res[f.name] = hashlib.sha256(f.read_bytes()).hexdigest()[:16]
import cv2

img = rng.integers(0, 255, (40, 56, 3), np.uint8); d = np.full((40, 56), 4000, np.uint16); d[10:30, 15:40] = 2000
m = np.zeros((40, 56), np.uint8); m[12:28, 17:38] = 255
for n, a in (("i.png", img), ("d.png", d), ("m.png", m)): cv2.imwrite(str(out / n), a)
for ext in ("png", "npy"):
    gen("refine", out / "i.png", "--depth", out / "d.png", "--mask", out / "m.png", "--checkpoint", out / "run_layered/last.pt", "--out", out / f"r.{ext}")
    res[f"refine.{ext}"] = hashlib.sha256((out / f"r.{ext}").read_bytes()).hexdigest()[:16]
print((out / "rep/report.md").read_text())
for k, v in res.items(): print(k, v)
