"""Plan before you spend (issue 26): --estimate projects a run's cost from a few rendered
scenes, and --gpus-per-worker gives each Dask worker its own GPUs (a faked device list)."""
import pytest

from generator.gpus import SLOT_ENV, slot_env, use_flags
from tests.cli_util import gen


def test_each_worker_takes_its_own_gpus():
    devices = ["CPU", "OPTIX", "OPTIX", "OPTIX", "OPTIX"]  # as Cycles lists them: the CPU and 4 GPUs
    assert use_flags(devices, "OPTIX", slot="") == [False, True, True, True, True]  # default: every GPU
    assert use_flags(devices, "OPTIX", slot="0:2") == [False, True, True, False, False]
    assert use_flags(devices, "OPTIX", slot="1:2") == [False, False, False, True, True]
    assert use_flags(devices, "OPTIX", slot="2:2") == [False, True, True, False, False]  # 3 workers x 2 > 4: wraps
    assert use_flags(devices, "OPTIX", slot="3:1") == [False, False, False, False, True]
    # Only GPUs of the chosen backend count (Cycles lists a GPU under CUDA and OptiX both).
    mixed = ["CUDA", "OPTIX", "CUDA", "OPTIX", "CPU"]
    assert use_flags(mixed, "OPTIX", slot="1:1") == [False, False, False, True, False]
    assert use_flags(["CPU"], "CUDA", slot="0:1") == [False]


def test_worker_slots_and_the_environment(monkeypatch):
    assert slot_env(3, 2) == "3:2" and slot_env("3", 1) == "3:1"
    assert slot_env("tcp://10.0.0.5:4000", 2) is None  # another cluster's worker names: its scheduler decides
    assert slot_env(0, 0) is None
    monkeypatch.setenv(SLOT_ENV, "1:1")
    assert use_flags(["CUDA", "CUDA"], "CUDA") == [False, True]


@pytest.mark.blender
def test_estimate_prints_a_projection_and_writes_nothing(tmp_path):
    pytest.importorskip("bpy")
    out = tmp_path / "s.zarr"
    r = gen("scenes", "--n", 40000, "--preset", "tiny", "--out", out, "--estimate")
    assert r.exit_code == 0, r.output
    assert "estimate for 40,000 scenes" in r.output and "core-hours" in r.output and "disk:" in r.output
    assert not out.exists()
