"""One flipped byte in any array of a scene store: ``gen verify --repair`` + ``--resume``
gives back exactly what a clean run made (scenes/store_repair.py for the metadata chunks).
The fake-scene cases cover every array without Blender; the Blender case renders one
small store and repairs a few kinds of damage of it."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from pipelines import scenes_run
from pipelines.verify import verify
from scenes.config import build_config
from scenes.store import META_ARRAYS, PER_SCENE, PIXEL_ARRAYS, ChunkError, open_store
from tests.fake_scenes import MAKE

CFG = build_config("tiny", overrides=["render.width=24", "render.height=16", "scene.max_instances=6"])
N = 4


def _run(url, resume=False, make=MAKE, cfg=CFG, seed=5):
    return scenes_run.run(str(url), n=N, cfg=cfg, seed=seed, resume=resume,
                          cluster=scenes_run.ClusterOptions(workers=0), make=make)


def flip(store: Path, name: str, scene: int = 1) -> Path:
    """Flip one byte in the middle of the chunk of ``name`` holding ``scene``."""
    a = zarr.open_array(str(store / name))
    key = a.metadata.encode_chunk_key((scene // a.metadata.chunk_grid.chunk_shape[0],) + (0,) * (a.ndim - 1))
    path = store / name / key
    b = bytearray(path.read_bytes())
    b[len(b) // 2] ^= 0x10
    path.write_bytes(bytes(b))
    return path


def check(store: Path, repair: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    code = verify(str(store), repair=repair, workers=0, out=out)
    return code, out.getvalue()


def same_store(a: Path, b: Path, names) -> None:
    ga, gb = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
    for name in names:
        x, y = ga[name][:], gb[name][:]
        if x.dtype.kind in "OTU":
            assert x.tolist() == y.tolist(), name
        else:
            assert x.tobytes() == y.tobytes(), name


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    url = tmp_path_factory.mktemp("repair") / "clean.zarr"
    assert _run(url).code == 0
    return url


@pytest.mark.parametrize("name", list(PER_SCENE))
def test_one_flipped_byte_in_any_array_repairs_to_the_clean_store(clean, tmp_path, name):
    s = tmp_path / "s.zarr"
    shutil.copytree(clean, s)
    flip(s, name)
    code, out = check(s)
    assert code == 1 and f"'{name}'" in out and "intact" not in out, out
    code, out = check(s, repair=True)
    assert code == 0 and "repaired" in out, out
    rebuilt = name in ("done", "num_instances")  # from the per-pixel arrays: nothing to render
    pending = [] if rebuilt else [1] if name in PIXEL_ARRAYS else list(range(N))
    assert np.flatnonzero(~open_store(str(s)).done()).tolist() == pending, out
    if pending:
        assert f"{len(pending)} of {N} scenes pending (re-)render" in out and "intact" not in out, out
        code, again = check(s)  # a store waiting for --resume is never called intact
        assert code == 0 and "pending" in again and "intact" not in again, again
    assert _run(s, resume=True).code == 0
    assert check(s) == (0, f"{s}: all {N} finished scenes intact\n")
    same_store(clean, s, PER_SCENE)


@pytest.mark.parametrize("name", META_ARRAYS)
def test_resume_on_a_damaged_metadata_chunk_stops_in_one_line(clean, tmp_path, name):
    """--resume reads only ``done`` (O(1) metadata reads); the first write of the damaged
    chunk stops the run with one line, and the store still repairs to the clean one."""
    s = tmp_path / "s.zarr"
    shutil.copytree(clean, s)
    open_store(str(s), mode="r+").set_done([3], False)
    flip(s, name)
    with pytest.raises((ChunkError, scenes_run.RunError), match=f"array '{name}' .*damaged.*--repair"):
        _run(s, resume=True)
    assert check(s, repair=True)[0] == 0 and _run(s, resume=True).code == 0
    same_store(clean, s, PER_SCENE)


def test_a_missing_table_chunk_of_finished_scenes_is_damage(clean, tmp_path):
    s = tmp_path / "s.zarr"
    shutil.copytree(clean, s)
    (s / "modal_area/c/0/0").unlink()
    code, out = check(s)
    assert code == 1 and "'modal_area' chunk of scenes 0-3 is damaged (no stored chunk" in out, out
    assert check(s, repair=True)[0] == 0 and _run(s, resume=True).code == 0
    same_store(clean, s, PER_SCENE)


def test_done_is_rebuilt_from_what_is_stored(clean, tmp_path):
    """A lost or damaged ``done`` chunk: the scenes whose spec and per-pixel chunks are all
    stored are done again; one that lacks a chunk is left to --resume."""
    for damage in ("flip", "lose"):
        s = tmp_path / f"{damage}.zarr"
        shutil.copytree(clean, s)
        if damage == "flip":
            flip(s, "done")
        else:
            (s / "done/c/0").unlink()
        (s / "depth/c/2/0/0").unlink()
        code, out = check(s)
        assert code == 1 and "'done' chunk of scenes 0-3 is damaged" in out, out
        assert "'depth' of scene 2" not in out  # scene 2 is not counted as finished
        code, out = check(s, repair=True)
        assert code == 0 and "'done' of scenes 0-3 rebuilt from the stored specs and per-pixel chunks (3 done)" in out
        assert open_store(str(s)).done().tolist() == [True, True, False, True]
        assert _run(s, resume=True).code == 0
        same_store(clean, s, PER_SCENE)


def test_a_half_rendered_store_is_pending_not_intact(tmp_path):
    s = tmp_path / "s.zarr"
    assert _run(s).code == 0
    open_store(str(s), mode="r+").set_done([2, 3], False)
    assert check(s) == (0, f"{s}: no damage in the 2 finished scenes; 2 of {N} scenes pending (re-)render: 2-3; "
                           "'gen scenes ... --resume' renders them\n")


@pytest.fixture(scope="session")
def blender_store(tmp_path_factory):
    """Three tiny Blender scenes, rendered once per session."""
    pytest.importorskip("bpy")
    from click.testing import CliRunner

    from pipelines.cli import cli
    url = tmp_path_factory.mktemp("blender") / "clean.zarr"
    args = ["scenes", "--out", str(url), *BLENDER]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.stderr
    return url


BLENDER = ["--n", "3", "--preset", "tiny", "--workers", "0", "--seed", "5", "--set", "render.width=48",
           "--set", "render.height=32"]


@pytest.mark.blender
@pytest.mark.slow
@pytest.mark.parametrize("names", [("rgb", "amodal", "depth"), ("done", "num_instances"), ("instance_object", "spec")],
                         ids="+".join)
def test_blender_store_repair_then_resume_equals_the_clean_render(blender_store, tmp_path, names):
    """Rendering is deterministic: what --repair sends back to render comes back identical
    (RGB too, on one machine); what it rebuilds is identical without rendering."""
    from click.testing import CliRunner

    from pipelines.cli import cli
    s = tmp_path / "s.zarr"
    shutil.copytree(blender_store, s)
    for k, name in enumerate(names):
        flip(s, name, scene=k)
    assert check(s, repair=True)[0] == 0
    r = CliRunner().invoke(cli, ["scenes", "--out", str(s), *BLENDER, "--resume"])
    assert r.exit_code == 0, r.stderr
    assert check(s) == (0, f"{s}: all 3 finished scenes intact\n")
    same_store(blender_store, s, PER_SCENE)
