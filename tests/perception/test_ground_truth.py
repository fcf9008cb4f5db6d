import dataclasses

import numpy as np
import pytest

from perception.files import atomic_path, write_json
from perception.ground_truth import GroundTruthPerceiver
from perception.types import EgoState, WorldModel


def truth_at(t_s: float, n: int = 50) -> WorldModel:
    ego = EgoState(0.0, 0.0, 0.0, 10.0, t_s=t_s)
    x = np.arange(n, dtype=float) * 2.0 + t_s * 10.0  # every object moves at 10 m/s along x
    return WorldModel(
        ego=ego,
        t_s=t_s,
        ids=np.arange(n),
        class_ids=np.zeros(n, dtype=np.int64),
        xy_m=np.stack([x, np.zeros(n)], axis=1),
        v_mps=np.tile([10.0, 0.0], (n, 1)),
        yaw_rad=np.zeros(n),
        size_m=np.tile([4.5, 1.8], (n, 1)),
        scores=np.ones(n),
    )


def perceiver(**kw) -> GroundTruthPerceiver:
    args = dict(
        position_noise_m=0.0, velocity_noise_mps=0.0, miss_probability=0.0, latency_s=0.0, max_range_m=1e5
    )
    args.update(kw)
    p = GroundTruthPerceiver(**args)
    p.reset(np.random.default_rng(0))
    return p


def test_emergency_flags_follow_the_objects_kept():
    truth = truth_at(0.0, n=10)
    flagged = dataclasses.replace(truth, emergency=np.arange(10) % 3 == 0)
    out = perceiver(max_range_m=9.0).perceive(None, truth.ego, flagged)  # x = 0, 2, ..., 8 kept
    np.testing.assert_array_equal(out.ids, np.arange(5))
    np.testing.assert_array_equal(out.emergency, [True, False, False, True, False])
    assert perceiver().perceive(None, truth.ego, truth).emergency is None  # none known


def test_exact_without_error_model():
    truth = truth_at(1.0)
    out = perceiver().perceive(None, truth.ego, truth)
    np.testing.assert_array_equal(out.xy_m, truth.xy_m)
    np.testing.assert_array_equal(out.ids, truth.ids)


def test_position_noise_has_the_set_spread():
    truth = truth_at(0.0, n=4000)
    out = perceiver(position_noise_m=0.5).perceive(None, truth.ego, truth)
    err = out.xy_m - truth.xy_m
    assert err.std() == pytest.approx(0.5, rel=0.05)
    assert abs(err.mean()) < 0.03


def test_misses_drop_the_set_fraction():
    truth = truth_at(0.0, n=4000)
    out = perceiver(miss_probability=0.25).perceive(None, truth.ego, truth)
    assert len(out) / 4000 == pytest.approx(0.75, abs=0.03)


def test_latency_shows_the_world_as_it_was():
    p = perceiver(latency_s=0.2)
    for k in range(11):  # 0.0 .. 0.5 s at 20 Hz
        t = round(k * 0.05, 9)
        truth = truth_at(t)
        out = p.perceive(None, truth.ego, truth)
    # at t = 0.5 s the planner sees the objects where they were at t = 0.3 s
    np.testing.assert_allclose(out.xy_m, truth_at(0.3).xy_m)
    assert out.ego.t_s == 0.5


def test_range_limits_what_is_seen():
    truth = truth_at(0.0)
    out = perceiver(max_range_m=20.0).perceive(None, truth.ego, truth)
    assert np.all(np.hypot(*out.xy_m.T) <= 20.0)
    assert len(out) == 11


@pytest.mark.parametrize("kw", [{"miss_probability": 1.5}, {"position_noise_m": -1.0}, {"max_range_m": 0.0}])
def test_bad_error_model_is_rejected(kw):
    with pytest.raises(ValueError):
        perceiver(**kw)


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "result.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half written")
            raise RuntimeError("killed")
    assert target.read_text().strip().startswith("{")
    assert list(tmp_path.iterdir()) == [target]
