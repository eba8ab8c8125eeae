"""Issue 24's output rule and write faults, as one table over every ``gen`` command that
writes: an output onto or inside an input, an existing file without --overwrite, two outputs
of one command on one path, a read-only output, a full disk, and the ranges, sizes and values
that used to allocate, run or print a traceback.  Each case must exit with its status (2 for
a refused request, 1 for a fault), print exactly one line (``error: ...``) with its words,
change no file that was there (sha256), and leave no partial file in the full disk.

Read-only and full-disk cases need mounts: as root they all run in one subprocess inside a
mount namespace (``ro/`` bound read-only, ``full/`` a tmpfs filled to the brim); otherwise
``ro/`` is chmod'ed and the full-disk cases are skipped.  Stores are the analytic fixture
stores (no Blender); checkpoints are untrained tiny models."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.outputs_runner import run_case

ROOT = Path(__file__).resolve().parent.parent
REFINE = ["refine", "p.png", "--depth", "d.png", "--mask", "m.png", "--checkpoint", "ref.pt"]
SEGMENT = ["segment", "p.png", "--depth", "d.png", "--checkpoint", "am.pt"]
SHARDS = ["--patch", "32", "--shard-size", "32", "--mask-mix", '{"sky": 1}', "--workers", "0"]
SCENES = ["scenes", "--n", "1", "--preset", "tiny", "--workers", "0"]
TRAIN_AM = ["train", "amodal", "--scenes", "s.zarr", "--steps", "1", "--batch", "1", "--size", "64x48",
            "--loader-workers", "0"]
TRAIN_REF = ["train", "refiner", "--shards", "sh.zarr", "--steps", "1", "--batch", "2", "--loader-workers", "0"]
EVAL_AM = ["eval", "amodal", "am.pt", "--scenes", "s.zarr", "--max-scenes", "1", "--overlays", "1"]
EVAL_REF = ["eval", "refiner", "ref.pt", "--scenes", "s.zarr", "--max-scenes", "1"]
COMPLETE = ["complete", "p.png", "--visible", "m.png", "--depth", "d.png", "--checkpoint", "cm.pt"]
TRAIN_C = ["train", "completion", "--scenes", "s.zarr", "--steps", "1", "--size", "16", "--scenes-per-step", "1",
           "--min-visible-area", "1", "--loader-workers", "0"]
EVAL_C = ["eval", "completion", "cm.pt", "--scenes", "s.zarr", "--max-scenes", "1", "--min-visible-area", "1"]
ONTO, EXISTS, SAME, RO, FULL = "onto the input", "already exists", "same path", "read-only", "No space left"

# (id, argv, where: "here" | "ro" | "full" | "full:<bytes left>", exit status, words in the line)
CASES = [
    # gen scenes / shards / import rgbd: stores
    ("scenes_onto_config", [*SCENES, "--config", "cfg.json", "--out", "cfg.json", "--overwrite"], "here", 2, ONTO),
    ("scenes_exists", [*SCENES, "--out", "s.zarr"], "here", 2, EXISTS),
    ("scenes_read_only", [*SCENES, "--out", "ro/x.zarr"], "ro", 2, RO),
    ("scenes_full", [*SCENES, "--out", "full/x.zarr"], "full", 2, FULL),
    ("scenes_only_huge_range", ["scenes", "--out", "s.zarr", "--only", "0-9999999999", "--overwrite", "--workers", "0"],
     "here", 2, "outside 0..2"),
    ("scenes_n_over_stated_max", ["scenes", "--n", "10000000", "--preset", "tiny", "--out", "x.zarr"], "here", 2,
     "--force"),
    ("scenes_negative_road", [*SCENES, "--out", "x.zarr", "--set", "street.road_width=-5"], "here", 2, "road_width"),
    ("shards_into_source", ["shards", "s.zarr", "--out", "s.zarr/x.zarr", *SHARDS], "here", 2, ONTO),
    ("shards_exists", ["shards", "s.zarr", "--out", "sh.zarr", *SHARDS], "here", 2, EXISTS),
    ("shards_read_only", ["shards", "s.zarr", "--out", "ro/x.zarr", *SHARDS], "ro", 2, RO),
    ("shards_full_on_dask", ["shards", "s.zarr", "--out", "full/x.zarr", "--samples", "96", *SHARDS[:-1], "1"],
     "full:120000", 1, ["shard(s) failed", FULL]),
    ("shards_samples_over_stated_max", ["shards", "s.zarr", "--out", "x.zarr", "--samples", "20000000"], "here", 2,
     "--force"),
    ("import_into_input", ["import", "rgbd", "rgbd", "--out", "rgbd/x.zarr"], "here", 2, ONTO),
    ("import_exists", ["import", "rgbd", "rgbd", "--out", "s.zarr"], "here", 2, EXISTS),
    ("import_read_only", ["import", "rgbd", "rgbd", "--out", "ro/x.zarr"], "ro", 2, RO),
    ("import_full", ["import", "rgbd", "rgbd", "--out", "full/x.zarr"], "full", 2, FULL),
    ("import_sky_nan", ["import", "rgbd", "rgbd", "--out", "x.zarr", "--sky-value", "nan"], "here", 2, "--sky-value"),
    # gen preview / stats / verify --repair
    ("preview_into_store", ["preview", "s.zarr", "--out", "s.zarr/p.png", "--overwrite"], "here", 2, ONTO),
    ("preview_exists", ["preview", "s.zarr", "--out", "exists.png"], "here", 2, EXISTS),
    ("preview_read_only", ["preview", "s.zarr", "--out", "ro/p.png"], "ro", 2, RO),
    ("preview_full", ["preview", "s.zarr", "--out", "full/p.png"], "full", 1, FULL),
    ("stats_onto_store", ["stats", "s.zarr", "--out", "s.zarr", "--overwrite", "--no-plots"], "here", 2, ONTO),
    ("stats_folder_holds_files", ["stats", "s.zarr", "--out", "rep_existing", "--no-plots"], "here", 2, "--overwrite"),
    ("stats_read_only", ["stats", "s.zarr", "--out", "ro/rep", "--no-plots"], "ro", 2, RO),
    ("stats_full", ["stats", "s.zarr", "--out", "full/rep", "--no-plots"], "full", 1, FULL),
    ("stats_damaged_chunk", ["stats", "dmg.zarr", "--out", "rep", "--pixels", "--no-plots"], "here", 2, "damaged"),
    ("repair_read_only_store", ["verify", "ro/s.zarr", "--repair", "--workers", "0"], "ro", 2, RO),
    # gen train / eval
    ("train_refiner_into_shards", [*TRAIN_REF, "--out", "sh.zarr/run"], "here", 2, ONTO),
    ("train_refiner_run_exists", [*TRAIN_REF, "--out", "run_ref"], "here", 2, "already holds a run"),
    ("train_refiner_read_only", [*TRAIN_REF, "--out", "ro/run"], "ro", 2, RO),
    ("train_refiner_full", [*TRAIN_REF, "--out", "full/run"], "full", 1, FULL),
    ("train_amodal_into_store", [*TRAIN_AM, "--out", "s.zarr/run"], "here", 2, ONTO),
    ("train_amodal_onto_store", [*TRAIN_AM, "--out", "s.zarr"], "here", 2, ONTO),
    ("train_amodal_run_exists", [*TRAIN_AM, "--out", "run_am"], "here", 2, "already holds a run"),
    ("train_amodal_read_only", [*TRAIN_AM, "--out", "ro/run"], "ro", 2, RO),
    ("train_amodal_huge_size", ["train", "amodal", "--scenes", "s.zarr", "--out", "r", "--size", "100000x100000"],
     "here", 2, "--size"),
    ("train_amodal_lr_nan", ["train", "amodal", "--scenes", "s.zarr", "--out", "r", "--lr", "nan"], "here", 2, "--lr"),
    ("train_amodal_damaged_chunk", [*TRAIN_AM[:3], "dmg.zarr", *TRAIN_AM[4:], "--out", "r"], "here", 2, "damaged"),
    ("eval_refiner_onto_store", [*EVAL_REF, "--out", "s.zarr"], "here", 2, ONTO),
    ("eval_refiner_report_exists", [*EVAL_REF, "--out", "rep_ref"], "here", 2, EXISTS),
    ("eval_refiner_read_only", [*EVAL_REF, "--out", "ro/rep"], "ro", 2, RO),
    ("eval_refiner_full", [*EVAL_REF, "--out", "full/rep"], "full", 1, FULL),
    ("eval_amodal_onto_store", [*EVAL_AM, "--out", "s.zarr"], "here", 2, ONTO),
    ("eval_amodal_report_exists", [*EVAL_AM, "--out", "rep_am"], "here", 2, EXISTS),
    ("eval_amodal_read_only", [*EVAL_AM, "--out", "ro/rep"], "ro", 2, RO),
    ("eval_amodal_full", [*EVAL_AM, "--out", "full/rep"], "full", 1, FULL),
    ("train_completion_into_store", [*TRAIN_C, "--out", "s.zarr/run"], "here", 2, ONTO),
    ("train_completion_onto_store", [*TRAIN_C, "--out", "s.zarr"], "here", 2, ONTO),
    ("train_completion_run_exists", [*TRAIN_C, "--out", "run_c"], "here", 2, "already holds a run"),
    ("train_completion_read_only", [*TRAIN_C, "--out", "ro/run"], "ro", 2, RO),
    ("train_completion_full", [*TRAIN_C, "--out", "full/run"], "full", 1, FULL),
    ("eval_completion_onto_store", [*EVAL_C, "--out", "s.zarr"], "here", 2, ONTO),
    ("eval_completion_report_exists", [*EVAL_C, "--out", "rep_c"], "here", 2, EXISTS),
    ("eval_completion_read_only", [*EVAL_C, "--out", "ro/rep"], "ro", 2, RO),
    ("eval_completion_full", [*EVAL_C, "--out", "full/rep"], "full", 1, FULL),
    ("eval_order_onto_prediction", ["eval", "order", "o.json", "--scenes", "s.zarr", "--out", "o.json", "--overwrite"],
     "here", 2, ONTO),
    ("eval_order_onto_store_metadata", ["eval", "order", "o.json", "--scenes", "s.zarr", "--out", "s.zarr/zarr.json",
                                        "--overwrite"], "here", 2, ONTO),
    ("eval_order_exists", ["eval", "order", "o.json", "--scenes", "s.zarr", "--out", "exists.json"], "here", 2, EXISTS),
    ("eval_order_read_only", ["eval", "order", "o.json", "--scenes", "s.zarr", "--out", "ro/m.json"], "ro", 2, RO),
    ("eval_order_full", ["eval", "order", "o.json", "--scenes", "s.zarr", "--out", "full/m.json"], "full", 1, FULL),
    ("eval_order_not_a_list", ["eval", "order", "nope.json", "--scenes", "s.zarr"], "here", 2, "'annotations'"),
    # gen refine / segment
    ("refine_onto_depth", [*REFINE, "--out", "d.png", "--overwrite"], "here", 2, ONTO),
    ("refine_exists", [*REFINE, "--out", "exists.png"], "here", 2, EXISTS),
    ("refine_read_only", [*REFINE, "--out", "ro/o.png"], "ro", 2, RO),
    ("refine_read_only_tif", [*REFINE, "--out", "ro/o.tif"], "ro", 2, RO),
    ("refine_full", [*REFINE, "--out", "full/o.png"], "full", 1, FULL),
    ("refine_full_tif", [*REFINE, "--out", "full/o.tif"], "full", 1, FULL),
    ("segment_overlay_onto_depth", [*SEGMENT, "--out", "d.json"], "here", 2, ["overlay", ONTO]),
    ("segment_overlay_onto_json", [*SEGMENT, "--out", "sg9.png"], "here", 2, SAME),
    ("segment_exists", [*SEGMENT, "--out", "exists.json"], "here", 2, EXISTS),
    ("segment_overlay_exists", [*SEGMENT, "--out", "ov.json"], "here", 2, ["overlay", EXISTS]),
    ("segment_read_only", [*SEGMENT, "--out", "ro/sg.json"], "ro", 2, RO),
    ("segment_full", [*SEGMENT, "--out", "full/sg.json"], "full", 1, FULL),
    ("complete_overlay_onto_depth", [*COMPLETE, "--out", "d.json"], "here", 2, ["overlay", ONTO]),
    ("complete_overlay_onto_photo", [*COMPLETE, "--out", "p.json", "--overwrite"], "here", 2, ["overlay", ONTO]),
    ("complete_out_is_not_json", [*COMPLETE, "--out", "cp9.png"], "here", 2, ".json"),  # it would be its own overlay
    ("complete_exists", [*COMPLETE, "--out", "exists.json"], "here", 2, EXISTS),
    ("complete_overlay_exists", [*COMPLETE, "--out", "ov.json"], "here", 2, ["overlay", EXISTS]),
    ("complete_read_only", [*COMPLETE, "--out", "ro/cp.json"], "ro", 2, RO),
    ("complete_full", [*COMPLETE, "--out", "full/cp.json"], "full", 1, FULL),
    # gen export
    ("kins_onto_store_metadata", ["export", "kins", "s.zarr", "--out", "s.zarr/zarr.json", "--overwrite"], "here", 2,
     ONTO),
    ("kins_images_into_store", ["export", "kins", "s.zarr", "--out", "k.json", "--images-dir", "s.zarr/imgs"], "here",
     2, ONTO),
    ("kins_exists", ["export", "kins", "s.zarr", "--out", "exists.json"], "here", 2, EXISTS),
    ("kins_through_file_symlink", ["export", "kins", "s.zarr", "--out", "meta_link.json", "--overwrite"], "here", 2,
     ONTO),
    ("kins_through_folder_symlink", ["export", "kins", "s.zarr", "--out", "store_link/k.json"], "here", 2, ONTO),
    ("kins_out_is_images_dir", ["export", "kins", "s.zarr", "--out", "D", "--images-dir", "D"], "here", 2, SAME),
    ("kins_read_only", ["export", "kins", "s.zarr", "--out", "ro/k.json"], "ro", 2, RO),
    ("kins_images_read_only", ["export", "kins", "s.zarr", "--out", "k.json", "--images-dir", "ro/im"], "ro", 2, RO),
    ("kins_images_read_only_dask", ["export", "kins", "s.zarr", "--out", "k.json", "--images-dir", "ro/im",
                                    "--workers", "2"], "ro", 2, RO),
    ("kins_full", ["export", "kins", "s.zarr", "--out", "full/k.json", "--workers", "0"], "full", 1, FULL),
    ("kins_images_full", ["export", "kins", "s.zarr", "--out", "k.json", "--images-dir", "full/im", "--workers", "0"],
     "full:6000", 1, FULL),
    ("kins_images_full_dask", ["export", "kins", "s.zarr", "--out", "k.json", "--images-dir", "full/im", "--workers",
                               "2"], "full:6000", 1, FULL),
    ("kins_huge_range", ["export", "kins", "s.zarr", "--out", "k.json", "--scenes", "0-9999999999"], "here", 2,
     "outside 0..2"),
    ("kins_unreachable_scheduler", ["export", "kins", "s.zarr", "--out", "k.json", "--scheduler", "tcp://127.0.0.1:1"],
     "here", 2, "scheduler"),
    ("kins_damaged_chunk", ["export", "kins", "dmg.zarr", "--out", "k.json", "--workers", "0"], "here", 2, "damaged"),
    ("coco_onto_store_metadata", ["export", "coco", "s.zarr", "--out", "s.zarr/zarr.json", "--overwrite"], "here", 2,
     ONTO),
    ("coco_exists", ["export", "coco", "s.zarr", "--out", "exists.json"], "here", 2, EXISTS),
    ("coco_out_is_images_dir", ["export", "coco", "s.zarr", "--out", "D", "--images-dir", "./D/"], "here", 2, SAME),
    ("coco_read_only", ["export", "coco", "s.zarr", "--out", "ro/c.json"], "ro", 2, RO),
    ("coco_full", ["export", "coco", "s.zarr", "--out", "full/c.json", "--workers", "0"], "full", 1, FULL),
    ("coco_huge_range", ["export", "coco", "s.zarr", "--out", "c.json", "--scenes", "0-9999999999"], "here", 2,
     "outside 0..2"),
    ("coco_unreachable_scheduler", ["export", "coco", "s.zarr", "--out", "c.json", "--scheduler", "tcp://127.0.0.1:1"],
     "here", 2, "scheduler"),
    ("instaorder_onto_store_metadata", ["export", "instaorder", "s.zarr", "--out", "s.zarr/zarr.json", "--overwrite"],
     "here", 2, ONTO),
    ("instaorder_exists", ["export", "instaorder", "s.zarr", "--out", "exists.json"], "here", 2, EXISTS),
    ("instaorder_read_only", ["export", "instaorder", "s.zarr", "--out", "ro/o.json"], "ro", 2, RO),
    ("instaorder_full", ["export", "instaorder", "s.zarr", "--out", "full/o.json"], "full", 1, FULL),
    ("instaorder_huge_range", ["export", "instaorder", "s.zarr", "--out", "i.json", "--scenes", "0-9999999999"], "here",
     2, "outside 0..2"),
    ("region_support_read_only_store", ["export", "region-support", "ro/s.zarr", "--workers", "0"], "ro", 2, RO),
    ("region_support_unreachable_scheduler", ["export", "region-support", "s.zarr", "--scheduler", "tcp://127.0.0.1:1"],
     "here", 2, "scheduler"),
    ("weights_sidecar_onto_checkpoint", ["export", "weights", "wj.json", "--out", "wj.safetensors"], "here", 2,
     ["sidecar", ONTO]),
    ("weights_exists", ["export", "weights", "ref.pt", "--out", "exists.safetensors"], "here", 2, EXISTS),
    ("weights_read_only", ["export", "weights", "ref.pt", "--out", "ro/w.safetensors"], "ro", 2, RO),
    ("weights_full", ["export", "weights", "ref.pt", "--out", "full/w.safetensors"], "full", 1, FULL),
]


def _flip_all(store: Path, array: str) -> None:
    for p in (store / array / "c").rglob("*"):
        if p.is_file():
            b = bytearray(p.read_bytes())
            b[len(b) // 2] ^= 0x40
            p.write_bytes(bytes(b))


def _amodal_checkpoint(path: Path) -> None:
    from trainer import checkpoint
    from trainer.amodal_model import build_amodal
    from trainer.amodal_train import AmodalTrainConfig, model_config
    mc = model_config(AmodalTrainConfig(input_size=[64, 48]))
    checkpoint.save(path, kind="amodal", model_config=mc, model=build_amodal(**mc).state_dict())


def _completion_checkpoint(path: Path) -> None:
    from trainer import checkpoint
    from trainer.completion_model import build_completion
    from trainer.completion_train import CompletionTrainConfig, model_config
    mc = model_config(CompletionTrainConfig(size=16, widths=[8, 16, 32, 64]))
    checkpoint.save(path, kind="completion", model_config=mc, model=build_completion(**mc).state_dict())


def _refiner_checkpoint(path: Path) -> None:
    from trainer import checkpoint
    from trainer.model import build_refiner, refiner_config
    m = build_refiner("tiny", residual=False)
    checkpoint.save(path, kind="refiner", model_config=refiner_config("tiny", m), model=m.state_dict(), mode="layered")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """One work folder for every case (each must leave it as it was): stores, checkpoints,
    refine/segment inputs, the user's own files, ro/ (with a store) and an empty full/."""
    pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    import cv2
    from click.testing import CliRunner

    from pipelines.cli import cli
    from tests.fixture_store import make_scene_store
    w = tmp_path_factory.mktemp("outputs")
    st = make_scene_store(str(w / "s.zarr"), n=3, width=96, height=64, seed=0)
    shutil.copytree(w / "s.zarr", w / "dmg.zarr")
    for a in ("rgb", "amodal"):
        _flip_all(w / "dmg.zarr", a)
    for ro_dir in ("ro", "full", "rep_existing", "rep_ref", "rep_am", "run_ref", "run_am", "run_c", "rep_c",
                   "rgbd/rgb", "rgbd/depth"):
        (w / ro_dir).mkdir(parents=True)
    shutil.copytree(w / "s.zarr", w / "ro" / "s.zarr")
    for args in (["shards", "s.zarr", "--out", "sh.zarr", "--samples", "32", *SHARDS],
                 ["export", "instaorder", "s.zarr", "--out", "o.json"]):
        r = CliRunner().invoke(cli, [a.replace("s.zarr", str(w / "s.zarr")).replace("sh.zarr", str(w / "sh.zarr"))
                                     .replace("o.json", str(w / "o.json")) for a in args])
        assert r.exit_code == 0, r.output
    _refiner_checkpoint(w / "ref.pt")
    _amodal_checkpoint(w / "am.pt")
    shutil.copy(w / "ref.pt", w / "wj.json")  # a checkpoint whose name the weights' sidecar would take
    shutil.copy(w / "ref.pt", w / "run_ref" / "last.pt")
    os.link(w / "am.pt", w / "run_am" / "last.pt")
    _completion_checkpoint(w / "cm.pt")
    shutil.copy(w / "cm.pt", w / "run_c" / "last.pt")
    s = st.read_scene(0, ["rgb", "depth"])
    depth_mm = np.where(np.isfinite(s["depth"]), s["depth"] * 1000, 0).astype(np.uint16)
    for folder in (w, w / "rgbd"):
        cv2.imwrite(str(folder / ("p.png" if folder == w else "rgb/0.png")), s["rgb"][..., ::-1])
        cv2.imwrite(str(folder / ("d.png" if folder == w else "depth/0.png")), depth_mm)
    m = np.zeros(depth_mm.shape, np.uint8)
    m[10:30, 20:40] = 255
    cv2.imwrite(str(w / "m.png"), m)
    (w / "nope.json").write_text('{"annotations": "nope"}')
    (w / "meta_link.json").symlink_to(w / "s.zarr" / "zarr.json")
    (w / "store_link").symlink_to(w / "s.zarr")
    (w / "cfg.json").write_text("{}")
    for name in ("exists.png", "exists.json", "exists.safetensors", "rep_existing/stats.md", "rep_ref/report.md",
                 "rep_am/report.json",
                 "rep_c/report.md"):
        (w / name).write_text("the user's own file\n")
    shutil.copy(w / "p.png", w / "ov.png")  # segment --out ov.json would put its overlay here
    return w


