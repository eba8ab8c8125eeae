"""A missing or unsupported optional dependency is one line naming the extra, before anything
is written.  The installed distributions are shadowed by fake metadata put first on the path."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.requires import MissingDependency, _release, require

GEN = str(Path(sys.executable).with_name("gen"))


def fake_dist(root: Path, name: str, version: str) -> None:
    info = root / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def run_gen(tmp_path, shadow: Path, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(shadow), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([GEN, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)


def test_release_parts():
    assert _release("2.14.1+cu130") == (2, 14, 1)
    assert _release("5.3.0") == (5, 3, 0)
    assert _release("2.15.0rc1") == (2, 15, 0)


def test_unsupported_bpy_is_one_line_and_writes_nothing(tmp_path):
    shadow = tmp_path / "shadow"
    fake_dist(shadow, "bpy", "5.0.1")
    work = tmp_path / "work"
    work.mkdir()
    r = run_gen(work, shadow, "scenes", "--n", "1", "--preset", "tiny", "--workers", "0", "--out", "s.zarr")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "bpy < 5.4" in lines[0] and "5.0.1" in lines[0] and "rgsd[render]" in lines[0]
    assert list(work.iterdir()) == []


def test_unsupported_torch_is_one_line(tmp_path):
    shadow = tmp_path / "shadow"
    fake_dist(shadow, "torch", "1.13.0")
    r = run_gen(tmp_path, shadow, "refine", "a.png", "--depth", "d.png", "--mask", "m.png",
                "--checkpoint", "c.pt", "--out", "o.png")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "torch" in lines[0] and "rgsd[train]" in lines[0]


def test_missing_distribution_names_the_extra(monkeypatch):
    from importlib.metadata import PackageNotFoundError

    import pipelines.requires as R

    def missing(name):
        raise PackageNotFoundError(name)
    monkeypatch.setattr(R, "version", missing)
    with pytest.raises(MissingDependency, match=r"pip install 'rgsd\[s3\]'"):
        R.require_for_urls(["s3://bucket/x.zarr"], "gen info")
    with pytest.raises(MissingDependency, match=r"gen scenes needs Blender's Python module"):
        require("bpy", "gen scenes")


def test_resume_refuses_a_store_of_another_blender(tmp_path):
    """A store whose attrs say Blender 5.0.1 (as 5.0-era stores do) is refused by --resume
    with one line naming both versions, and accepted with --allow-blender-change."""
    import zarr

    from tests.fixture_store import make_scene_store
    url = str(tmp_path / "old.zarr")
    make_scene_store(url, n=2)
    g = zarr.open_group(url, mode="r+")
    g.attrs["software"] = dict(g.attrs["software"], bpy="5.0.1")
    from pipelines import scenes_run
    st = scenes_run.scene_store.open_store(url)
    with pytest.raises(scenes_run.RunError, match=r"Blender 5\.0\.1, this is Blender 5\.3"):
        scenes_run.check_blender(st)
    scenes_run.check_blender(st, allow_change=True)
