"""Issue 16 part 1, People: natural arm poses as the norm, gap-rich poses a minority,
children, groups; with the knobs off, the scenes of before, byte for byte."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from scenes import mesh as P
from scenes import people
from scenes.assets import pedestrian_parts
from scenes.config import ConfigError, build_config
from scenes.sampling import sample_scene
from tests.variety_off import BEFORE
from tests.variety_off import spec_digest as digest

sys.path.insert(0, str(Path(__file__).parent))
from test_assets import _min_dist, _surface_points  # noqa: E402

OPTS = build_config("tiny")["people"]




@pytest.mark.parametrize("scenario", sorted(BEFORE))
def test_variety_off_reproduces_the_scenes_of_before(scenario):
    assert digest(scenario, "variety.enabled=false") == BEFORE[scenario]


def test_each_people_knob_switches_off_alone():
    from tests.variety_off import all_off_but
    assert digest("city", *all_off_but()) == BEFORE["city"]  # every issue-16 knob off, people's included
    assert digest("street") != BEFORE["street"]  # on by default


def test_natural_poses_are_the_norm_and_children_a_share():
    ps = [people.sample_pedestrian(np.random.default_rng(s), OPTS) for s in range(2000)]
    gap = [p for p in ps if p["arms"] == "gap_rich"]
    nat = [p for p in ps if p["arms"] == "natural"]
    sd = math.sqrt(2000 * 0.15 * 0.85)
    assert abs(len(gap) - 2000 * OPTS["gap_rich_fraction"]) < 4 * sd
    for p in nat:
        assert p["pose"] in ("standing", "walking")
        for side in "lr":
            assert 5 <= p["abduct_" + side] <= 15 and 5 <= p["elbow_" + side] <= 25
    assert max(p["abduct_l"] for p in gap) > 20 and any(p["pose"] == "raised" for p in gap)
    kids = [p for p in ps if p["child"]]
    assert abs(len(kids) - 2000 * OPTS["child_fraction"]) < 4 * math.sqrt(2000 * 0.1 * 0.9)
    assert all(1.0 <= p["height"] <= 1.45 for p in kids)
    assert all(1.5 <= p["height"] <= 1.95 for p in ps if not p["child"])
    old = people.sample_pedestrian(np.random.default_rng(0))
    assert "arms" not in old and "child" not in old  # the spec of before has no new keys


def test_natural_arms_still_clear_the_body():
    opts = {**OPTS, "gap_rich_fraction": 0.0, "child_fraction": 0.5}
    for seed in range(20):
        parts = pedestrian_parts(people.sample_pedestrian(np.random.default_rng(seed), opts))
        body = _surface_points(P.concat([parts["torso"], parts["pelvis"]]), 10)
        for side in "lr":
            arm = np.vstack([_surface_points(parts["lower_arm_" + side], 3), _surface_points(parts["hand_" + side], 3)])
            assert _min_dist(arm, body) > 0.001, (seed, side)


def test_groups_walk_side_by_side():
    cfg = build_config("tiny", overrides=["scene.scenario=street", "people.group_fraction=1.0"])
    pairs = 0
    for i in range(4):
        ped = [o for o in sample_scene(cfg, 5, i).objects if o.kind == "pedestrian"]
        for a in range(len(ped)):
            for b in range(a + 1, len(ped)):
                d = math.dist(ped[a].position[:2], ped[b].position[:2])
                turn = abs((ped[a].yaw_deg - ped[b].yaw_deg + 180) % 360 - 180)
                pairs += d < 1.0 and turn < 15
    assert pairs >= 4


@pytest.mark.parametrize("bad", ["people.child_fraction=1.5", "people.gap_rich_fraction=-0.1",
                                 "people.group_fraction=2", "people.dogs=1"])
def test_bad_people_knobs_are_refused(bad):
    with pytest.raises(ConfigError):
        build_config("tiny", overrides=[bad])
