"""Every user mistake and damaged store a new user ran into (issue 13), as one table: each
case must exit with its code, print exactly one line on stderr (``error: ...``), no
traceback, and leave every file under the working folder byte-for-byte as it was.

The stores are tiny and built once (an RGB-D import and shards from it: no Blender).
Cases that involve Dask, object stores or a read-only mount run ``gen`` as a subprocess;
the rest run in-process through click's runner."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from pipelines.cli import cli

ROOT = Path(__file__).resolve().parent.parent
GEN = str(Path(sys.executable).parent / "gen")
W, H = 64, 40
SHARDS = ["--patch", "32", "--shard-size", "32", "--mask-mix", '{"sky": 1}', "--workers", "0"]
# No network: object stores point at a loopback port nobody listens on, one attempt, no
# instance-metadata lookups.
S3 = {"FSSPEC_S3_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_MAX_ATTEMPTS": "1", "AWS_EC2_METADATA_DISABLED": "true",
      "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"}
S3_KEYS = {**S3, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def _images(root: Path, n: int = 3) -> None:
    for sub in ("rgb", "depth"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(root / "rgb" / f"{i}.png")
        d = np.full((H, W), 3000 + 500 * i, np.uint16)
        d[:6] = 0  # sky
        Image.fromarray(d).save(root / "depth" / f"{i}.png")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A working folder: a scene store, a shard store, refine inputs and the user's files."""
    w = tmp_path_factory.mktemp("work")
    _images(w / "rgbd")
    r = CliRunner().invoke(cli, ["import", "rgbd", str(w / "rgbd"), "--out", str(w / "s.zarr")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["shards", str(w / "s.zarr"), "--out", str(w / "sh.zarr"), "--samples", "64", *SHARDS])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["train", "refiner", "--shards", str(w / "sh.zarr"), "--out", str(w / "run0"),
                                 "--steps", "1", "--batch", "2", "--loader-workers", "0"])
    assert r.exit_code == 0, r.output
    (w / "precious.txt").write_text("the user's own file\n")
    for d in ("sentinel_dir", "dotdir", "sentinel2"):
        (w / d).mkdir()
        (w / d / "keep.txt").write_text("keep me\n")
    (w / "notckpt.pt").write_text("not a checkpoint\n")
    shutil.copy(w / "rgbd" / "rgb" / "0.png", w / "img.png")
    shutil.copy(w / "rgbd" / "depth" / "0.png", w / "depth_copy.png")
    m = np.zeros((H, W), np.uint8)
    m[10:30, 20:40] = 255
    Image.fromarray(m).save(w / "m.png")
    (w / "sheet.png").write_bytes(b"an existing image")
    (w / "folder.png").mkdir()
    shutil.copytree(w / "sh.zarr", w / "sh_emptied.zarr")
    os.truncate(w / "sh_emptied.zarr/rgb/c/1/0/0/0", 0)
    # Damaged copies: each one chunk of a finished scene, damaged one way.
    for name, damage in DAMAGE.items():
        shutil.copytree(w / "s.zarr", w / f"{name}.zarr")
        damage(w / f"{name}.zarr")
    return w


