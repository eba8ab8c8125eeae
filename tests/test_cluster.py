"""How a LocalCluster splits the cores between worker processes and Cycles threads."""
from pipelines.cluster import default_layout
from scenes.config import build_config

TINY = build_config("tiny")["render"]
DEFAULT = build_config("default")["render"]


def test_light_frames_get_one_single_threaded_worker_per_core():
    assert default_layout(TINY, cores=2) == (2, 1)
    assert default_layout(TINY, cores=16) == (16, 1)


def test_heavy_frames_get_fewer_workers_with_more_threads():
    assert default_layout(DEFAULT, cores=2) == (1, 2)
    assert default_layout(DEFAULT, cores=16) == (4, 4)
    assert default_layout(DEFAULT, cores=1) == (1, 1)


def test_what_the_user_sets_is_kept_and_the_rest_fills_the_cores():
    assert default_layout(DEFAULT, cores=8, threads=2) == (4, 2)
    assert default_layout(DEFAULT, cores=8, workers=2) == (2, 4)
    assert default_layout(TINY, cores=8, workers=2) == (2, 1)
    assert default_layout(DEFAULT, cores=8, workers=3, threads=3) == (3, 3)
    assert default_layout(None, cores=4) == (4, 1)  # shards: no render config, one per core
