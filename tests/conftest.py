"""Shared fixtures."""
import pytest


@pytest.fixture(scope="session")
def fixture_scenes(tmp_path_factory) -> str:
    """URL of a six-scene analytic scene store (96x64, no Blender needed): tests/fixture_store.py."""
    from tests.fixture_store import make_scene_store
    url = str(tmp_path_factory.mktemp("fixture") / "scenes.zarr")
    make_scene_store(url, n=6, width=96, height=64, seed=0)
    return url