def _flip(p: Path) -> None:
    b = bytearray(p.read_bytes())
    b[len(b) // 2] ^= 0x40
    p.write_bytes(bytes(b))


DAMAGE = {
    "deleted": lambda s: (s / "depth/c/1/0/0").unlink(),
    "flipped": lambda s: _flip(s / "rgb/c/0/0/0/0"),
    "truncated": lambda s: os.truncate(s / "instance/c/2/0/0", 9),
    "emptied": lambda s: os.truncate(s / "depth/c/0/0/0", 0),
    "amodal_deleted": lambda s: (s / "amodal/c/0/0/0/0").unlink(),
    "semantic_deleted": lambda s: (s / "semantic/c/1/0/0").unlink(),
    "counts_flipped": lambda s: _flip(s / "num_instances/c/0"),
    "zarrjson": lambda s: os.truncate(s / "zarr.json", 25),
    "array_zarrjson": lambda s: os.truncate(s / "depth/zarr.json", 25),
}

REFINE = ["refine", "img.png", "--depth", "depth_copy.png", "--mask", "m.png", "--checkpoint", "run0/last.pt"]
SCENES = ["scenes", "--n", "1", "--preset", "tiny", "--workers", "0"]

# (id, argv, how: click | sub | ro:<dir> | s3 | s3keys, exit code, words in the line, cwd)
CASES = [
    # --- data loss first -------------------------------------------------------------------
    ("overwrite_a_file", [*SCENES, "--out", "precious.txt", "--overwrite"], "click", 2, "is a file", "."),
    ("overwrite_user_dir", [*SCENES, "--out", "sentinel_dir", "--overwrite"], "click", 2, "not an rgsd store", "."),
    ("overwrite_dot_with_user_files", [*SCENES, "--out", ".", "--overwrite"], "click", 2, "not an rgsd store",
     "dotdir"),
    ("overwrite_dot_with_dask", ["scenes", "--n", "1", "--preset", "tiny", "--out", ".", "--overwrite"], "sub", 2,
     "not an rgsd store", "dotdir"),
    ("import_overwrite_user_dir", ["import", "rgbd", "rgbd", "--out", "sentinel2", "--overwrite"], "click", 2,
     "not an rgsd store", "."),
    ("import_into_its_input", ["import", "rgbd", "rgbd", "--out", "rgbd/x.zarr"], "click", 2, "onto the input", "."),
    ("shards_onto_source", ["shards", "s.zarr", "--out", "s.zarr", "--samples", "32", "--overwrite", *SHARDS],
     "click", 2, "onto the input", "."),
    ("shards_onto_source_other_spelling", ["shards", "s.zarr", "--out", "./rgbd/../s.zarr/", "--overwrite", *SHARDS],
     "click", 2, "onto the input", "."),
    ("shards_overwrite_user_dir", ["shards", "s.zarr", "--out", "sentinel_dir", "--overwrite", *SHARDS], "click", 2,
     "not an rgsd store", "."),
    ("refine_onto_its_depth", [*REFINE, "--out", "depth_copy.png"], "click", 2, "onto the input", "."),
    ("refine_onto_its_image", [*REFINE, "--out", "./img.png"], "click", 2, "onto the input", "."),
    ("refine_onto_its_checkpoint", [*REFINE[:-1], "run0/last.png", "--out", "run0/last.png"], "click", 2,
     "onto the input", "."),
    ("s3_overwrite_unreachable", [*SCENES, "--out", "s3://bucket/x.zarr", "--overwrite"], "s3keys", 2,
     "cannot reach", "."),
    # --- one line, not a traceback ----------------------------------------------------------
    ("scenes_read_only_dir", [*SCENES, "--out", "ro/x.zarr"], "ro:ro", 2, "read-only", "."),
    ("scenes_read_only_dir_dask", ["scenes", "--n", "1", "--preset", "tiny", "--out", "ro/x.zarr"], "ro:ro", 2,
     "read-only", "."),
    ("only_on_read_only_store", ["scenes", "--out", "s.zarr", "--only", "0", "--overwrite", "--workers", "0"],
     "ro:s.zarr", 2, "read-only", "."),
    ("shards_read_only_dir", ["shards", "s.zarr", "--out", "ro/x.zarr", *SHARDS], "ro:ro", 2, "read-only", "."),
    ("train_read_only_dir", ["train", "refiner", "--shards", "sh.zarr", "--out", "ro/run", "--steps", "1"], "ro:ro", 2,
     "read-only", "."),
    ("eval_read_only_dir", ["eval", "refiner", "run0/last.pt", "--scenes", "s.zarr", "--out", "ro/rep"], "ro:ro", 2,
     "read-only", "."),
    ("eval_not_a_checkpoint", ["eval", "refiner", "notckpt.pt", "--scenes", "s.zarr", "--out", "rep"], "click", 2,
     "notckpt.pt", "."),
    ("repair_read_only_store", ["verify", "s.zarr", "--repair", "--workers", "0"], "ro:s.zarr", 2, "read-only", "."),
    ("unreachable_scheduler", [*SCENES[:-2], "--out", "x.zarr", "--scheduler", "tcp://127.0.0.1:1"], "sub", 2,
     "scheduler", "."),
    ("shards_unreachable_scheduler", ["shards", "s.zarr", "--out", "x.zarr", "--patch", "32", "--scheduler",
                                      "tcp://127.0.0.1:1"], "sub", 2, "scheduler", "."),
    ("s3_without_credentials", [*SCENES, "--out", "s3://bucket/x.zarr"], "s3", 2, "cannot reach", "."),
    ("s3_refused", [*SCENES, "--out", "s3://bucket/x.zarr"], "s3keys", 2, "cannot reach", "."),
    ("s3_source_refused", ["shards", "s3://bucket/s.zarr", "--out", "x.zarr", *SHARDS], "s3keys", 2, "cannot reach",
     "."),
    ("gpu_without_gpu", [*SCENES, "--out", "x.zarr", "--set", 'render.device="gpu"'], "click", 2, "GPU", "."),
    ("nan_range", [*SCENES, "--out", "x.zarr", "--set", "street.camera_height=[NaN,NaN]"], "click", 2,
     "camera_height", "."),
    ("infinite_number", [*SCENES, "--out", "x.zarr", "--set", "render.hfov_deg=Infinity"], "click", 2, "hfov", "."),
    ("mask_mix_string", ["shards", "s.zarr", "--out", "x.zarr", "--mask-mix", '{"object": "a"}'], "click", 2,
     "mask_mix", "."),
    ("mask_mix_nan", ["shards", "s.zarr", "--out", "x.zarr", "--mask-mix", '{"object": NaN}'], "click", 2,
     "mask_mix", "."),
    ("mask_mix_list", ["shards", "s.zarr", "--out", "x.zarr", "--mask-mix", "[1]"], "click", 2, "mask_mix", "."),
    ("mask_mix_not_json", ["shards", "s.zarr", "--out", "x.zarr", "--mask-mix", "{"], "click", 2, "JSON", "."),
    ("init_missing", ["train", "refiner", "--shards", "sh.zarr", "--out", "run", "--init", "nope.pt"], "click", 2,
     "--init", "."),
    ("init_not_a_checkpoint", ["train", "refiner", "--shards", "sh.zarr", "--out", "run", "--steps", "1",
                               "--loader-workers", "0", "--batch", "2", "--init", "notckpt.pt"], "click", 2,
     "notckpt.pt", "."),
    ("lr_nan", ["train", "refiner", "--shards", "sh.zarr", "--out", "run", "--lr", "nan"], "click", 2, "--lr", "."),
    ("lr_negative", ["train", "refiner", "--shards", "sh.zarr", "--out", "run", "--lr", "-1"], "click", 2, "--lr", "."),
    ("train_into_shard_store", ["train", "refiner", "--shards", "sh.zarr", "--out", "sh.zarr/run"], "click", 2,
     "onto the input", "."),
    ("preview_missing_dir", ["preview", "s.zarr", "--out", "nodir/p.png"], "click", 2, "does not exist", "."),
    ("preview_no_extension", ["preview", "s.zarr", "--out", "sheet"], "click", 2, "extension", "."),
    ("preview_unknown_extension", ["preview", "s.zarr", "--out", "sheet.gif"], "click", 2, "extension", "."),
    ("preview_existing_file", ["preview", "s.zarr", "--out", "sheet.png"], "click", 2, "--overwrite", "."),
    ("preview_into_store", ["preview", "s.zarr", "--out", "s.zarr/p.png"], "click", 2, "onto the input", "."),
    ("preview_onto_a_folder", ["preview", "s.zarr", "--out", "folder.png"], "click", 2, "is a directory", "."),
    ("refine_no_extension", [*REFINE, "--out", "refined"], "click", 2, "extension", "."),
    ("refine_unknown_extension", [*REFINE, "--out", "refined.xyz"], "click", 2, "extension", "."),
    ("info_truncated_zarr_json", ["info", "zarrjson.zarr"], "click", 2, "zarrjson.zarr", "."),
    ("info_truncated_array_json", ["info", "array_zarrjson.zarr"], "click", 2, "'depth'", "."),
    ("n_too_large", ["scenes", "--n", "1000000000000", "--preset", "tiny", "--out", "x.zarr"], "click", 2,
     "at most", "."),
    ("n_not_an_integer", ["scenes", "--n", "1e12", "--preset", "tiny", "--out", "x.zarr"], "click", 2, "--n", "."),
    ("samples_too_large", ["shards", "s.zarr", "--out", "x.zarr", "--samples", "1000000000000"], "click", 2,
     "at most", "."),
    # --- corruption: one line naming the array and the scene --------------------------------
    ("preview_deleted_chunk", ["preview", "deleted.zarr", "--out", "p.png"], "click", 2, "'depth' of scene 1", "."),
    ("preview_flipped_byte", ["preview", "flipped.zarr", "--out", "p.png"], "click", 2, "'rgb' of scene 0", "."),
    ("preview_truncated_chunk", ["preview", "truncated.zarr", "--out", "p.png"], "click", 2, "'instance' of scene 2",
     "."),
    ("preview_emptied_chunk", ["preview", "emptied.zarr", "--out", "p.png"], "click", 2, "'depth' of scene 0", "."),
    ("preview_amodal_deleted", ["preview", "amodal_deleted.zarr", "--out", "p.png"], "click", 2,
     "'amodal' of scene 0", "."),
    ("info_counts_flipped", ["info", "counts_flipped.zarr"], "click", 2, "'num_instances'", "."),
    ("shards_from_deleted", ["shards", "deleted.zarr", "--out", "x.zarr", "--samples", "32", *SHARDS], "click", 2,
     "'depth' of scene 1", "."),
    ("shards_from_flipped", ["shards", "flipped.zarr", "--out", "x.zarr", "--samples", "32", *SHARDS], "click", 2,
     "'rgb' of scene 0", "."),
    ("shards_from_semantic_deleted", ["shards", "semantic_deleted.zarr", "--out", "x.zarr", "--samples", "32",
                                      *SHARDS], "click", 2, "'semantic' of scene 1", "."),
    ("shards_from_damaged_on_dask", ["shards", "emptied.zarr", "--out", "x.zarr", "--samples", "32", "--patch", "32",
                                     "--shard-size", "32", "--mask-mix", '{"sky": 1}', "--workers", "1"], "sub", 2,
     "'depth' of scene 0", "."),
    ("train_from_damaged_shards", ["train", "refiner", "--shards", "sh_emptied.zarr", "--out", "run", "--steps", "20",
                                   "--batch", "4", "--loader-workers", "1"], "click", 2, "'rgb' of shard 1", "."),
    # --- mistakes that were handled well already, so they stay so ---------------------------
    ("resume_and_overwrite", [*SCENES, "--out", "x.zarr", "--resume", "--overwrite"], "click", 2, "contradict", "."),
    ("exists_without_overwrite", [*SCENES, "--out", "s.zarr"], "click", 2, "already exists", "."),
    ("resume_missing_store", [*SCENES, "--out", "nothing.zarr", "--resume"], "click", 2, "no store", "."),
    ("only_out_of_range", ["scenes", "--out", "s.zarr", "--only", "99", "--workers", "0"], "click", 2, "outside", "."),
    ("only_garbage", ["scenes", "--out", "s.zarr", "--only", "a-b"], "click", 2, "--only", "."),
    ("unknown_config_key", [*SCENES, "--out", "x.zarr", "--set", "render.nope=1"], "click", 2, "render.nope", "."),
    ("config_file_missing", [*SCENES, "--out", "x.zarr", "--config", "nope.yaml"], "click", 2, "not found", "."),
    ("unknown_option", ["scenes", "--bogus"], "click", 2, "--bogus", "."),
    ("missing_out", ["scenes", "--n", "1"], "click", 2, "--out", "."),
    ("bad_choice", ["scenes", "--out", "x.zarr", "--preset", "huge"], "click", 2, "--preset", "."),
    ("info_no_store", ["info", "nothing.zarr"], "click", 2, "no store", "."),
    ("info_on_a_file", ["info", "precious.txt"], "click", 2, "precious.txt", "."),
    ("preview_no_store", ["preview", "nothing.zarr", "--out", "p.png"], "click", 2, "no store", "."),
    ("shards_from_shards", ["shards", "sh.zarr", "--out", "x.zarr", *SHARDS], "click", 2, "not a scene store", "."),
    ("shards_patch_too_big", ["shards", "s.zarr", "--out", "x.zarr", "--patch", "512"], "click", 2, "larger than",
     "."),
    ("shards_exists", ["shards", "s.zarr", "--out", "sh.zarr", *SHARDS], "click", 2, "already exists", "."),
    ("shards_unknown_kind", ["shards", "s.zarr", "--out", "x.zarr", "--mask-mix", '{"dragons": 1}'], "click", 2,
     "mask_mix", "."),
    ("train_from_scenes", ["train", "refiner", "--shards", "s.zarr", "--out", "run"], "click", 2,
     "not a shard store", "."),
    ("eval_missing_checkpoint", ["eval", "refiner", "nope.pt", "--scenes", "s.zarr", "--out", "rep"], "click", 2,
     "nope.pt", "."),
    ("import_exists", ["import", "rgbd", "rgbd", "--out", "s.zarr"], "click", 2, "already exists", "."),
    ("verify_no_store", ["verify", "nothing.zarr", "--workers", "0"], "click", 2, "no store", "."),
    ("verify_a_file", ["verify", "precious.txt", "--workers", "0"], "click", 2, "precious.txt", "."),
]
# Cases where work starts before the mistake shows: an informational 'dask:' line or the
# command's progress bar may come first, and what was finished is kept for --resume; the
# files that were there stay intact.
STARTED = {"shards_from_deleted", "shards_from_flipped", "shards_from_semantic_deleted", "shards_from_damaged_on_dask",
           "train_from_damaged_shards"}


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def _read_only_prefix(d: str) -> list[str]:
    if os.geteuid() != 0:
        return []  # a chmod in the test does it
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-m", "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("needs a mount namespace (unshare -m) to make a folder read-only as root")
    script = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"'
    return ["unshare", "-m", "sh", "-c", script, d]


def run(args, how: str, cwd: Path) -> tuple[int, str]:
    if how == "click":
        old = os.getcwd()
        os.chdir(cwd)
        try:
            r = CliRunner().invoke(cli, args)
        finally:
            os.chdir(old)
        return r.exit_code, r.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") or how not in ("s3", "s3keys")}
    env.update({"PYTHONPATH": str(ROOT), **(S3 if how == "s3" else S3_KEYS if how == "s3keys" else {})})
    prefix = []
    if how.startswith("ro:"):
        d = cwd / how[3:]
        prefix = _read_only_prefix(str(d))
        if not prefix:
            for p in [d, *d.rglob("*")]:
                p.chmod(p.stat().st_mode & ~0o222)
    try:
        # Bytes, not text: text mode would turn a progress bar's carriage returns into newlines.
        p = subprocess.run([*prefix, GEN, *args], cwd=cwd, env=env, capture_output=True, timeout=180, check=False)
    finally:
        if how.startswith("ro:") and not prefix:
            for q in [d, *d.rglob("*")]:
                q.chmod(q.stat().st_mode | 0o200)
    return p.returncode, p.stderr.decode(errors="replace")


@pytest.fixture
def work(base, tmp_path):
    w = tmp_path / "w"
    shutil.copytree(base, w, symlinks=True)
    (w / "ro").mkdir()
    return w


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_user_error(case, work):
    name, args, how, code, words, cwd = case
    before = snapshot(work)
    rc, err = run(args, how, work / cwd)
    if name == "gpu_without_gpu" and rc == 0:
        pytest.skip("this machine has a GPU")
    # What a terminal shows: the text after a line's last carriage return (a progress bar
    # that erased itself leaves nothing).
    lines = [ln.rsplit("\r", 1)[-1] for ln in err.split("\n")]
    lines = [ln for ln in lines if ln.strip() and not (name in STARTED and (ln.startswith("dask: ")
                                                                          or re.search(r" \d+%\|.*\| ", ln)))]
    assert rc == code, err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for w in ([words] if isinstance(words, str) else words):
        assert w in lines[0], lines[0]
    after = snapshot(work)
    if name in STARTED:
        after = {k: v for k, v in after.items() if k in before}
    assert after == before, sorted(set(after.items()) ^ set(before.items()))[:5]