def _namespace_prefix(w: Path) -> list[str] | None:
    """Run inside a mount namespace with ro/ read-only and full/ a 1 MiB tmpfs (root only)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-m", "true"], capture_output=True, check=False).returncode != 0:
        return None
    script = ('mount --bind "$0/ro" "$0/ro" && mount -o remount,ro,bind "$0/ro" "$0/ro" && '
              'mount -t tmpfs -o size=1m tmpfs "$0/full" && exec "$@"')
    return ["unshare", "-m", "sh", "-c", script, str(w)]


@pytest.fixture(scope="module")
def mounted_results(work, tmp_path_factory):
    """Results of every read-only and full-disk case, run in one subprocess (as root), or
    None where no mount namespace can be made."""
    prefix = _namespace_prefix(work)
    if prefix is None:
        return None
    d = tmp_path_factory.mktemp("mounted")
    cases = [{"id": c[0], "args": c[1], "work": str(work),
              "full_keep": int(c[2].split(":")[1]) if ":" in c[2] else 0 if c[2] == "full" else None}
             for c in CASES if c[2] != "here"]
    (d / "cases.json").write_text(json.dumps(cases))
    p = subprocess.run([*prefix, sys.executable, "-m", "tests.outputs_runner", str(d / "cases.json"),
                        str(d / "results.json")], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                       capture_output=True, timeout=600, check=False)
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-3000:]
    return json.loads((d / "results.json").read_text())


def _chmod_ro(work: Path, on: bool) -> None:
    for p in [work / "ro", *(work / "ro").rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode & ~0o222 if on else mode | 0o200)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_output_case(case, work, mounted_results):
    name, args, where, code, words = case
    if where == "here":
        r = run_case(args, work)
    elif mounted_results is not None:
        r = mounted_results[name]
    elif where == "ro" and os.geteuid() == 0:
        pytest.skip("root ignores a chmod: a read-only folder needs a mount namespace (unshare -m)")
    elif where == "ro":
        _chmod_ro(work, True)
        try:
            r = run_case(args, work)
        finally:
            _chmod_ro(work, False)
    else:
        pytest.skip("a full disk needs a tmpfs in a mount namespace (root)")
    assert "Traceback" not in r["err"], r["err"]
    assert r["rc"] == code, r["err"]
    assert len(r["lines"]) == 1 and r["lines"][0].startswith("error: "), r["err"]
    for w in [words] if isinstance(words, str) else words:
        assert w in r["lines"][0], r["lines"][0]
    assert not r["changed"], r["changed"][:5]
    assert not r["leftovers"], r["leftovers"]


def test_every_writing_command_is_in_the_table():
    """Every command of ``gen --help`` that writes has cases of its own here."""
    from pipelines.cli import cli
    commands = set()
    for name, cmd in cli.commands.items():
        commands |= {f"{name} {sub}" for sub in getattr(cmd, "commands", {})} or {name}
    read_only = {"info"}
    covered = {" ".join(a[:2]) if a[0] in ("import", "train", "eval", "export") else a[0] for _, a, *_ in CASES}
    assert commands - read_only <= covered, sorted(commands - read_only - covered)


def test_failed_writes_leave_the_old_file_and_no_temporary(tmp_path):
    import errno

    from scenes.atomic import WriteError, replacing, write_image, write_text
    old = write_text(tmp_path / "a.json", '{"old": 1}')
    with pytest.raises(WriteError, match="No space left"):
        with replacing(old) as tmp:
            tmp.write_text('{"ne')  # half a file, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    for bad in ("b.xyz", "c.png"):  # no encoder for the extension; nothing to encode
        with pytest.raises(WriteError, match=bad):
            write_image(tmp_path / bad, np.zeros((4, 4, 3) if bad == "b.xyz" else (0, 0), np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"] and old.read_text() == '{"old": 1}'


def test_ranges_are_checked_before_they_are_expanded():
    from pipelines.cli_checks import OutOfRange, index_ranges
    assert index_ranges("0-2,5", 6) == [0, 1, 2, 5]
    with pytest.raises(OutOfRange, match="9999999999"):
        index_ranges("0-9999999999", 3)  # refused at once, not after 80 GB of list
    with pytest.raises(OutOfRange):
        index_ranges("-1", 3)
